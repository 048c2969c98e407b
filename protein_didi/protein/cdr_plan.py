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
    numbering: AntibodyNumbering = field(compare=False)  # the parent's IMGT numbering (regions and chain)
    scheme: str = "imgt"  # the CDR definition ``spans`` follow: imgt (default), kabat or chothia

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


CHAIN_KIND = {"H": "heavy", "L": "light"}


def _short(seq: str, n: int = 20) -> str:
    return seq if len(seq) <= n else seq[:n] + "…"


def check_parent(numbering: AntibodyNumbering, names: Sequence[str], parent_id: str) -> None:
    """One-line error naming ``parent_id`` when it cannot serve ``names`` (not numbered, or the other chain)."""
    if not numbering.numbered:
        raise InvalidSequenceError(
            f"{parent_id}: '{_short(numbering.sequence)}' could not be numbered by ANARCI as an antibody variable "
            "domain; give a heavy or light chain V domain"
        )
    letter = names[0][0]
    if numbering.chain_class != letter:
        raise InvalidSequenceError(
            f"{parent_id} is a {CHAIN_KIND[numbering.chain_class or 'H']} chain ({numbering.chain_type}), but "
            f"--redesign {','.join(names)} needs a {CHAIN_KIND[letter]} chain; give a {CHAIN_KIND[letter]} chain "
            f"record or redesign {numbering.chain_class}1–{numbering.chain_class}3"
        )


def check_cdr_length(
    numbering: AntibodyNumbering,
    cdr: str,
    length: tuple[int, int],
    parent_id: str,
    scheme: str = "imgt",
    shift: int = 0,
) -> None:
    """Refuse a ``--cdr-length`` the real repertoire has never seen for this CDR of this chain type, in one line
    naming the observed range (IMGT lengths, :func:`protein_didi.protein.repertoire.observed_cdr_lengths`).

    ``shift``: IMGT residues of the CDR that the ``scheme``'s loop leaves in place (Kabat/Chothia H3 are IMGT's
    minus 105–106), so a Kabat length ``n`` is an IMGT length ``n + shift``."""
    from protein_didi.protein.repertoire import CHAIN_NAMES, observed_cdr_lengths

    assert numbering.chain_type is not None
    lo, hi = observed_cdr_lengths(numbering.chain_type, f"CDR{cdr[1]}")
    if not (lo <= length[0] + shift and length[1] + shift <= hi):
        asked = f"{length[0]}-{length[1]}" if length[0] != length[1] else str(length[0])
        name = CHAIN_NAMES[numbering.chain_type]
        if scheme == "imgt":
            where = f"the repertoire's {name} CDR-{cdr} lengths are {lo}–{hi} (IMGT)"
        else:
            where = (
                f"the repertoire's {name} CDR-{cdr} lengths are {lo}–{hi} (IMGT), {max(lo - shift, 1)}–{hi - shift} "
                f"as {SCHEME_NAMES[scheme]} loops of this parent"
            )
        raise InvalidSequenceError(
            f"{parent_id}: --cdr-length {asked} for {cdr}{'' if scheme == 'imgt' else f' ({SCHEME_NAMES[scheme]})'}: "
            f"{where}; choose within it"
        )


