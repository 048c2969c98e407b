"""Offline visualisation: 3D structures (py3Dmol with a vendored 3Dmol.js) coloured by pLDDT."""

from protein_didi.viz.structure import (
    COLOR_BY,
    PLDDT_BANDS,
    STYLES,
    InvalidStructureError,
    PlddtBand,
    Residue,
    Structure,
    normalise_plddt,
    parse_pdb,
    plddt_band,
    structure_html,
    threedmol_js,
)

__all__ = [
    "COLOR_BY",
    "PLDDT_BANDS",
    "STYLES",
    "InvalidStructureError",
    "PlddtBand",
    "Residue",
    "Structure",
    "normalise_plddt",
    "parse_pdb",
    "plddt_band",
    "structure_html",
    "threedmol_js",
]
