"""Offline 3D structure viewer: py3Dmol HTML with the vendored 3Dmol.js inlined, coloured by pLDDT.

py3Dmol's HTML loads 3Dmol.js from a CDN, so on an offline machine the viewer
stays blank. :func:`structure_html` builds the view with py3Dmol, then inlines
``static/3Dmol-min.js`` (npm package ``3dmol@2.5.5``, BSD-3, see
``static/3Dmol-LICENSE``) and resolves py3Dmol's loader promise with it, so the
page needs no network. PDB text is validated by :func:`parse_pdb` first: only
coordinate records of the first model reach the page.
"""

from __future__ import annotations

import hashlib
import html
import json
import math
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Literal

import numpy as np
import py3Dmol

STATIC_DIR = Path(__file__).resolve().parent / "static"
JS_PATH = STATIC_DIR / "3Dmol-min.js"
THREEDMOL_VERSION = "2.5.5"
# sha256 of package/build/3Dmol-min.js in `npm pack 3dmol@2.5.5`, to tell the vendored copy is untouched
THREEDMOL_SHA256 = "f7cc78921ae72e7623e89cdd111434f58c2efddd2ffda1cd212644b406fb8016"
MAX_ATOMS = 200_000
MAX_PDB_BYTES = 20_000_000

ColorBy = Literal["plddt", "spectrum", "chain"]
Style = Literal["cartoon", "stick", "sphere", "line"]
COLOR_BY: tuple[str, ...] = ("plddt", "spectrum", "chain")
STYLES: tuple[str, ...] = ("cartoon", "stick", "sphere", "line")


@dataclass(frozen=True)
class PlddtBand:
    """One confidence band of the AlphaFold/ESMFold colour convention."""

    low: float
    high: float
    color: str
    label: str


# AlphaFold DB colours, from most to least confident; ``low`` is inclusive.
PLDDT_BANDS: tuple[PlddtBand, ...] = (
    PlddtBand(90.0, 100.0, "#0053D6", "very high (≥ 90)"),
    PlddtBand(70.0, 90.0, "#65CBF3", "confident (70–90)"),
    PlddtBand(50.0, 70.0, "#FFDB13", "low (50–70)"),
    PlddtBand(0.0, 50.0, "#FF7D45", "very low (< 50)"),
)


class InvalidStructureError(ValueError):
    """PDB text that cannot be shown; the one-line message says why."""


@dataclass(frozen=True)
class Residue:
    """A residue of the first model, in file order; ``bfactor`` is its CA's (else first atom's) B-factor."""

    chain: str
    number: int
    insertion: str
    name: str
    bfactor: float


@dataclass(frozen=True)
class Structure:
    """Sanitised PDB text (coordinate records of the first model only) and its residues."""

    pdb: str
    residues: tuple[Residue, ...]
    num_atoms: int

    @property
    def bfactors(self) -> np.ndarray:
        return np.array([r.bfactor for r in self.residues], dtype=np.float64)


_COORD_RECORDS = ("ATOM  ", "HETATM")
_SAFE_LINE = re.compile(r"[\x20-\x3b\x3d\x3f-\x7e]*")  # printable ASCII without '<' and '>'


