"""Offline py3Dmol HTML: vendored 3Dmol.js inlined, PDB validation, pLDDT colouring."""

from __future__ import annotations

import hashlib
import json
import re

import numpy as np
import py3Dmol
import pytest

from protein_didi.viz import (
    PLDDT_BANDS,
    InvalidStructureError,
    normalise_plddt,
    parse_pdb,
    plddt_band,
    structure_html,
    threedmol_js,
)
from protein_didi.viz.structure import JS_PATH, STATIC_DIR, THREEDMOL_SHA256, THREEDMOL_VERSION


def ca_trace(bfactors: list[float], chain: str = "A") -> str:
    return "\n".join(
        f"ATOM  {i + 1:5d}  CA  ALA {chain}{i + 1:4d}    {3.8 * i:8.3f}{0.0:8.3f}{0.0:8.3f}  1.00{b:6.2f}           C"
        for i, b in enumerate(bfactors)
    )


def styles(html: str) -> list[tuple[dict, dict]]:
    """The (selection, style) pairs of every setStyle call in the page."""
    return [
        (json.loads(sel), json.loads(sty))
        for sel, sty in re.findall(r"viewer_\d+\.setStyle\((\{.*?\}),(\{.*\})\);", html)
    ]


@pytest.fixture(scope="module")
def tiny_fold() -> object:
    """A structure from the random-weight tiny ESMFold (meaningless pLDDT, real PDB writing path)."""
    import torch

    from protein_didi.fold.esmfold import Folder
    from protein_didi.fold.testing import tiny_esmfold

    torch.manual_seed(0)
    return Folder.from_model(tiny_esmfold(seed=0), device="cpu").fold(["MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ"])[0]


def test_tiny_esmfold_structure_renders_offline(tiny_fold: object) -> None:
    html = structure_html(tiny_fold.pdb, plddt=tiny_fold.plddt, title="tiny ESMFold")
    atom_lines = [line for line in tiny_fold.pdb.splitlines() if line.startswith("ATOM")]
    assert len(atom_lines) > 33 * 4
    model = json.loads(re.search(r"viewer_\d+\.addModel\((\".*?\"),\"pdb\"\)", html).group(1))
    assert [line.rstrip() for line in model.splitlines() if line.startswith("ATOM")] == [
        line.rstrip() for line in atom_lines
    ]
    assert "$3Dmol.createViewer" in html and ".render()" in html
    # 3Dmol.js is inlined and nothing is fetched from the network
    assert threedmol_js() in html
    assert "cdn.jsdelivr" not in html and not re.search(r"src=[\"']https?:", html)
    assert "var $3Dmolpromise = Promise.resolve();" in html
    # every residue is coloured and the legend lists the four bands
    coloured = {r for sel, _ in styles(html)[1:] for r in sel["resi"]}
    expected = {i + 1 for i, v in enumerate(tiny_fold.plddt) if v >= PLDDT_BANDS[-1].high}
    assert coloured == expected
    assert all(band.color in html for band in PLDDT_BANDS)
    assert "tiny ESMFold" in html
    assert structure_html(tiny_fold.pdb, plddt=tiny_fold.plddt, title="tiny ESMFold") == html  # deterministic


def test_plddt_bands_colour_the_right_residues() -> None:
    html = structure_html(ca_trace([95.0, 80.0, 60.0, 30.0, 90.0, 70.0, 50.0]))
    calls = styles(html)
    assert calls[0] == ({}, {"cartoon": {"color": PLDDT_BANDS[-1].color}})  # default: very low
    by_color = {sty["cartoon"]["color"]: sel["resi"] for sel, sty in calls[1:]}
    assert by_color == {PLDDT_BANDS[0].color: [1, 5], PLDDT_BANDS[1].color: [2, 6], PLDDT_BANDS[2].color: [3, 7]}
    assert "from the PDB B-factor column" in html


def test_explicit_plddt_overrides_bfactors_and_0_1_scale_is_normalised() -> None:
    html = structure_html(ca_trace([10.0, 10.0, 10.0]), plddt=[0.95, 0.2, 0.75], plddt_source="ESMFold pLDDT")
    by_color = {sty["cartoon"]["color"]: sel["resi"] for sel, sty in styles(html)[1:]}
    assert by_color == {PLDDT_BANDS[0].color: [1], PLDDT_BANDS[1].color: [3]}
    assert "ESMFold pLDDT" in html
    with pytest.raises(ValueError, match="2 pLDDT values for a structure with 3 residues"):
        structure_html(ca_trace([10.0, 10.0, 10.0]), plddt=[50.0, 60.0])


