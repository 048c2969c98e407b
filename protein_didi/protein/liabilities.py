"""Sequence liabilities of antibody V domains: the motifs an engineer checks before ordering a design.

Each liability class is a sequence rule; where it sits (CDR or framework, IMGT
position) comes from the project's ANARCI numbering, because a deamidation site
in CDR-H3 can cost binding while the same motif in a framework is usually
tolerated. The classes (after Lu et al. 2019, mAbs 11:45, on 131 clinical-stage
antibodies):

* ``glycosylation``: N-linked glycosylation sequon ``N[^P][ST]``;
* ``deamidation``: ``NG``, ``NS``, ``NT``, ``NN``, ``NH`` (NG and NS fastest);
* ``isomerisation``: ``DG``, ``DS``, ``DT``, ``DD``, ``DH`` (DG fastest);
* ``cysteine``: a cysteine outside the canonical IMGT 23–104 disulfide (a free
  thiol or a mispairing risk), and a canonical position without its cysteine;
  without a numbering, an odd cysteine count flags every cysteine;
* ``oxidation``: Met and Trp in a CDR (exposed; framework ones are mostly buried);
* ``cleavage``: Asp-Pro (``DP``), whose peptide bond hydrolyses at low pH (acid
  fragmentation in viral inactivation and low-pH storage).

Motifs are found overlapping (``NNGS`` holds NN, NG and the sequon NGS), and a
motif is placed at its first residue. Deamidation, isomerisation and Asp-Pro sites
are common in conserved frameworks (the ``DT`` before FR3's ``AVYYC`` is in almost
every human VH; 3 % of real chains carry an FR3 ``DP``, 7 % one in CDR3), so they
count as liabilities inside CDRs only (:data:`CDR_ONLY`); a sequon or a stray
cysteine counts anywhere.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

from protein_didi.protein.numbering import IMGT_REGIONS, AntibodyNumbering

MOTIFS: dict[str, str] = {
    "glycosylation": r"N[^P][ST]",
    "deamidation": r"N[GSTNH]",
    "isomerisation": r"D[GSTDH]",
    "cleavage": r"DP",
}
"""Regex liability classes (matched overlapping)."""
LIABILITY_CLASSES: tuple[str, ...] = (
    "glycosylation",
    "deamidation",
    "isomerisation",
    "cysteine",
    "oxidation",
    "cleavage",
)
DESCRIPTIONS: dict[str, str] = {
    "glycosylation": "N-glycosylation sequon N[^P][S/T]",
    "deamidation": "Asn deamidation (NG, NS, NT, NN, NH)",
    "isomerisation": "Asp isomerisation (DG, DS, DT, DD, DH)",
    "cysteine": "cysteine outside the canonical IMGT 23/104 pair (or a missing canonical one)",
    "oxidation": "Met/Trp oxidation in a CDR",
    "cleavage": "Asp-Pro (DP) acid cleavage",
}
CDR_ONLY = frozenset({"deamidation", "isomerisation", "oxidation", "cleavage"})
"""Classes that count only inside a CDR (framework sites are germline-conserved and mostly buried)."""
CANONICAL_CYSTEINES = ("23", "104")
OXIDISABLE = "MW"
OUTSIDE = "outside V domain"
UNNUMBERED = "not numbered"


@dataclass(frozen=True)
class Liability:
    """One liability: class, the residues that match, 0-based ``start`` in the sequence, IMGT label and region.

    ``imgt``/``region`` are None when the sequence is not numbered; ``region`` is
    :data:`OUTSIDE` for residues beyond the numbered V domain.
    """

    kind: str
    motif: str
    start: int
    imgt: str | None = None
    region: str | None = None

    @property
    def position(self) -> int:
        """1-based position of the motif's first residue."""
        return self.start + 1

    @property
    def end(self) -> int:
        return self.start + len(self.motif)

    @property
    def counts(self) -> bool:
        """Whether this is a liability of its class where it sits (see :data:`CDR_ONLY`); unplaced ones count."""
        if self.kind not in CDR_ONLY or self.region is None:
            return True
        return self.region.startswith("CDR")

    def describe(self) -> str:
        """``deamidation NG 57 (CDR2, IMGT 62)``: what, where in the sequence, where in the antibody."""
        where = self.region or UNNUMBERED
        if self.imgt is not None:
            where += f", IMGT {self.imgt}"
        return f"{self.kind} {self.motif} {self.position} ({where})"