def plan_redesign(
    parent: str,
    cdrs: str | Sequence[str],
    cdr_length: tuple[int, int] | None = None,
    parent_id: str = "parent",
    max_residues: int | None = None,
    numbering: AntibodyNumbering | None = None,
    scheme: str = "imgt",
) -> RedesignPlan:
    """Number ``parent`` (unless its ``numbering`` is given) and locate its CDRs under ``scheme`` (``imgt``,
    ``kabat`` or ``chothia``: which residues are regenerated); one-line errors naming ``parent_id`` for unnumbered
    parents, the wrong chain, CDR lengths the repertoire has not seen and designs longer than ``max_residues``.

    The repertoire's lengths are IMGT's; a Kabat or Chothia loop inside the IMGT one (H3, L3) is checked with the
    IMGT residues it keeps added; one reaching into IMGT's framework (Kabat H2, L1, L2) cannot be converted, and
    its designs' IMGT lengths are left to the engineer's checks."""
    from protein_didi.protein.numbering import number_antibody

    names = parse_cdr_names(cdrs) if isinstance(cdrs, str) else parse_cdr_names(",".join(cdrs))
    if scheme not in SCHEME_NAMES:
        raise InvalidSequenceError(f"--cdr-scheme {scheme!r}: choose from {', '.join(SCHEME_NAMES)}")
    parent = ALPHABET.validate(parent, parent_id, max_residues=None)
    if numbering is None or numbering.sequence != parent:
        numbering = number_antibody(parent)
    check_parent(numbering, names, parent_id)
    spans_of = {name: numbering.regions[f"CDR{name[1]}"] for name in names}
    if scheme != "imgt":
        for name in names:
            other = scheme_cdrs([parent], name, (scheme,))[0][scheme]
            if other is None:
                raise InvalidSequenceError(f"{parent_id}: ANARCI could not number it in the {scheme} scheme")
            spans_of[name] = other.span
    if cdr_length is not None:
        for name in names:
            (a, b), (c, d) = numbering.regions[f"CDR{name[1]}"], spans_of[name]
            if a <= c and d <= b:  # inside the IMGT loop: convertible
                check_cdr_length(numbering, name, cdr_length, parent_id, scheme, (b - a) - (d - c))
    found = sorted((span, name) for name, span in spans_of.items())
    spans = tuple(span for span, _ in found)
    lengths = tuple(cdr_length or (end - start, end - start) for start, end in spans)
    if any(lo < 1 for lo, _ in lengths):
        raise InvalidSequenceError(f"{parent_id}: a CDR to keep at its parent length is empty; give --cdr-length")
    plan = RedesignPlan(parent_id, parent, tuple(name for _, name in found), spans, lengths, numbering, scheme)
    if max_residues is not None:
        plan.check_fits(max_residues)
    return plan


@dataclass(frozen=True)
class ParentPlans:
    """The plans of a parent file's records that can serve the CDRs asked, and the records passed over (id, why)."""

    plans: list[RedesignPlan]
    skipped: list[tuple[str, str]]

    def notes(self) -> list[str]:
        """One line per record passed over."""
        return [f"{rid} not redesigned: {why}" for rid, why in self.skipped]


def plan_parents(
    records: Sequence[tuple[str, str]],
    cdrs: str | Sequence[str],
    cdr_length: tuple[int, int] | None = None,
    max_residues: int | None = None,
    scheme: str = "imgt",
) -> ParentPlans:
    """Plans for the records of a parent file that hold the chain the CDRs belong to (H3 → the heavy records), all
    numbered in one ANARCI call.

    A VH/VL pair given with ``--redesign H3`` redesigns the VH and passes over the VL (said in :meth:`ParentPlans.
    notes`); a record that cannot be numbered, or a file with no record of the right chain, is a one-line error
    naming the record(s).
    """
    from protein_didi.protein.numbering import number_antibodies

    names = parse_cdr_names(cdrs) if isinstance(cdrs, str) else parse_cdr_names(",".join(cdrs))
    if not records:
        raise InvalidSequenceError("no parent records; give a parent antibody sequence or FASTA file")
    seqs = [ALPHABET.validate(seq, rid, max_residues=None) for rid, seq in records]
    numberings = number_antibodies(seqs)
    letter = names[0][0]
    serving = [k for k, n in enumerate(numberings) if n.numbered and n.chain_class == letter]
    for k, n in enumerate(numberings):
        if not n.numbered or not serving:
            check_parent(n, names, records[k][0])  # raises, naming the record
    plans = [
        plan_redesign(seqs[k], names, cdr_length, records[k][0], max_residues, numberings[k], scheme) for k in serving
    ]
    skipped = [
        (rid, f"a {CHAIN_KIND[n.chain_class or 'H']} chain ({n.chain_type}); --redesign {','.join(names)} needs a "
         f"{CHAIN_KIND[letter]} chain")
        for k, ((rid, _), n) in enumerate(zip(records, numberings, strict=True)) if k not in serving
    ]  # fmt: skip
    return ParentPlans(plans, skipped)


