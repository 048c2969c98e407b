"""AdamW with warm-up and cosine decay, one optimiser step, and a task's resumable state, as trainers use them; the
settings every single-optimiser trainer (teacher, judge) is given."""

from __future__ import annotations

import functools
import math
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from protein_didi.core.distributed import SINGLE, Context, full_tensor, sync_context
from protein_didi.core.loss import masked_diffusion_loss
from protein_didi.core.schedule import NoiseSchedule
from protein_didi.core.settings import setting


@dataclass(kw_only=True)
class TrainSettings:
    """What a trainer with one AdamW optimiser (a teacher, a judge) is given; each field is also its flag.

    The core says once what a setting means and how it is spelt; a domain's trainer subclasses this with its own
    defaults (the settings without one here) and, where a setting means something of its own, its help
    (:func:`~protein_didi.core.settings.redefault`), plus the settings only it has.
    """

    arch: str = setting(help="model size (default {default})", flag="--arch")  # choices: the domain's sizes
    steps: int = setting(help="optimizer steps (default {default})", flag="--steps")
    batch_size: int = setting(help="sequences per step (default {default})", flag="--batch-size")
    lr: float = setting(help="peak AdamW learning rate (default {default})", flag="--lr")
    warmup: int = setting(help="linear warm-up steps (default {default})", flag="--warmup")
    weight_decay: float = setting(0.01, "AdamW weight decay (default {default})", "--weight-decay")
    grad_clip: float = setting(1.0, "gradient-norm clip (default {default})", "--grad-clip")
    bf16: bool = setting(False, "bfloat16 autocast (fp32 weights); faster on AVX512-BF16 CPUs", "--bf16")
    seed: int = setting(0, "seed of batches and initial weights (default {default})", "--seed")

    def export_info(self, parameters: int, seconds: float) -> dict[str, Any]:
        """The entries an export's info opens with: which model was trained how, and for how long."""
        return {
            "arch": self.arch, "parameters": parameters, "trained_steps": self.steps, "batch_size": self.batch_size,
            "lr": self.lr, "bf16_autocast": self.bf16, "seed": self.seed, "train_seconds": round(seconds, 1),
        }  # fmt: skip


def adamw_with_warmup_cosine(
    params: Iterable[nn.Parameter],
    *,
    lr: float,
    weight_decay: float,
    warmup: int,
    steps: int,
    floor: float,
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """AdamW (betas 0.9, 0.98) whose rate rises linearly over ``warmup`` steps, then decays by a cosine to ``floor``·lr.

    The schedule is a pure function of the step, so restoring both state dicts resumes exactly.
    """
    opt = torch.optim.AdamW(params, lr=lr, betas=(0.9, 0.98), weight_decay=weight_decay)
    warmup, total = max(1, warmup), max(steps, warmup + 1)
    half_span = (1.0 - floor) / 2

    def lr_factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return floor + half_span * (1 + math.cos(math.pi * min(1.0, (s - warmup) / (total - warmup))))

    return opt, torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)


def linear_warmup_decay(opt: torch.optim.Optimizer, warmup: int, total: int) -> torch.optim.lr_scheduler.LambdaLR:
    """Rate rises linearly over ``warmup`` updates, then falls linearly to 0 at update ``total``.

    DiDi-Instruct's distillation schedule (App. D.4: linear decay; App. E.9: warm-up for student and
    discriminator). A pure function of the update count, so restoring its state dict resumes exactly.
    """
    warmup, total = max(1, warmup), max(total, warmup + 1)

    def lr_factor(s: int) -> float:
        if s < warmup:
            return (s + 1) / warmup
        return max(0.0, (total - s) / (total - warmup))

    return torch.optim.lr_scheduler.LambdaLR(opt, lr_factor)


def adamw_for(
    params: Iterable[nn.Parameter], settings: TrainSettings, *, floor: float
) -> tuple[torch.optim.AdamW, torch.optim.lr_scheduler.LambdaLR]:
    """:func:`adamw_with_warmup_cosine` with the settings' rate, weight decay, warm-up and steps."""
    return adamw_with_warmup_cosine(
        params,
        lr=settings.lr,
        weight_decay=settings.weight_decay,
        warmup=settings.warmup,
        steps=settings.steps,
        floor=floor,
    )


def backward_mean(wrapped: nn.Module, unit_losses: Sequence[Callable[[], torch.Tensor]]) -> list[float]:
    """Backpropagate the mean of the units' losses, one unit at a time; returns each unit's loss.

    Each closure must run its forward pass through ``wrapped`` inside the call,
    so that under DDP gradients are all-reduced once, on the last unit.
    """
    values = []
    for i, loss_fn in enumerate(unit_losses):
        with sync_context(wrapped, sync=i == len(unit_losses) - 1):
            loss = loss_fn()
            (loss / len(unit_losses)).backward()
        values.append(loss.item())
    return values