def parse_pdb(text: str | bytes, max_atoms: int = MAX_ATOMS) -> Structure:
    """Validate PDB text and keep its first model's ATOM/HETATM/TER records; one-line error otherwise."""
    if isinstance(text, bytes):
        if len(text) > MAX_PDB_BYTES:
            limit = MAX_PDB_BYTES // 10**6
            raise InvalidStructureError(f"PDB file is {len(text) / 1e6:.0f} MB; the limit is {limit} MB")
        try:
            text = text.decode("ascii")
        except UnicodeDecodeError:
            raise InvalidStructureError("not a PDB file: it has non-ASCII bytes (compressed or binary?)") from None
    kept: list[str] = []
    residues: list[Residue] = []
    seen: dict[tuple[str, int, str], int] = {}
    num_atoms = 0
    for lineno, raw in enumerate(text.splitlines(), 1):
        line = raw.rstrip("\r\n")
        record = line[:6].ljust(6)
        if record == "ENDMDL" and num_atoms:
            break  # first model only
        if record == "TER   ":
            kept.append("TER")
            continue
        if record not in _COORD_RECORDS:
            continue
        if not _SAFE_LINE.fullmatch(line):
            raise InvalidStructureError(f"PDB line {lineno} contains characters a PDB file never has")
        if len(line) < 54:
            raise InvalidStructureError(f"PDB line {lineno} is too short for an {record.strip()} record")
        try:
            coords = [float(line[c : c + 8]) for c in (30, 38, 46)]
            number = int(line[22:26])
        except ValueError:
            raise InvalidStructureError(f"PDB line {lineno}: coordinates or residue number are not numbers") from None
        if not all(math.isfinite(c) for c in coords):
            raise InvalidStructureError(f"PDB line {lineno}: coordinates are not finite")
        try:
            bfactor = float(line[60:66]) if line[60:66].strip() else 0.0
        except ValueError:
            raise InvalidStructureError(f"PDB line {lineno}: B-factor {line[60:66]!r} is not a number") from None
        num_atoms += 1
        if num_atoms > max_atoms:
            raise InvalidStructureError(f"structure has more than {max_atoms} atoms; too large to show here")
        kept.append(line)
        key = (line[21], number, line[26])
        atom_name = line[12:16].strip()
        if key not in seen:
            seen[key] = len(residues)
            residues.append(Residue(line[21], number, line[26].strip(), line[17:20].strip(), bfactor))
        elif atom_name == "CA" and record == "ATOM  ":
            old = residues[seen[key]]
            residues[seen[key]] = Residue(old.chain, old.number, old.insertion, old.name, bfactor)
    if num_atoms == 0:
        raise InvalidStructureError("no ATOM/HETATM records found; is this a PDB file (not mmCIF)?")
    kept.append("END")
    return Structure("\n".join(kept) + "\n", tuple(residues), num_atoms)


def normalise_plddt(values: Sequence[float] | np.ndarray) -> np.ndarray:
    """pLDDT on the 0–100 scale: values all within [0, 1] (transformers' ESMFold) are multiplied by 100."""
    arr = np.asarray(values, dtype=np.float64)
    finite = arr[np.isfinite(arr)]
    if finite.size and finite.max() <= 1.0 and finite.min() >= 0.0:
        arr = arr * 100.0
    return arr


def plddt_band(value: float) -> PlddtBand:
    """The confidence band a 0–100 pLDDT value falls in."""
    for band in PLDDT_BANDS:
        if value >= band.low:
            return band
    return PLDDT_BANDS[-1]


@cache
def threedmol_js() -> str:
    """The vendored 3Dmol.js, checked to be safe inside an inline ``<script>``."""
    if not JS_PATH.is_file():
        raise FileNotFoundError(
            f"{JS_PATH} is missing; restore it from the npm package: npm pack 3dmol@{THREEDMOL_VERSION} "
            "and copy package/build/3Dmol-min.js"
        )
    js = JS_PATH.read_text(encoding="utf-8")
    lowered = js.lower()
    if "</script" in lowered or "<!--" in lowered:
        raise ValueError(f"{JS_PATH} cannot be inlined in a <script> element")
    return js


def _selection(residues: Sequence[Residue], idx: np.ndarray) -> list[dict]:
    """3Dmol atom selections (one per chain) for the residues at ``idx``."""
    by_chain: dict[str, list[int]] = {}
    for i in idx:
        res = residues[int(i)]
        by_chain.setdefault(res.chain, []).append(res.number)
    return [{"chain": chain, "resi": sorted(set(numbers))} for chain, numbers in by_chain.items()]


def _legend(color_by: str, plddt_source: str) -> str:
    if color_by == "plddt":
        items = "".join(
            f'<span class="item"><span class="swatch" style="background:{b.color}"></span>{html.escape(b.label)}</span>'
            for b in PLDDT_BANDS
        )
        return f'<div class="legend"><b>pLDDT</b> {items}<div class="note">{html.escape(plddt_source)}</div></div>'
    if color_by == "spectrum":
        return '<div class="legend"><b>Residue index</b> N-terminus <span class="bar"></span> C-terminus</div>'
    return '<div class="legend"><b>Coloured by chain</b></div>'


_CSS = """
body { margin: 0; font-family: sans-serif; font-size: 13px; color: #262730; background: white; }
.legend { padding: 6px 2px; line-height: 1.8; }
.legend .item { margin-left: 12px; white-space: nowrap; }
.legend .swatch { display: inline-block; width: 12px; height: 12px; margin-right: 4px; vertical-align: -1px;
  border: 1px solid #999; }
.legend .bar { display: inline-block; width: 160px; height: 10px; margin: 0 6px; vertical-align: -1px;
  background: linear-gradient(to right, red, orange, yellow, green, blue, indigo, violet); }
.legend .note { color: #6b6f76; font-size: 12px; }
.title { font-weight: 600; padding: 4px 2px; }
"""