def test_multi_chain_selection_and_other_colourings() -> None:
    pdb = ca_trace([95.0, 95.0], "A") + "\nTER\n" + ca_trace([95.0, 30.0], "B")
    by_chain = [sel for sel, _ in styles(structure_html(pdb))[1:]]
    assert {"chain": "A", "resi": [1, 2]} in by_chain and {"chain": "B", "resi": [1]} in by_chain
    assert '{"cartoon": {"color": "spectrum"}}' in structure_html(pdb, color_by="spectrum")
    assert '{"stick": {"colorscheme": "chain"}}' in structure_html(pdb, color_by="chain", style="stick")
    assert "width: 100%" in structure_html(pdb, width="100%")
    with pytest.raises(ValueError, match="color_by"):
        structure_html(pdb, color_by="hydrophobicity")
    with pytest.raises(ValueError, match="width"):
        structure_html(pdb, width="100%;background:url(x)")


def test_parse_pdb_keeps_first_model_coordinates_only() -> None:
    text = "HEADER    TEST\nREMARK <b>not shown</b>\nMODEL        1\n" + ca_trace([50.0, 60.0]) + "\nENDMDL\n"
    text += "MODEL        2\n" + ca_trace([70.0, 80.0, 90.0]) + "\nENDMDL\n"
    structure = parse_pdb(text.encode())
    assert structure.num_atoms == 2 and len(structure.residues) == 2
    assert structure.bfactors.tolist() == [50.0, 60.0]
    assert "REMARK" not in structure.pdb and "<b>" not in structure.pdb


@pytest.mark.parametrize(
    ("text", "message"),
    [
        (b"", "no ATOM/HETATM records"),
        (b"\x89PNG\r\n\x1a\n\x00\x00", "non-ASCII"),
        (b"data_1ABC\n_atom_site.group_PDB\n", "mmCIF"),
        (b"ATOM      1  CA  ALA A   1       1.0", "too short"),
        (b"ATOM      1  CA  ALA A   1         abc   0.000   0.000  1.00 50.00           C", "not numbers"),
        (b"ATOM      1  CA  ALA A   1         nan   0.000   0.000  1.00 50.00           C", "not finite"),
        (b"ATOM      1  CA  ALA A   1       0.000   0.000   0.000  1.00  x.yz           C", "B-factor"),
        (b"ATOM      1 </script><script>alert(1)</script>  0.000   0.000   0.000  1.00", "characters"),
    ],
)
def test_parse_pdb_rejects_bad_input(text: bytes, message: str) -> None:
    with pytest.raises(InvalidStructureError, match=message):
        parse_pdb(text)


def test_parse_pdb_limits_atoms() -> None:
    with pytest.raises(InvalidStructureError, match="more than 3 atoms"):
        parse_pdb(ca_trace([50.0] * 4), max_atoms=3)


def test_plddt_helpers() -> None:
    assert normalise_plddt([0.5, 0.9]).tolist() == [50.0, 90.0]
    assert normalise_plddt([50.0, 1.0]).tolist() == [50.0, 1.0]
    bands = [PLDDT_BANDS.index(plddt_band(v)) for v in (100, 90, 89.9, 70, 50, 49.9, 0, -5)]
    assert bands == [0, 0, 1, 1, 2, 3, 3, 3]
    assert plddt_band(95).color == "#0053D6" and plddt_band(10).color == "#FF7D45"
    assert np.isnan(normalise_plddt([np.nan])).all()


def test_vendored_3dmol_is_the_npm_build_with_its_license() -> None:
    js = threedmol_js()
    assert len(js) > 400_000 and "window.$3Dmol" in js
    assert hashlib.sha256(JS_PATH.read_bytes()).hexdigest() == THREEDMOL_SHA256
    assert f"3dmol v{THREEDMOL_VERSION}" in (STATIC_DIR / "3Dmol-min.js.LICENSE.txt").read_text()
    assert "BSD-3-Clause" in (STATIC_DIR / "3Dmol-LICENSE").read_text()
    assert py3Dmol.__version__ == THREEDMOL_VERSION, "update the vendored 3Dmol.js to py3Dmol's version"
