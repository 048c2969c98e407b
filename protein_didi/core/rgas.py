"""Reward-guided ancestral sampling, RGAS (DiDi-Instruct Algorithm 2, eq. 10–11).

Early steps (the first ``tilt_fraction`` of the NFE budget) tilt the student's
logits at masked positions by h·∇G, the gradient of the discriminator's reward
with respect to the one-hot input, with h rising linearly from
``guidance_start`` to ``guidance_end`` (30 → 40 in the paper). Late steps draw
M candidates of z_{n−1} and keep one with probability softmax(G) over them.
With h = 0 and M = 1 every step is exactly :func:`ancestral_step`, drawing the
same random numbers as :func:`ancestral_sample`.

Sign convention (deliberate): our discriminator's logit estimates
R = log q_ν/q_θ (positive = student-like), the quantity the training gradient
needs. Read literally, eq. 10–11 would steer sampling towards the student's
own excess mass; the paper's appendix (Lemma C.1) flips D's convention, and
"high-reward regions" are meant to be teacher-like. So guidance uses the
teacher-likeness G = −R = log q_θ/q_ν: tilt by h·∇G, rerank by softmax(G).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
import torch.nn.functional as F

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.sampler import SamplerConfig, StepCallback, ancestral_step, sample_categorical, temper, time_grid
from protein_didi.core.schedule import NoiseSchedule


@dataclass(frozen=True)
class RGASConfig:
    sampler: SamplerConfig
    guidance_start: float = 30.0
    guidance_end: float = 40.0
    tilt_fraction: float = 0.5
    candidates: int = 4

    def guidance(self, step: int) -> float:
        """h at ``step`` (0-based); 0 once the tilting phase is over."""
        n_tilt = round(self.tilt_fraction * self.sampler.num_steps)
        if step >= n_tilt:
            return 0.0
        frac = step / max(n_tilt - 1, 1)
        return self.guidance_start + (self.guidance_end - self.guidance_start) * frac

    def num_candidates(self, step: int) -> int:
        return 1 if step < round(self.tilt_fraction * self.sampler.num_steps) else self.candidates


def guidance_reward(
    disc: Discriminator, z: torch.Tensor, t: torch.Tensor, generated: torch.Tensor, soft: torch.Tensor | None = None
) -> torch.Tensor:
    """G(z, t) = −R(z, t) = log q_θ/q_ν (B,): how teacher-like z looks to the discriminator."""
    return -disc.reward(z, t, generated, soft_tokens=soft)


def reward_gradient(
    disc: Discriminator, z: torch.Tensor, t: torch.Tensor, generated: torch.Tensor, vocab_size: int
) -> torch.Tensor:
    """∇_{onehot(z)} G(z, t), shape (B, L, K)."""
    with torch.enable_grad():
        onehot = F.one_hot(z, vocab_size).float().requires_grad_(True)
        (grad,) = torch.autograd.grad(guidance_reward(disc, z, t, generated, onehot).sum(), onehot)
    return grad


@torch.no_grad()
def rgas_sample(
    model: Denoiser,
    disc: Discriminator,
    z: torch.Tensor,
    fixed: torch.Tensor,
    schedule: NoiseSchedule,
    config: RGASConfig,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
) -> torch.Tensor:
    """RGAS from all-masked ``z`` to clean tokens in ``config.sampler.num_steps`` steps."""
    cfg = config.sampler
    ts = time_grid(cfg.num_steps, z.device)
    alphas = schedule.alpha(ts).tolist()
    generated = ~fixed
    for n in range(cfg.num_steps):
        t = ts[n].to(torch.float32).expand(z.shape[0])
        s = ts[n + 1].to(torch.float32).expand(z.shape[0])
        log_p = model(z, t)
        h = config.guidance(n)
        if h > 0:
            tilt = h * reward_gradient(disc, z, t, generated, log_p.shape[-1])
            masked = (z == model.mask_id).unsqueeze(-1)
            log_p = torch.log_softmax(torch.where(masked, log_p + tilt, log_p), dim=-1)
        p_x0 = temper(log_p, cfg.temperature, cfg.top_p, cfg.dtype, cfg.suppress)
        m = config.num_candidates(n)
        if m == 1:
            z = ancestral_step(p_x0, z, fixed, alphas[n], alphas[n + 1], model.mask_id, generator)
        else:
            cands = torch.stack(
                [ancestral_step(p_x0, z, fixed, alphas[n], alphas[n + 1], model.mask_id, generator) for _ in range(m)]
            )  # (M, B, L)
            flat = cands.flatten(0, 1)
            rewards = guidance_reward(disc, flat, s.repeat(m), generated.repeat(m, 1)).view(m, -1)  # (M, B)
            choice = sample_categorical(torch.softmax(rewards.double(), dim=0).T, generator)  # (B,)
            z = cands[choice, torch.arange(z.shape[0], device=z.device)]
        if callback is not None:
            callback(n + 1, cfg.num_steps, z)
    return z
