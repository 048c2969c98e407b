"""IDLM: inverse-distilled diffusion language models (Kornilov et al.; Algorithm 1 of ``idlm.txt``), MDLM case.

A *fake* masked-diffusion model f̂ is trained with the teacher's own NELBO on
the student's outputs; the student G_θ minimises the gap between the teacher's
and the fake model's losses on its outputs,

    L_IDLM(θ) = L_MDLM(f*, G_θ) − L_MDLM(f̂, G_θ),

which is ≥ KL(p_θ ‖ p*) and zero iff p_θ = p* (their Thm. 3.1).

Relaxation (their §3.2): G_θ(x_t̃, t̃) is the student's probability vector
(a point of the simplex, one-hot at unmasked positions by carry-over) rather
than a discrete sample; the MDLM loss only touches x_0 through the target
⟨log f(x_t, t), x_0⟩ at masked positions, so it is well defined for soft x_0,
and x_t is drawn from stop-grad(G_θ) — masked positions do not depend on x_0.

The multistep student conditions on (x_t̃, t̃): x̃_0 ~ p*, t̃ ~ U[0, 1], x_t̃ ~ q(·|x̃_0).
Deviation: p* here is the teacher's own sample bank (the same reference samples
DiDi-Instruct's discriminator sees), not the training data, so both methods
get identical inputs in our head-to-head comparison.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch
from torch import nn

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.distill_base import DistillConfig, DistillTrainer
from protein_didi.core.masking import corrupt
from protein_didi.core.sampler import sample_categorical
from protein_didi.core.schedule import NoiseSchedule


@dataclass
class IdlmConfig(DistillConfig):
    """IDLM settings. ``lr_aux`` is the fake model's learning rate; the paper uses 1e-6 for both networks."""

    fake_updates: int = 1  # fake-model steps per student step (the paper alternates 1:1)
    t_min: float = 1e-3


def soft_mdlm_terms(
    model: Denoiser,
    target: torch.Tensor,
    t: torch.Tensor,
    generated: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Corrupt a draw from stop-grad(target) at t; return (log p_model(z_t), weight·masked) for the soft NELBO.

    The soft NELBO is −Σ_ℓ w(t)·m_ℓ·⟨log p(z_t)_ℓ, target_ℓ⟩ / #generated.
    """
    x_hard = sample_categorical(target.detach().double(), generator)
    z = corrupt(x_hard, t, schedule, model.mask_id, generated, generator)
    masked = (z == model.mask_id) & generated
    weight = schedule.weight(t).unsqueeze(-1) * masked / generated.sum(-1, keepdim=True).clamp_min(1)
    return z, weight


def idlm_loss(
    teacher: Denoiser,
    fake: Denoiser,
    probs: torch.Tensor,
    t: torch.Tensor,
    generated: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
) -> torch.Tensor:
    """L_MDLM(f*, G) − L_MDLM(f̂, G) per batch, differentiable in ``probs`` (G) only."""
    z, weight = soft_mdlm_terms(teacher, probs, t, generated, schedule, generator)
    with torch.no_grad():
        gap = fake(z, t) - teacher(z, t)  # log f̂ − log f*; −⟨log f*, G⟩ + ⟨log f̂, G⟩ = ⟨gap, G⟩
    return ((gap * probs).sum(-1) * weight).sum(-1).mean()


class IdlmTrainer(DistillTrainer):
    """One fake-model update then one student update per ``train_step`` (Algorithm 1)."""

    method = "idlm"
    cfg: IdlmConfig

    def build_aux(self, teacher_copy: nn.Module) -> nn.Module:
        return teacher_copy  # the fake model starts as the teacher

    def _student_input(self, key, gen: torch.Generator, cpu_gen: torch.Generator):
        """SamplingFunc: x̃_0 from p*, t̃ ~ U[0,1], x_t̃ ~ q(x_t̃ | x̃_0)."""
        _, fixed = self.prompts.template(key, self.cfg.batch_size)
        generated = (~fixed).to(self.device)
        x0 = self.bank.draw(key, self.cfg.batch_size, cpu_gen).to(self.device)
        t_in = self.cfg.t_min + (1 - self.cfg.t_min) * torch.rand(self.cfg.batch_size, generator=cpu_gen)
        t_in = t_in.to(self.device)
        return corrupt(x0, t_in, self.schedule, self.teacher.mask_id, generated, gen), t_in, generated

    def _loss_times(self, cpu_gen: torch.Generator) -> torch.Tensor:
        t = self.cfg.t_min + (1 - self.cfg.t_min) * torch.rand(self.cfg.batch_size, generator=cpu_gen)
        return t.to(self.device)

    def train_step(self, step: int) -> dict[str, float]:
        gen, cpu_gen = self.generators(step)
        key = self.prompts.draw_key(step)
        fake = self.aux

        fake_losses, fake_norms = [], []
        for _ in range(self.cfg.fake_updates):  # (i) fake model on the student's outputs, student fixed
            x_in, t_in, generated = self._student_input(key, gen, cpu_gen)
            with torch.no_grad():
                target = self.student(x_in, t_in).exp()
            t = self._loss_times(cpu_gen)
            z, weight = soft_mdlm_terms(fake, target, t, generated, self.schedule, gen)
            loss_fake = -((fake(z, t) * target).sum(-1) * weight).sum(-1).mean()
            fake_norms.append(self.update(self.opt_aux, fake, loss_fake))
            fake_losses.append(loss_fake.item())

        # (ii) student on L(f*, G) − L(f̂, G), fake fixed
        x_in, t_in, generated = self._student_input(key, gen, cpu_gen)
        probs = self.student(x_in, t_in).exp()
        loss = idlm_loss(self.teacher, fake, probs, self._loss_times(cpu_gen), generated, self.schedule, gen)
        s_norm = self.update(self.opt_student, self.student, loss)
        self.ema.update(self.student)
        return {
            "idlm_loss": loss.item(),
            "fake_loss": sum(fake_losses) / len(fake_losses),
            "fake_grad_norm": sum(fake_norms) / len(fake_norms),
            "s_grad_norm": s_norm,
        }
