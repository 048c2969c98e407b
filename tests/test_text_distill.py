"""The text domain end to end on the shared core: teacher training, a DiDi-Instruct step, the CLIs, the report."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from test_text_data import build_tiny_corpus

from protein_didi import report
from protein_didi.core.didi import DidiConfig, DidiTrainer
from protein_didi.distill import main as distill_main
from protein_didi.report.text import main as report_main
from protein_didi.sample import main as sample_main
from protein_didi.text.evaluate import mean_token_entropy, token_entropy
from protein_didi.text.generate import TextRequest, decode_blocks, generate_tokens
from protein_didi.text.judge import load_judge, perplexity
from protein_didi.text.pretrained import CHECKPOINT_DIR, load_model
from protein_didi.text.prompts import TextPrompts
from protein_didi.text.train_judge import main as judge_main
from protein_didi.text.train_teacher import TeacherTask
from protein_didi.text.train_teacher import main as teacher_main

torch.set_num_threads(1)
LENGTH = 24


def teacher_args(data: Path, out: Path, steps: int, *extra: str) -> list[str]:
    return [
        *("--data", str(data), "--out", str(out), "--arch", "test", "--steps", str(steps), "--batch-size", "4"),
        *("--block-length", str(LENGTH), "--warmup", "1", "--eval-blocks", "8", "--checkpoint-every", "2"),
        *("--device", "cpu", *extra),
    ]


@pytest.fixture(scope="module")
def setup(tmp_path_factory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("text_e2e")
    data = build_tiny_corpus(root)
    assert teacher_main(teacher_args(data, root / "teacher", 3)) == 0
    judge_args = ["--data", str(data), "--out", str(root / "judge"), "--arch", "test", "--steps", "2"]
    assert judge_main([*judge_args, "--batch-size", "4", "--context", "16", "--device", "cpu"]) == 0
    return {"root": root, "data": data, "teacher": root / "teacher" / "model", "judge": root / "judge" / "model"}


def test_teacher_export_records_elbo_unigram_and_tokenizer(setup):
    teacher = load_model(str(setup["teacher"]))
    info = teacher.info
    assert teacher.role == "teacher" and teacher.block_length == LENGTH and teacher.tokenizer.kind == "bpe"
    assert info["valid_nelbo_nats_per_token"] > 0 and info["valid_unigram_nats_per_token"] > 0
    assert 0 < info["valid_token_entropy"] <= np.log(LENGTH - 2)
    assert info["settings"]["block_length"] == LENGTH and info["settings"]["lr"] == 2e-3


def test_teacher_resume_is_exact(setup, tmp_path, monkeypatch):
    data = setup["data"]
    assert teacher_main(teacher_args(data, tmp_path / "full", 4)) == 0
    original = TeacherTask.train_step

    def crash(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(TeacherTask, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        teacher_main(teacher_args(data, tmp_path / "part", 4))
    monkeypatch.setattr(TeacherTask, "train_step", original)
    assert teacher_main(teacher_args(data, tmp_path / "part", 4, "--resume")) == 0
    losses = [(run / "metrics.jsonl").read_text() for run in (tmp_path / "full", tmp_path / "part")]
    assert losses[0] == losses[1]


def test_one_didi_step_in_the_text_domain(setup):
    teacher = load_model(str(setup["teacher"]))
    cfg = DidiConfig(student_nfe=4, batch_size=4, teacher_nfe=4, bank_size=4, lr_student=1e-3, lr_aux=1e-3,
                     disc_warmup=0, ema=0.5)  # fmt: skip
    prompts = TextPrompts(teacher.tokenizer, [LENGTH])
    trainer = DidiTrainer(teacher.model, teacher.schedule, prompts, cfg, lambda *a: None, torch.device("cpu"))
    before = {k: v.clone() for k, v in trainer.student.state_dict().items()}
    metrics = trainer.train_step(0)
    assert all(np.isfinite(v) for v in metrics.values()) and "s_grad_norm" in metrics
    assert any(not torch.equal(v, before[k]) for k, v in trainer.student.state_dict().items())
    z, fixed = prompts.template(LENGTH, 2)
    assert (z[:, 0] == teacher.tokenizer.bos_id).all() and fixed[:, [0, -1]].all() and not fixed[:, 1:-1].any()


@pytest.mark.parametrize("method", ["didi", "idlm"])
def test_distill_cli_text_domain(setup, tmp_path, method):
    out = tmp_path / method
    args = ["--domain", "text", "--teacher", str(setup["teacher"]), "--data", str(setup["data"]), "--out", str(out),
            "--method", method, "--steps", "2", "--batch-size", "2", "--bank-size", "2", "--teacher-nfe", "4",
            "--student-nfe", "4", "--disc-warmup", "0", "--device", "cpu"]  # fmt: skip
    assert distill_main(args) == 0
    student = load_model(str(out / "model"))
    assert student.role == f"student-{method}" and student.block_length == LENGTH
    assert (student.discriminator is not None) == (method == "didi")
    assert student.tokenizer.sha256 == load_model(str(setup["teacher"])).tokenizer.sha256
    info = json.loads((out / "distill_config.json").read_text())
    assert info["lengths"] == [LENGTH] and info["teacher"] == str(setup["teacher"])
    assert len((out / "metrics.jsonl").read_text().splitlines()) == 2
    if method == "didi":  # RGAS guidance runs through the DiT's soft-token path
        tokens = generate_tokens(
            student, TextRequest(num=2, length=LENGTH, nfe=4, sampler="rgas", rgas={"candidates": 2})
        )
        assert tokens.shape == (2, LENGTH) and (tokens != student.tokenizer.mask_id).all()


def test_distill_cli_text_errors(setup, tmp_path, capsys):
    base = ["--domain", "text", "--out", str(tmp_path / "o"), "--device", "cpu"]
    assert distill_main([*base, "--teacher", str(tmp_path / "missing")]) == 2
    assert capsys.readouterr().err.startswith("error: no text model")
    other = build_tiny_corpus(tmp_path / "other", vocab_size=350)
    assert distill_main([*base, "--teacher", str(setup["teacher"]), "--data", str(other)]) == 2
    assert "uses a different tokenizer" in capsys.readouterr().err


def test_sampling_is_seeded_and_decodes(setup, capsys):
    teacher = load_model(str(setup["teacher"]))
    a = generate_tokens(teacher, TextRequest(num=3, length=LENGTH, nfe=4, seed=1, batch_size=2))
    assert torch.equal(a, generate_tokens(teacher, TextRequest(num=3, length=LENGTH, nfe=4, seed=1, batch_size=2)))
    assert not torch.equal(a, generate_tokens(teacher, TextRequest(num=3, length=LENGTH, nfe=4, seed=2, batch_size=2)))
    assert (a[:, 0] == teacher.tokenizer.bos_id).all() and (a[:, -1] == teacher.tokenizer.eos_id).all()
    assert (a != teacher.tokenizer.mask_id).all()
    assert decode_blocks(teacher, a)[0] == teacher.tokenizer.decode(a[0, 1:-1].tolist())
    cli = ["--domain", "text", "--model", str(setup["teacher"]), "--nfe", "4", "--num", "2", "--length", "16"]
    assert sample_main([*cli, "--device", "cpu"]) == 0
    out = capsys.readouterr().out
    assert out.count("=== model · 4 NFE · 16 tokens · seed 0 #") == 2
    assert sample_main(["--domain", "text", "--model", str(setup["root"] / "nope")]) == 2
    assert capsys.readouterr().err.startswith("error: no text model")


def test_entropy_and_perplexity_definitions():
    assert token_entropy([7, 7, 7, 7]) == 0.0
    assert abs(token_entropy([1, 2, 3, 4]) - np.log(4)) < 1e-12
    assert abs(mean_token_entropy(np.array([[0, 1, 2, 0], [0, 5, 5, 0]])) - np.log(2) / 2) < 1e-12
    assert abs(perplexity(np.array([2.0, 4.0]), np.array([1, 2])) - np.exp(2.0)) < 1e-9


def test_judge_scores_text_and_report_writes_summary(setup, tmp_path, capsys):
    judge = load_judge(str(setup["judge"]))
    nll, count = judge.score(["The class statement.", "Lists are mutable sequences, typically used."])
    assert (nll > 0).all() and (count > 0).all()
    alone = judge.score(["The class statement."])
    np.testing.assert_allclose(alone[0], nll[:1], rtol=1e-5)  # batch padding does not leak
    samples = tmp_path / "s.jsonl"
    assert sample_main(["--domain", "text", "--model", str(setup["teacher"]), "--nfe", "2", "--num", "2",
                        "--out", str(samples), "--device", "cpu"]) == 0  # fmt: skip
    args = ["--models", f"t={setup['teacher']}", "--nfe", "2,4", "--num", "3", "--samples", str(samples),
            "--data", str(setup["data"]), "--judge", str(setup["judge"]), "--out", str(tmp_path / "rep")]  # fmt: skip
    assert report_main(args) == 0
    summary = json.loads((tmp_path / "rep" / "summary.json").read_text())
    labels = [r["label"] for r in summary["rows"]]
    assert labels == ["t-2", "t-4", "s", "data (test split)"]
    assert all(r["gen_ppl"] > 1 and r["entropy"] > 0 for r in summary["rows"])
    assert (tmp_path / "rep" / "samples" / "t-2.jsonl").is_file() and (tmp_path / "rep" / "metrics.csv").is_file()
    assert report_main(args) == 0  # cached samples are reused
    assert report.main(["--domain", "text", "--out", str(tmp_path / "r2")]) == 2  # the command prints the error
    assert "nothing to evaluate" in capsys.readouterr().err


SHIPPED = [CHECKPOINT_DIR / d for d in ("text-teacher", "text-student", "text-judge")]


@pytest.mark.skipif(not all((d / "config.json").is_file() for d in SHIPPED), reason="shipped text checkpoints absent")
def test_shipped_text_models_load_and_sample():
    teacher, student = load_model("teacher"), load_model("student")
    assert student.role == "student-didi" and student.discriminator is not None
    assert student.tokenizer.sha256 == teacher.tokenizer.sha256
    assert teacher.info["valid_nelbo_nats_per_token"] < teacher.info["valid_unigram_nats_per_token"]
    texts = decode_blocks(student, generate_tokens(student, TextRequest(num=2, length=32, nfe=2)))
    nll, count = load_judge("judge").score(texts)
    assert len(texts) == 2 and (count > 0).all() and np.isfinite(nll).all()
