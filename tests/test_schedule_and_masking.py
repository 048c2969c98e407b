import math

import pytest
import torch

from protein_didi.core.masking import corrupt, sample_times
from protein_didi.core.schedule import CosineSchedule, LogLinearSchedule, get_schedule


def test_loglinear_closed_form():
    s = LogLinearSchedule(eps=1e-3)
    t = torch.tensor([0.0, 0.25, 0.5, 1.0])
    assert torch.allclose(s.alpha(t), 1 - (1 - 1e-3) * t)
    # ω(t) = −α'/(1−α) = (1−ε)/((1−ε)t) = 1/t
    assert torch.allclose(s.weight(t[1:]), 1 / t[1:])


def test_cosine_closed_form_and_derivative():
    s = CosineSchedule(eps=0.0)
    t = torch.tensor([0.1, 0.5, 0.9], dtype=torch.float64)
    assert torch.allclose(s.alpha(t), torch.cos(math.pi * t / 2))
    h = 1e-6
    numeric = (s.alpha(t + h) - s.alpha(t - h)) / (2 * h)
    assert torch.allclose(s.alpha_prime(t), numeric, atol=1e-6)
    assert torch.allclose(s.weight(t), (math.pi / 2) * torch.sin(math.pi * t / 2) / (1 - torch.cos(math.pi * t / 2)))


def test_unknown_schedule():
    with pytest.raises(ValueError, match="unknown noise schedule"):
        get_schedule("linear-ish")


@pytest.mark.parametrize("t", [0.1, 0.5, 0.9])
def test_masking_rate_matches_one_minus_alpha(t):
    s = LogLinearSchedule()
    gen = torch.Generator().manual_seed(0)
    x = torch.full((64, 500), 5)
    maskable = torch.ones_like(x, dtype=torch.bool)
    maskable[:, 0] = False
    z = corrupt(x, torch.full((64,), t), s, mask_id=32, maskable=maskable, generator=gen)
    rate = (z[:, 1:] == 32).float().mean().item()
    expected = float(s.mask_prob(torch.tensor(t)))
    n = 64 * 499
    assert abs(rate - expected) < 4 * math.sqrt(expected * (1 - expected) / n)
    assert (z[:, 0] == 5).all()  # never-maskable positions are untouched


def test_stratified_times_cover_unit_interval():
    t = sample_times(8, generator=torch.Generator().manual_seed(1))
    assert t.shape == (8,) and (t > 0).all() and (t <= 1).all()
    assert sorted((t * 8).floor().long().tolist()) == list(range(8))
