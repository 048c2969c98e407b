"""Confidence-ordered sampler: how many positions each step reveals, and in which order."""

import math

import pytest
import torch

import protein_didi.core.confidence as confidence
from protein_didi.core.confidence import ConfidenceConfig, confidence_sample, confidence_step
from protein_didi.core.denoiser import subs_log_probs
from protein_didi.core.sampler import SamplerConfig
from protein_didi.core.schedule import CosineSchedule, LogLinearSchedule

K = 21
MASK = K - 1


class UniformOver:
    """Position i draws uniformly from its first ``counts[i]`` tokens: its confidence is exactly 1/counts[i]."""

    mask_id, vocab_size, time_conditioned = MASK, K, False

    def __init__(self, counts: list[int]) -> None:
        logits = torch.full((len(counts), K), -1e9)
        for i, c in enumerate(counts):
            logits[i, :c] = 0.0
        self.logits = logits

    def __call__(self, tokens, t):
        return subs_log_probs(self.logits.expand(tokens.shape[0], -1, -1).clone(), tokens, MASK)


def first_pick_frequencies(order_temperature: float, counts: list[int], draws: int) -> torch.Tensor:
    """How often each position is the one revealed when a step may reveal a single position."""
    model = UniformOver(counts)
    z = torch.full((draws, len(counts)), MASK)
    p = model(z, None).double().exp()
    keep = torch.full((draws,), len(counts) - 1)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    out = confidence_step(p, z, fixed, keep, order_temperature, MASK, torch.Generator().manual_seed(0))
    revealed = out != MASK
    assert (revealed.sum(-1) == 1).all()
    return revealed.double().mean(0)


@pytest.mark.parametrize("schedule", [LogLinearSchedule(), CosineSchedule()])
@pytest.mark.parametrize("tau", [0.0, 1.0, math.inf])
def test_each_step_reveals_exactly_the_schedules_count(schedule, tau):
    """After step n, round(M · (1 − α(tₙ))/(1 − α(1))) positions stay masked in every row, whatever the order."""
    steps, length = 8, 37
    z = torch.full((5, length), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    fixed[:, :3], z[:, :3] = True, 1  # e.g. a motif: kept, and not counted in M
    counts = []
    out = confidence_sample(
        UniformOver([1 + i % 7 for i in range(length)]),
        z,
        fixed,
        schedule,
        ConfidenceConfig(SamplerConfig(steps), tau),
        torch.Generator().manual_seed(0),
        callback=lambda n, total, zz: counts.append((zz == MASK).sum(-1).tolist()),
    )
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    frac = schedule.mask_prob(ts) / schedule.mask_prob(ts[:1])
    expected = [round((length - 3) * f) for f in frac[1:].tolist()]
    expected[-1] = 0
    assert counts == [[e] * 5 for e in expected]
    assert (out[:, :3] == 1).all() and not (out == MASK).any()


def test_greedy_reveals_the_most_confident_positions_first():
    """τ = 0, one reveal per step: position i (confidence 1/(i+1)) is revealed at step i + 1."""
    length = 16
    z = torch.full((1, length), MASK)
    steps = []
    confidence_sample(
        UniformOver(list(range(1, length + 1))),
        z,
        torch.zeros_like(z, dtype=torch.bool),
        LogLinearSchedule(),
        ConfidenceConfig(SamplerConfig(length), 0.0),
        torch.Generator().manual_seed(0),
        callback=lambda n, total, zz: steps.append(set((zz[0] != MASK).nonzero().flatten().tolist())),
    )
    new = [sorted(b - a) for a, b in zip([set(), *steps[:-1]], steps, strict=True)]
    assert new == [[i] for i in range(length)]


@pytest.mark.parametrize("tau", [0.0, 0.5, 1.0, math.inf])
def test_order_temperature_picks_positions_in_proportion_to_confidence_to_the_one_over_tau(tau):
    """Plackett–Luce: P(first = i) ∝ conf_i^{1/τ}; τ = ∞ is uniform, τ = 0 the argmax."""
    counts = [1, 2, 4, 8]  # confidences 1, 1/2, 1/4, 1/8
    got = first_pick_frequencies(tau, counts, 40_000)
    if tau == 0.0:
        want = torch.tensor([1.0, 0, 0, 0], dtype=torch.float64)
    else:
        w = torch.tensor([1 / c for c in counts], dtype=torch.float64) ** (0.0 if math.isinf(tau) else 1 / tau)
        want = w / w.sum()
    assert torch.allclose(got, want, atol=0.012), (got, want)


def test_order_noise_is_float64(monkeypatch):
    """Draws stay float64: the Gumbel noise that orders positions is drawn in the config's dtype."""
    seen = []
    original = confidence.gumbel

    def spy(*args, **kwargs):
        noise = original(*args, **kwargs)
        seen.append(noise.dtype)
        return noise

    monkeypatch.setattr(confidence, "gumbel", spy)
    z = torch.full((2, 8), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    cfg = ConfidenceConfig(SamplerConfig(4), 1.0)
    confidence_sample(UniformOver([3] * 8), z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(0))
    assert seen == [torch.float64] * 4


def test_negative_or_nan_order_temperature_is_refused():
    for bad in (-0.1, math.nan):
        with pytest.raises(ValueError, match="order temperature"):
            ConfidenceConfig(SamplerConfig(4), bad)


def test_same_seed_same_samples_other_seed_other_samples(tiny_model):
    from protein_didi.protein.alphabet import ALPHABET

    z = ALPHABET.masked_template([20, 20])
    fixed = ALPHABET.special_positions(z)
    cfg = ConfidenceConfig(SamplerConfig(6), 1.0)
    a = confidence_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(3))
    b = confidence_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(3))
    c = confidence_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(4))
    assert torch.equal(a, b) and not (a == ALPHABET.mask_id).any()
    assert (a != c).float().mean() > 0.3
    assert torch.equal(a[fixed], z[fixed])  # <cls>, <eos> untouched
