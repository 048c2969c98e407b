"""The checks an antibody engineer runs first on a design, one verdict per sequence.

A design can be a "valid chain" (:mod:`protein_didi.protein.chain_validity`: one V domain, J agreeing with V,
at most one change in the J motif) and still carry what an engineer flags on sight: a missing canonical residue
(the Cys23–Cys104 disulfide, Trp41 at the start of FR2, the J motif ``W-G-x-G`` heavy / ``F-G-x-G`` light at
IMGT 118–121), a damaged FR4 (``WGGGGTLTVSS``: more changes from its nearest germline J than 99 % of real chains
carry), a framework far from any germline V (V-gene identity below 99 % of real chains), or a CDR length the real
repertoire has never or rarely seen. IgFold's pRMSD rates such designs as confidently as natural chains, so they
are flagged here instead.

CDR lengths use IMGT definitions (CDR1 27–38, CDR2 56–65, CDR3 105–117) and are read against the shipped real
repertoire (:func:`protein_didi.protein.repertoire.cdr_length_histogram`) of the design's own chain type: a length
outside the observed range is flagged, and one seen in fewer than 1 % of real chains of that type is flagged as
rare. Every residue check is strict (a point change in the J motif, which 5–7 % of real chains carry, is flagged:
it is still a non-canonical residue an engineer wants to see).
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np
import pandas as pd

from protein_didi.protein.chain_validity import DISULFIDE, J_MOTIF
from protein_didi.protein.numbering import AntibodyNumbering
from protein_didi.protein.repertoire import (
    CDR_REGIONS,
    CHAIN_NAMES,
    RARE_SHARE,
    cdr_length_share,
    load_repertoire,
    observed_cdr_lengths,
)

TRP41 = ("41", "W")
"""IMGT 41: the conserved Trp at the start of FR2 (``WVRQ`` heavy, ``WYQQ`` light), packing against the VH/VL
interface; heavy and light alike."""
CANONICAL_NAMES = ("Cys23", "Trp41", "Cys104", "J motif")
J_MOTIF_TEXT = {"H": "WGxG", "L": "FGxG"}
FR4 = range(118, 129)
FR4_MAX_CHANGES = 2
"""FR4 (IMGT 118–128) may differ from its nearest human germline J at this many positions before it is flagged: of
the shipped real (human) chains 0.7 % VH, 1.9 % Vκ and 1.2 % Vλ differ at 3 or more (a missing residue counts), so a
flag is about as rare as a rare CDR length; the issue's damaged ``WGGGGTLTVSS`` differs from its nearest, IGHJ6
(``WGQGTTVTVSS``), at 3 (a mouse J, ``WGQGTTLTVSS``, would pass it: the designs are meant to be human)."""
J_SPECIES = ("human",)


@dataclass(frozen=True)
class DesignChecks:
    """One design's canonical residues, CDR lengths (IMGT) and the flags they raise; ``ok`` when no flag."""

    sequence: str
    chain_type: str | None  # "H", "K", "L" (ANARCI's call) or None when not numbered
    canonical: dict[str, bool]  # CANONICAL_NAMES → present
    cdr_lengths: dict[str, int]  # {"CDR1": n, "CDR2": n, "CDR3": n}, IMGT; empty when not numbered
    flags: tuple[str, ...]  # one short phrase per finding

    @property
    def ok(self) -> bool:
        return not self.flags


def _residue_flags(numbering: AntibodyNumbering) -> tuple[dict[str, bool], list[str]]:
    residues = numbering.imgt_residues
    wanted = {"Cys23": ("23", DISULFIDE["23"]), "Trp41": TRP41, "Cys104": ("104", DISULFIDE["104"])}
    canonical: dict[str, bool] = {}
    flags: list[str] = []
    for name, (pos, aa) in wanted.items():
        found = residues.get(pos)
        canonical[name] = found == aa
        if found != aa:
            flags.append(f"no {name} ({found}{pos})" if found else f"no {name} (IMGT {pos} empty)")
    cls = numbering.chain_class
    assert cls is not None
    motif = J_MOTIF[cls]
    canonical["J motif"] = all(residues.get(pos) == aa for pos, aa in motif.items())
    if not canonical["J motif"]:
        read = "".join(residues.get(str(p), "-") for p in range(118, 122))
        flags.append(f"no J motif {J_MOTIF_TEXT[cls]} at IMGT 118–121 ({read})")
    return canonical, flags


