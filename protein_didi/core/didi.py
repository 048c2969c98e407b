"""DiDi-Instruct (Zheng et al., 2025; Algorithm 1): distil a masked-diffusion teacher into a few-step student.

Each step:
  1. draw τ ~ π(t); roll the student out on its own N-step grid from t = 1 to τ
     (z_τ), then jump to a clean x ~ p_ν(· | z_τ)  — the score decomposition (eq. 9);
  2. take teacher samples x' of the same shape (a seeded bank generated once);
  3. corrupt x and x' at the same τ (coupled time) and update the discriminator
     D_λ with balanced BCE (eq. 8);
  4. reward R = mean masked-position logit of D (eq. 6), normalised within each
     group (eq. 7) and clipped; update the student with the policy gradient
     E[ ω(τ)/π(τ) · R̃ · ∇(log P_ν(z_τ | m) + log p_ν(x | z_τ)) ] (eq. 5 + 9),
     plus forward KL(p_θ ‖ p_ν) and an entropy bonus at z_1 and z_τ (App. E.5).
During the first ``disc_warmup`` steps only D learns (student frozen).

Every component can be switched off for ablations (``DidiConfig``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn

from protein_didi.core.discriminator import Discriminator
from protein_didi.core.distill_base import DistillConfig, DistillTrainer
from protein_didi.core.distill_common import rollout_to, sample_clean
from protein_didi.core.masking import corrupt
from protein_didi.core.timesampling import TimeSampler


@dataclass
class DidiConfig(DistillConfig):
    """DiDi-Instruct settings; defaults follow the paper's protein run (App. E.9) unless noted.

    ``lr_aux`` is the discriminator's learning rate (paper: 5e-6).
    """

    group_size: int | None = None  # None: the whole batch is one group (one prompt shape per step)
    reward_clip: float = 5.0
    disc_warmup: int = 100
    kl_weight: float = 0.05
    entropy_weight: float = 5e-4
    time_dist: str | None = None  # None: Beta(2,5) for ≤16-step students, Beta(5,2) above
    omega: str = "elbo"
    grouped_norm: bool = True
    score_decompose: bool = True
    coupled_time: bool = True
    norm_eps: float = 1e-6

    def time_sampler(self) -> TimeSampler:
        return TimeSampler(self.time_dist or TimeSampler.default_for_nfe(self.student_nfe), self.omega)


def normalize_rewards(rewards: torch.Tensor, group_size: int, eps: float = 1e-6) -> torch.Tensor:
    """(R − μ_g)/(σ_g + ε) within consecutive groups of ``group_size`` (eq. 7, population σ)."""
    if rewards.numel() % group_size:
        raise ValueError(f"batch of {rewards.numel()} does not split into groups of {group_size}")
    g = rewards.view(-1, group_size)
    mu = g.mean(dim=1, keepdim=True)
    sigma = g.std(dim=1, unbiased=False, keepdim=True)
    return ((g - mu) / (sigma + eps)).view(-1)


def forward_kl_and_entropy(
    log_p_teacher: torch.Tensor, log_p_student: torch.Tensor, where: torch.Tensor
) -> tuple[torch.Tensor, torch.Tensor]:
    """Mean over ``where`` positions of KL(p_θ ‖ p_ν) and of the student's entropy H(p_ν)."""
    p_t = log_p_teacher.exp()
    kl = (p_t * (log_p_teacher - log_p_student)).sum(-1)
    entropy = -(log_p_student.exp() * log_p_student).sum(-1)
    n = where.sum().clamp_min(1)
    return (kl * where).sum() / n, (entropy * where).sum() / n


