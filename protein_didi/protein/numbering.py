"""Antibody numbering with ANARCI (IMGT scheme): chain type, germlines, CDR/FR spans in the input sequence.

ANARCI aligns each sequence to profile HMMs of antibody variable domains with
``hmmscan`` (Debian package ``hmmer``), numbers it in the IMGT scheme and, with
``assign_germline=True``, finds the closest V and J germline genes. Every
``hmmscan`` call costs a process start and an HMM database load, so
:func:`number_antibodies` sends many sequences per call.

IMGT regions are fixed position ranges, so insertions (e.g. 111A, 112A in CDR3
or 32A in CDR1) belong to the region of their position number:
FR1 1–26, CDR1 27–38, FR2 39–55, CDR2 56–65, FR3 66–104, CDR3 105–117, FR4 118–128.
Spans are half-open ``(start, end)`` residue indices into the *input* sequence,
so ``seq[start:end]`` is the region even when the sequence has a leader or a
constant region around the V domain.

Only antibody chains are numbered (``H``, ``K``, ``L``): T-cell receptor domains
count as not numbered. A sequence with several V domains (an scFv) is described
by its first domain; ``n_domains`` says how many were found.
"""

from __future__ import annotations

import re
import shutil
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field

ANTIBODY_CHAINS = frozenset({"H", "K", "L"})
LIGHT_CHAINS = frozenset({"K", "L"})
IMGT_REGIONS: tuple[tuple[str, int, int], ...] = (
    ("FR1", 1, 26),
    ("CDR1", 27, 38),
    ("FR2", 39, 55),
    ("CDR2", 56, 65),
    ("FR3", 66, 104),
    ("CDR3", 105, 117),
    ("FR4", 118, 128),
)
"""IMGT regions by position number (inclusive), the same for heavy and light chains."""
REGION_NAMES = tuple(name for name, _, _ in IMGT_REGIONS)
DEFAULT_SPECIES = ("human", "mouse")
"""ANARCI's own default: searching only human and mouse germlines is 3× faster than all eight species and stops
near-identical rhesus genes from winning the species call for human antibodies."""
ANARCI_SPECIES = ("human", "mouse", "rat", "rabbit", "rhesus", "pig", "alpaca", "cow")
NUMBERABLE = re.compile(r"^[ACDEFGHIKLMNPQRSTVWYX]+$")
BATCH = 500
"""Sequences per ``hmmscan`` call: large enough to amortise its start-up, small enough to keep temp files small."""


class AntibodyError(ValueError):
    """Antibody numbering or scoring cannot proceed; the one-line message names the input and the fix."""


@dataclass(frozen=True)
class AntibodyNumbering:
    """ANARCI's reading of one sequence. Fields other than ``sequence``/``numbered`` are None when not numbered.

    ``imgt`` pairs each IMGT label (``"27"``, ``"111A"``) with the residue's index in ``sequence``;
    ``regions`` maps FR1…FR4 and CDR1…CDR3 to half-open index spans into ``sequence``
    (an empty region is an empty span where it would sit).
    """

    sequence: str
    numbered: bool
    chain_type: str | None = None
    species: str | None = None
    v_gene: str | None = None
    v_identity: float | None = None
    j_gene: str | None = None
    j_identity: float | None = None
    imgt: tuple[tuple[str, int], ...] = ()
    domain: tuple[int, int] | None = None
    regions: Mapping[str, tuple[int, int]] = field(default_factory=dict)
    bitscore: float | None = None
    n_domains: int = 0

    @property
    def chain_class(self) -> str | None:
        """``"H"`` or ``"L"`` (kappa and lambda together): the letter used in CDR names such as H3 or L1."""
        if self.chain_type is None:
            return None
        return "L" if self.chain_type in LIGHT_CHAINS else "H"

    def region(self, name: str) -> str:
        """Residues of ``name`` (e.g. ``"CDR3"``, ``"FR1"``); raises if not numbered."""
        if not self.numbered:
            raise AntibodyError(f"sequence '{_short(self.sequence)}' is not numbered; no {name} to return")
        if name not in self.regions:
            raise AntibodyError(f"unknown region {name!r}; choose one of {', '.join(REGION_NAMES)}")
        start, end = self.regions[name]
        return self.sequence[start:end]

    @property
    def imgt_residues(self) -> dict[str, str]:
        """IMGT label (``"27"``, ``"111A"``) → residue; empty when not numbered."""
        return {label: self.sequence[i] for label, i in self.imgt}

    @property
    def cdr3(self) -> str | None:
        """The CDR3 residues (IMGT 105–117 with insertions), or None when not numbered."""
        return self.region("CDR3") if self.numbered else None