@cache
def _germline_fr4() -> dict[str, tuple[tuple[str, str], ...]]:
    """(gene, FR4 residues at IMGT 118–128, "-" for a gap) of ANARCI's human J germlines, per chain type (a
    numbering comes from ANARCI or the shipped repertoire; checking one needs the anarci package either way)."""
    from anarci.germlines import all_germlines

    return {
        ct: tuple(
            (gene, aligned[FR4.start - 1 : FR4.stop - 1])
            for species in J_SPECIES
            for gene, aligned in all_germlines["J"][ct].get(species, {}).items()
        )
        for ct in CHAIN_NAMES
    }


def fr4_changes(numbering: AntibodyNumbering) -> tuple[int, str, str]:
    """(positions where FR4 differs from its nearest germline J, that J's name, its FR4): a residue missing from
    the chain counts as a change, a germline gap does not."""
    assert numbering.chain_type is not None
    residues = numbering.imgt_residues
    fr4 = [residues.get(str(p), "-") for p in FR4]

    def changes(germline: str) -> int:
        return sum(a != g for a, g in zip(fr4, germline, strict=True) if g != "-")

    gene, germline = min(_germline_fr4()[numbering.chain_type], key=lambda x: changes(x[1]))
    return changes(germline), gene, germline.replace("-", "")


@cache
def v_identity_floor(chain_type: str, share: float = RARE_SHARE) -> float:
    """The V-gene identity (ANARCI's, to the closest human/mouse germline) below which only ``share`` of the shipped
    real chains of ``chain_type`` fall: 74 % VH, 77 % Vκ, 78 % Vλ at 1 %."""
    chains = [*load_repertoire("validation", (chain_type,), None), *load_repertoire("test", (chain_type,), None)]
    identities = [c.numbering.v_identity for c in chains if c.numbering.v_identity is not None]
    return float(np.quantile(identities, share))


def _germline_flags(numbering: AntibodyNumbering) -> list[str]:
    assert numbering.chain_type is not None
    flags = []
    name = CHAIN_NAMES[numbering.chain_type]
    n, gene, germline = fr4_changes(numbering)
    if n > FR4_MAX_CHANGES:
        read = numbering.region("FR4")
        flags.append(f"FR4 {read or '(none)'} differs from human {gene} ({germline}) at {n} positions")
    identity = numbering.v_identity
    if identity is not None and identity < v_identity_floor(numbering.chain_type):
        flags.append(
            f"V-gene identity {100 * identity:.0f} % ({numbering.v_gene}) is rare (99 % of real {name} have ≥ "
            f"{100 * v_identity_floor(numbering.chain_type):.0f} %)"
        )
    return flags


def _length_flags(chain_type: str, lengths: dict[str, int]) -> list[str]:
    flags = []
    name = CHAIN_NAMES[chain_type]
    for cdr, n in lengths.items():
        lo, hi = observed_cdr_lengths(chain_type, cdr)
        if not lo <= n <= hi:
            flags.append(f"{cdr} length {n}: the repertoire's {name} range is {lo}–{hi}")
            continue
        share = cdr_length_share(chain_type, cdr, n)
        if share < RARE_SHARE:
            flags.append(f"{cdr} length {n} is rare ({100 * share:.2g} % of {name})")
    return flags


