"""Antibody viewer: residues coloured by predicted RMSD band, CDRs as labelled sticks, the redesigned loop thicker."""

from __future__ import annotations

import json
import re

import numpy as np
import pytest

from protein_didi.viz.antibody import CDR_COLOR, PRMSD_BANDS, antibody_html, prmsd_band


def two_chain_trace(values: list[float], split: int) -> str:
    """CA-only PDB: the first ``split`` residues are chain H, the rest chain L (numbered from 1 in each)."""
    lines = []
    for i, v in enumerate(values):
        chain, number = ("H", i + 1) if i < split else ("L", i - split + 1)
        lines.append(f"ATOM  {i + 1:5d}  CA  ALA {chain}{number:4d}    {3.8 * i:8.3f}{0.0:8.3f}{0.0:8.3f}  1.00{v:6.2f}"
                     "           C")  # fmt: skip
    return "\n".join(lines)


def calls(page: str, method: str) -> list[list]:
    return [json.loads(f"[{args}]") for args in re.findall(rf"viewer_\d+\.{method}\((.*?)\);\n", page)]


def test_bands_cdr_sticks_labels_and_highlight() -> None:
    values = [0.2, 0.7, 1.5, 3.0, 0.3, 0.4, 0.6, 2.5]
    page = antibody_html(two_chain_trace(values, 5), cdrs={"H3": (1, 4), "L1": (5, 7)}, highlight="H3", title="t")
    colours: dict[str, list] = {}
    for sel, sty in calls(page, "setStyle"):
        colours.setdefault(sty["cartoon"]["color"], []).append(sel)
    assert colours[PRMSD_BANDS[0].color] == [{"chain": "H", "resi": [1, 5]}, {"chain": "L", "resi": [1]}]  # B-factors
    assert colours[PRMSD_BANDS[1].color] == [{"chain": "H", "resi": [2]}, {"chain": "L", "resi": [2]}]
    assert colours[PRMSD_BANDS[3].color] == [{"chain": "H", "resi": [4]}, {"chain": "L", "resi": [3]}]
    sticks = {(s["chain"], tuple(s["resi"])): sty["stick"] for s, sty in calls(page, "addStyle")}
    assert sticks == {
        ("H", (2, 3, 4)): {"color": CDR_COLOR, "radius": 0.45},  # the redesigned loop: thicker
        ("L", (1, 2)): {"color": CDR_COLOR, "radius": 0.22},
    }
    labels = {text: sel for text, _, sel in calls(page, "addLabel")}
    assert labels == {
        "H3 redesigned": {"chain": "H", "resi": 3, "atom": "CA"},
        "L1": {"chain": "L", "resi": 1, "atom": "CA"},
    }
    assert "H3 redesigned (thick sticks)" in page and all(b.color in page for b in PRMSD_BANDS)
    explicit = antibody_html(two_chain_trace(values, 5), prmsd=np.full(8, 3.0))
    assert {sty["cartoon"]["color"] for _, sty in calls(explicit, "setStyle")} == {PRMSD_BANDS[3].color}


def test_bad_arguments_are_one_line() -> None:
    pdb = two_chain_trace([0.2] * 4, 4)
    for kwargs, match in (
        ({"prmsd": [0.1] * 3}, "3 pRMSD values for a structure with 4 residues"),
        ({"cdrs": {"H1": (0, 2)}, "highlight": "H3"}, r"highlight 'H3' is not one of the CDRs given \(H1\)"),
        ({"cdrs": {"H1": (2, 9)}}, "outside the structure's 4 residues"),
    ):
        with pytest.raises(ValueError, match=match):
            antibody_html(pdb, **kwargs)
    assert prmsd_band(0.49) is PRMSD_BANDS[0] and prmsd_band(1.0) is PRMSD_BANDS[2] and prmsd_band(9) is PRMSD_BANDS[3]
