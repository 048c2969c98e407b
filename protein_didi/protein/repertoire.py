"""The real human antibody repertoire every antibody table, benchmark and check is read against.

``python -m data_prep.repertoire`` builds it from AbNatiV's held-out OAS sets (the ``abnativ==2.0.9``
wheel): human VH, VL (κ, λ) and real VH/VL pairs, ANARCI-numbered, chimeras and broken frames dropped,
split train / validation / test by clonal CDR3 clusters. The package ships a small sample of the
validation and test splits (``protein_didi/data/repertoire/``) with each chain's ANARCI numbering, so
reading it needs neither ANARCI nor the wheel, and the train split's chain and CDR3 length histograms.

Licence: the data are CC BY-NC-SA 4.0 (non-commercial), like the IgLM and IgFold extras; the licence
file sits beside the sample. Choose settings on ``validation``, report on ``test``.
"""

from __future__ import annotations

import gzip
import importlib.resources
import json
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache

import numpy as np

from protein_didi.protein.numbering import AntibodyError, AntibodyNumbering, numbering_from_record

SPLITS = ("train", "validation", "test")
REFERENCE_DIR = "protein_didi/data/repertoire"
REFERENCE_FILE = "reference.jsonl.gz"
LENGTHS_FILE = "lengths.json"
LICENSE_NOTE = "repertoire data: AbNatiV/OAS, CC BY-NC-SA 4.0 (non-commercial)"
CHAIN_NAMES = {"H": "VH", "K": "Vκ", "L": "Vλ"}


@dataclass(frozen=True)
class RepertoireChain:
    """One real chain: its id, split, sequence, ANARCI numbering and (for a real pair) its pair id."""

    id: str
    split: str
    sequence: str
    numbering: AntibodyNumbering
    pair: str = ""
    origin: str = ""

    @property
    def chain_type(self) -> str:
        assert self.numbering.chain_type is not None
        return self.numbering.chain_type


def _files():
    return importlib.resources.files("protein_didi").joinpath("data", "repertoire")


@cache
def _reference() -> tuple[RepertoireChain, ...]:
    path = _files().joinpath(REFERENCE_FILE)
    if not path.is_file():
        raise AntibodyError(
            f"the shipped repertoire reference ({REFERENCE_DIR}/{REFERENCE_FILE}) is missing; rebuild it with "
            "python -m data_prep.repertoire --reference"
        )
    with gzip.open(path.open("rb"), "rt") as fh:
        rows = [json.loads(line) for line in fh if line.strip()]
    return tuple(
        RepertoireChain(
            r["id"],
            r["split"],
            r["sequence"],
            numbering_from_record(r["sequence"], r["numbering"]),
            r["pair"],
            r["origin"],
        )
        for r in rows
    )


def load_repertoire(
    split: str = "test", chain_types: Sequence[str] = ("H", "K", "L"), paired: bool | None = False
) -> list[RepertoireChain]:
    """Shipped real chains of ``split`` (``validation`` or ``test``) whose ANARCI chain type is in ``chain_types``.

    ``paired``: False the unpaired chains, True only chains of real pairs (both chains, pair order kept),
    None both.
    """
    if split not in ("validation", "test"):
        raise AntibodyError(f"the shipped repertoire holds the validation and test splits, not {split!r}")
    unknown = sorted(set(chain_types) - set(CHAIN_NAMES))
    if unknown:
        raise AntibodyError(f"unknown chain types {unknown}; choose from H, K, L")
    return [
        c
        for c in _reference()
        if c.split == split and c.chain_type in chain_types and (paired is None or bool(c.pair) == paired)
    ]


@cache
def length_histograms() -> dict:
    """The train split's histograms ``{chain_type: {"chain": {length: count}, "cdr3": {length: count}}}``."""
    path = _files().joinpath(LENGTHS_FILE)
    if not path.is_file():
        raise AntibodyError(
            f"{REFERENCE_DIR}/{LENGTHS_FILE} is missing; rebuild with python -m data_prep.repertoire --reference"
        )
    data = json.loads(path.read_text())
    return {ct: {kind: {int(k): v for k, v in hist.items()} for kind, hist in data[ct].items()} for ct in CHAIN_NAMES}


def _histogram(chain_types: Sequence[str], kind: str) -> dict[int, int]:
    merged: dict[int, int] = {}
    for ct in chain_types:
        for length, count in length_histograms()[ct][kind].items():
            merged[length] = merged.get(length, 0) + count
    return merged


def sample_lengths(num: int, chain_types: Sequence[str], seed: int) -> list[int]:
    """``num`` chain lengths drawn from the real train-split distribution of ``chain_types`` (seeded): what a
    diffusion model is given so that it makes chains as long as real ones (an autoregressive model chooses its own)."""
    hist = _histogram(chain_types, "chain")
    lengths = np.array(sorted(hist))
    p = np.array([hist[k] for k in lengths], dtype=np.float64)
    rng = np.random.default_rng(seed)
    return [int(x) for x in rng.choice(lengths, size=num, p=p / p.sum())]


def cdr3_length_range(chain_types: Sequence[str], coverage: float = 0.999) -> tuple[int, int]:
    """The central ``coverage`` of real CDR3 lengths (IMGT 105–117) of ``chain_types`` in the train split."""
    hist = _histogram(chain_types, "cdr3")
    lengths = np.array(sorted(hist))
    cdf = np.cumsum([hist[k] for k in lengths]) / sum(hist.values())
    tail = (1 - coverage) / 2
    return int(lengths[np.searchsorted(cdf, tail)]), int(lengths[np.searchsorted(cdf, 1 - tail)])


CDR_REGIONS = ("CDR1", "CDR2", "CDR3")
RARE_SHARE = 0.01
"""A CDR length seen in fewer than this share of real chains of its type is rare (a flag, not an error)."""


@cache
def cdr_length_histogram(chain_type: str, cdr: str) -> dict[int, int]:
    """Real lengths (IMGT) of ``cdr`` (CDR1–CDR3) in chains of ``chain_type`` (H, K or L): every shipped chain's
    numbering (validation and test), and for CDR3 also the train split's histogram, so a length is "seen" when
    any chain the package ships data for has it."""
    if chain_type not in CHAIN_NAMES:
        raise AntibodyError(f"unknown chain type {chain_type!r}; choose from H, K, L")
    if cdr not in CDR_REGIONS:
        raise AntibodyError(f"unknown CDR {cdr!r}; choose from {', '.join(CDR_REGIONS)}")
    hist: dict[int, int] = dict(length_histograms()[chain_type]["cdr3"]) if cdr == "CDR3" else {}
    for chain in _reference():
        if chain.chain_type == chain_type:
            n = len(chain.numbering.region(cdr))
            hist[n] = hist.get(n, 0) + 1
    return dict(sorted(hist.items()))


def observed_cdr_lengths(chain_type: str, cdr: str) -> tuple[int, int]:
    """(shortest, longest) ``cdr`` the real repertoire has for ``chain_type`` (see :func:`cdr_length_histogram`)."""
    hist = cdr_length_histogram(chain_type, cdr)
    return min(hist), max(hist)


def cdr_length_share(chain_type: str, cdr: str, length: int) -> float:
    """Share of real ``chain_type`` chains whose ``cdr`` has ``length`` residues (0 for a length never seen)."""
    hist = cdr_length_histogram(chain_type, cdr)
    return hist.get(length, 0) / sum(hist.values())
