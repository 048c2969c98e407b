"""Per-region identity to the closest germline: exact on germlines, one mutation costs one position of its region."""

from __future__ import annotations

import importlib.util
import math
import shutil

import pytest

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
    reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed",
)


def test_germline_is_identical_and_a_mutation_lowers_only_its_region() -> None:
    from protein_didi.eval.antibody import load_natural_antibodies
    from protein_didi.eval.regions import GERMLINE_REGIONS, germline, region_identity
    from protein_didi.protein.numbering import number_antibodies

    seq = next(s for rid, s in load_natural_antibodies(("germline_vj",)) if "IGHV3-23*01+IGHJ2*01" in rid)
    (num,) = number_antibodies([seq])
    assert num.v_gene == "IGHV3-23*01" and germline("V", "H", "IGHV3-23*01", "human") is not None
    identity = region_identity(num)
    assert all(identity[r] == pytest.approx(1.0) for r in GERMLINE_REGIONS)
    fr2 = num.regions["FR2"]
    i = fr2[0] + 3
    mutant = seq[:i] + ("A" if seq[i] != "A" else "G") + seq[i + 1 :]
    (mnum,) = number_antibodies([mutant])
    got = region_identity(mnum)
    assert got["FR2"] == pytest.approx(1 - 1 / (fr2[1] - fr2[0]))  # FR2 has no gaps in this germline
    assert all(got[r] == pytest.approx(1.0) for r in GERMLINE_REGIONS if r != "FR2")
    short = seq[: num.regions["CDR3"][0]]  # a V gene without J: no FR4 to compare
    (snum,) = number_antibodies([short])
    assert math.isnan(region_identity(snum)["FR4"])
