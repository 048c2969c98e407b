import json

import pytest
import torch

from protein_didi.core.idlm import IdlmConfig, IdlmTrainer, idlm_loss
from protein_didi.core.loop import run_training
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.distill import main as distill_main
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.pretrained import load_model, save_model
from protein_didi.protein.prompts import ProteinPrompts


def make_idlm(model, **overrides):
    cfg = IdlmConfig(
        **{
            "batch_size": 4,
            "teacher_nfe": 4,
            "bank_size": 8,
            "lr_student": 1e-3,
            "lr_aux": 1e-3,
            "ema": 0.5,
            **overrides,
        }
    )
    return IdlmTrainer(model, LogLinearSchedule(), ProteinPrompts([12, 16]), cfg, lambda *a: None, torch.device("cpu"))


def test_idlm_loss_vanishes_when_student_and_fake_equal_the_teacher(tiny_model):
    z = ALPHABET.masked_template([20] * 4)
    generated = ~ALPHABET.special_positions(z)
    gen = torch.Generator().manual_seed(0)
    t = torch.rand(4, generator=gen)
    probs = tiny_model(z, t).exp()
    loss = idlm_loss(tiny_model, tiny_model, probs, t, generated, LogLinearSchedule(), gen)
    assert loss.abs().item() < 1e-6


def test_idlm_step_trains_fake_and_changes_student(tiny_model):
    trainer = make_idlm(tiny_model)
    student_before = {k: v.clone() for k, v in trainer.student.state_dict().items()}
    fake_before = {k: v.clone() for k, v in trainer.aux.state_dict().items()}
    metrics = trainer.train_step(0)
    assert any(not torch.equal(v, student_before[k]) for k, v in trainer.student.state_dict().items())
    assert any(not torch.equal(v, fake_before[k]) for k, v in trainer.aux.state_dict().items())
    assert metrics["fake_loss"] > 0 and abs(metrics["idlm_loss"]) < 1.0  # fake ≈ teacher after one step


def test_idlm_resume_is_exact(tiny_model, tmp_path, monkeypatch):
    run_training(make_idlm(tiny_model), tmp_path / "full", 4, checkpoint_every=2, show_progress=False)
    original = IdlmTrainer.train_step

    def crash(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(IdlmTrainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        run_training(make_idlm(tiny_model), tmp_path / "part", 4, checkpoint_every=2, show_progress=False)
    monkeypatch.setattr(IdlmTrainer, "train_step", original)
    run_training(make_idlm(tiny_model), tmp_path / "part", 4, resume=True, checkpoint_every=2, show_progress=False)
    read = lambda run: (run / "metrics.jsonl").read_text()  # noqa: E731
    assert read(tmp_path / "full") == read(tmp_path / "part")


@pytest.mark.parametrize("method", ["didi", "idlm"])
def test_both_methods_run_through_one_entry_point(tiny_model, tmp_path, method):
    save_model(tmp_path / "teacher", tiny_model, LogLinearSchedule(), "teacher", {"max_residues": 64})
    out = tmp_path / method
    args = [
        "--teacher",
        str(tmp_path / "teacher"),
        "--out",
        str(out),
        "--method",
        method,
        "--steps",
        "2",
        "--lengths",
        "10",
        "--batch-size",
        "2",
        "--bank-size",
        "4",
        "--teacher-nfe",
        "4",
        "--student-nfe",
        "4",
        "--disc-warmup",
        "0",
        "--device",
        "cpu",
    ]
    assert distill_main(args) == 0
    student = load_model(str(out / "model"))
    assert student.role == f"student-{method}"
    assert (student.discriminator is not None) == (method == "didi")
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    info = json.loads((out / "distill_config.json").read_text())
    assert info["method"] == method and info["teacher"] == str(tmp_path / "teacher")
    # resuming a finished run with the other method is refused with a one-line error
    other = "idlm" if method == "didi" else "didi"
    assert distill_main([*args[:5], other, *args[6:], "--resume"]) == 2


def test_distill_cli_bad_inputs(tmp_path, capsys):
    assert distill_main(["--teacher", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: no model")
    assert distill_main(["--teacher", "teacher", "--data", str(tmp_path), "--out", str(tmp_path / "o")]) == 2
    assert "not a prepared data directory" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        distill_main(["--teacher", "teacher", "--out", str(tmp_path / "o"), "--lengths", "ten"])
