"""Data-parallel scaling: training steps/s on 1 vs N processes, and bytes communicated per step.

    python bench/scaling.py [--nproc N] [--device auto|cpu] [--steps 12] [--quick]

Runs DiDi-Instruct distillation of the embedded teacher (and, when
``data/uniprot20k`` exists, teacher training on it) once in one process and
once under ``torchrun --nproc_per_node N`` with the same global batch. On CPU
the machine's cores are shared fairly: one process gets all of them as
threads, each of N processes gets cores/N; a third row runs one process on a
single thread, the per-core baseline. Efficiency = N-process throughput ÷
one-process throughput on the same cores.

Communication is measured, not estimated: a DDP communication hook counts the
gradient bytes all-reduced per step (student + discriminator, or the teacher),
and a ring all-reduce moves 2(N−1)/N of that payload in and out of every rank.
An FSDP row (``--fsdp``) shows the price of sharding: parameters are gathered
for every forward pass (its traffic is not counted by the hook).
On a GPU machine (``--device auto``) each process takes one GPU and N defaults
to the GPU count.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import torch
from _common import write_results  # bench/ is on sys.path when a script here runs

ROOT = Path(__file__).resolve().parent.parent
DATA = ROOT / "data" / "uniprot20k"


# -- worker: runs inside each process -------------------------------------------------------------------------------


def count_gradient_bytes(ddp: torch.nn.Module, counter: dict[str, int]) -> None:
    """Route DDP's bucket all-reduces through a hook that adds up their sizes."""
    from torch.distributed.algorithms.ddp_comm_hooks import default_hooks

    def hook(state: dict[str, int], bucket):
        state["bytes"] += bucket.buffer().numel() * bucket.buffer().element_size()
        return default_hooks.allreduce_hook(None, bucket)

    ddp.register_comm_hook(counter, hook)


def build_task(job: str, opts: argparse.Namespace, ctx):
    """(task, the DDP-wrapped modules, samples per step)."""
    if job == "distill":
        from protein_didi.core.didi import DidiConfig, DidiTrainer
        from protein_didi.protein.pretrained import load_model
        from protein_didi.protein.prompts import ProteinPrompts

        teacher = load_model("teacher", ctx.device)
        cfg = DidiConfig(
            student_nfe=8, batch_size=opts.batch, group_size=opts.group, teacher_nfe=32, bank_size=16,
            disc_warmup=0, ema=0.999,
        )  # fmt: skip
        task = DidiTrainer(teacher.model, teacher.schedule, ProteinPrompts([100]), cfg, lambda *a: None, ctx=ctx)
        return task, [task.student_ddp, task.aux_ddp]
    from protein_didi.protein import train_teacher
    from protein_didi.protein.model import EsmDenoiser, esm_config
    from protein_didi.protein.shards import ProteinShards

    settings = train_teacher.ProteinTeacherSettings(batch_size=opts.batch * 4, micro_batch_size=opts.group * 2)
    torch.manual_seed(0)
    shards = ProteinShards.open(DATA, "train")
    task = train_teacher.TeacherTask(EsmDenoiser(esm_config("tiny")), shards, settings, DATA, ctx)
    return task, [task.wrapped]


def worker(opts: argparse.Namespace) -> None:
    from protein_didi.core import distributed

    ctx = distributed.init(opts.device, fsdp=opts.fsdp)
    task, wrapped = build_task(opts.job, opts, ctx)
    counter = {"bytes": 0}
    if ctx.distributed and not ctx.sharded:
        for module in wrapped:
            count_gradient_bytes(module, counter)
    for step in range(opts.warmup):  # teacher bank, allocator and thread pools warm up here
        ctx.all_mean(task.train_step(step))
    ctx.barrier()
    counter["bytes"] = 0
    start = time.perf_counter()
    for step in range(opts.warmup, opts.steps):
        ctx.all_mean(task.train_step(step))
    ctx.barrier()
    seconds = time.perf_counter() - start
    if ctx.is_main:
        measured = opts.steps - opts.warmup
        Path(opts.json).write_text(
            json.dumps({"steps_per_s": measured / seconds, "grad_bytes_per_step": counter["bytes"] / measured})
        )
    ctx.close()


