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

import copy
import functools
from collections.abc import Hashable
from dataclasses import dataclass
from typing import ClassVar

import torch
from torch import nn

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.distill_base import OPTIMISATION, DistillConfig, DistillTrainer
from protein_didi.core.masking import corrupt
from protein_didi.core.sampler import sample_categorical, without_suppressed
from protein_didi.core.schedule import NoiseSchedule
from protein_didi.core.settings import redefault, setting


@dataclass(kw_only=True)
class IdlmConfig(DistillConfig):
    """IDLM settings. ``lr_aux`` is the fake model's learning rate, by default the student's (the paper uses 1e-6
    for both networks).

    ``lr_aux=None`` becomes ``lr_student`` when the config is made, so the recorded value is the rate used.
    """

    lr_aux: float = redefault(
        DistillConfig, "lr_aux", None, flag="--lr-fake", help="idlm: fake-model lr (default: --lr-student)",
        group=OPTIMISATION,
    )  # fmt: skip
    # the paper alternates 1:1
    fake_updates: int = setting(
        1, "idlm: fake-model steps per student step ({default})", "--fake-updates", group=OPTIMISATION
    )
    t_min: ClassVar[float] = 1e-3  # lowest time of the student's input and the losses: a constant, not a setting

    def __post_init__(self) -> None:
        if self.lr_aux is None:
            self.lr_aux = self.lr_student


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
    config_type = IdlmConfig
    cfg: IdlmConfig

    def build_aux(self) -> nn.Module:
        return copy.deepcopy(self.teacher)  # the fake model starts as the teacher

    def aux_updates(self) -> int:
        return self.cfg.steps * self.cfg.fake_updates

    def _student_input(
        self, key: Hashable, gen: torch.Generator, cpu_gen: torch.Generator
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """SamplingFunc: x̃_0 from p*, t̃ ~ U[0,1], x_t̃ ~ q(x_t̃ | x̃_0)."""
        _, fixed = self.prompts.template(key, self.group)
        generated = (~fixed).to(self.device)
        x0 = self.bank.draw(key, self.group, cpu_gen).to(self.device)
        t_in = self._loss_times(cpu_gen)
        return corrupt(x0, t_in, self.schedule, self.teacher.mask_id, generated, gen), t_in, generated

    def _loss_times(self, cpu_gen: torch.Generator) -> torch.Tensor:
        t = self.cfg.t_min + (1 - self.cfg.t_min) * torch.rand(self.group, generator=cpu_gen)
        return t.to(self.device)

    def _fake_loss(self, step: int, group: int, key: Hashable, update: int) -> torch.Tensor:
        """(i) the fake model's MDLM loss on the student's outputs (student fixed), for fake update ``update``."""
        gen, cpu_gen = self.generators(step, group, phase=update)
        x_in, t_in, generated = self._student_input(key, gen, cpu_gen)
        with torch.no_grad():
            target = without_suppressed(self.student(x_in, t_in), self.prompts.suppress).exp()
        t = self._loss_times(cpu_gen)
        z, weight = soft_mdlm_terms(self.aux, target, t, generated, self.schedule, gen)
        return -((self.aux_ddp(z, t) * target).sum(-1) * weight).sum(-1).mean()

    def _student_loss(self, step: int, group: int, key: Hashable) -> torch.Tensor:
        """(ii) L(f*, G) − L(f̂, G) for one group (fake fixed)."""
        gen, cpu_gen = self.generators(step, group, phase=self.cfg.fake_updates)
        x_in, t_in, generated = self._student_input(key, gen, cpu_gen)
        # the generator G is the distribution the student samples from: suppressed tokens renormalised away
        probs = without_suppressed(self.student_ddp(x_in, t_in), self.prompts.suppress).exp()
        return idlm_loss(self.teacher, self.aux, probs, self._loss_times(cpu_gen), generated, self.schedule, gen)

    def train_step(self, step: int) -> dict[str, float]:
        key = self.prompts.draw_key(step)
        fake_losses, fake_norms = [], []
        for update in range(self.cfg.fake_updates):
            losses = [functools.partial(self._fake_loss, step, g, key, update) for g in self.my_groups]
            norm, value = self.update_aux(losses)
            fake_norms.append(norm)
            fake_losses.append(value)
        losses = [functools.partial(self._student_loss, step, g, key) for g in self.my_groups]
        s_norm, loss = self.update_student(losses)
        return {
            "idlm_loss": loss,
            "fake_loss": sum(fake_losses) / len(fake_losses),
            "fake_grad_norm": sum(fake_norms) / len(fake_norms),
            "s_grad_norm": s_norm,
        }
