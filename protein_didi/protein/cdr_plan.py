"""Where a CDR redesign generates: an antibody parent split into kept segments around the CDRs to regenerate.

The parent is numbered with ANARCI (IMGT, imported only when a plan is made); the plan knows the CDRs'
spans, the lengths each may take and the template of [MASK] runs the sampler fills in. Generation
(:mod:`protein_didi.protein.redesign`) and the request (:mod:`protein_didi.protein.request`) read it.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError

if TYPE_CHECKING:  # numbering imports ANARCI, which is loaded only when a plan is made
    from protein_didi.protein.numbering import AntibodyNumbering

MAX_CDR_LENGTH = 40


@dataclass(frozen=True)
class RedesignPlan:
    """Where to generate: the parent split into kept segments around the CDRs to redesign."""

    parent_id: str
    parent: str
    cdrs: tuple[str, ...]  # e.g. ("H3",) in parent order
    spans: tuple[tuple[int, int], ...]  # half-open index spans of those CDRs in ``parent``
    lengths: tuple[tuple[int, int], ...]  # (lo, hi) residues each CDR may take
    numbering: AntibodyNumbering = field(compare=False)  # the parent's (regions and chain, for display)

    def design_length(self, cdr_lengths: Sequence[int]) -> int:
        """Residues of a design whose redesigned CDRs have ``cdr_lengths``."""
        changes = zip(self.spans, cdr_lengths, strict=True)
        return len(self.parent) + sum(n - (end - start) for (start, end), n in changes)

    @property
    def longest(self) -> int:
        """Residues of the longest possible design."""
        return self.design_length([hi for _, hi in self.lengths])

    def check_fits(self, max_residues: int) -> None:
        """One-line error when a design could exceed the model's positions."""
        if self.longest > max_residues:
            raise InvalidSequenceError(
                f"{self.parent_id}: designs would reach {self.longest} residues, more than the model's "
                f"{max_residues}; shorten --cdr-length"
            )

    def template(self, cdr_lengths: Sequence[int]) -> np.ndarray:
        """Residue ids (no specials) of the parent with each CDR replaced by ``cdr_lengths[k]`` [MASK]s."""
        pieces, cursor = [], 0
        for (start, end), n in zip(self.spans, cdr_lengths, strict=True):
            pieces += [ALPHABET.encode_residues(self.parent[cursor:start]), np.full(n, ALPHABET.mask_id, np.uint8)]
            cursor = end
        pieces.append(ALPHABET.encode_residues(self.parent[cursor:]))
        return np.concatenate(pieces)

    def framework(self, design: str, cdr_lengths: Sequence[int]) -> str:
        """``design`` with its CDRs cut out: equals the parent's framework for every valid design."""
        out, cursor_d, cursor_p = [], 0, 0
        for (start, end), n in zip(self.spans, cdr_lengths, strict=True):
            out.append(design[cursor_d : cursor_d + start - cursor_p])
            cursor_d += start - cursor_p + n
            cursor_p = end
        out.append(design[cursor_d:])
        return "".join(out)


def parse_cdr_names(text: str) -> tuple[str, ...]:
    """``"H3"`` or ``"H1,H3"`` → ("H1", "H3"); one chain letter for all."""
    names = tuple(dict.fromkeys(p.strip().upper() for p in text.split(",") if p.strip()))
    bad = [n for n in names if not re.fullmatch(r"[HL][123]", n)]
    if not names or bad:
        raise InvalidSequenceError(
            f"--redesign {text!r}: CDR names must be H1, H2, H3, L1, L2 or L3 (comma-separated, e.g. H3 or H1,H3)"
        )
    if len({n[0] for n in names}) > 1:
        raise InvalidSequenceError(f"--redesign {text!r} mixes heavy and light CDRs; a parent is one chain")
    return names


def parse_cdr_length(text: str | None) -> tuple[int, int] | None:
    """``"10-14"`` or ``"12"`` → (lo, hi); None keeps each CDR's parent length."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", text)
    if m is None:
        raise InvalidSequenceError(f"--cdr-length {text!r} is not N or LO-HI (e.g. 10-14)")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 1 <= lo <= hi <= MAX_CDR_LENGTH:
        raise InvalidSequenceError(f"--cdr-length {text!r} is out of range; choose 1 ≤ LO ≤ HI ≤ {MAX_CDR_LENGTH}")
    return lo, hi


def plan_redesign(
    parent: str,
    cdrs: str | Sequence[str],
    cdr_length: tuple[int, int] | None = None,
    parent_id: str = "parent",
    max_residues: int | None = None,
) -> RedesignPlan:
    """Number ``parent`` and locate its CDRs; one-line errors for unnumberable parents and bad requests."""
    from protein_didi.protein.numbering import cdr_span, number_antibody

    names = parse_cdr_names(cdrs) if isinstance(cdrs, str) else parse_cdr_names(",".join(cdrs))
    parent = ALPHABET.validate(parent, parent_id, max_residues=None)
    numbering = number_antibody(parent)
    found = sorted((cdr_span(numbering, name), name) for name in names)
    spans = tuple(span for span, _ in found)
    lengths = tuple(cdr_length or (end - start, end - start) for start, end in spans)
    if any(lo < 1 for lo, _ in lengths):
        raise InvalidSequenceError(f"{parent_id}: a CDR to keep at its parent length is empty; give --cdr-length")
    plan = RedesignPlan(parent_id, parent, tuple(name for _, name in found), spans, lengths, numbering)
    if max_residues is not None:
        plan.check_fits(max_residues)
    return plan


def design_spans(plan: RedesignPlan, cdr_lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Index spans of the redesigned CDRs in a design whose CDRs have ``cdr_lengths``."""
    spans, shift = [], 0
    for (start, end), n in zip(plan.spans, cdr_lengths, strict=True):
        spans.append((start + shift, start + shift + n))
        shift += n - (end - start)
    return spans
