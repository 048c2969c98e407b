import json

import pytest
from conftest import kill_at_step

from protein_didi.core.checkpoint import CheckpointError, load_state
from protein_didi.protein.pretrained import load_model
from protein_didi.protein.train_teacher import TeacherTask
from protein_didi.train_teacher import main


def _losses(run):
    return [json.loads(line)["loss"] for line in (run / "metrics.jsonl").read_text().splitlines()]


def _args(data, out, steps, *extra):
    return [
        "--data",
        str(data),
        "--out",
        str(out),
        "--arch",
        "test",
        "--steps",
        str(steps),
        "--batch-size",
        "4",
        "--max-residues",
        "32",
        "--checkpoint-every",
        "3",
        "--warmup",
        "2",
        "--device",
        "cpu",
        *extra,
    ]


def test_resume_reproduces_the_uninterrupted_run(synthetic_data, tmp_path, monkeypatch, same_state):
    assert main(_args(synthetic_data, tmp_path / "full", 6)) == 0

    original = kill_at_step(monkeypatch, TeacherTask, 4)
    with pytest.raises(KeyboardInterrupt):
        main(_args(synthetic_data, tmp_path / "part", 6))
    assert load_state(tmp_path / "part" / "train_state.pt")["step"] == 3  # last atomic checkpoint
    monkeypatch.setattr(TeacherTask, "train_step", original)
    assert main(_args(synthetic_data, tmp_path / "part", 6, "--resume")) == 0
    assert _losses(tmp_path / "full") == _losses(tmp_path / "part")
    # the whole state — weights, EMA (the exported weights), optimiser, schedule, data position — and the export
    full, part = (load_state(tmp_path / run / "train_state.pt") for run in ("full", "part"))
    same_state(full["task"], part["task"])
    for name in ("model.safetensors", "config.json"):
        a, b = ((tmp_path / run / "model" / name).read_bytes() for run in ("full", "part"))
        assert a == b or (name == "config.json" and _without_times(a) == _without_times(b)), name


def _without_times(raw: bytes) -> dict:
    info = json.loads(raw)
    for key in [k for k in info.get("info", {}) if "time" in k or k.endswith("_s")]:
        del info["info"][key]
    return info


def test_exported_model_loads_and_records_heldout_nelbo_and_its_settings(synthetic_data, tmp_path):
    assert main(_args(synthetic_data, tmp_path / "run", 3)) == 0
    loaded = load_model(str(tmp_path / "run" / "model"))
    assert loaded.role == "teacher"
    assert loaded.info["valid_elbo_nats_per_residue"] > 0
    assert loaded.info["valid_unigram_nats_per_residue"] > 0
    settings = loaded.info["settings"]  # every setting that made it, the learning rate included
    assert (settings["lr"], settings["warmup"], settings["arch"], settings["steps"]) == (1e-3, 2, "test", 3)


def test_corrupt_checkpoint_is_a_one_line_error(synthetic_data, tmp_path, capsys):
    run = tmp_path / "run"
    run.mkdir()
    (run / "train_state.pt").write_bytes(b"not a checkpoint")
    assert main(_args(synthetic_data, run, 3, "--resume")) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: training state") and "corrupt" in err and err.count("\n") == 1
    with pytest.raises(CheckpointError):
        load_state(run / "train_state.pt")


def test_missing_data_folder(tmp_path, capsys):
    assert main(_args(tmp_path / "nowhere", tmp_path / "run", 3)) == 2
    assert "data_prep.fasta" in capsys.readouterr().err
