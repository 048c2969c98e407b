"""Command plumbing shared by both domains: output checks before any model loads, the one rule for user errors.

Dispatch on ``--domain`` is tested for every command in test_dispatch.py.
"""

from __future__ import annotations

import importlib
from pathlib import Path

import pytest

from protein_didi import cli, sample
from protein_didi.cli import check_out
from protein_didi.core.checkpoint import CheckpointError
from protein_didi.core.loop import TrainingDiverged


def test_check_out_refuses_folders_and_missing_parents(tmp_path: Path) -> None:
    check_out(None)
    check_out(tmp_path / "s.fasta")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        check_out(tmp_path)
    with pytest.raises(ValueError, match="does not exist; create it"):
        check_out(tmp_path / "nowhere" / "s.fasta")


@pytest.mark.parametrize("domain", [[], ["--domain", "text"]], ids=["protein", "text"])
def test_both_sample_commands_refuse_a_folder_as_out(domain, tmp_path: Path, capsys) -> None:
    assert sample.main([*domain, "--model", "teacher", "--num", "1", "--length", "20", "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "is a folder" in err and len(err.strip().splitlines()) == 1


def raising(error: Exception):
    """A command body's ``main`` that fails with ``error``."""

    def main(argv: list[str], *extra: object) -> int:
        raise error

    return main


@pytest.mark.parametrize(
    ("error", "line"),
    [
        (ValueError("bad\n  value"), "error: bad value\n"),
        (CheckpointError("no model"), "error: no model\n"),
        (TrainingDiverged("loss became nan"), "error: loss became nan\n"),
    ],
    ids=["ValueError", "UserError", "TrainingDiverged"],
)
def test_every_command_prints_a_user_error_as_one_line_with_exit_code_2(error, line, monkeypatch, capsys) -> None:
    for command, bodies in cli.COMMANDS.items():
        body = importlib.import_module(bodies[0])
        monkeypatch.setattr(body, "main", raising(error))
        assert cli.run_command(command, []) == 2
        assert capsys.readouterr().err == line, command


def test_a_user_error_names_the_rank_under_torchrun_and_a_bug_keeps_its_traceback(monkeypatch, capsys) -> None:
    body = importlib.import_module(cli.COMMANDS["distill"][0])
    monkeypatch.setattr(body, "main", raising(ValueError("injected failure")))
    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "1")
    assert cli.run_command("distill", []) == 2
    assert capsys.readouterr().err == "error (rank 1 of 2): injected failure\n"
    monkeypatch.setattr(body, "main", raising(RuntimeError("a bug")))
    with pytest.raises(RuntimeError, match="a bug"):
        cli.run_command("distill", [])
