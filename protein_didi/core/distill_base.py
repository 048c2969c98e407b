"""What every teacher→student distillation trainer shares; methods differ only in the auxiliary model and objective.

Both DiDi-Instruct (auxiliary = discriminator) and IDLM (auxiliary = fake
diffusion model) initialise student and auxiliary from the frozen teacher,
train them alternately with AdamW, keep an EMA of the student, draw reference
samples from a seeded teacher bank, and checkpoint through the shared loop.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.distill_common import PromptSource, TeacherBank
from protein_didi.core.ema import EMA
from protein_didi.core.loop import step_seed
from protein_didi.core.schedule import NoiseSchedule


@dataclass
class DistillConfig:
    """Settings common to all methods."""

    student_nfe: int = 8
    batch_size: int = 8
    lr_student: float = 1e-5
    lr_aux: float = 5e-6  # discriminator (DiDi-Instruct) or fake model (IDLM)
    weight_decay: float = 0.0
    ema: float = 0.9999
    grad_clip: float = 1.0
    teacher_nfe: int = 128
    bank_size: int = 64
    seed: int = 0


Exporter = Callable[[Path, Denoiser, nn.Module, dict[str, Any]], None]


class DistillTrainer(ABC):
    """A :class:`~protein_didi.core.loop.TrainTask` holding teacher, student, auxiliary model and their optimisers."""

    method: str = "base"

    def __init__(
        self,
        teacher: Denoiser,
        schedule: NoiseSchedule,
        prompts: PromptSource,
        config: DistillConfig,
        exporter: Exporter,
        device: torch.device,
    ) -> None:
        self.cfg, self.schedule, self.prompts, self.device, self.exporter = config, schedule, prompts, device, exporter
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        self.student = copy.deepcopy(self.teacher).requires_grad_(True).train()
        with torch.random.fork_rng(devices=[]):  # fresh auxiliary layers are a function of the seed alone
            torch.manual_seed(config.seed)
            self.aux = self.build_aux(copy.deepcopy(self.teacher).requires_grad_(True)).to(device).train()
        self.opt_student = torch.optim.AdamW(
            self.student.parameters(), lr=config.lr_student, weight_decay=config.weight_decay
        )
        self.opt_aux = torch.optim.AdamW(self.aux.parameters(), lr=config.lr_aux, weight_decay=config.weight_decay)
        self.ema = EMA(self.student, config.ema)
        self.bank = TeacherBank(
            self.teacher, schedule, prompts, config.teacher_nfe, config.bank_size, config.seed, device
        )

    @abstractmethod
    def build_aux(self, teacher_copy: nn.Module) -> nn.Module:
        """The auxiliary network, initialised from (a copy of) the teacher."""

    @abstractmethod
    def train_step(self, step: int) -> dict[str, float]: ...

    def generators(self, step: int) -> tuple[torch.Generator, torch.Generator]:
        """Per-step generators on the device and on the CPU: the step's randomness, reproducible on resume."""
        gen = torch.Generator(device=self.device).manual_seed(step_seed(self.cfg.seed, step))
        return gen, torch.Generator().manual_seed(step_seed(self.cfg.seed, step, 1))

    def update(self, opt: torch.optim.Optimizer, module: nn.Module, loss: torch.Tensor) -> float:
        """Backward, clip, step; returns the pre-clip gradient norm."""
        opt.zero_grad(set_to_none=True)
        loss.backward()
        norm = torch.nn.utils.clip_grad_norm_(module.parameters(), self.cfg.grad_clip)
        opt.step()
        return float(norm)

    def state_dict(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "student": self.student.state_dict(),
            "aux": self.aux.state_dict(),
            "opt_student": self.opt_student.state_dict(),
            "opt_aux": self.opt_aux.state_dict(),
            "ema": self.ema.state_dict(),
            "config": asdict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("method") != self.method:
            raise ValueError(f"checkpoint was written by method {state.get('method')!r}, not {self.method!r}")
        self.student.load_state_dict(state["student"])
        self.aux.load_state_dict(state["aux"])
        self.opt_student.load_state_dict(state["opt_student"])
        self.opt_aux.load_state_dict(state["opt_aux"])
        self.ema.load_state_dict(state["ema"])

    def export(self, out_dir: Path) -> None:
        student = self.ema.copy_to(self.student).eval()
        self.exporter(out_dir, student, copy.deepcopy(self.aux).eval(), {"method": self.method, **asdict(self.cfg)})
