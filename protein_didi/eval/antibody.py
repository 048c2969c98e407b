"""Antibody set metrics: valid chains and chimeras, germline identity, IgLM NLL, CDR3 lengths and diversity.

Every statistic of a set's quality or diversity is taken over its **valid** chains
(:mod:`protein_didi.protein.chain_validity`: one coherent heavy or light chain, J region agreeing with
the V call); chimeras and frame errors are counted as such and enter no average.

Generic protein diversity (MMseqs2 clusters at 30 % identity) puts every heavy
chain in one cluster, because antibody frameworks are conserved. Antibody sets
are therefore judged by where they *do* vary:

* CDR3 uniqueness: the fraction of distinct CDR-H3 (and CDR-L3) strings;
* mean pairwise identity over IMGT-numbered positions (see :func:`imgt_identity_matrix`);
* the CDR3 length distribution against a natural one (Wasserstein-1 in residues
  and total variation between length histograms).

Means come with percentile-bootstrap 95 % intervals over sequences.
"""

from __future__ import annotations

import importlib.resources
from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.protein.chain_validity import check_chain
from protein_didi.protein.numbering import (
    DEFAULT_SPECIES,
    AntibodyError,
    AntibodyNumbering,
    number_antibodies,
)

NATURAL_FASTA = "natural_antibodies.fasta"
NATURAL_KINDS = ("mature", "v_gene", "germline_vj")
"""Record kinds of the shipped natural set (see ``data_prep/antibodies.py``): ``mature`` rearranged V domains
(UniProt, with a J region), ``v_gene`` UniProt V-gene translations without a J, ``germline_vj`` a germline V joined
to a germline J (real segments, but no D gene or junctional diversity, so their CDR3s are short)."""
_AA = "ACDEFGHIKLMNPQRSTVWY"
_AA_INDEX = np.full(256, -1, dtype=np.int64)
_AA_INDEX[np.frombuffer(_AA.encode(), dtype=np.uint8)] = np.arange(len(_AA))


def bootstrap_mean(
    values: Sequence[float] | np.ndarray, n_boot: int = 1000, seed: int = 0, level: float = 0.95
) -> tuple[float, float, float]:
    """(mean, low, high): the mean of the finite ``values`` and its percentile-bootstrap interval.

    NaN when there are no finite values; a single value gives a zero-width interval.
    """
    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    if x.size == 0:
        return float("nan"), float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    means = x[rng.integers(0, x.size, size=(n_boot, x.size))].mean(axis=1)
    tail = (1.0 - level) / 2.0 * 100.0
    lo, hi = np.percentile(means, [tail, 100.0 - tail])
    return float(x.mean()), float(lo), float(hi)


def imgt_identity_matrix(numberings: Sequence[AntibodyNumbering]) -> np.ndarray:
    """Pairwise sequence identity of numbered sequences, aligned by their IMGT labels.

    IMGT numbering already is a multiple alignment of V domains (same label, same
    structural position; insertions such as 111A have their own labels), so no
    pairwise alignment is needed: identity = (labels where both have the same
    residue) / (labels where at least one has a residue). Gaps count as
    mismatches, so CDR length differences lower identity, as in an alignment.
    Two one-hot matrix products give every pair at once: 1,000 sequences take
    well under a second, where pairwise global alignment takes minutes. Only
    the numbered V domain counts (leaders, constant regions are ignored). X
    occupies a position but matches nothing.
    """
    nums = [n for n in numberings if n.numbered]
    if len(nums) != len(numberings):
        raise AntibodyError("imgt_identity_matrix needs numbered sequences only; filter on .numbered first")
    labels: dict[str, int] = {}
    for n in nums:
        for lab, _ in n.imgt:
            labels.setdefault(lab, len(labels))
    n_seq, n_pos = len(nums), len(labels)
    occupied = np.zeros((n_seq, n_pos), dtype=np.float32)
    onehot = np.zeros((n_seq, n_pos * len(_AA)), dtype=np.float32)
    for row, n in enumerate(nums):
        cols = np.fromiter((labels[lab] for lab, _ in n.imgt), dtype=np.int64, count=len(n.imgt))
        res = _AA_INDEX[np.frombuffer(n.sequence.encode(), dtype=np.uint8)[[i for _, i in n.imgt]]]
        occupied[row, cols] = 1.0
        known = res >= 0
        onehot[row, cols[known] * len(_AA) + res[known]] = 1.0
    same = onehot @ onehot.T
    both = occupied @ occupied.T
    count = occupied.sum(axis=1)
    union = count[:, None] + count[None, :] - both
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(union > 0, same / union, 0.0)


