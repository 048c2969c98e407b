"""Command plumbing shared by both domains: output checks before any model loads."""

from __future__ import annotations

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
