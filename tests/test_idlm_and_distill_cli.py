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
            "steps": 6,
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


ALA = ALPHABET.esm.get_idx("A")


def _alanine_prob(model) -> float:
    z = ALPHABET.masked_template([12] * 2)
    with torch.no_grad():
        return model(z, torch.ones(2))[:, 1:-1, ALA].exp().mean().item()


def test_idlm_moves_the_student_towards_the_teacher(tiny_model):
    """A student (and its fake model) pushed off the teacher on one residue must move back towards it."""
    trainer = make_idlm(tiny_model, lr_student=3e-3, lr_aux=0.0)  # frozen fake: the student's starting point
    with torch.no_grad():
        for net in (trainer.student, trainer.aux):
            net.mlm.lm_head.bias[ALA] -= 3.0
    teacher_p, before = _alanine_prob(trainer.teacher), _alanine_prob(trainer.student)
    for step in range(6):
        trainer.train_step(step)
    after = _alanine_prob(trainer.student)
    assert before < after < teacher_p * 1.5, (before, after, teacher_p)
    assert after > 2 * before


def test_idlm_resume_is_exact(tiny_model, tmp_path, monkeypatch, same_state):
    full = make_idlm(tiny_model)
    run_training(full, tmp_path / "full", 4, checkpoint_every=2, show_progress=False)
    original = IdlmTrainer.train_step

    def crash(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(IdlmTrainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        run_training(make_idlm(tiny_model), tmp_path / "part", 4, checkpoint_every=2, show_progress=False)
    monkeypatch.setattr(IdlmTrainer, "train_step", original)
    resumed = make_idlm(tiny_model)
    run_training(resumed, tmp_path / "part", 4, resume=True, checkpoint_every=2, show_progress=False)
    read = lambda run: (run / "metrics.jsonl").read_text()  # noqa: E731
    assert read(tmp_path / "full") == read(tmp_path / "part")
    same_state(full.state_dict(), resumed.state_dict())  # student, fake model, EMA, optimisers, schedules


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
    assert info["settings"]["bank_size"] == 4 and info["settings"]["lr_aux"] == (5e-6 if method == "didi" else 1e-5)
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


def test_default_flags_export_a_student_that_moved(tiny_model, tmp_path, capsys):
    """Paper defaults (EMA 0.9999, D warm-up) on a short run must not export a near-copy of the teacher."""
    save_model(tmp_path / "teacher", tiny_model, LogLinearSchedule(), "teacher", {"max_residues": 64})
    out = tmp_path / "run"
    base = ["--teacher", str(tmp_path / "teacher"), "--out", str(out), "--lengths", "10", "--batch-size", "2"]
    small = ["--bank-size", "4", "--teacher-nfe", "4", "--student-nfe", "4", "--device", "cpu"]
    # a D warm-up as long as the run would leave the student untrained: refused before any work
    assert distill_main([*base, *small, "--steps", "3", "--disc-warmup", "3"]) == 2
    err = capsys.readouterr().err
    assert "student would never train" in err and err.count("\n") == 1 and not out.exists()
    assert distill_main([*base, *small, "--steps", "6", "--disc-warmup", "3", "--lr-student", "1e-3"]) == 0
    assert "moved" in capsys.readouterr().err
    info = json.loads((out / "distill_config.json").read_text())
    assert info["ema"] == 0.9999 and info["ema_updates"] == 3
    # bias-corrected: the export is an average of the 3 trained iterates, at least a third of the way to the last
    assert info["exported_moved_from_teacher"] > 0.3 * info["raw_student_moved_from_teacher"] > 0
    student, teacher = load_model(str(out / "model")), tiny_model
    moved = max(
        (a.float() - b).abs().max().item()
        for a, b in zip(student.model.state_dict().values(), teacher.state_dict().values(), strict=True)
    )
    assert moved > 1e-3  # far above the fp16 export's rounding of unchanged weights