def mean_pairwise_identity(
    numberings: Sequence[AntibodyNumbering], max_sequences: int = 2000, seed: int = 0
) -> dict[str, float]:  # callers pass valid chains: a chimera's "light" FR4 would be aligned with real light chains
    """Mean IMGT-position identity over distinct pairs, within heavy chains (``H``), within light chains (``L``,
    kappa and lambda together) and over both pools' pairs (``all``); cross-chain pairs say nothing and are skipped.

    Above ``max_sequences`` per chain class a seeded random subset is used (the matrix is quadratic in memory).
    """
    rng = np.random.default_rng(seed)
    sums: dict[str, float] = {}
    pairs: dict[str, int] = {}
    for cls in ("H", "L"):
        group = [n for n in numberings if n.numbered and n.chain_class == cls]
        if len(group) > max_sequences:
            group = [group[i] for i in sorted(rng.choice(len(group), size=max_sequences, replace=False))]
        if len(group) < 2:
            sums[cls], pairs[cls] = 0.0, 0
            continue
        ident = imgt_identity_matrix(group)
        upper = np.triu_indices(len(group), k=1)
        sums[cls], pairs[cls] = float(ident[upper].sum()), len(upper[0])
    out = {cls: (sums[cls] / pairs[cls] if pairs[cls] else float("nan")) for cls in ("H", "L")}
    total = pairs["H"] + pairs["L"]
    out["all"] = (sums["H"] + sums["L"]) / total if total else float("nan")
    return out


def length_distribution_distance(lengths: Sequence[int], reference: Sequence[int]) -> dict[str, float]:
    """Wasserstein-1 (in residues) and total variation between two length distributions (NaN if either is empty).

    W1 says by how many residues lengths are off on average (it sees how far a
    mass moved); TV in [0, 1] says what fraction of the mass sits at wrong lengths.
    """
    a = np.asarray(lengths, dtype=np.int64)
    b = np.asarray(reference, dtype=np.int64)
    if a.size == 0 or b.size == 0:
        return {"w1": float("nan"), "tv": float("nan")}
    top = int(max(a.max(), b.max())) + 1
    pa = np.bincount(a, minlength=top) / a.size
    pb = np.bincount(b, minlength=top) / b.size
    return {"w1": float(np.abs(np.cumsum(pa) - np.cumsum(pb)).sum()), "tv": float(0.5 * np.abs(pa - pb).sum())}


def load_natural_antibodies(kinds: Sequence[str] = NATURAL_KINDS) -> list[tuple[str, str]]:
    """(id, sequence) of the shipped natural reference set, restricted to ``kinds`` (see :data:`NATURAL_KINDS`).

    The id starts with the kind, then source and accession, e.g.
    ``mature|uniprot:P04438|Homo sapiens|IGHV…`` or ``germline_vj|anarci:human|IGHV1-18*01+IGHJ4*01``.
    """
    unknown = sorted(set(kinds) - set(NATURAL_KINDS))
    if unknown:
        raise AntibodyError(f"unknown natural-set kinds {unknown}; choose from {', '.join(NATURAL_KINDS)}")
    text = importlib.resources.files("protein_didi.eval").joinpath("data", NATURAL_FASTA).read_text()
    records: list[tuple[str, str]] = []
    for block in text.split(">")[1:]:
        head, _, body = block.partition("\n")
        if head.split("|", 1)[0] in kinds:
            records.append((head.strip(), "".join(body.split())))
    return records


def antibody_table(
    sequences: Sequence[str],
    numbering: Sequence[AntibodyNumbering] | None = None,
    iglm: bool | str = "auto",
    species: Sequence[str] | None = DEFAULT_SPECIES,
) -> pd.DataFrame:
    """One row per sequence: ANARCI's call, chain validity (``valid``, ``status`` valid/chimera/invalid and
    the ``validity`` reason), CDRs and their lengths, and IgLM NLL.

    ``iglm``: True requires the iglm package, False skips it, ``"auto"`` scores
    when it is installed; without a score the ``iglm_nll`` column is absent, never filled in.
    """
    seqs = [s.strip().upper() for s in sequences]
    if numbering is None:
        numbering = number_antibodies(seqs, species=species)
    if len(numbering) != len(seqs):
        raise AntibodyError(f"{len(numbering)} numberings given for {len(seqs)} sequences; pass one per sequence")
    rows: list[dict[str, Any]] = []
    for s, n in zip(seqs, numbering, strict=True):
        check = check_chain(n)
        row: dict[str, Any] = {
            "sequence": s,
            "length": len(s),
            "numbered": n.numbered,
            "valid": check.valid,
            "status": check.status,
            "validity": check.reason or "",
            "chain_type": n.chain_type,
            "species": n.species,
            "v_gene": n.v_gene,
            "v_identity": n.v_identity if n.v_identity is not None else np.nan,
            "j_gene": n.j_gene,
            "j_identity": n.j_identity if n.j_identity is not None else np.nan,
        }
        for cdr in ("CDR1", "CDR2", "CDR3"):
            seg = n.region(cdr) if n.numbered else None
            row[cdr.lower()] = seg
            row[f"{cdr.lower()}_length"] = len(seg) if seg is not None else np.nan
        rows.append(row)
    table = pd.DataFrame(rows)
    from protein_didi.eval.iglm_judge import iglm_available, iglm_nll

    if iglm is True or (iglm == "auto" and iglm_available()):
        scores = iglm_nll(seqs, numbering=numbering) if seqs else []
        table["iglm_nll"] = [sc.nll for sc in scores]
        table["iglm_chain_tag"] = [sc.chain_tag for sc in scores]
        table["iglm_species_tag"] = [sc.species_tag for sc in scores]
    elif iglm not in (False, "auto"):
        raise AntibodyError(f"iglm must be True, False or 'auto', got {iglm!r}")
    return table


