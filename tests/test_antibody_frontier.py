"""The frontier benchmark's bookkeeping: which point is the candidate, and how a target is called met."""

from __future__ import annotations

import sys
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import antibody_frontier as frontier


def _boots(values: dict[str, float], spread: float, n: int = 400, seed: int = 0) -> list[dict[str, float]]:
    rng = np.random.default_rng(seed)
    return [{k: v + spread * rng.standard_normal() for k, v in values.items()} for _ in range(n)]


KEYS = {"iglm_nll": 0.0, "v_identity": 0.0, "diversity_imgt": 0.0, "humanness": 0.0, "chimera": 0.0, "kept": 0.0}


def test_a_target_is_met_on_the_estimate_and_on_the_whole_interval_apart() -> None:
    reference = KEYS | {"iglm_nll": 0.5, "v_identity": 0.95, "diversity_imgt": 0.3, "humanness": -0.2, "kept": 1.0}
    close = reference | {"iglm_nll": 0.75, "chimera": 0.01}  # NLL +0.25: met, but its interval crosses 0.3
    got = {
        c["metric"]: c for c in frontier.claims(_boots(close, 0.05), _boots(reference, 0.05, seed=1), close, reference)
    }
    assert got["iglm_nll"]["estimate"] == pytest.approx(0.25)
    assert got["iglm_nll"]["met"] and not got["iglm_nll"]["met_interval"]
    assert got["chimera"]["kind"] == "value<=" and got["chimera"]["estimate"] == pytest.approx(0.01)
    far = reference | {"iglm_nll": 1.5, "humanness": -0.6}
    got = {c["metric"]: c for c in frontier.claims(_boots(far, 0.01), _boots(reference, 0.01, seed=1), far, reference)}
    assert not got["iglm_nll"]["met"] and not got["humanness"]["met"]


def test_the_humanness_margin_is_half_igLMs_own_interval() -> None:
    reference = KEYS | {"humanness": -0.2}
    wide = _boots(reference, 0.1, seed=1)
    lo, hi = frontier.interval([b["humanness"] for b in wide])
    candidate = reference | {"humanness": -0.2 - 0.9 * (hi - lo) / 2}  # inside the margin
    got = {c["metric"]: c for c in frontier.claims(_boots(candidate, 0.0), wide, candidate, reference)}
    assert got["humanness"]["bound"] == pytest.approx((hi - lo) / 2, abs=1e-3) and got["humanness"]["met"]


def test_the_candidate_is_what_sample_does_by_default() -> None:
    stored = SimpleNamespace(info={"sampling": {"sampler": "confidence", "order_temperature": 0.1, "nfe": 8}})
    point = frontier.own_point(stored, "antibody-student", "heavy", 8)  # type: ignore[arg-type]
    assert (point.sampler, point.order_temperature, point.nfe) == ("confidence", 0.1, 8)
    assert point.label == "antibody-student@8 +EVQ confidence τ=0.1 T=1"
    plain = frontier.own_point(SimpleNamespace(info={}), "m", "unconditional", 8)  # type: ignore[arg-type]
    assert (plain.sampler, plain.order_temperature, plain.label) == ("ancestral", None, "m@8 ancestral T=1")
    sixteen = frontier.sixteen_pass_points(point, "antiberty", "8:0.3:0.7")
    assert [p.forward_passes for p in sixteen] == [16, 16] and "8×antiberty ρ=0.3 T=0.7" in sixteen[1].label
