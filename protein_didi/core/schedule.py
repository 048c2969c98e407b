"""Noise schedules α_t of absorbing-state (masked) diffusion.

α_t is the probability that a token is still clean at time t ∈ [0, 1]
(α_0 ≈ 1, α_1 ≈ 0). Everything else—the masking rate, the posterior used by the
sampler and the ELBO weight ω(t) = −α'_t / (1 − α_t)—derives from α_t and α'_t.
"""

from __future__ import annotations

import math
from abc import ABC, abstractmethod

import torch


class NoiseSchedule(ABC):
    """α_t and its time derivative; subclasses give closed forms."""

    name: str

    def __init__(self, eps: float = 1e-3) -> None:
        self.eps = eps

    @abstractmethod
    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        """Probability that a token is unmasked at time t."""

    @abstractmethod
    def alpha_prime(self, t: torch.Tensor) -> torch.Tensor:
        """dα_t/dt (≤ 0)."""

    def mask_prob(self, t: torch.Tensor) -> torch.Tensor:
        """1 − α_t: probability that a token is masked at time t."""
        return 1.0 - self.alpha(t)

    def weight(self, t: torch.Tensor) -> torch.Tensor:
        """ω(t) = −α'_t / (1 − α_t), the continuous-time ELBO weight."""
        return -self.alpha_prime(t) / self.mask_prob(t).clamp_min(1e-12)


class LogLinearSchedule(NoiseSchedule):
    """MDLM's log-linear schedule: α_t = 1 − (1 − ε)·t, so ω(t) = 1/t."""

    name = "loglinear"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - (1.0 - self.eps) * t

    def alpha_prime(self, t: torch.Tensor) -> torch.Tensor:
        return torch.full_like(t, -(1.0 - self.eps))


class CosineSchedule(NoiseSchedule):
    """α_t = 1 − (1 − ε)(1 − cos(πt/2)).

    Masks little at small t and most of the corruption happens near t = 1, so a
    sampler spends more of its steps on the nearly clean end.
    """

    name = "cosine"

    def alpha(self, t: torch.Tensor) -> torch.Tensor:
        return 1.0 - (1.0 - self.eps) * (1.0 - torch.cos(0.5 * math.pi * t))

    def alpha_prime(self, t: torch.Tensor) -> torch.Tensor:
        return -(1.0 - self.eps) * 0.5 * math.pi * torch.sin(0.5 * math.pi * t)


SCHEDULES: dict[str, type[NoiseSchedule]] = {
    LogLinearSchedule.name: LogLinearSchedule,
    CosineSchedule.name: CosineSchedule,
}


def get_schedule(name: str, eps: float = 1e-3) -> NoiseSchedule:
    """Schedule by name (``loglinear`` or ``cosine``)."""
    try:
        return SCHEDULES[name](eps=eps)
    except KeyError:
        raise ValueError(f"unknown noise schedule {name!r}; choose one of {sorted(SCHEDULES)}") from None