def parse_liability_classes(text: str) -> tuple[str, ...]:
    """``"all"`` or a comma list such as ``"glycosylation,cysteine"`` (unique prefixes accepted: ``glyc,cys``)."""
    names = [p.strip().lower() for p in text.split(",") if p.strip()]
    if names == ["all"]:
        return LIABILITY_CLASSES
    out: list[str] = []
    for name in names:
        hits = [c for c in LIABILITY_CLASSES if c.startswith(name)]
        if len(hits) != 1:
            raise ValueError(
                f"liability class {name!r} is not one of {', '.join(LIABILITY_CLASSES)} (or 'all'); "
                "give a comma-separated list, e.g. glycosylation,deamidation"
            )
        if hits[0] not in out:
            out.append(hits[0])
    if not out:
        raise ValueError(f"no liability class in {text!r}; give e.g. all or glycosylation,cysteine")
    return tuple(out)


def region_of_label(label: str) -> str:
    """IMGT region (FR1…FR4, CDR1…CDR3) of a position label such as ``"111A"``."""
    number = int(re.match(r"\d+", label).group())  # type: ignore[union-attr]
    return next(name for name, lo, hi in IMGT_REGIONS if lo <= number <= hi)


def _motif_hits(sequence: str, kinds: Iterable[str]) -> list[tuple[str, str, int]]:
    hits = []
    for kind in kinds:
        if kind in MOTIFS:
            for m in re.finditer(f"(?=({MOTIFS[kind]}))", sequence):
                hits.append((kind, m.group(1), m.start()))
    return hits


def _cysteine_hits(sequence: str, numbering: AntibodyNumbering | None) -> list[tuple[str, str, int]]:
    cys = [i for i, a in enumerate(sequence) if a == "C"]
    if numbering is None or not numbering.numbered:
        return [("cysteine", "C", i) for i in cys] if len(cys) % 2 else []
    label_at = {index: label for label, index in numbering.imgt}
    index_of = {label: index for label, index in numbering.imgt}
    hits = [("cysteine", "C", i) for i in cys if label_at.get(i) not in CANONICAL_CYSTEINES]
    for label in CANONICAL_CYSTEINES:
        i = index_of.get(label)
        if i is not None and sequence[i] != "C":
            hits.append(("cysteine", f"{sequence[i]} (no Cys{label})", i))
    return hits


def find_liabilities(
    sequence: str, numbering: AntibodyNumbering | None = None, kinds: Sequence[str] = LIABILITY_CLASSES
) -> list[Liability]:
    """Every liability of ``kinds`` in ``sequence``, in sequence order, placed by ``numbering`` when given.

    Oxidation needs the CDRs, so an unnumbered sequence has none reported.
    """
    unknown = sorted(set(kinds) - set(LIABILITY_CLASSES))
    if unknown:
        raise ValueError(f"unknown liability classes {unknown}; choose from {', '.join(LIABILITY_CLASSES)}")
    seq = sequence.strip().upper()
    numbered = numbering is not None and numbering.numbered
    if numbering is not None and numbering.sequence != seq:
        raise ValueError("the numbering belongs to another sequence; number this sequence first")
    hits = _motif_hits(seq, kinds)
    if "cysteine" in kinds:
        hits += _cysteine_hits(seq, numbering)
    label_at = {index: label for label, index in numbering.imgt} if numbered else {}
    if "oxidation" in kinds and numbered:
        hits += [
            ("oxidation", seq[i], i)
            for i, label in label_at.items()
            if seq[i] in OXIDISABLE and region_of_label(label).startswith("CDR")
        ]
    out = []
    for kind, motif, start in hits:
        label = label_at.get(start)
        region = (region_of_label(label) if label else OUTSIDE) if numbered else None
        out.append(Liability(kind, motif, start, label, region))
    return sorted(out, key=lambda x: (x.start, LIABILITY_CLASSES.index(x.kind)))


def in_span(liabilities: Iterable[Liability], span: tuple[int, int]) -> list[Liability]:
    """Liabilities with at least one residue in the half-open ``span`` (a motif the new residues helped make)."""
    lo, hi = span
    return [x for x in liabilities if x.start < hi and x.end > lo]


def span_liabilities(
    sequence: str, span: tuple[int, int], kinds: Sequence[str], region: str | None = None
) -> list[Liability]:
    """Liabilities touching ``span`` of a design whose span is a CDR (redesign), with no ANARCI call.

    In a redesigned CDR every cysteine is non-canonical (IMGT 23 and 104 are
    framework) and every Met/Trp is in a CDR, so span membership decides both.
    """
    lo, hi = span
    found = [Liability(k, m, s, None, region) for k, m, s in _motif_hits(sequence, kinds)]
    for kind, letters in (("cysteine", "C"), ("oxidation", OXIDISABLE)):
        if kind in kinds:
            found += [Liability(kind, sequence[i], i, None, region) for i in range(lo, hi) if sequence[i] in letters]
    return sorted(in_span(found, span), key=lambda x: (x.start, LIABILITY_CLASSES.index(x.kind)))


def describe_all(liabilities: Sequence[Liability]) -> str:
    """One cell of text: ``none`` or the liabilities joined by ``; ``."""
    return "; ".join(x.describe() for x in liabilities) if liabilities else "none"
