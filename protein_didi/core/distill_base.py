"""The distillation trainer every method builds on: its settings, and a base class that does all but the objective.

Both DiDi-Instruct (auxiliary = discriminator) and IDLM (auxiliary = fake
diffusion model) initialise student and auxiliary from the frozen teacher,
train them alternately with AdamW, keep an EMA of the student, draw reference
samples from a seeded teacher bank (:mod:`protein_didi.core.teacher_bank`), and
checkpoint through the shared loop; a method adds its auxiliary network, its
objective and its own settings.

Data parallelism: a step's batch is ``batch_size / group_size`` groups, each
drawing its randomness from generators seeded by (seed, step, group). Under
torchrun a rank takes a contiguous share of the groups — a group never
straddles ranks, so grouped reward normalisation needs no communication — and
DDP averages the gradients of the student and the auxiliary model. The teacher
stays frozen and unwrapped; every rank holds its own copy and teacher bank.
"""

from __future__ import annotations

import copy
from abc import ABC, abstractmethod
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, ClassVar

import torch
from torch import Tensor, nn

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.distributed import SINGLE, Context
from protein_didi.core.ema import EMA, relative_distance
from protein_didi.core.loop import step_seed
from protein_didi.core.optim import backward_mean, clip_and_step, linear_warmup_decay
from protein_didi.core.schedule import NoiseSchedule
from protein_didi.core.settings import setting, settings_dict
from protein_didi.core.teacher_bank import PromptSource, TeacherBank

# the argument groups of ``distill --help`` the settings are listed in (see train_cli.distill_parser)
RUN, OPTIMISATION, ABLATIONS = "run", "optimisation", "ablations"


@dataclass(kw_only=True)
class DistillConfig:
    """Settings common to all methods; each field is also its ``distill`` flag (:mod:`protein_didi.core.settings`).

    The defaults are the CLI's, which the README's runs and the shipped students used (a 32-sample bank per length).
    ``lr_aux`` is the auxiliary network's learning rate; each method names its flag and default.
    """

    steps: int = setting(600, "training iterations (default {default})", "--steps", group=RUN)
    student_nfe: int = setting(8, "sampling steps the student is trained for ({default})", "--student-nfe", group=RUN)
    batch_size: int = setting(8, "student samples per iteration, all processes ({default})", "--batch-size", group=RUN)
    group_size: int | None = setting(
        None,
        "samples sharing one reward normalisation and random stream (default: the batch); "
        "under torchrun, batch/group must be a multiple of the process count",
        "--group-size",
        group=RUN,
    )  # None: the whole batch is one group
    teacher_nfe: int = setting(128, "teacher steps for its sample bank ({default})", "--teacher-nfe", group=RUN)
    bank_size: int = setting(32, "teacher samples per length in the bank ({default})", "--bank-size", group=RUN)
    seed: int = setting(0, "seed of every random draw (default {default})", "--seed", group=RUN)
    lr_student: float = setting(1e-5, "student AdamW lr (paper: 1e-5)", "--lr-student", group=OPTIMISATION)
    lr_aux: float = setting(help="AdamW lr of the discriminator (DiDi-Instruct) or fake model (IDLM)")
    warmup: int | None = setting(
        None,
        "linear lr warm-up updates for each network, then linear decay to 0 "
        "(default: 10%% of that network's updates; paper: 1,000 of 10,000)",
        "--warmup",
        group=OPTIMISATION,
    )  # None: 10 % of the network's updates
    # paper App. D.4 (Table 5)
    weight_decay: float = setting(
        0.01, "AdamW weight decay, both networks ({default})", "--weight-decay", group=OPTIMISATION
    )
    # bias-corrected (core/ema.py), so short runs do not export the teacher
    ema: float = setting(
        0.9999,
        "student EMA decay (paper 0.9999); bias-corrected, so short runs average their own updates",
        "--ema",
        group=OPTIMISATION,
    )
    grad_clip: float = setting(1.0, "gradient-norm clip for both networks", "--grad-clip", group=OPTIMISATION)

    @property
    def group(self) -> int:
        """Samples per group (the whole batch unless ``group_size`` is set)."""
        return self.group_size or self.batch_size

    def warmup_for(self, updates: int) -> int:
        """Warm-up length for a network that takes ``updates`` optimiser steps in the run."""
        return self.warmup if self.warmup is not None else max(1, round(0.1 * updates))

    @property
    def groups(self) -> int:
        """Groups per step; each has its own generators, so the batch splits over processes group by group."""
        if self.group < 1 or self.batch_size % self.group:
            raise ValueError(f"--batch-size {self.batch_size} is not a multiple of --group-size {self.group}")
        return self.batch_size // self.group


