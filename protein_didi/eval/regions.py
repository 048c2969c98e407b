"""Per-region identity of a numbered antibody chain to its closest germline V and J genes (ANARCI's germline set).

ANARCI names the closest V and J genes but reports one identity over the whole
V gene; a design can keep germline frameworks and still carry odd CDRs (or the
reverse), so the identity is split by IMGT region here. ANARCI ships each
germline already IMGT-numbered (128 positions, ``-`` for gaps), so comparing
is a position-by-position lookup, no alignment. FR1–FR3 and CDR1–2 are compared
with the V gene, FR4 with the J gene; CDR3 is left out (NaN) because it is made
by V(D)J joining and has no germline to compare with.
"""

from __future__ import annotations

import re
from functools import cache

from protein_didi.protein.numbering import IMGT_REGIONS, AntibodyNumbering

V_REGIONS = ("FR1", "CDR1", "FR2", "CDR2", "FR3")
J_REGIONS = ("FR4",)
GERMLINE_REGIONS = (*V_REGIONS, *J_REGIONS)
CDR3_REASON = "CDR3 is made by V(D)J joining: no germline to compare with"


@cache
def _germlines() -> dict:
    from anarci.germlines import all_germlines

    return all_germlines


def germline(segment: str, chain: str, gene: str, species: str | None = None) -> str | None:
    """IMGT-aligned germline (128 characters, ``-`` = gap) of ``gene``, or None if ANARCI has no such gene.

    ``species`` is searched first, then every species (ANARCI may call the J gene from another one).
    """
    table = _germlines()[segment].get(chain, {})
    order = ([species] if species in table else []) + [s for s in table if s != species]
    return next((table[s][gene] for s in order if gene in table[s]), None)


def _number(label: str) -> tuple[int, bool]:
    m = re.fullmatch(r"(\d+)([A-Z]?)", label)
    if m is None:
        raise ValueError(f"IMGT label {label!r} is not a number with an optional insertion letter")
    return int(m.group(1)), bool(m.group(2))


def region_identity(numbering: AntibodyNumbering) -> dict[str, float]:
    """Identity (0–1) per germline-encoded region to the closest V gene (FR1–FR3, CDR1–2) and J gene (FR4).

    Identity = same residue at the same IMGT position / positions occupied in
    the design or the germline (a gap against a residue, or an insertion such as
    111A, counts as a mismatch). NaN where the gene is unknown or the chain has no residue in the region.
    """
    out = dict.fromkeys(GERMLINE_REGIONS, float("nan"))
    if not numbering.numbered or numbering.chain_type is None:
        return out
    genes = {
        "V": germline("V", numbering.chain_type, numbering.v_gene or "", numbering.species),
        "J": germline("J", numbering.chain_type, numbering.j_gene or "", numbering.species),
    }
    design: dict[int, str] = {}
    inserted: dict[int, int] = {}
    for label, index in numbering.imgt:
        number, insertion = _number(label)
        if insertion:
            inserted[number] = inserted.get(number, 0) + 1
        else:
            design[number] = numbering.sequence[index]
    bounds = {name: (lo, hi) for name, lo, hi in IMGT_REGIONS}
    for region in GERMLINE_REGIONS:
        gene = genes["V" if region in V_REGIONS else "J"]
        if gene is None:
            continue
        lo, hi = bounds[region]
        positions = [p for p in range(lo, hi + 1) if p in design or gene[p - 1] != "-"]
        extra = sum(n for p, n in inserted.items() if lo <= p <= hi)
        if extra == 0 and not any(p in design for p in positions):
            continue  # the chain stops short of this region (a V gene without J): nothing to compare
        same = sum(design.get(p) == gene[p - 1] for p in positions)
        out[region] = same / (len(positions) + extra)
    return out