def _short(seq: str, n: int = 20) -> str:
    return seq if len(seq) <= n else seq[:n] + "…"


def _anarci_function():
    """ANARCI's ``anarci`` entry point, after checking that the package and ``hmmscan`` are present."""
    try:
        from anarci import anarci
    except ImportError as exc:
        raise AntibodyError(f"the anarci package is not installed ({exc}); run: pip install -e .[antibody]") from None
    if shutil.which("hmmscan") is None:
        raise AntibodyError("ANARCI needs the hmmscan binary, which is not on PATH; install Debian package hmmer")
    return anarci


def require_anarci() -> None:
    """One-line :class:`AntibodyError` now, rather than after minutes of sampling, when ANARCI cannot run here."""
    _anarci_function()


def anarci_available() -> bool:
    """Whether ANARCI (the package and its hmmscan binary) can run here: for optional antibody extras."""
    try:
        _anarci_function()
    except AntibodyError:
        return False
    return True


def _label(position: tuple[int, str]) -> str:
    number, insertion = position
    return f"{number}{insertion.strip()}"


def _regions(numbered: list[tuple[tuple[int, str], int]], domain_end: int) -> dict[str, tuple[int, int]]:
    """Half-open spans of the IMGT regions from (position, input index) pairs in sequence order."""
    spans: dict[str, tuple[int, int]] = {}
    cursor = numbered[0][1] if numbered else 0
    for name, lo, hi in IMGT_REGIONS:
        idx = [i for (pos, _), i in numbered if lo <= pos <= hi]
        if idx:
            spans[name] = (idx[0], idx[-1] + 1)
            cursor = idx[-1] + 1
        else:
            later = [i for (pos, _), i in numbered if pos > hi]
            at = later[0] if later else max(cursor, domain_end)
            spans[name] = (at, at)
    return spans


def _parse(seq: str, domains, details) -> AntibodyNumbering:
    """One ANARCI result (numbering + alignment details for each domain) as an :class:`AntibodyNumbering`."""
    if not domains:
        return AntibodyNumbering(sequence=seq, numbered=False)
    numbering, start, end = domains[0]
    info = details[0]
    pairs: list[tuple[tuple[int, str], int]] = []
    i = start
    for position, residue in numbering:
        if residue == "-":
            continue
        if i > end or seq[i] != residue:  # ANARCI numbers every residue of the domain in order
            raise AntibodyError(f"ANARCI numbering of '{_short(seq)}' does not match the sequence at index {i}")
        pairs.append((position, i))
        i += 1
    germ = info.get("germlines") or {}
    v_hit, v_id = germ.get("v_gene", [None, None])
    j_hit, j_id = germ.get("j_gene", [None, None])
    return AntibodyNumbering(
        sequence=seq,
        numbered=True,
        chain_type=info["chain_type"],
        species=v_hit[0] if v_hit else info.get("species"),
        v_gene=v_hit[1] if v_hit else None,
        v_identity=float(v_id) if v_id is not None else None,
        j_gene=j_hit[1] if j_hit else None,
        j_identity=float(j_id) if j_id is not None else None,
        imgt=tuple((_label(pos), idx) for pos, idx in pairs),
        domain=(start, end + 1),
        regions=_regions(pairs, end + 1),
        bitscore=float(info["bitscore"]),
        n_domains=len(domains),
    )


def number_antibodies(
    sequences: Iterable[str],
    species: Sequence[str] | None = DEFAULT_SPECIES,
    batch_size: int = BATCH,
    cpu: int | None = None,
) -> list[AntibodyNumbering]:
    """IMGT numbering, chain type and closest V/J germlines of every sequence, in input order.

    ``species`` limits both the HMMs and the germlines searched (None: all of
    :data:`ANARCI_SPECIES`). ``cpu`` is passed to ``hmmscan --cpu``. Sequences
    with letters outside the 20 amino acids and X are refused.
    """
    seqs = [str(s).strip().upper() for s in sequences]
    for k, s in enumerate(seqs):
        if not s:
            raise AntibodyError(f"sequence {k} is empty; give an antibody variable domain")
        if not NUMBERABLE.match(s):
            bad = next(c for c in s if not NUMBERABLE.match(c))
            raise AntibodyError(
                f"sequence {k} has {bad!r} at position {s.index(bad) + 1}; use the 20 amino-acid letters (or X)"
            )
    if species is not None:
        unknown = sorted(set(species) - set(ANARCI_SPECIES))
        if unknown or not species:
            raise AntibodyError(f"unknown ANARCI species {unknown or '[]'}; choose from {', '.join(ANARCI_SPECIES)}")
    if batch_size < 1:
        raise AntibodyError(f"batch_size must be ≥ 1, got {batch_size}")
    if not seqs:
        return []
    anarci = _anarci_function()
    allowed = list(species) if species is not None else None
    out: list[AntibodyNumbering] = []
    for lo in range(0, len(seqs), batch_size):
        chunk = seqs[lo : lo + batch_size]
        named = [(f"s{lo + k}", s) for k, s in enumerate(chunk)]
        numbered, details, _ = anarci(
            named,
            scheme="imgt",
            assign_germline=True,
            allow=set(ANTIBODY_CHAINS),
            allowed_species=allowed,
            ncpu=cpu,
        )
        out.extend(_parse(s, n, d) for s, n, d in zip(chunk, numbered, details, strict=True))
    return out


