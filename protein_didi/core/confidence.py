"""Confidence-ordered sampling of masked diffusion models (MaskGIT; DPLM's generation).

The ancestral sampler lets the schedule decide *how many* tokens a step reveals
and chance decide *which*. Here every step draws a value for every masked
position from p(x | z_t), then keeps the draws the model is most sure of:

    x̂_i ~ p(x_i | z_t)                           (value temperature, top-p as usual)
    score_i = log p(x̂_i | z_t) / τ + g_i,  g_i ~ Gumbel(0, 1)   (float64)
    reveal the top (m_t − k_s) scores;  k_s = round(M · (1 − α_s) / (1 − α_1))

where m_t is how many positions are still masked, M how many were masked at the
start (per sequence) and k_s how many the schedule leaves masked at time s.

τ, the *order temperature*, is the knob from random order to greedy confidence.
Adding Gumbel noise to log-weights and taking the top k draws k positions without
replacement with probabilities ∝ p(x̂_i)^{1/τ} (Plackett–Luce), so:
  τ = 0  → greedy confidence (MaskGIT / DPLM's default argmax-of-score decoding),
  τ = 1  → positions picked in proportion to the probability of their own draw,
  τ = ∞  → uniformly random order: ancestral sampling with the binomial reveal
           count replaced by its mean (the schedule's expected count, exactly).
Revealed tokens are never remasked (carry-over unmasking, as in the ancestral sampler).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import torch

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.sampler import SamplerConfig, StepCallback, sample_categorical, temper, time_grid
from protein_didi.core.schedule import NoiseSchedule


@dataclass(frozen=True)
class ConfidenceConfig:
    """Value sampling (``sampler``: steps, temperature, top-p, suppressed tokens) plus the order temperature τ."""

    sampler: SamplerConfig
    order_temperature: float = 0.0

    def __post_init__(self) -> None:
        check_order_temperature(self.order_temperature)


def check_order_temperature(tau: float) -> None:
    """The one check of an order temperature τ (requests, this sampler and the remasking pick share it)."""
    if math.isnan(tau) or tau < 0:
        raise ValueError(f"order temperature must be ≥ 0 (0 = greedy confidence, inf = random order), got {tau}")


def gumbel(
    shape: torch.Size, dtype: torch.dtype, device: torch.device, generator: torch.Generator | None
) -> torch.Tensor:
    """Gumbel(0, 1) noise −log E, E ~ Exp(1), drawn in ``dtype`` (float64 keeps the tails)."""
    return -torch.empty(shape, dtype=dtype, device=device).exponential_(generator=generator).log()


def reveal_scores(
    log_conf: torch.Tensor, order_temperature: float, generator: torch.Generator | None = None
) -> torch.Tensor:
    """Perturbed confidence log p / τ + Gumbel: the top k are a Plackett–Luce draw with weights p^{1/τ}."""
    if order_temperature == 0.0:
        return log_conf
    noise = gumbel(log_conf.shape, log_conf.dtype, log_conf.device, generator)
    if math.isinf(order_temperature):
        return noise
    return log_conf / order_temperature + noise


def confidence_step(
    p_x0: torch.Tensor,
    z_t: torch.Tensor,
    fixed: torch.Tensor,
    keep_masked: torch.Tensor,
    order_temperature: float,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Reveal all but ``keep_masked`` (B,) of each row's free masked positions, the most confident first."""
    assert p_x0.shape[:2] == z_t.shape == fixed.shape, (p_x0.shape, z_t.shape, fixed.shape)
    assert keep_masked.shape == z_t.shape[:1], (keep_masked.shape, z_t.shape)
    x_hat = sample_categorical(p_x0, generator)  # (B, L)
    log_conf = p_x0.gather(-1, x_hat.unsqueeze(-1)).squeeze(-1).log()  # (B, L), finite: x̂ was drawn, so p > 0
    candidates = (z_t == mask_id) & ~fixed
    score = reveal_scores(log_conf, order_temperature, generator).masked_fill(~candidates, -math.inf)
    num_reveal = (candidates.sum(-1) - keep_masked).clamp_min(0)  # (B,)
    rank = score.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)  # 0 = most confident
    reveal = candidates & (rank < num_reveal.unsqueeze(-1))
    return torch.where(reveal, x_hat, z_t)


@torch.no_grad()
def confidence_sample(
    model: Denoiser,
    z: torch.Tensor,
    fixed: torch.Tensor,
    schedule: NoiseSchedule,
    config: ConfidenceConfig,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise ``z`` (masked where to generate) in ``config.sampler.num_steps`` confidence-ordered steps.

    Args mirror :func:`~protein_didi.core.sampler.ancestral_sample`; motifs, prefixes and
    redesign spans are simply ``fixed`` (or unmasked) positions.
    """
    cfg = config.sampler
    ts = time_grid(cfg.num_steps, z.device)
    still_masked = schedule.mask_prob(ts) / schedule.mask_prob(ts[:1])  # (N+1,), 1 → 0
    total = ((z == model.mask_id) & ~fixed).sum(-1).to(torch.float64)  # M per sequence
    for n in range(cfg.num_steps):
        t = ts[n].to(torch.float32).expand(z.shape[0])
        p_x0 = temper(model(z, t), cfg.temperature, cfg.top_p, cfg.dtype, cfg.suppress)
        keep = torch.round(total * still_masked[n + 1]).long()  # masked positions left after this step
        if n + 1 == cfg.num_steps:
            keep.zero_()  # everything revealed at the end, whatever the schedule's α(0)
        z = confidence_step(p_x0, z, fixed, keep, config.order_temperature, model.mask_id, generator)
        if callback is not None:
            callback(n + 1, cfg.num_steps, z)
    return z