class DidiTrainer(DistillTrainer):
    """One DiDi-Instruct iteration per ``train_step``; plugs into :func:`protein_didi.core.loop.run_training`."""

    method = "didi"
    cfg: DidiConfig

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.disc: Discriminator = self.aux
        self.times = self.cfg.time_sampler()
        self.group = self.cfg.group_size or self.cfg.batch_size

    def build_aux(self, teacher_copy: nn.Module) -> Discriminator:
        return Discriminator(teacher_copy)

    # -- one iteration ---------------------------------------------------------------------------------------------
    def train_step(self, step: int) -> dict[str, float]:
        cfg, mask_id = self.cfg, self.teacher.mask_id
        gen, cpu_gen = self.generators(step)
        key = self.prompts.draw_key(step)
        z1, fixed = (a.to(self.device) for a in self.prompts.template(key, cfg.batch_size))
        generated = ~fixed

        # 1. student sample through its own trajectory (score decomposition) or in one jump (ablation)
        tau = self.times.sample(cfg.batch_size, cpu_gen, self.device)
        tau_traj = tau if cfg.score_decompose else torch.ones_like(tau)
        roll = rollout_to(self.student, z1, fixed, self.schedule, cfg.student_nfe, tau_traj, gen, self.prompts.suppress)
        states = [*roll.states, roll.z_tau]
        times = [*roll.times, tau_traj]
        log_p = self.student(torch.cat(states), torch.cat(times)).view(len(states), *z1.shape, -1)
        x = sample_clean(log_p[-1], roll.z_tau, mask_id, gen, self.prompts.suppress)

        # 2.-3. corrupt student and teacher samples at the same τ; update D with balanced BCE
        x_teacher = self.bank.draw(key, cfg.batch_size, cpu_gen).to(self.device)
        tau_d = tau if cfg.coupled_time else self.times.sample(cfg.batch_size, cpu_gen, self.device)
        z_student = corrupt(x, tau_d, self.schedule, mask_id, generated, gen)
        z_teacher = corrupt(x_teacher, tau_d, self.schedule, mask_id, generated, gen)
        r_both = self.disc.reward(torch.cat([z_student, z_teacher]), tau_d.repeat(2), generated.repeat(2, 1))
        r_s, r_t = r_both.chunk(2)
        d_loss = F.binary_cross_entropy_with_logits(r_s, torch.ones_like(r_s)) + F.binary_cross_entropy_with_logits(
            r_t, torch.zeros_like(r_t)
        )
        d_grad = self.update(self.opt_aux, self.disc, d_loss)
        d_acc = 0.5 * ((r_s > 0).float().mean() + (r_t < 0).float().mean())

        # 4. reward from the updated D, grouped normalisation, clipping
        with torch.no_grad():
            reward = self.disc.reward(z_student, tau_d, generated)
        shaped = normalize_rewards(reward, self.group, cfg.norm_eps) if cfg.grouped_norm else reward
        shaped = shaped.clamp(-cfg.reward_clip, cfg.reward_clip)
        weight = self.times.weights(tau_d, self.schedule)

        # score ∇log P_ν(z_τ | m) + ∇log p_ν(x | z_τ), per generated position so lengths weigh equally
        path_lp = sum(
            (lp.gather(-1, nxt.unsqueeze(-1)).squeeze(-1) * rev).sum(-1)
            for lp, nxt, rev in zip(log_p[:-1], roll.next_states(), roll.revealed, strict=True)
        )
        final_mask = (roll.z_tau == mask_id) & generated
        final_lp = (log_p[-1].gather(-1, x.unsqueeze(-1)).squeeze(-1) * final_mask).sum(-1)
        score = (path_lp + final_lp) / generated.sum(-1).clamp_min(1)
        pg_loss = (weight * shaped * score).mean()

        # regularisers at both decomposition steps: z_1 (all masked) and z_τ
        with torch.no_grad():
            log_p_teacher = self.teacher(torch.cat([z1, roll.z_tau]), torch.cat([torch.ones_like(tau), tau_traj]))
        log_p_student = torch.cat([log_p[0], log_p[-1]])
        reg_where = torch.cat([z1 == mask_id, roll.z_tau == mask_id]) & generated.repeat(2, 1)
        kl, entropy = forward_kl_and_entropy(log_p_teacher, log_p_student, reg_where)
        loss = pg_loss + cfg.kl_weight * kl - cfg.entropy_weight * entropy

        metrics = {
            "d_loss": d_loss.item(),
            "d_acc": d_acc.item(),
            "d_grad_norm": d_grad,
            "reward_student": r_s.mean().item(),
            "reward_teacher": r_t.mean().item(),
            "pg_loss": pg_loss.item(),
            "kl": kl.item(),
            "entropy": entropy.item(),
            "tau": tau.mean().item(),
        }
        if step >= cfg.disc_warmup:
            metrics["s_grad_norm"] = self.update(self.opt_student, self.student, loss)
            self.ema.update(self.student)
        metrics["loss"] = loss.item()
        return metrics
