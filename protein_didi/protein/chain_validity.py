"""Is a sequence one coherent antibody chain? The one check every antibody metric, filter and table uses.

ANARCI calls a chain heavy, kappa or lambda from an HMM over the whole V domain, so a sequence with a
λ framework and a heavy CDR3 + FR4 (``EVVLTQPPSASG…CARGFNGYQGGMDVWGQGTTVTVSS``) is "a numbered light
chain". Such heavy/light chimeras are not antibodies, and a generator that makes them must not be
credited with "numbered" chains. A chain is **valid** when

* ANARCI numbers it as one heavy (H), kappa (K) or lambda (L) V domain;
* its **J region agrees with its V call**: the J-encoded residues (end of CDR3 + FR4, IMGT 114–128) are
  compared with every germline J gene of ANARCI's human and mouse sets, heavy and light alike, and the
  best-matching J must be of the same chain class as the V call; a mismatch is a **chimera**;
* it carries the **J motif** at IMGT 118–121 (heavy W-G-x-G, light F-G-x-G) with at most one of its
  three fixed residues changed (real repertoires carry such point changes: 5–7 % of OAS chains differ
  at one of them); without it the chain has no functional J (a sequence that stops inside CDR3, an FR4
  that is not one);
* the **disulfide** of the V fold is in place: Cys 23 and Cys 104;
* its **CDR3 length** is one the real repertoire has (:data:`CDR3_RANGE`, IMGT 105–117).

Calibration (``python -m data_prep.repertoire``'s ``manifest.json``): of 30,770 real human OAS chains (VH, VL and
real pairs), 93 fail (0.3 %: 81 J motifs, 10 CDR3 lengths, 1 disulfide) and 2 are chimeras (0.007 %);
shuffled chains never pass (tests). Chimeras are reported as their own class (:attr:`ChainCheck.chimera`);
every other failure is a frame error with its reason.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from protein_didi.protein.numbering import AntibodyNumbering, number_antibodies

J_FIRST = 114
"""First IMGT position of the J comparison: the J-encoded end of CDR3 (heavy J genes start at 115, light at 116)
and one residue before it, so a CDR3 that ends in the other class's J motif is seen."""
J_SPECIES = ("human", "mouse")
J_MIN_IDENTITY = 0.4
"""Below this identity to every germline J the chain has no J region to call (it stops inside CDR3, or its FR4
is not one): a frame error, not a chimera. Real chains sit at ≥ 0.67 (1st percentile), chimeras near 1."""
DISULFIDE = {"23": "C", "104": "C"}
"""IMGT positions of the V fold's intra-domain disulfide."""
J_MOTIF = {"H": {"118": "W", "119": "G", "121": "G"}, "L": {"118": "F", "119": "G", "121": "G"}}
"""The fixed residues of a functional J's motif at IMGT 118–121: W-G-x-G heavy, F-G-x-G kappa and lambda."""
CDR3_RANGE = {"H": (3, 30), "L": (4, 16)}
"""CDR3 lengths (IMGT 105–117) accepted per chain class: the real repertoire's range (human OAS VH 3–30 covers
> 99.9 %; VL 4–16); a CDR3 outside it is a frame error."""


@dataclass(frozen=True)
class ChainCheck:
    """The verdict on one sequence. ``reason`` is None for a valid chain, else one short phrase."""

    valid: bool
    reason: str | None
    chimera: bool = False
    chain_class: str | None = None  # the V call: "H" or "L" (kappa and lambda together)
    j_class: str | None = None  # the class of the best-matching germline J
    j_identity: float | None = None  # identity to that J over its germline positions

    @property
    def status(self) -> str:
        """``valid``, ``chimera`` or ``invalid`` (every other failure): the column reports show."""
        return "valid" if self.valid else ("chimera" if self.chimera else "invalid")