Exporter = Callable[[Path, Denoiser, nn.Module, dict[str, Any]], None]


class DistillTrainer(ABC):
    """A :class:`~protein_didi.core.loop.TrainTask` holding teacher, student, auxiliary model and their optimisers."""

    method: str = "base"
    config_type: ClassVar[type[DistillConfig]] = DistillConfig  # the settings (and ``distill`` flags) of the method
    summary: str = ""  # set by export(): how far the exported student moved from the teacher

    def __init__(
        self,
        teacher: Denoiser,
        schedule: NoiseSchedule,
        prompts: PromptSource,
        config: DistillConfig,
        exporter: Exporter,
        device: torch.device | None = None,
        ctx: Context = SINGLE,
        student_init: nn.Module | None = None,
    ) -> None:
        """``student_init`` (default: the teacher) is where the student starts, e.g. an earlier student of the same
        architecture continued against a sharper teacher; KL and the discriminator still read the teacher."""
        device = device or ctx.device
        self.cfg, self.schedule, self.prompts, self.device, self.exporter = config, schedule, prompts, device, exporter
        self.ctx = ctx
        self.group = config.group
        self.my_groups = ctx.units(
            config.groups, "groups", fix="pick --batch-size / --group-size as a multiple of the process count"
        )
        self.teacher = teacher.to(device).eval().requires_grad_(False)
        if student_init is not None:
            check_same_architecture(student_init, self.teacher)
        start = self.teacher if student_init is None else student_init.to(device)
        self.student = copy.deepcopy(start).requires_grad_(True).train()
        self.aux = self.fresh_aux().requires_grad_(True).train()
        # forward passes that need synchronised gradients go through these (identity on one process; under FSDP
        # the modules are sharded in place), so optimisers and EMA are built after wrapping
        z, _ = prompts.template(prompts.draw_key(0), 1)
        z, t = z.to(device), torch.ones(1, device=device)
        self.student_ddp, self.aux_ddp = (ctx.wrap(m, lambda net: net(z, t)) for m in (self.student, self.aux))
        self.opt_student = torch.optim.AdamW(
            self.student.parameters(), lr=config.lr_student, weight_decay=config.weight_decay
        )
        self.opt_aux = torch.optim.AdamW(self.aux.parameters(), lr=config.lr_aux, weight_decay=config.weight_decay)
        student_updates, aux_updates = self.student_updates(), self.aux_updates()
        if student_updates < 1:
            raise ValueError(self.no_student_updates_reason())
        self.sched_student = linear_warmup_decay(self.opt_student, config.warmup_for(student_updates), student_updates)
        self.sched_aux = linear_warmup_decay(self.opt_aux, config.warmup_for(aux_updates), aux_updates)
        self.ema = EMA(self.student, config.ema)
        self.bank = TeacherBank(
            self.teacher, schedule, prompts, config.teacher_nfe, config.bank_size, config.seed, device
        )

    def student_updates(self) -> int:
        """Optimiser steps the student takes in ``cfg.steps`` iterations (methods with a warm-up take fewer)."""
        return self.cfg.steps

    def aux_updates(self) -> int:
        """Optimiser steps the auxiliary network takes in ``cfg.steps`` iterations."""
        return self.cfg.steps

    def no_student_updates_reason(self) -> str:
        return f"--steps {self.cfg.steps} leaves the student no update; raise --steps"

    @abstractmethod
    def build_aux(self) -> nn.Module:
        """The auxiliary network, initialised from (a copy of) ``self.teacher``."""

    def fresh_aux(self) -> nn.Module:
        """A new, unsharded auxiliary network; its fresh layers are a function of the seed alone."""
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(self.cfg.seed)
            return self.build_aux().to(self.device)

    @abstractmethod
    def train_step(self, step: int) -> dict[str, float]: ...

    def generators(self, step: int, group: int = 0, phase: int = 0) -> tuple[torch.Generator, torch.Generator]:
        """Generators (device, CPU) for one group and phase of a step: reproducible on resume and on any rank."""
        stream = (group << 8) | (phase << 1)
        gen = torch.Generator(device=self.device).manual_seed(step_seed(self.cfg.seed, step, stream))
        return gen, torch.Generator().manual_seed(step_seed(self.cfg.seed, step, stream | 1))

    def update_student(self, losses: list[Callable[[], Tensor]]) -> tuple[float, float]:
        """One student step on the mean of the groups' losses, then the EMA; (pre-clip norm, mean loss)."""
        result = self._update(self.opt_student, self.sched_student, self.student, self.student_ddp, losses)
        self.ema.update(self.student)
        return result

    def update_aux(self, losses: list[Callable[[], Tensor]]) -> tuple[float, float]:
        """One step of the auxiliary network (discriminator / fake model); (pre-clip norm, mean loss)."""
        return self._update(self.opt_aux, self.sched_aux, self.aux, self.aux_ddp, losses)

    def _update(
        self,
        opt: torch.optim.Optimizer,
        sched: torch.optim.lr_scheduler.LRScheduler,
        module: nn.Module,
        wrapped: nn.Module,
        losses: list[Callable[[], Tensor]],
    ) -> tuple[float, float]:
        """Backward the mean of the groups' losses (DDP syncs on the last), clip, step; (pre-clip norm, mean loss)."""
        opt.zero_grad(set_to_none=True)
        values = backward_mean(wrapped, losses)
        return clip_and_step(module, opt, self.cfg.grad_clip, sched), sum(values) / len(values)

    def state_dict(self) -> dict[str, Any]:
        """Full (unsharded) weights and optimiser states: resumable under any strategy and process count."""
        ctx = self.ctx
        return {
            "method": self.method,
            "student": ctx.full_state(self.student),
            "aux": ctx.full_state(self.aux),
            "opt_student": ctx.full_optimizer_state(self.student, self.opt_student),
            "opt_aux": ctx.full_optimizer_state(self.aux, self.opt_aux),
            "sched_student": self.sched_student.state_dict(),
            "sched_aux": self.sched_aux.state_dict(),
            "ema": self.ema.state_dict(),
            "config": asdict(self.cfg),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        if state.get("method") != self.method:
            raise ValueError(f"checkpoint was written by method {state.get('method')!r}, not {self.method!r}")
        ctx = self.ctx
        ctx.load_full_state(self.student, state["student"])
        ctx.load_full_state(self.aux, state["aux"])
        ctx.load_full_optimizer_state(self.student, self.opt_student, state["opt_student"])
        ctx.load_full_optimizer_state(self.aux, self.opt_aux, state["opt_aux"])
        self.sched_student.load_state_dict(state["sched_student"])
        self.sched_aux.load_state_dict(state["sched_aux"])
        self.ema.load_state_dict(state["ema"])

    def export(self, out_dir: Path) -> None:
        """Rank 0 writes EMA student + auxiliary as plain modules; under FSDP every rank helps gather them.

        Records how far the exported (EMA) weights and the raw student moved from the teacher, so a run that
        exports a near-copy of its teacher is visible in ``info`` and in :attr:`summary`.
        """
        student_weights, aux_weights = self.ema.weights(), self.ctx.full_state(self.aux)
        raw_weights = self.ctx.full_state(self.student)
        if not self.ctx.is_main:
            return
        teacher_weights = self.teacher.state_dict()
        moved = {
            "ema_updates": self.ema.num_updates,
            "exported_moved_from_teacher": relative_distance(student_weights, teacher_weights),
            "raw_student_moved_from_teacher": relative_distance(raw_weights, teacher_weights),
        }
        self.summary = (
            f"exported EMA of {moved['ema_updates']} student updates; its weights moved "
            f"{moved['exported_moved_from_teacher']:.2e} (relative L2) from the teacher's, "
            f"the last student's {moved['raw_student_moved_from_teacher']:.2e}"
        )
        student = copy.deepcopy(self.teacher).eval()
        student.load_state_dict(student_weights)
        aux = self.fresh_aux().eval()
        aux.load_state_dict(aux_weights)
        # the settings twice: flat (what earlier exports and their readers have, e.g. ``disc_head_only``) and as the
        # ``settings`` entry every trainer's export has
        info = {"method": self.method, **asdict(self.cfg), **moved, "settings": settings_dict(self.cfg)}
        self.exporter(out_dir, student, aux, info)


def check_same_architecture(student: nn.Module, teacher: nn.Module) -> None:
    """Refuse (one line) a student start whose weights do not fit the teacher's modules: the export loads the
    student's weights into a copy of the teacher."""
    ours, theirs = student.state_dict(), teacher.state_dict()
    differ = sorted(k for k in ours.keys() | theirs.keys() if k not in ours or k not in theirs
                    or ours[k].shape != theirs[k].shape)  # fmt: skip
    if differ:
        raise ValueError(
            f"the student's start does not have the teacher's architecture ({len(differ)} tensors differ, first "
            f"{differ[0]!r}); start from a model distilled from the same teacher family"
        )
