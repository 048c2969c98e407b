"""Ancestral sampling of masked diffusion models (MDLM / DiDi-Instruct eq. 2 and 10).

One step from time t to s < t reveals each masked token with probability
(α_s − α_t)/(1 − α_t), drawing its value from the denoiser's p_θ(x | z_t):

    q(z_s | z_t) ∝ p_x0 · (α_s − α_t)   for clean tokens,
                   1 − α_s              for staying masked.

Categorical draws use the exponential race in float64 by default: float32
Gumbel noise truncates the tail and quietly lowers sample diversity.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import torch

from protein_didi.core.denoiser import NEG_INF, Denoiser
from protein_didi.core.schedule import NoiseSchedule

StepCallback = Callable[[int, int, torch.Tensor], None]


@dataclass(frozen=True)
class SamplerConfig:
    """How to sample; the number of steps is the number of function evaluations (NFE)."""

    num_steps: int
    temperature: float = 1.0
    top_p: float = 1.0
    dtype: torch.dtype = torch.float64
    reuse_unchanged: bool = True  # skip the forward pass when z did not change (time-free models only)
    suppress: tuple[int, ...] = ()  # token ids never generated (e.g. non-standard residues)

    def __post_init__(self) -> None:
        if self.num_steps < 1:
            raise ValueError(f"num_steps must be ≥ 1, got {self.num_steps}")
        if self.temperature <= 0:
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")


def time_grid(num_steps: int, device: torch.device | str = "cpu") -> torch.Tensor:
    """t_N = 1 > … > t_0 = 0, uniformly spaced (num_steps + 1 points)."""
    return torch.linspace(1.0, 0.0, num_steps + 1, device=device, dtype=torch.float64)


def sample_categorical(probs: torch.Tensor, generator: torch.Generator | None = None) -> torch.Tensor:
    """Draw one index per row of unnormalised ``probs`` (…, K) via argmax(p / Exp(1))."""
    noise = torch.empty_like(probs).exponential_(generator=generator)
    return (probs / noise).argmax(dim=-1)


def without_suppressed(log_p: torch.Tensor, suppress: tuple[int, ...]) -> torch.Tensor:
    """log p renormalised over the tokens not in ``suppress``: the distribution the sampler really draws from.

    Differentiable, so trainers score the student's samples under this same distribution.
    """
    if not suppress:
        return log_p
    banned = torch.zeros(log_p.shape[-1], dtype=torch.bool, device=log_p.device)
    banned[list(suppress)] = True
    return torch.log_softmax(log_p.masked_fill(banned, NEG_INF), dim=-1)


def temper(
    log_p_x0: torch.Tensor, temperature: float, top_p: float, dtype: torch.dtype, suppress: tuple[int, ...] = ()
) -> torch.Tensor:
    """p_x0 with suppressed tokens, temperature and nucleus (top-p) applied, as probabilities in ``dtype``."""
    log_p = without_suppressed(log_p_x0.to(dtype), suppress)
    if temperature != 1.0:
        log_p = torch.log_softmax(log_p / temperature, dim=-1)
    probs = log_p.exp()
    if top_p < 1.0:
        sorted_p, order = probs.sort(dim=-1, descending=True)
        # keep the smallest prefix whose mass reaches top_p (always at least the top token)
        drop_sorted = (sorted_p.cumsum(-1) - sorted_p) >= top_p
        drop = torch.zeros_like(drop_sorted).scatter(-1, order, drop_sorted)
        probs = probs.masked_fill(drop, 0.0)
        probs = probs / probs.sum(-1, keepdim=True)
    return probs


def ancestral_step(
    p_x0: torch.Tensor,
    z_t: torch.Tensor,
    fixed: torch.Tensor,
    alpha_t: float | torch.Tensor,
    alpha_s: float | torch.Tensor,
    mask_id: int,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """z_s ~ q(z_s | z_t, x = p_x0); unmasked and fixed positions are kept.

    ``alpha_t``/``alpha_s`` are scalars or per-sequence (B,) tensors.
    """
    assert p_x0.shape[:2] == z_t.shape == fixed.shape, (p_x0.shape, z_t.shape, fixed.shape)
    if isinstance(alpha_t, torch.Tensor):
        alpha_t = alpha_t.to(p_x0.dtype).view(-1, 1, 1)
    if isinstance(alpha_s, torch.Tensor):
        alpha_s = alpha_s.to(p_x0.dtype).view(-1, 1, 1)
    q_zs = p_x0 * (alpha_s - alpha_t)
    stay_masked = 1.0 - alpha_s
    q_zs[..., mask_id] = stay_masked.squeeze(-1) if isinstance(stay_masked, torch.Tensor) else stay_masked
    z_s = sample_categorical(q_zs, generator)
    resample = (z_t == mask_id) & ~fixed
    return torch.where(resample, z_s, z_t)


@torch.no_grad()
def ancestral_sample(
    model: Denoiser,
    z: torch.Tensor,
    fixed: torch.Tensor,
    schedule: NoiseSchedule,
    config: SamplerConfig,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """Denoise ``z`` (masked where to generate) from t = 1 to t = 0 in ``config.num_steps`` steps.

    Args:
        z: (B, L) start tokens: [MASK] where to generate, anything else is kept.
        fixed: (B, L) bool, positions never resampled (special tokens, motif, padding).
        callback: called as ``callback(step, num_steps, z)`` after every step.
    """
    ts = time_grid(config.num_steps, z.device)
    alphas = schedule.alpha(ts).tolist()
    reuse = config.reuse_unchanged and not getattr(model, "time_conditioned", True)
    p_x0, cached_for = None, None
    for n in range(config.num_steps):
        t = ts[n].to(torch.float32).expand(z.shape[0])
        if p_x0 is None or not reuse or not torch.equal(cached_for, z):
            p_x0 = temper(model(z, t), config.temperature, config.top_p, config.dtype, config.suppress)
            cached_for = z
        z = ancestral_step(p_x0, z, fixed, alphas[n], alphas[n + 1], model.mask_id, generator)
        if callback is not None:
            callback(n + 1, config.num_steps, z)
    return z