# -- driver ------------------------------------------------------------------------------------------------------


def launch(opts: argparse.Namespace, job: str, nproc: int, threads: int, fsdp: bool = False) -> dict:
    out = Path(tempfile.mkdtemp()) / "result.json"
    script = [str(Path(__file__).resolve()), "--worker", "--job", job, "--json", str(out)]
    script += ["--fsdp"] if fsdp else []
    script += ["--steps", str(opts.steps), "--warmup", str(opts.warmup), "--device", opts.device]
    script += ["--batch", str(opts.batch), "--group", str(opts.group)]
    if nproc == 1:
        cmd = [sys.executable, *script]
    else:
        cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", str(nproc), *script]
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "PYTHONPATH": str(ROOT)}
    subprocess.run(cmd, env=env, check=True, stdout=subprocess.DEVNULL)
    return json.loads(out.read_text())


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--nproc", type=int, default=None, help="processes for the parallel run (GPUs, or 2 on CPU)")
    p.add_argument("--device", default="cpu", help="cpu (default) or auto (one GPU per process when present)")
    p.add_argument("--steps", type=int, default=12, help="training steps per run, warm-up included (12)")
    p.add_argument("--warmup", type=int, default=2, help="untimed first steps (2)")
    p.add_argument("--batch", type=int, default=16, help="distillation global batch (16; teacher: 4×)")
    p.add_argument("--group", type=int, default=8, help="distillation group size (8; teacher micro-batch: 2×)")
    p.add_argument("--quick", action="store_true", help="6 steps, distillation only")
    p.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    p.add_argument("--job", default="distill", help=argparse.SUPPRESS)
    p.add_argument("--json", default=None, help=argparse.SUPPRESS)
    p.add_argument("--fsdp", action="store_true", help=argparse.SUPPRESS)
    opts = p.parse_args()
    if opts.worker:
        worker(opts)
        return
    gpus = torch.cuda.device_count() if opts.device != "cpu" else 0
    nproc = opts.nproc or max(gpus, 2)
    cores = os.cpu_count() or 1
    if opts.quick:
        opts.steps = 6
    jobs = ["distill"] + (["teacher"] if DATA.is_dir() and not opts.quick else [])
    rows = []
    for job in jobs:
        base = launch(opts, job, 1, cores)
        per_core = launch(opts, job, 1, 1) if gpus == 0 else None
        par = launch(opts, job, nproc, max(1, cores // nproc))
        sharded = launch(opts, job, nproc, max(1, cores // nproc), fsdp=True)
        samples = opts.batch if job == "distill" else opts.batch * 4
        payload = par["grad_bytes_per_step"]
        for label, r, n, threads in (
            ("1 process", base, 1, cores),
            ("1 process, 1 thread", per_core, 1, 1),
            (f"{nproc} processes (DDP)", par, nproc, max(1, cores // nproc)),
            (f"{nproc} processes (FSDP)", sharded, nproc, max(1, cores // nproc)),
        ):
            if r is None:
                continue
            measured = "FSDP" not in label  # FSDP gathers parameters every forward; not counted by the DDP hook
            rows.append({
                "job": job,
                "run": label,
                "threads/process": threads if gpus == 0 else "gpu",
                "steps/s": round(r["steps_per_s"], 3),
                "samples/s": round(r["steps_per_s"] * samples, 1),
                "efficiency vs 1 process": round(r["steps_per_s"] / base["steps_per_s"], 2),
                "grad all-reduce MB/step": (round(payload / 1e6, 2) if n > 1 else 0.0) if measured else None,
                "ring traffic per rank MB/step": (
                    (round(2 * (n - 1) / n * payload / 1e6, 2) if n > 1 else 0.0) if measured else None
                ),
            })  # fmt: skip
    write_results(
        "scaling",
        rows,
        {"cores": cores, "gpus": gpus, "steps": opts.steps, "warmup": opts.warmup, "batch": opts.batch},
    )


if __name__ == "__main__":
    main()