def structure_html(
    pdb: str | bytes | Structure,
    color_by: ColorBy = "plddt",
    plddt: Sequence[float] | np.ndarray | None = None,
    style: Style = "cartoon",
    width: int | str = 640,
    height: int = 480,
    title: str | None = None,
    plddt_source: str | None = None,
) -> str:
    """A self-contained HTML page showing ``pdb`` with 3Dmol.js inlined (no network needed).

    ``color_by="plddt"`` colours residues in the AlphaFold pLDDT bands, from ``plddt``
    (one value per residue, 0–1 or 0–100) or else from the B-factor column, and adds
    a legend; ``plddt_source`` is the legend's note on where the values come from.
    ``width`` is pixels or a CSS length such as ``"100%"``; ``height`` is pixels.
    """
    if isinstance(width, str) and not re.fullmatch(r"\d+(\.\d+)?(px|%|vw)", width):
        raise ValueError(f"width must be pixels or a CSS length like '100%', got {width!r}")
    if color_by not in COLOR_BY:
        raise ValueError(f"color_by must be one of {COLOR_BY}, got {color_by!r}")
    if style not in STYLES:
        raise ValueError(f"style must be one of {STYLES}, got {style!r}")
    structure = pdb if isinstance(pdb, Structure) else parse_pdb(pdb)
    residues = structure.residues
    if plddt is not None and len(plddt) != len(residues):
        raise ValueError(f"{len(plddt)} pLDDT values for a structure with {len(residues)} residues")
    values = normalise_plddt(structure.bfactors if plddt is None else plddt)
    source = plddt_source or ("per-residue pLDDT" if plddt is not None else "from the PDB B-factor column")

    view = py3Dmol.view(width=width, height=int(height), js="data:text/javascript,")
    view.addModel(structure.pdb, "pdb")
    if color_by == "plddt":
        view.setStyle({}, {style: {"color": PLDDT_BANDS[-1].color}})
        for band in PLDDT_BANDS[:-1]:
            idx = np.flatnonzero(values >= band.low)
            for sel in _selection(residues, idx):
                view.setStyle(sel, {style: {"color": band.color}})
            values = np.where(values >= band.low, -np.inf, values)  # each residue takes its highest band
    elif color_by == "spectrum":
        view.setStyle({}, {style: {"color": "spectrum"}})
    else:
        view.setStyle({}, {style: {"colorscheme": "chain"}})
    if style == "cartoon":  # ligands are invisible as cartoon; show them (not water) as sticks
        view.addStyle({"hetflag": True, "not": {"resn": ["HOH", "WAT"]}}, {"stick": {"colorscheme": "default"}})
    view.zoomTo()
    return page_html(view, title, _legend(color_by, source))


def page_html(view: py3Dmol.view, title: str | None, legend: str) -> str:
    """A finished py3Dmol view as a self-contained page: 3Dmol.js inlined, a stable viewer id, title and legend."""
    body = view._make_html()
    if "3dmolviewer_" not in body or not view.uniqueid:
        raise RuntimeError(f"unexpected py3Dmol {py3Dmol.__version__} HTML; this module targets py3Dmol 2.5")
    # py3Dmol names the viewer after the clock; a content hash keeps the page identical for identical input,
    # so Streamlit neither resends nor reloads it on reruns
    uid = str(int(hashlib.sha256(body.replace(view.uniqueid, "").encode()).hexdigest()[:15], 16))
    body = body.replace(view.uniqueid, uid)
    heading = f'<div class="title">{html.escape(title)}</div>' if title else ""
    return (
        '<!DOCTYPE html>\n<html><head><meta charset="utf-8">'
        f"<style>{_CSS}</style>\n"
        f"<script>\n{threedmol_js()}\n</script>\n"
        # py3Dmol only fetches 3Dmol.js when this promise is undefined: resolve it with the inlined copy
        "<script>var $3Dmolpromise = Promise.resolve();</script>\n"
        f"</head><body>{heading}\n{body}\n{legend}\n"
        f"<script>window.proteinDidiViewer = {json.dumps(_viewer_var(body))};</script>\n"
        "</body></html>\n"
    )


def _viewer_var(body: str) -> str:
    """Name of py3Dmol's global viewer variable, for tests and scripting (``window[window.proteinDidiViewer]``)."""
    match = re.search(r"var (viewer_\d+) = null;", body)
    return match.group(1) if match else ""
