"""The student's own trajectory, as DiDi-Instruct's score decomposition reads it: roll-outs to τ and a clean jump.

:func:`rollout_to` runs the few-step student from all-[MASK] down to per-sequence
times τ, recording every state and what each step revealed (the path whose
log-probability the policy gradient scores); :func:`sample_clean` then fills z_τ
in one jump.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.sampler import ancestral_step, sample_categorical, temper, time_grid
from protein_didi.core.schedule import NoiseSchedule


@dataclass
class Rollout:
    """A student trajectory from t = 1 down to per-sequence times τ (no gradients).

    ``states[n]`` is z before step n at time ``times[n]``; ``revealed[n]`` marks
    the positions that step unmasked; ``z_tau`` is the state at τ.
    """

    states: list[torch.Tensor]
    times: list[torch.Tensor]
    revealed: list[torch.Tensor]
    z_tau: torch.Tensor

    def next_states(self) -> list[torch.Tensor]:
        """The state each recorded step produced (empty when no step ran)."""
        return [*self.states[1:], self.z_tau] if self.states else []


@torch.no_grad()
def rollout_to(
    student: Denoiser,
    z: torch.Tensor,
    fixed: torch.Tensor,
    schedule: NoiseSchedule,
    num_steps: int,
    tau: torch.Tensor,
    generator: torch.Generator,
    suppress: tuple[int, ...] = (),
    lockstep: bool = False,
) -> Rollout:
    """Run the student's ``num_steps`` grid from t = 1, stopping each sequence exactly at its τ.

    The last step of a sequence goes from the last grid time above τ straight to
    τ, so z_τ is a draw from the student's own few-step trajectory at time τ
    (intermediate-state matching).

    ``lockstep`` keeps calling the student after every sequence has reached its
    τ (results unused): FSDP ranks must run the same forward passes, since each
    one gathers parameters from all of them.
    """
    ts = time_grid(num_steps, z.device).float()
    states, times, revealed = [], [], []
    for n in range(num_steps):
        active = ts[n] > tau
        if not active.any():
            if not lockstep:
                break
            student(z, ts[n].expand(z.shape[0]))
            continue
        t = ts[n].expand(z.shape[0])
        s = torch.maximum(ts[n + 1].expand_as(tau), tau)
        p_x0 = temper(student(z, t), 1.0, 1.0, torch.float64, suppress)
        z_next = ancestral_step(
            p_x0,
            z,
            fixed | ~active[:, None],
            schedule.alpha(t).double(),
            schedule.alpha(s).double(),
            student.mask_id,
            generator,
        )
        states.append(z)
        times.append(t)
        revealed.append((z == student.mask_id) & (z_next != student.mask_id))
        z = z_next
    return Rollout(states, times, revealed, z)


def sample_clean(
    log_probs: torch.Tensor, z: torch.Tensor, mask_id: int, generator: torch.Generator, suppress: tuple[int, ...] = ()
) -> torch.Tensor:
    """x ~ p(x | z): fill every masked position of ``z`` in one jump (float64 draw)."""
    x = sample_categorical(temper(log_probs.detach(), 1.0, 1.0, torch.float64, suppress), generator)
    return torch.where(z == mask_id, x, z)