def number_antibody(sequence: str, species: Sequence[str] | None = DEFAULT_SPECIES) -> AntibodyNumbering:
    """:func:`number_antibodies` for one sequence."""
    return number_antibodies([sequence], species=species)[0]


CDR_NAME = re.compile(r"^([HL])([123])$")


def cdr_span(
    parent: str | AntibodyNumbering, cdr: str, species: Sequence[str] | None = DEFAULT_SPECIES
) -> tuple[int, int]:
    """Half-open index span of CDR ``cdr`` (``"H1"``–``"H3"``, ``"L1"``–``"L3"``) in ``parent``.

    The chain letter must match ANARCI's chain type (K and L are both light), so
    asking for H3 on a light chain is an error rather than a silently wrong loop.
    """
    match = CDR_NAME.match(cdr.strip().upper()) if isinstance(cdr, str) else None
    if match is None:
        raise AntibodyError(f"CDR name {cdr!r} is not one of H1, H2, H3, L1, L2, L3")
    letter, number = match.groups()
    numbering = parent if isinstance(parent, AntibodyNumbering) else number_antibody(parent, species=species)
    if not numbering.numbered:
        raise AntibodyError(
            f"parent '{_short(numbering.sequence)}' could not be numbered by ANARCI as an antibody variable domain; "
            "give a heavy or light chain V domain"
        )
    if numbering.chain_class != letter:
        kind = "heavy" if numbering.chain_class == "H" else "light"
        raise AntibodyError(
            f"CDR {letter}{number} asked for, but the parent is a {kind} chain ({numbering.chain_type}); "
            f"use {numbering.chain_class}1–{numbering.chain_class}3"
        )
    return numbering.regions[f"CDR{number}"]


def _position(label: str) -> tuple[int, str]:
    digits = label.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ")
    return int(digits), label[len(digits) :] or " "


def numbering_record(numbering: AntibodyNumbering) -> dict:
    """A JSON-able record of ``numbering`` without its sequence: what a stored reference keeps so that
    reading it needs no ANARCI run (:func:`numbering_from_record` inverts it)."""
    if not numbering.numbered:
        return {"numbered": False}
    return {
        "numbered": True,
        "chain_type": numbering.chain_type,
        "species": numbering.species,
        "v_gene": numbering.v_gene,
        "v_identity": numbering.v_identity,
        "j_gene": numbering.j_gene,
        "j_identity": numbering.j_identity,
        "labels": " ".join(label for label, _ in numbering.imgt),
        "start": numbering.imgt[0][1] if numbering.imgt else 0,
        "domain": list(numbering.domain or (0, 0)),
        "bitscore": numbering.bitscore,
        "n_domains": numbering.n_domains,
    }


def numbering_from_record(sequence: str, record: Mapping) -> AntibodyNumbering:
    """The :class:`AntibodyNumbering` of ``sequence`` stored by :func:`numbering_record`."""
    if not record.get("numbered"):
        return AntibodyNumbering(sequence=sequence, numbered=False)
    labels = record["labels"].split()
    start = int(record["start"])
    pairs = [(_position(label), start + k) for k, label in enumerate(labels)]
    domain = (int(record["domain"][0]), int(record["domain"][1]))
    return AntibodyNumbering(
        sequence=sequence,
        numbered=True,
        chain_type=record["chain_type"],
        species=record["species"],
        v_gene=record["v_gene"],
        v_identity=record["v_identity"],
        j_gene=record["j_gene"],
        j_identity=record["j_identity"],
        imgt=tuple((label, i) for label, (_, i) in zip(labels, pairs, strict=True)),
        domain=domain,
        regions=_regions(pairs, domain[1]),
        bitscore=record["bitscore"],
        n_domains=int(record["n_domains"]),
    )
