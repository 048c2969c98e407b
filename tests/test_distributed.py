"""Data-parallel training: real 2-process torchrun runs (gloo, CPU) against single-process runs of one global batch."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import write_synthetic_data

from protein_didi import distill, train_teacher
from protein_didi.core.distributed import Context, DistributedError
from protein_didi.core.loop import STATE_FILE
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.core.stream import StreamOrder
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.pretrained import save_model
from protein_didi.protein.shards import ProteinShards

WORKER = Path(__file__).with_name("ddp_worker.py")
TOL = 1e-5


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def torchrun_cmd(module: str, out: Path, args: list[str], worker_opts: list[str] = ()) -> list[str]:
    launcher = [
        sys.executable,
        "-m",
        "torch.distributed.run",
        "--nproc_per_node",
        "2",
        "--master_port",
        str(free_port()),
    ]
    return [*launcher, str(WORKER), module, str(out / "ranks"), *worker_opts, "--", *args, "--out", str(out)]


ENV = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(WORKER.parent)}


def torchrun(module: str, out: Path, args: list[str], worker_opts: list[str] = ()) -> subprocess.CompletedProcess:
    cmd = torchrun_cmd(module, out, args, worker_opts)
    return subprocess.run(cmd, env=ENV, capture_output=True, text=True, timeout=180)


def max_diff(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    assert a.keys() == b.keys()
    return max((a[k].double() - b[k].double()).abs().max().item() for k in a if a[k].is_floating_point())


def final_weights(out: Path, part: str) -> dict[str, torch.Tensor]:
    state = torch.load(out / STATE_FILE, weights_only=False)["task"][part]
    return state["weights"] if part == "ema" else state  # the EMA also keeps its update count


def logged_steps(out: Path) -> list[int]:
    return [json.loads(line)["step"] for line in (out / "metrics.jsonl").read_text().splitlines()]


@pytest.fixture
def teacher_dir(tiny_model, tmp_path) -> Path:
    save_model(tmp_path / "teacher", tiny_model, LogLinearSchedule(), "teacher", {"max_residues": 64})
    return tmp_path / "teacher"


def distill_args(teacher: Path, method: str = "didi") -> list[str]:
    return [
        "--teacher", str(teacher), "--method", method, "--lengths", "10,12", "--batch-size", "4", "--group-size", "2",
        "--bank-size", "4", "--teacher-nfe", "4", "--student-nfe", "4", "--disc-warmup", "1", "--ema", "0.9",
        "--lr-student", "1e-3", "--lr-disc", "1e-3", "--checkpoint-every", "2", "--device", "cpu",
    ]  # fmt: skip


# -- pieces, in one process ---------------------------------------------------------------------------------------


def test_stream_order_is_a_fresh_permutation_each_epoch_and_split_free():
    order = StreamOrder([5, 3, 7], seed=1)
    epoch0, epoch1 = order.indices(0, 15), order.indices(15, 15)
    assert sorted(epoch0) == sorted(epoch1) == list(range(15)) and epoch0 != epoch1
    assert order.indices(4, 8) == order.indices(4, 3) + order.indices(7, 5)  # any split over ranks reads the same
    assert StreamOrder([5, 3, 7], seed=1).indices(9, 20) == order.indices(9, 20)
    with pytest.raises(ValueError, match="empty corpus"):
        StreamOrder([0])


def test_protein_batches_do_not_depend_on_how_positions_are_split(tmp_path):
    write_synthetic_data(tmp_path)
    batches = ProteinBatches(ProteinShards.open(tmp_path, "train"), max_residues=16, seed=3)
    whole = batches.batch(30, 8)
    assert torch.equal(whole, torch.cat([batches.batch(30, 4), batches.batch(34, 4)]))
    assert whole.shape == (8, 18)  # cropped to 16 residues + <cls>/<eos>


def test_units_split_evenly_or_say_how_to_fix():
    ctx = Context(rank=1, world_size=2)
    assert ctx.units(4) == range(2, 4)
    with pytest.raises(DistributedError, match="3 groups per step cannot be split evenly over 2 processes; pick"):
        ctx.units(3, "groups", fix="pick a multiple")
    assert Context().wrap(module := torch.nn.Linear(2, 2)) is module


# -- real torchrun runs --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("method", ["didi", "idlm"])
def test_two_processes_match_one_process_with_the_same_global_batch(teacher_dir, tiny_model, tmp_path, method):
    args = [*distill_args(teacher_dir, method), "--steps", "3"]
    run = torchrun("distill", tmp_path / "ddp", args)
    assert run.returncode == 0, run.stderr[-3000:]
    ranks = [torch.load(tmp_path / "ddp" / "ranks" / f"rank{r}.pt") for r in range(2)]
    for part in ("student", "aux"):
        assert max_diff(ranks[0][part], ranks[1][part]) == 0.0  # replicas are bit-identical
    assert distill.main([*args, "--out", str(tmp_path / "single")]) == 0
    for part in ("student", "aux"):
        assert max_diff(final_weights(tmp_path / "single", part), ranks[0][part]) < TOL
    trained = max_diff(final_weights(tmp_path / "single", "student"), tiny_model.state_dict())
    assert trained > 1e-4  # the comparison is between models that actually moved
    assert logged_steps(tmp_path / "ddp") == [0, 1, 2]  # rank 0 alone logs


def test_fsdp_matches_one_process_and_its_checkpoint_resumes_without_sharding(teacher_dir, tmp_path):
    # the learning rate decays to 0 at --steps, so a run is compared with one of the same length: FSDP stops
    # at step 3 (rank 1 fails; the step-2 checkpoint is intact), one process without FSDP continues it to 5
    args = [*distill_args(teacher_dir), "--steps", "5"]
    run = torchrun("distill", tmp_path / "fsdp", [*args, "--fsdp"], ["--fail-rank", "1", "--fail-step", "3"])
    assert run.returncode != 0 and "injected failure at step 3" in run.stderr
    fsdp_state = torch.load(tmp_path / "fsdp" / STATE_FILE, weights_only=False)
    assert fsdp_state["step"] == 2 and fsdp_state["world_size"] == 2
    # checkpoints are unsharded: one process without FSDP continues the run
    assert distill.main([*args, "--out", str(tmp_path / "fsdp"), "--resume"]) == 0
    assert distill.main([*args, "--out", str(tmp_path / "single")]) == 0
    # the spectrally normalised discriminator head amplifies reduce-scatter rounding most (Adam, lr 1e-3)
    for part, tol in (("student", TOL), ("ema", TOL), ("aux", 1e-4)):
        assert max_diff(final_weights(tmp_path / "fsdp", part), final_weights(tmp_path / "single", part)) < tol


def test_a_failing_rank_stops_the_job_and_a_resume_on_one_process_continues_at_the_same_position(teacher_dir, tmp_path):
    args = [*distill_args(teacher_dir), "--steps", "6"]
    started = time.monotonic()
    run = torchrun("distill", tmp_path / "ddp", args, ["--fail-rank", "1", "--fail-step", "3"])
    assert run.returncode != 0 and time.monotonic() - started < 120
    assert "error (rank 1 of 2): injected failure at step 3" in run.stderr
    state = torch.load(tmp_path / "ddp" / STATE_FILE, weights_only=False)
    assert state["step"] == 2 and state["world_size"] == 2  # the last checkpoint is intact

    assert distill.main([*args, "--out", str(tmp_path / "ddp"), "--resume"]) == 0
    assert distill.main([*args, "--out", str(tmp_path / "single")]) == 0
    assert logged_steps(tmp_path / "ddp") == list(range(6))  # nothing repeated, nothing skipped
    assert max_diff(final_weights(tmp_path / "ddp", "student"), final_weights(tmp_path / "single", "student")) < TOL


def teacher_args(data: Path) -> list[str]:
    return [
        "--data", str(data), "--arch", "test", "--steps", "8", "--batch-size", "8",
        "--micro-batch-size", "4", "--max-residues", "32", "--warmup", "2", "--checkpoint-every", "2",
        "--device", "cpu",
    ]  # fmt: skip


def test_teacher_with_fsdp_matches_one_process(tmp_path):
    write_synthetic_data(tmp_path / "data")
    args = [*teacher_args(tmp_path / "data"), "--steps", "4"]
    run = torchrun("train_teacher", tmp_path / "fsdp", [*args, "--fsdp"])
    assert run.returncode == 0, run.stderr[-3000:]
    assert train_teacher.main([*args, "--out", str(tmp_path / "single")]) == 0
    for part in ("model", "ema"):
        assert max_diff(final_weights(tmp_path / "fsdp", part), final_weights(tmp_path / "single", part)) < TOL
    assert (tmp_path / "fsdp" / "model").is_dir()  # rank 0 exported the gathered EMA weights


def test_teacher_killed_on_two_processes_resumes_on_one_at_the_same_data_position(tmp_path):
    write_synthetic_data(tmp_path / "data")
    args = teacher_args(tmp_path / "data")
    out = tmp_path / "ddp"
    # every rank pauses before step 5, so the kill lands mid-run (after the step-4 checkpoint) on any machine
    cmd = torchrun_cmd("train_teacher", out, args, ["--pause-step", "5"])
    proc = subprocess.Popen(cmd, env=ENV, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and proc.poll() is None:
        if (out / STATE_FILE).exists() and torch.load(out / STATE_FILE, weights_only=False)["step"] >= 4:
            break
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)
    proc.wait()
    state = torch.load(out / STATE_FILE, weights_only=False)
    assert state["step"] == 4 and state["world_size"] == 2
    assert state["task"]["data_position"] == 4 * 8  # the stream position sits in the checkpoint

    assert train_teacher.main([*args, "--out", str(out), "--resume"]) == 0
    assert train_teacher.main([*args, "--out", str(tmp_path / "single")]) == 0
    assert logged_steps(out) == list(range(8))
    assert max_diff(final_weights(out, "model"), final_weights(tmp_path / "single", "model")) < TOL
    assert np.isclose(json.loads((out / "metrics.jsonl").read_text().splitlines()[-1])["epoch"], 64 / 40)


def test_a_checkpoint_that_does_not_fit_the_run_is_refused_in_one_line(teacher_dir, tmp_path, capsys):
    args = [*distill_args(teacher_dir), "--steps", "2", "--out", str(tmp_path / "run")]
    assert distill.main(args) == 0
    state = torch.load(tmp_path / "run" / STATE_FILE, weights_only=False)
    del state["task"]["student"]["mlm.lm_head.bias"]
    torch.save(state, tmp_path / "run" / STATE_FILE)
    capsys.readouterr()
    assert distill.main([*args, "--resume"]) == 2
    err = capsys.readouterr().err.strip()
    assert "does not fit this run" in err and "\n" not in err
