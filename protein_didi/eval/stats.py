"""Sequence statistics that need no model: length, amino-acid composition KL and low complexity.

They catch the cheap failure modes of a generator before any folding is paid
for: a skewed composition (e.g. too many E/K/L, typical of an over-confident
few-step sampler) and repeats or homopolymer runs (mode collapse).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence

import numpy as np
import pandas as pd

from protein_didi.protein.alphabet import STANDARD_AA

_AA_INDEX = np.full(256, -1, dtype=np.int16)
_AA_INDEX[np.frombuffer(STANDARD_AA.encode(), dtype=np.uint8)] = np.arange(len(STANDARD_AA))

PSEUDOCOUNT = 0.5
"""Jeffreys pseudocount per amino acid for the generated side of the KL: a short
sequence lacking, say, W would otherwise contribute log 0 terms."""


def _counts(seq: str) -> np.ndarray:
    """Counts of the 20 standard amino acids (other letters such as X are ignored)."""
    codes = _AA_INDEX[np.frombuffer(seq.upper().encode("ascii", "replace"), dtype=np.uint8)]
    return np.bincount(codes[codes >= 0], minlength=len(STANDARD_AA)).astype(np.float64)


def _as_vector(composition: Mapping[str, float]) -> np.ndarray:
    """A reference composition as a strictly positive probability vector over :data:`STANDARD_AA`."""
    q = np.array([float(composition.get(aa, 0.0)) for aa in STANDARD_AA])
    if not np.isfinite(q).all() or (q < 0).any() or q.sum() <= 0:
        raise ValueError("reference composition must give non-negative frequencies for the 20 standard amino acids")
    q = np.maximum(q / q.sum(), 1e-6)
    return q / q.sum()


def composition(seqs: Iterable[str]) -> dict[str, float]:
    """Pooled frequency of each of the 20 standard amino acids over all residues of ``seqs``."""
    total = np.zeros(len(STANDARD_AA))
    for s in seqs:
        total += _counts(s)
    if total.sum() == 0:
        return dict.fromkeys(STANDARD_AA, 0.0)
    return {aa: float(f) for aa, f in zip(STANDARD_AA, total / total.sum(), strict=True)}


def _kl(counts: np.ndarray, q: np.ndarray) -> float:
    p = (counts + PSEUDOCOUNT) / (counts.sum() + PSEUDOCOUNT * len(counts))
    return float(np.sum(p * np.log(p / q)))


def composition_kl(seqs: Iterable[str] | str, reference: Mapping[str, float]) -> float:
    """KL(generated ‖ reference) in nats between pooled amino-acid compositions.

    The generated counts get a Jeffreys pseudocount (:data:`PSEUDOCOUNT`) so the
    value is finite for short sequences. Even i.i.d. draws from ``reference`` give
    a small positive value at finite size, which is why reports always show a
    composition-matched random row next to generated sets.
    """
    seqs = [seqs] if isinstance(seqs, str) else seqs
    counts = np.zeros(len(STANDARD_AA))
    for s in seqs:
        counts += _counts(s)
    return _kl(counts, _as_vector(reference))


def low_complexity_fraction(seq: str, window: int = 12, threshold: float = 2.2) -> float:
    """Fraction of residues covered by a low-entropy window (a SEG-like low-complexity measure).

    Every window of ``window`` residues whose Shannon entropy (bits, over residue
    letters) is below ``threshold`` marks all of its residues; the result is the
    marked fraction. The defaults are SEG's trigger window and complexity K1
    (Wootton & Federhen, 1993). A homopolymer has entropy 0 and a dipeptide repeat
    1 bit, so repeats are caught; twelve distinct residues reach log2(12) = 3.58,
    and natural proteins are rarely flagged. A sequence shorter than ``window``
    is scored as one window.
    """
    if window < 1:
        raise ValueError(f"window must be ≥ 1, got {window}")
    codes = np.frombuffer(seq.upper().encode("ascii", "replace"), dtype=np.uint8)
    n = codes.size
    if n == 0:
        return 0.0
    w = min(window, n)
    _, inverse = np.unique(codes, return_inverse=True)
    onehot = np.zeros((n + 1, int(inverse.max()) + 1), dtype=np.int32)
    onehot[np.arange(1, n + 1), inverse] = 1
    cum = onehot.cumsum(axis=0)
    counts = cum[w:] - cum[:-w]  # (n - w + 1, letters): residue counts of every window
    p = counts / w
    with np.errstate(divide="ignore", invalid="ignore"):
        entropy = -np.sum(np.where(p > 0, p * np.log2(p), 0.0), axis=1)
    low = np.flatnonzero(entropy < threshold)
    if low.size == 0:
        return 0.0
    cover = np.zeros(n + 1, dtype=np.int32)
    np.add.at(cover, low, 1)
    np.add.at(cover, low + w, -1)
    return float((cover.cumsum()[:n] > 0).mean())


def sequence_table(seqs: Sequence[str], reference_composition: Mapping[str, float] | None = None) -> pd.DataFrame:
    """One row per sequence: ``sequence``, ``length``, ``low_complexity`` (+ ``composition_kl`` given a reference)."""
    table = pd.DataFrame(
        {
            "sequence": list(seqs),
            "length": [len(s) for s in seqs],
            "low_complexity": [low_complexity_fraction(s) for s in seqs],
        }
    )
    if reference_composition is not None:
        q = _as_vector(reference_composition)
        table["composition_kl"] = [_kl(_counts(s), q) for s in seqs]
    return table


def random_sequences(lengths: Sequence[int], reference: Mapping[str, float], seed: int = 0) -> list[str]:
    """Composition-matched random proteins: residues i.i.d. from ``reference``, one per length.

    The baseline every generated set is compared against: same lengths and
    composition, but no sequence structure at all.
    """
    q = _as_vector(reference)
    rng = np.random.default_rng(seed)
    letters = np.array(list(STANDARD_AA))
    return ["".join(letters[rng.choice(len(q), size=int(n), p=q)]) for n in lengths]


def natural_at_lengths(
    records: Sequence[tuple[str, str]], lengths: Sequence[int], seed: int = 0, tolerance: float = 0.1
) -> list[tuple[str, str]]:
    """Held-out natural proteins matched to ``lengths``, without replacement where possible.

    For each target length a whole protein within ``tolerance`` (relative, at
    least ±5 residues) is drawn at random; if none is left, a random window of
    exactly that length is cut from a longer protein (marked ``/start-end`` in the
    id), and only if no protein is long enough is the nearest one taken. Whole
    proteins keep pLDDT comparable, since fragments fold worse.
    """
    if not records:
        raise ValueError("no reference sequences to draw natural proteins from")
    rng = np.random.default_rng(seed)
    ref_len = np.array([len(s) for _, s in records])
    used = np.zeros(len(records), dtype=bool)
    out: list[tuple[str, str]] = []
    for n in lengths:
        n = int(n)
        tol = max(5, round(tolerance * n))
        near = np.flatnonzero((np.abs(ref_len - n) <= tol) & ~used)
        if near.size:
            i = int(rng.choice(near))
            used[i] = True
            out.append(records[i])
            continue
        longer = np.flatnonzero(ref_len > n)
        if longer.size:
            fresh = longer[~used[longer]]
            i = int(rng.choice(fresh if fresh.size else longer))
            used[i] = True
            start = int(rng.integers(0, ref_len[i] - n + 1))
            rid, seq = records[i]
            out.append((f"{rid}/{start + 1}-{start + n}", seq[start : start + n]))
            continue
        i = int(np.argmin(np.abs(ref_len - n)))
        out.append(records[i])
    return out
