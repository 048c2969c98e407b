"""Every command is ``python -m protein_didi.<command> [--domain text]``: the dispatcher hands the rest to the body."""

from __future__ import annotations

import importlib

import pytest

from protein_didi import distill, report, sample, train_judge, train_teacher

# command → (protein body, text body, an option only the protein body has, one only the text body has)
BODIES = {
    "distill": ("protein_didi.protein.distill", "protein_didi.text.distill", "--teacher-samples", "--tokenizer"),
    "report": ("protein_didi.report.protein", "protein_didi.report.text", "--fasta", "--samples"),
    "sample": ("protein_didi.protein.sample", "protein_didi.text.sample", "--redesign", "--tokenizer"),
    "train_judge": ("protein_didi.protein.train_judge", "protein_didi.text.train_judge", "--max-residues", "--context"),
    "train_teacher": (
        "protein_didi.protein.train_teacher",
        "protein_didi.text.train_teacher",
        "--max-residues",
        "--block-length",
    ),
}
DISPATCHERS = {
    "distill": distill.main,
    "report": report.main,
    "sample": sample.main,
    "train_judge": train_judge.main,
    "train_teacher": train_teacher.main,
}


@pytest.mark.parametrize("command", sorted(BODIES))
@pytest.mark.parametrize("domain", ["protein", "text"])
def test_dispatch_on_domain(command: str, domain: str, monkeypatch) -> None:
    calls: list[tuple[str, list[str]]] = []
    for d, body in zip(("protein", "text"), BODIES[command][:2], strict=True):
        module = importlib.import_module(body)
        monkeypatch.setattr(module, "main", lambda argv, *_, d=d: calls.append((d, argv)) or 7)
    flag = ["--domain", domain] if domain == "text" else []
    assert DISPATCHERS[command](["--out", "o", *flag, "--seed", "1"]) == 7
    assert calls == [(domain, ["--out", "o", "--seed", "1"])]


def test_report_hands_an_injected_folder_to_the_protein_body(monkeypatch) -> None:
    body = importlib.import_module("protein_didi.report.protein")
    monkeypatch.setattr(body, "main", lambda argv, folder=None: folder)
    folder = object()
    assert report.main(["--out", "o"], folder=folder) is folder
    with pytest.raises(TypeError, match="folds nothing"):
        report.main(["--domain", "text", "--out", "o"], folder=folder)


@pytest.mark.parametrize("command", sorted(BODIES))
def test_help_lists_the_domains_own_options(command: str, capsys) -> None:
    *_, protein_only, text_only = BODIES[command]
    for flag, usage, has, lacks in (
        ([], f"usage: python -m protein_didi.{command} [", protein_only, text_only),
        (["--domain", "text"], f"usage: python -m protein_didi.{command} --domain text", text_only, protein_only),
    ):
        with pytest.raises(SystemExit) as done:
            DISPATCHERS[command]([*flag, "--help"])
        assert done.value.code == 0
        out = capsys.readouterr().out
        assert out.startswith(usage) and f"{has} " in out and f"{lacks} " not in out and "--out" in out
