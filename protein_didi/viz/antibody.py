"""Antibody structures in 3D: coloured by IgFold's predicted error, CDRs marked and labelled, one loop highlighted.

An antibody engineer reads a predicted Fv by its loops: the frameworks are
almost always right, the CDRs (H3 above all) are where the prediction is
uncertain and where designs differ. So residues are coloured by predicted RMSD
in four bands (blue = confident … orange = unreliable), every CDR gets magenta
backbone sticks and a label (``H1`` … ``L3``), and a redesigned loop gets
thicker sticks and a "redesigned" label. Same offline page as
:func:`~protein_didi.viz.structure.structure_html` (3Dmol.js inlined).
"""

from __future__ import annotations

import html
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import py3Dmol

from protein_didi.viz.structure import Structure, _selection, page_html, parse_pdb


@dataclass(frozen=True)
class PrmsdBand:
    """One band of predicted RMSD (Å); ``low`` inclusive."""

    low: float
    high: float
    color: str
    label: str


# the AlphaFold colours, most to least confident: < 0.5 Å is what natural V domains score, > 2 Å their shuffles
PRMSD_BANDS: tuple[PrmsdBand, ...] = (
    PrmsdBand(0.0, 0.5, "#0053D6", "< 0.5 Å"),
    PrmsdBand(0.5, 1.0, "#65CBF3", "0.5–1 Å"),
    PrmsdBand(1.0, 2.0, "#FFDB13", "1–2 Å"),
    PrmsdBand(2.0, float("inf"), "#FF7D45", "≥ 2 Å"),
)
CDR_COLOR = "#D6008F"


def prmsd_band(value: float) -> PrmsdBand:
    """The band a predicted RMSD (Å) falls in."""
    return next((b for b in PRMSD_BANDS if value < b.high), PRMSD_BANDS[-1])


def _legend(highlight: str | None) -> str:
    items = "".join(
        f'<span class="item"><span class="swatch" style="background:{b.color}"></span>{html.escape(b.label)}</span>'
        for b in PRMSD_BANDS
    )
    cdr = f'<span class="item"><span class="swatch" style="background:{CDR_COLOR}"></span>CDR backbone</span>'
    note = "IgFold's predicted RMSD per residue (lower = more confident); CDRs labelled H1–L3"
    if highlight:
        note += f"; {highlight} redesigned (thick sticks)"
    return f'<div class="legend"><b>pRMSD</b> {items} {cdr}<div class="note">{html.escape(note)}</div></div>'


def antibody_html(
    pdb: str | bytes | Structure,
    prmsd: Sequence[float] | np.ndarray | None = None,
    cdrs: Mapping[str, tuple[int, int]] | None = None,
    highlight: str | None = None,
    width: int | str = "100%",
    height: int = 440,
    title: str | None = None,
) -> str:
    """A self-contained page showing an antibody structure coloured by predicted RMSD, CDRs marked.

    ``prmsd`` has one value per residue in the PDB's order (default: the B-factor
    column, where IgFold writes it); ``cdrs`` maps ``"H1"``… to half-open residue
    index spans in that order; ``highlight`` names one of them (the redesigned loop).
    """
    structure = pdb if isinstance(pdb, Structure) else parse_pdb(pdb)
    residues = structure.residues
    values = structure.bfactors if prmsd is None else np.asarray(prmsd, dtype=np.float64)
    if len(values) != len(residues):
        raise ValueError(f"{len(values)} pRMSD values for a structure with {len(residues)} residues")
    cdrs = dict(cdrs or {})
    if highlight is not None and highlight not in cdrs:
        raise ValueError(f"highlight {highlight!r} is not one of the CDRs given ({', '.join(cdrs) or 'none'})")
    for name, (start, end) in cdrs.items():
        if not 0 <= start <= end <= len(residues):
            raise ValueError(f"CDR {name} span {start}–{end} is outside the structure's {len(residues)} residues")

    view = py3Dmol.view(width=width, height=int(height), js="data:text/javascript,")
    view.addModel(structure.pdb, "pdb")
    bands = np.array([PRMSD_BANDS.index(prmsd_band(v)) for v in values])
    for k, band in enumerate(PRMSD_BANDS):
        for sel in _selection(residues, np.flatnonzero(bands == k)):
            view.setStyle(sel, {"cartoon": {"color": band.color}})
    for name, (start, end) in cdrs.items():
        if end <= start:
            continue
        radius = 0.45 if name == highlight else 0.22
        for sel in _selection(residues, np.arange(start, end)):
            view.addStyle(sel, {"stick": {"color": CDR_COLOR, "radius": radius}})
        mid = residues[(start + end - 1) // 2]
        text = f"{name} redesigned" if name == highlight else name
        style = {"fontColor": "white", "backgroundColor": CDR_COLOR, "backgroundOpacity": 0.85, "fontSize": 12}
        view.addLabel(text, style, {"chain": mid.chain, "resi": mid.number, "atom": "CA"})
    view.zoomTo()
    return page_html(view, title, _legend(highlight))