def clip_and_step(
    module: nn.Module,
    opt: torch.optim.Optimizer,
    grad_clip: float,
    sched: torch.optim.lr_scheduler.LRScheduler | None = None,
) -> float:
    """Clip the gradient norm (identical on every rank after DDP's all-reduce), step; returns the pre-clip norm."""
    grad_norm = torch.nn.utils.clip_grad_norm_(module.parameters(), grad_clip)
    opt.step()
    if sched is not None:
        sched.step()
    return float(full_tensor(grad_norm))


def optimizer_step(
    loss: torch.Tensor,
    model: nn.Module,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float,
) -> torch.Tensor:
    """Backpropagate ``loss``, clip the gradient norm, step optimiser and schedule; returns the pre-clip norm."""
    opt.zero_grad(set_to_none=True)
    loss.backward()
    grad_norm = torch.nn.utils.clip_grad_norm_(model.parameters(), grad_clip)
    opt.step()
    sched.step()
    return grad_norm


class OptimizerState:
    """Mixin for a training task: ``state_dict`` / ``load_state_dict`` for exact ``--resume``.

    Saves ``model`` and ``opt`` in their full, unsharded form (see
    :class:`~protein_didi.core.distributed.Context`: any strategy or process
    count can resume them), ``sched``, then ``ema`` when the task has one, then
    ``seconds`` (wall time spent training, summed over resumed sessions) unless
    ``keep_seconds`` is false. A task sets ``started``/``earlier_seconds`` in its
    constructor (``self.started, self.earlier_seconds = time.time(), 0.0``).
    Under FSDP every rank must call both methods (they gather and scatter).
    """

    model: nn.Module
    opt: torch.optim.Optimizer
    sched: torch.optim.lr_scheduler.LRScheduler
    ema: Any = None
    ctx: Context = SINGLE
    keep_seconds: bool = True
    started: float
    earlier_seconds: float = 0.0

    def seconds(self) -> float:
        """Wall time spent training, summed over resumed sessions."""
        return self.earlier_seconds + time.time() - self.started

    def state_dict(self) -> dict[str, Any]:
        state = {
            "model": self.ctx.full_state(self.model),
            "opt": self.ctx.full_optimizer_state(self.model, self.opt),
            "sched": self.sched.state_dict(),
        }
        if self.ema is not None:
            state["ema"] = self.ema.state_dict()
        if self.keep_seconds:
            state["seconds"] = self.seconds()
        return state

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.ctx.load_full_state(self.model, state["model"])
        self.ctx.load_full_optimizer_state(self.model, self.opt, state["opt"])
        self.sched.load_state_dict(state["sched"])
        if self.ema is not None:
            self.ema.load_state_dict(state["ema"])
        if self.keep_seconds:
            self.started, self.earlier_seconds = time.time(), float(state.get("seconds", 0.0))


NelboUnit = tuple[torch.Tensor, torch.Tensor, torch.Generator]  # clean tokens, maskable positions, noise


def nelbo_step(
    model: nn.Module,
    units: Sequence[NelboUnit],
    schedule: NoiseSchedule,
    opt: torch.optim.Optimizer,
    sched: torch.optim.lr_scheduler.LRScheduler,
    grad_clip: float,
    bf16: bool = False,
    wrapped: nn.Module | None = None,
) -> dict[str, float]:
    """One optimiser step on the mean masked-diffusion NELBO of ``units``, the step every teacher trainer takes.

    ``wrapped`` is ``model`` in DDP for data-parallel runs (its forward syncs gradients).
    """
    model.train()
    net = wrapped if wrapped is not None else model
    nll: list[float] = []

    def unit_loss(x: torch.Tensor, maskable: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        with torch.autocast(x.device.type, dtype=torch.bfloat16, enabled=bf16):
            terms = masked_diffusion_loss(net, x, maskable, schedule, generator=generator)
        nll.append(float(terms.nll_masked))
        return terms.loss

    opt.zero_grad(set_to_none=True)
    losses = backward_mean(net, [functools.partial(unit_loss, *unit) for unit in units])
    grad_norm = clip_and_step(model, opt, grad_clip, sched)
    return {
        "loss": sum(losses) / len(losses),
        "nll_masked": sum(nll) / len(nll),
        "grad_norm": grad_norm,
        "lr": sched.get_last_lr()[0],
    }
