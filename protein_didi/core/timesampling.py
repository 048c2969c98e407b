"""π(t): how distillation draws the intermediate time τ, and the importance weight ω(τ)/π(τ).

DiDi-Instruct (App. E.5) biases τ towards small t with Beta(2, 5) for few-step
students and towards large t with Beta(5, 2) for many-step ones; uniform is the
ablation. ω(t) = −α'_t/(1 − α_t) (or 1 for the "w/o ω correction" ablation).
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from protein_didi.core.schedule import NoiseSchedule

TIME_DISTRIBUTIONS = {"beta25": (2.0, 5.0), "beta52": (5.0, 2.0), "uniform": (1.0, 1.0)}


@dataclass(frozen=True)
class TimeSampler:
    """τ ~ Beta(a, b) clipped to [t_min, t_max], and self-normalised weights ω(τ)/π(τ)."""

    name: str = "beta25"
    omega: str = "elbo"  # "elbo": ω = −α'/(1−α); "one": ω = 1
    t_min: float = 0.02
    t_max: float = 0.98
    weight_clip: float | None = None  # cap on self-normalised weights; None: √(group size), truncated IS

    def __post_init__(self) -> None:
        if self.name not in TIME_DISTRIBUTIONS:
            raise ValueError(f"unknown time distribution {self.name!r}; choose one of {sorted(TIME_DISTRIBUTIONS)}")
        if self.omega not in ("elbo", "one"):
            raise ValueError(f"omega must be 'elbo' or 'one', got {self.omega!r}")

    @staticmethod
    def default_for_nfe(student_nfe: int) -> str:
        """Beta(2,5) for ≤ 16-step students, Beta(5,2) above, as the paper does."""
        return "beta25" if student_nfe <= 16 else "beta52"

    def _beta(self) -> torch.distributions.Beta:
        a, b = TIME_DISTRIBUTIONS[self.name]
        return torch.distributions.Beta(torch.tensor(a, dtype=torch.float64), torch.tensor(b, dtype=torch.float64))

    def sample(self, n: int, generator: torch.Generator, device: torch.device | str = "cpu") -> torch.Tensor:
        """τ (n,) from ``generator``: Beta(a, b) with integer a, b is the a-th smallest of a + b − 1 uniforms."""
        a, b = (int(v) for v in TIME_DISTRIBUTIONS[self.name])
        u = torch.rand(n, a + b - 1, generator=generator, dtype=torch.float64).sort(dim=1).values
        return u[:, a - 1].clamp(self.t_min, self.t_max).to(device=device, dtype=torch.float32)

    def pdf(self, tau: torch.Tensor) -> torch.Tensor:
        return self._beta().log_prob(tau.double().cpu()).exp().to(tau)

    def weights(self, tau: torch.Tensor, schedule: NoiseSchedule) -> torch.Tensor:
        """ω(τ)/π(τ) over one group's ``tau``: self-normalised to mean 1, then truncated at c = √n.

        Deviation from the paper: the raw ratio is unbounded at the ends of [0, 1] (ω ~ 1/τ, π → 0), and
        one rare large-τ draw would take nearly all of a group's weight. Self-normalised weights can
        never exceed n (the group size), so a fixed clip above n would be dead; we truncate at √n times
        the mean (truncated importance sampling, Ionides 2008), which bounds the variance at the price
        of a small bias. No renormalisation after the cut: it would hand the weight straight back to the
        dominant draw; instead a group dominated by one τ contributes a smaller gradient.
        DiDi-Instruct passes one group's τ at a time (like the rewards), so a weight never depends on
        how the groups are spread over processes.
        """
        omega = schedule.weight(tau) if self.omega == "elbo" else torch.ones_like(tau)
        w = omega / self.pdf(tau).clamp_min(1e-8)
        w = w / w.mean()
        cap = self.weight_clip if self.weight_clip is not None else len(tau) ** 0.5
        return w.clamp(max=cap)
