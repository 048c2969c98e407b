"""Sequence statistics: composition, composition KL, SEG-like low complexity, reference sets."""

from __future__ import annotations

import numpy as np
import pytest

from protein_didi.eval.stats import (
    PSEUDOCOUNT,
    composition,
    composition_kl,
    low_complexity_fraction,
    natural_at_lengths,
    random_sequences,
    sequence_table,
)
from protein_didi.protein.alphabet import STANDARD_AA

UNIFORM = dict.fromkeys(STANDARD_AA, 1 / 20)


def test_composition_pools_residues_and_ignores_nonstandard() -> None:
    comp = composition(["AAC", "CX"])
    assert set(comp) == set(STANDARD_AA)
    assert comp["A"] == pytest.approx(0.5) and comp["C"] == pytest.approx(0.5)
    assert sum(comp.values()) == pytest.approx(1.0)
    assert composition([]) == dict.fromkeys(STANDARD_AA, 0.0)


def test_composition_kl_matches_the_smoothed_formula() -> None:
    seq = "A" * 10
    p = np.full(20, PSEUDOCOUNT) / (10 + 20 * PSEUDOCOUNT)
    p[STANDARD_AA.index("A")] = (10 + PSEUDOCOUNT) / (10 + 20 * PSEUDOCOUNT)
    expected = float(np.sum(p * np.log(p * 20)))
    assert composition_kl([seq], UNIFORM) == pytest.approx(expected)
    assert composition_kl(seq, UNIFORM) == pytest.approx(expected)  # a single string is one sequence


def test_composition_kl_orders_sets_by_skew() -> None:
    rng = np.random.default_rng(0)
    iid = ["".join(rng.choice(list(STANDARD_AA), 200)) for _ in range(20)]
    skewed = ["EKL" * 60]
    assert 0 <= composition_kl(iid, UNIFORM) < 0.02
    assert composition_kl(skewed, UNIFORM) > 1.0  # ln(20/3) ≈ 1.9 minus smoothing
    with pytest.raises(ValueError, match="reference composition"):
        composition_kl(iid, dict.fromkeys(STANDARD_AA, 0.0))


def test_low_complexity_flags_repeats_not_diverse_sequence() -> None:
    rng = np.random.default_rng(1)
    diverse = "".join(rng.choice(list(STANDARD_AA), 100))
    assert low_complexity_fraction("Q" * 30) == 1.0
    assert low_complexity_fraction("QP" * 30) == 1.0  # 1 bit per window
    assert low_complexity_fraction(diverse) == 0.0
    embedded = diverse[:40] + "Q" * 20 + diverse[40:80]
    frac = low_complexity_fraction(embedded)
    # the run plus window overhang on each side, but far from the whole protein
    assert 20 / 100 <= frac <= 40 / 100
    assert low_complexity_fraction("ACDEFGHIK") == 0.0  # shorter than the window: one window, log2(9) bits
    assert low_complexity_fraction("") == 0.0


def test_low_complexity_threshold_is_in_bits() -> None:
    four_letters = "ACDE" * 6  # every 12-window has entropy exactly 2 bits
    assert low_complexity_fraction(four_letters, threshold=2.0) == 0.0
    assert low_complexity_fraction(four_letters, threshold=2.01) == 1.0


def test_sequence_table_columns() -> None:
    table = sequence_table(["MKT" * 10, "Q" * 15], reference_composition=UNIFORM)
    assert list(table.columns) == ["sequence", "length", "low_complexity", "composition_kl"]
    assert table["length"].tolist() == [30, 15]
    assert table["low_complexity"].tolist()[1] == 1.0
    assert table["composition_kl"].iloc[1] > table["composition_kl"].iloc[0] > 0
    assert "composition_kl" not in sequence_table(["MKT"]).columns


def test_random_sequences_follow_the_reference() -> None:
    ref = dict.fromkeys(STANDARD_AA, 0.01) | {"L": 0.81}
    seqs = random_sequences([100] * 20, ref, seed=3)
    assert [len(s) for s in seqs] == [100] * 20
    assert composition(seqs)["L"] == pytest.approx(0.81, abs=0.03)
    assert seqs == random_sequences([100] * 20, ref, seed=3)


def test_natural_at_lengths_prefers_whole_proteins_then_crops() -> None:
    records = [(f"p{i}", "M" + "A" * (n - 1)) for i, n in enumerate([50, 52, 100, 300])]
    picked = natural_at_lengths(records, [50, 51, 100, 200], seed=0)
    assert {rid for rid, _ in picked[:2]} == {"p0", "p1"}  # whole proteins within ±5, without replacement
    assert picked[2] == records[2]
    rid, seq = picked[3]
    assert rid.startswith("p3/") and len(seq) == 200  # nothing near 200: an exact-length window of a longer one
    assert natural_at_lengths(records, [1000], seed=0)[0][0] == "p3"  # nothing long enough: the nearest
    with pytest.raises(ValueError):
        natural_at_lengths([], [10])
    three = natural_at_lengths(records, [50] * 3, seed=1)
    assert sorted(rid for rid, _ in three[:2]) == ["p0", "p1"] and "/" in three[2][0]  # no protein drawn twice
    assert [len(s) for _, s in three] == [50, 52, 50] or [len(s) for _, s in three] == [52, 50, 50]