def check_design(numbering: AntibodyNumbering) -> DesignChecks:
    """The engineer's checks of one ANARCI-numbered sequence (see the module docstring)."""
    if not numbering.numbered or numbering.chain_type is None:
        return DesignChecks(
            numbering.sequence, None, dict.fromkeys(CANONICAL_NAMES, False), {}, ("not numbered by ANARCI",)
        )
    canonical, flags = _residue_flags(numbering)
    lengths = {cdr: len(numbering.region(cdr)) for cdr in CDR_REGIONS}
    flags += _germline_flags(numbering)
    flags += _length_flags(numbering.chain_type, lengths)
    if numbering.n_domains > 1:
        flags.insert(0, f"{numbering.n_domains} V domains (first checked)")
    return DesignChecks(numbering.sequence, numbering.chain_type, canonical, lengths, tuple(flags))


def check_designs(numberings: Sequence[AntibodyNumbering]) -> list[DesignChecks]:
    """:func:`check_design` of every numbering, in order."""
    return [check_design(n) for n in numberings]


def checks_frame(checks: Sequence[DesignChecks]) -> pd.DataFrame:
    """One row per design: chain (VH, Vκ, Vλ), canonical ("all" or the missing ones), CDR lengths ("8/8/13")
    and checks ("ok" or the flags joined with "; ")."""
    rows = []
    for c in checks:
        missing = [name for name, present in c.canonical.items() if not present]
        rows.append(
            {
                "chain": CHAIN_NAMES.get(c.chain_type, "not numbered") if c.chain_type else "not numbered",
                "canonical": "all" if not missing else ", ".join(missing) + " missing",
                "CDR lengths": "/".join(str(c.cdr_lengths[k]) for k in CDR_REGIONS) if c.cdr_lengths else "—",
                "checks": "ok" if c.ok else "; ".join(c.flags),
            }
        )
    return pd.DataFrame(rows, columns=["chain", "canonical", "CDR lengths", "checks"])


def checks_summary(checks: Sequence[DesignChecks], top: int = 3) -> str:
    """One line: how many designs pass every check, and the most common flags (by kind, e.g. "no Trp41")."""
    kinds: Counter[str] = Counter()
    for c in checks:
        kinds.update(list(dict.fromkeys(_flag_kind(f) for f in c.flags)))  # ties: first seen first
    passed = sum(c.ok for c in checks)
    line = (
        f"engineer's checks: {passed} of {len(checks)} designs pass (Cys23, Trp41, Cys104, J motif; FR4 and V identity "
        "to germline; IMGT CDR lengths vs the real repertoire)"
    )
    if kinds:
        line += "; most common flags: " + ", ".join(f"{k} ×{n}" for k, n in kinds.most_common(top))
    triples = Counter("/".join(str(c.cdr_lengths[k]) for k in CDR_REGIONS) for c in checks if c.cdr_lengths)
    if len(checks) > 1 and triples:
        (triple, n), *_ = triples.most_common(1)
        line += f"; CDR lengths {triple} in {n} of {len(checks)}" + (
            " (no length diversity)" if n == len(checks) else ""
        )
    return line


def plain_table(frame: pd.DataFrame) -> str:
    """``frame`` as terminal text, every column left-aligned (flags and loops read left to right; pandas' own
    ``to_string`` right-aligns text), two spaces between columns, no index."""
    cells = [[str(c) for c in frame.columns]] + [
        ["" if pd.isna(v) else str(v) for v in row] for row in frame.to_numpy()
    ]
    widths = [max(len(row[k]) for row in cells) for k in range(len(frame.columns))]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths, strict=True)).rstrip() for row in cells)


def _flag_kind(flag: str) -> str:
    """The kind of a flag without its specifics: "no Trp41 (L41)" → "no Trp41", "CDR3 length 31: …" → "CDR3 length
    outside the repertoire", "CDR1 length 4 is rare …" → "rare CDR1 length", "FR4 … differs …" → "FR4 off germline
    J"."""
    if flag.startswith("no "):
        return flag.split(" (")[0].replace(" at IMGT 118–121", "")
    if flag.startswith("V-gene identity"):
        return "rare V-gene identity"
    if flag.startswith("FR4 "):
        return "FR4 off germline J"
    if " is rare " in flag:
        return f"rare {flag.split()[0]} length"
    if ": the repertoire's" in flag:
        return f"{flag.split()[0]} length outside the repertoire"
    return flag