def _with_ci(summary: dict[str, Any], name: str, values: Sequence[float], n_boot: int, seed: int) -> None:
    mean, lo, hi = bootstrap_mean(values, n_boot=n_boot, seed=seed)
    summary[name] = mean
    summary[f"{name}_ci95"] = (lo, hi)


def antibody_metrics(
    sequences: Sequence[str],
    reference: Sequence[str] | Sequence[AntibodyNumbering] | None = None,
    iglm: bool | str = "auto",
    n_boot: int = 1000,
    seed: int = 0,
    species: Sequence[str] | None = DEFAULT_SPECIES,
    numbering: Sequence[AntibodyNumbering] | None = None,
) -> tuple[pd.DataFrame, dict[str, Any]]:
    """Per-sequence table (:func:`antibody_table`) and a summary dict of the set.

    Summary: ``n``, ``valid_fraction`` (the headline), ``chimera_fraction``, ``numbered_fraction`` (ANARCI
    alone, chimeras included), ``chain_fraction`` (H/K/L among valid chains over all sequences), and over
    **valid chains only**: ``v_identity``/``j_identity``/``iglm_nll`` means with ``*_ci95``, CDR3 lengths per
    chain class (``cdr3_length_H`` mean + CI, ``cdr3_length_hist_H``), ``cdrh3_unique_fraction`` and
    ``cdrl3_unique_fraction``, ``pairwise_identity`` (H, L, all); ``iglm_nll_all`` is over every sequence
    (unnumbered ones scored as in :mod:`protein_didi.eval.iglm_judge`). Given a ``reference`` set (sequences
    or numberings; the real repertoire in reports), ``cdr3_length_distance_H``/``_L`` (W1 and TV against its
    valid chains). ``numbering``: the sequences' numberings when the caller already has them (ANARCI is the
    slow part).
    """
    seqs = [s.strip().upper() for s in sequences]
    nums = list(numbering) if numbering is not None else number_antibodies(seqs, species=species)
    table = antibody_table(seqs, numbering=nums, iglm=iglm)
    valid = table[table["valid"]] if len(table) else table
    n = len(table)
    nan = float("nan")
    summary: dict[str, Any] = {
        "n": n,
        "valid_fraction": float(table["valid"].mean()) if n else nan,
        "chimera_fraction": float((table["status"] == "chimera").mean()) if n else nan,
        "numbered_fraction": float(table["numbered"].mean()) if n else nan,
        "chain_fraction": {c: float((valid["chain_type"] == c).sum() / n) if n else nan for c in "HKL"},
    }
    _with_ci(summary, "v_identity", valid["v_identity"], n_boot, seed)
    _with_ci(summary, "j_identity", valid["j_identity"], n_boot, seed)
    if "iglm_nll" in table:
        _with_ci(summary, "iglm_nll", valid["iglm_nll"], n_boot, seed)
        _with_ci(summary, "iglm_nll_all", table["iglm_nll"], n_boot, seed)
    else:
        summary["iglm_nll"] = None
        summary["iglm_note"] = "IgLM not scored (pip install -e .[iglm]; non-commercial licence)"
    light = valid["chain_type"].isin(["K", "L"]) if len(valid) else pd.Series(dtype=bool)
    by_class = {"H": valid[valid["chain_type"] == "H"], "L": valid[light]}
    for cls, part in by_class.items():
        lengths = part["cdr3_length"].astype(int).tolist()
        _with_ci(summary, f"cdr3_length_{cls}", lengths, n_boot, seed)
        summary[f"cdr3_length_hist_{cls}"] = dict(sorted(pd.Series(lengths, dtype=int).value_counts().items()))
        cdr3 = part["cdr3"].tolist()
        summary[f"cdr{cls.lower()}3_unique_fraction"] = len(set(cdr3)) / len(cdr3) if cdr3 else float("nan")
    summary["pairwise_identity"] = mean_pairwise_identity(
        [n for n, ok in zip(nums, table["valid"], strict=True) if ok], seed=seed
    )
    if reference is not None:
        ref = list(reference)
        ref_nums = ref if ref and isinstance(ref[0], AntibodyNumbering) else number_antibodies(ref, species=species)
        for cls, part in by_class.items():
            ref_len = [len(r.cdr3) for r in ref_nums if check_chain(r).valid and r.chain_class == cls]
            summary[f"cdr3_length_distance_{cls}"] = length_distribution_distance(
                part["cdr3_length"].astype(int).tolist(), ref_len
            )
        summary["reference_n"] = len(ref_nums)
    return table, summary