def design_spans(plan: RedesignPlan, cdr_lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Index spans of the redesigned CDRs in a design whose CDRs have ``cdr_lengths``."""
    spans, shift = [], 0
    for (start, end), n in zip(plan.spans, cdr_lengths, strict=True):
        spans.append((start + shift, start + shift + n))
        shift += n - (end - start)
    return spans


IMGT_CDRS = {"1": (27, 38), "2": (56, 65), "3": (105, 117)}
"""IMGT CDR positions (the same for heavy and light chains): what ``--redesign`` regenerates."""
SCHEME_CDRS: dict[str, dict[str, tuple[int, int]]] = {
    "kabat": {"H1": (31, 35), "H2": (50, 65), "H3": (95, 102), "L1": (24, 34), "L2": (50, 56), "L3": (89, 97)},
    "chothia": {"H1": (26, 32), "H2": (52, 56), "H3": (95, 102), "L1": (24, 34), "L2": (50, 56), "L3": (89, 97)},
}
"""Kabat and Chothia CDR definitions, each in its own numbering (insertions such as Kabat H35A/B, H100A… belong to
their position number): the boundaries users who think in those schemes expect."""
SCHEME_NAMES = {"imgt": "IMGT", "kabat": "Kabat", "chothia": "Chothia"}


@dataclass(frozen=True)
class SchemeCdr:
    """One CDR of one sequence under one scheme: half-open index ``span``, its first/last position labels, residues."""

    scheme: str
    cdr: str
    span: tuple[int, int]
    first: str
    last: str
    residues: str
    labels: dict[int, str] = field(compare=False, repr=False)  # sequence index → position label, whole V domain

    def positions(self) -> str:
        """``H95–H102`` (Kabat/Chothia carry the chain letter), ``IMGT 105–117``."""
        if self.scheme == "imgt":
            return f"IMGT {self.first}–{self.last}"
        letter = self.cdr[0]
        return f"{SCHEME_NAMES[self.scheme]} {letter}{self.first}–{letter}{self.last}"


def _scheme_cdr(scheme: str, cdr: str, labels: dict[int, str], sequence: str) -> SchemeCdr | None:
    lo, hi = IMGT_CDRS[cdr[1]] if scheme == "imgt" else SCHEME_CDRS[scheme][cdr]
    inside = [i for i, label in labels.items() if lo <= int(re.match(r"\d+", label).group()) <= hi]  # type: ignore[union-attr]
    if not inside:
        return None
    start, end = min(inside), max(inside) + 1
    return SchemeCdr(scheme, cdr, (start, end), labels[start], labels[end - 1], sequence[start:end], labels)


def scheme_cdrs(
    sequences: Sequence[str], cdr: str, schemes: Sequence[str] = ("imgt", "kabat", "chothia")
) -> list[dict[str, SchemeCdr | None]]:
    """``cdr`` (H1…L3) of every sequence under each of ``schemes``, from one ANARCI call per scheme; None where a
    sequence is not numbered (or its chain is not the CDR's)."""
    from anarci import anarci

    from protein_didi.protein.numbering import ANTIBODY_CHAINS, DEFAULT_SPECIES, require_anarci

    require_anarci()
    named = [(f"s{k}", s) for k, s in enumerate(sequences)]
    out: list[dict[str, SchemeCdr | None]] = [{} for _ in sequences]
    for scheme in schemes:
        if scheme not in SCHEME_NAMES:
            raise InvalidSequenceError(f"unknown CDR scheme {scheme!r}; choose from {', '.join(SCHEME_NAMES)}")
        numbered, details, _ = anarci(
            named, scheme=scheme, allow=set(ANTIBODY_CHAINS), allowed_species=list(DEFAULT_SPECIES)
        )
        for k, (seq, domains, info) in enumerate(zip(sequences, numbered, details, strict=True)):
            chain = (info or [{}])[0].get("chain_type")
            if not domains or chain is None or ("L" if chain in "KL" else "H") != cdr[0]:
                out[k][scheme] = None
                continue
            positions, start, _ = domains[0]
            labels, i = {}, start
            for (number, insertion), residue in positions:
                if residue != "-":
                    labels[i] = f"{number}{insertion.strip()}"
                    i += 1
            out[k][scheme] = _scheme_cdr(scheme, cdr, labels, seq)
    return out


def _runs(indices: Sequence[int]) -> list[tuple[int, int]]:
    """Contiguous runs of sorted indices as (first, last)."""
    runs: list[tuple[int, int]] = []
    for i in indices:
        if runs and i == runs[-1][1] + 1:
            runs[-1] = (runs[-1][0], i)
        else:
            runs.append((i, i))
    return runs


def scheme_difference(sequence: str, imgt: SchemeCdr, other: SchemeCdr) -> str:
    """Where ``other`` (Kabat or Chothia) differs from IMGT in ``sequence``, named in both numberings, e.g.
    ``IMGT 105–106 (SR) are Kabat H93–H94, framework in Kabat``; "" when both hold the same residues."""
    name, letter = SCHEME_NAMES[other.scheme], other.cdr[0]

    def run(labels: dict[int, str], lo: int, hi: int, prefix: str) -> str:
        first, last = labels.get(lo, "?"), labels.get(hi, "?")
        return f"{prefix}{first}" + (f"–{prefix}{last}" if hi > lo else "")

    parts = []
    a, b = set(range(*imgt.span)), set(range(*other.span))
    for lo, hi in _runs(sorted(a - b)):
        verb = "are" if hi > lo else "is"
        parts.append(
            f"IMGT {run(imgt.labels, lo, hi, '')} ({sequence[lo : hi + 1]}) {verb} {name} "
            f"{run(other.labels, lo, hi, letter)}, framework in {name}"
        )
    for lo, hi in _runs(sorted(b - a)):
        verb = "are" if hi > lo else "is"
        parts.append(
            f"{name} {run(other.labels, lo, hi, letter)} ({sequence[lo : hi + 1]}) {verb} IMGT "
            f"{run(imgt.labels, lo, hi, '')}, framework in IMGT"
        )
    return "; ".join(parts)


def cdr_definitions(plan: RedesignPlan) -> list[str]:
    """One line per redesigned CDR: the definition used (the plan's scheme, with positions and the parent's
    residues), then the same loop under the other schemes and where each differs from IMGT."""
    lines = []
    for cdr in plan.cdrs:
        (found,) = scheme_cdrs([plan.parent], cdr)
        imgt, used = found["imgt"], found[plan.scheme]
        assert imgt is not None and used is not None
        line = f"CDR-{cdr} = {used.positions()} ({used.residues}, {len(used.residues)} residues), the loop redesigned"
        if plan.scheme != "imgt":
            diff = scheme_difference(plan.parent, imgt, used)
            line += f" ({diff})" if diff else ""
        for scheme in SCHEME_NAMES:
            other = found[scheme]
            if scheme == plan.scheme or other is None:
                continue
            diff = scheme_difference(plan.parent, imgt, other) if scheme != "imgt" else ""
            same = " (the same residues)" if other.span == used.span else ""
            line += f"; {other.positions()} = {other.residues}" + (f" ({diff})" if diff else same)
        lines.append(line)
    return lines
