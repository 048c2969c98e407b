"""Command plumbing shared by both domains: output checks before any model loads, old paths that forward.

Dispatch on ``--domain`` is tested for every command in test_dispatch.py.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from protein_didi import sample
from protein_didi.cli import check_out
from protein_didi.text import sample as text_sample


def test_check_out_refuses_folders_and_missing_parents(tmp_path: Path) -> None:
    check_out(None)
    check_out(tmp_path / "s.fasta")
    with pytest.raises(ValueError, match="is a folder; give a file name"):
        check_out(tmp_path)
    with pytest.raises(ValueError, match="does not exist; create it"):
        check_out(tmp_path / "nowhere" / "s.fasta")


@pytest.mark.parametrize("main", [sample.main, text_sample.main], ids=["protein", "text"])
def test_both_sample_commands_refuse_a_folder_as_out(main, tmp_path: Path, capsys) -> None:
    assert main(["--model", "teacher", "--num", "1", "--length", "20", "--out", str(tmp_path)]) != 0
    err = capsys.readouterr().err
    assert "is a folder" in err and len(err.strip().splitlines()) == 1


def test_old_train_judge_path_forwards_with_a_notice() -> None:
    from protein_didi.eval import train_judge as old
    from protein_didi.protein import train_judge as new

    assert old is new
    run = subprocess.run(
        [sys.executable, "-m", "protein_didi.eval.train_judge", "--help"], capture_output=True, text=True, check=False
    )
    assert run.returncode == 0, run.stderr
    notice = "note: python -m protein_didi.eval.train_judge is now python -m protein_didi.train_judge"
    assert run.stderr.strip() == notice
    assert run.stdout.startswith("usage: python -m protein_didi.train_judge")
