"""Forward process q(z_t | x): each maskable token is replaced by [MASK] with probability 1 − α_t."""

from __future__ import annotations

import torch

from protein_didi.core.schedule import NoiseSchedule


def corrupt(
    x: torch.Tensor,
    t: torch.Tensor,
    schedule: NoiseSchedule,
    mask_id: int,
    maskable: torch.Tensor,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """Sample z_t ~ q(z_t | x) independently per position.

    Args:
        x: (B, L) clean tokens.
        t: (B,) times in [0, 1].
        maskable: (B, L) bool; False for positions that are never noised
            (special tokens, padding, fixed motif residues).
    """
    assert x.shape == maskable.shape and t.shape == x.shape[:1], (x.shape, maskable.shape, t.shape)
    p_mask = schedule.mask_prob(t).unsqueeze(-1)
    u = torch.rand(x.shape, generator=generator, device=x.device)
    masked = (u < p_mask) & maskable
    return torch.where(masked, torch.full_like(x, mask_id), x)


def sample_times(
    batch_size: int,
    device: torch.device | str = "cpu",
    generator: torch.Generator | None = None,
    antithetic: bool = True,
    t_min: float = 1e-5,
) -> torch.Tensor:
    """t ~ U(t_min, 1) with MDLM's low-discrepancy (stratified) sampler to cut ELBO variance."""
    u = torch.rand(1 if antithetic else batch_size, generator=generator, device=device)
    if antithetic:
        u = (u + torch.arange(batch_size, device=device) / batch_size) % 1.0
    return t_min + (1.0 - t_min) * u