@cache
def _j_germlines() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    """J germlines of both classes as (genes × IMGT positions 1–128) residue codes (0 = gap), their classes,
    and their names, from ANARCI's germline set."""
    from anarci.germlines import all_germlines

    rows, classes, names = [], [], []
    for chain_type in ("H", "K", "L"):
        for species in J_SPECIES:
            for gene, aligned in all_germlines["J"][chain_type].get(species, {}).items():
                code = np.frombuffer(aligned.replace("-", "\0").encode(), dtype=np.uint8).copy()
                code[: J_FIRST - 1] = 0
                if code.any():
                    rows.append(code)
                    classes.append("H" if chain_type == "H" else "L")
                    names.append(f"{species}:{gene}")
    return np.stack(rows), np.array(classes), tuple(names)


def j_call(numbering: AntibodyNumbering) -> tuple[str, float]:
    """(class, identity) of the germline J that best matches the chain at IMGT ``J_FIRST``–128 (no insertions:
    J genes have none). Identity counts the germline's positions; a missing residue is a mismatch."""
    germ, classes, _ = _j_germlines()
    residues = numbering.imgt_residues
    chain = np.zeros(germ.shape[1], dtype=np.uint8)
    for pos in range(J_FIRST, germ.shape[1] + 1):
        res = residues.get(str(pos))
        if res is not None:
            chain[pos - 1] = ord(res)
    occupied = germ > 0
    identity = ((germ == chain) & occupied).sum(1) / occupied.sum(1)
    best = int(np.argmax(identity))
    return str(classes[best]), float(identity[best])


def check_chain(numbering: AntibodyNumbering) -> ChainCheck:
    """Whether ``numbering``'s sequence is one coherent antibody chain (see the module docstring)."""
    if not numbering.numbered:
        return ChainCheck(False, "not numbered by ANARCI")
    cls = numbering.chain_class
    if numbering.n_domains > 1:
        return ChainCheck(False, f"{numbering.n_domains} V domains", chain_class=cls)
    j_class, j_id = j_call(numbering)
    facts = {"chain_class": cls, "j_class": j_class, "j_identity": round(j_id, 3)}
    if j_id < J_MIN_IDENTITY:
        return ChainCheck(False, f"no J region (best germline J identity {j_id:.2f})", **facts)
    if j_class != cls:
        kind = {"H": "heavy", "L": "light"}
        return ChainCheck(False, f"chimera: {kind[cls]} V, {kind[j_class]} J", chimera=True, **facts)
    residues = numbering.imgt_residues
    motif = J_MOTIF[cls]
    if sum(residues.get(pos) != aa for pos, aa in motif.items()) > 1:
        found = "".join(residues.get(str(p), "-") for p in range(118, 122))
        return ChainCheck(False, f"no J motif {motif['118']}G-x-G at IMGT 118–121 ({found})", **facts)
    missing = [f"C{pos}" for pos, aa in DISULFIDE.items() if residues.get(pos) != aa]
    if missing:
        return ChainCheck(False, f"disulfide {', '.join(missing)} missing", **facts)
    lo, hi = CDR3_RANGE[cls]
    n3 = len(numbering.region("CDR3"))
    if not lo <= n3 <= hi:
        return ChainCheck(False, f"CDR3 length {n3} outside {lo}–{hi}", **facts)
    return ChainCheck(True, None, **facts)


def check_chains(numberings: Sequence[AntibodyNumbering]) -> list[ChainCheck]:
    """:func:`check_chain` of every numbering, in order."""
    return [check_chain(n) for n in numberings]


def chain_mix(sequences: Sequence[str]) -> dict[str, float]:
    """Shares of ``sequences`` that are valid heavy, kappa and lambda chains (and of those, human), chimeras and
    other failures: what a distillation run logs per step to show a student drifting into one chain type."""
    numberings = number_antibodies(sequences)
    checks = check_chains(numberings)
    n = max(len(checks), 1)
    valid = [nb for nb, c in zip(numberings, checks, strict=True) if c.valid]
    return {
        "mix_heavy": sum(nb.chain_type == "H" for nb in valid) / n,
        "mix_kappa": sum(nb.chain_type == "K" for nb in valid) / n,
        "mix_lambda": sum(nb.chain_type == "L" for nb in valid) / n,
        "mix_human": sum(nb.species == "human" for nb in valid) / n,
        "mix_chimera": sum(c.chimera for c in checks) / n,
        "mix_invalid": sum(c.status == "invalid" for c in checks) / n,
    }
