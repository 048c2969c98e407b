"""Teacher training as a loop task: AdamW on the masked-diffusion NELBO, EMA, data-parallel under torchrun.

A domain supplies how to read ``n`` training examples at a stream position and
which positions may be masked; this class owns the rest. The global batch is
split into fixed-size micro-batches ("units"), each with its own generator
seeded by (seed, step, unit) and its own slice of the data stream; a rank
accumulates its share of units and DDP averages gradients across ranks. The
data position (examples consumed) is part of the checkpoint, so a resumed run —
on any number of processes — reads on from exactly there.
"""

from __future__ import annotations

import argparse
import copy
import time
from collections.abc import Callable
from typing import Any

import torch
from torch import nn

from protein_didi.core.distributed import SINGLE, Context
from protein_didi.core.ema import EMA
from protein_didi.core.loop import step_seed
from protein_didi.core.optim import OptimizerState, adamw_from_args, nelbo_step
from protein_didi.core.schedule import get_schedule

Reader = Callable[[int, int], torch.Tensor]  # (stream position, n) → (n, L) clean tokens


class NelboTeacherTask(OptimizerState):
    """One optimiser step on the NELBO of one global batch per ``train_step``."""

    def __init__(
        self,
        model: nn.Module,
        read: Reader,
        maskable: Callable[[torch.Tensor], torch.Tensor],
        epoch_size: int,
        args: argparse.Namespace,
        ctx: Context = SINGLE,
        lr_floor: float = 0.1,
    ) -> None:
        self.model, self.read, self.maskable, self.epoch_size = model.to(ctx.device), read, maskable, epoch_size
        self.args, self.ctx, self.device = args, ctx, ctx.device
        # the architecture to export the averaged weights into (FSDP shards self.model in place); rank 0 only
        self.template = copy.deepcopy(self.model).cpu() if ctx.sharded and ctx.is_main else None
        # the probe (one example, only read under torchrun) finds parameters no forward pass reaches
        self.wrapped = ctx.wrap(
            self.model, lambda net: net(read(0, 1).to(ctx.device), torch.full((1,), 0.5, device=ctx.device))
        )
        self.schedule = get_schedule(args.schedule)
        self.opt, self.sched = adamw_from_args(self.model.parameters(), args, floor=lr_floor)
        self.ema = EMA(self.model, args.ema)
        self.micro = micro_batch_size(args.batch_size, getattr(args, "micro_batch_size", None), ctx.world_size)
        self.units = ctx.units(
            args.batch_size // self.micro,
            "micro-batches",
            fix="pick --batch-size / --micro-batch-size as a multiple of the process count",
        )
        self.position = 0
        self.started, self.earlier_seconds = time.time(), 0.0

    def train_step(self, step: int) -> dict[str, float]:
        units = []
        for u in self.units:
            x = self.read(self.position + u * self.micro, self.micro).to(self.device)
            gen = torch.Generator(device=self.device).manual_seed(step_seed(self.args.seed, step, u))
            units.append((x, self.maskable(x), gen))
        metrics = nelbo_step(
            self.model, units, self.schedule, self.opt, self.sched, self.args.grad_clip,
            getattr(self.args, "bf16", False), self.wrapped,
        )  # fmt: skip
        self.ema.update(self.model)
        self.position += self.args.batch_size
        return {**metrics, "epoch": self.position / self.epoch_size}

    def averaged_model(self) -> nn.Module | None:
        """The EMA weights in a plain eval-mode model on rank 0 (``None`` on other ranks); every rank must call."""
        weights = self.ema.weights()
        if not self.ctx.is_main:
            return None
        template = self.template if self.template is not None else self.model
        model = copy.deepcopy(template)
        model.load_state_dict(weights)
        return model.to(self.device).eval()

    def state_dict(self) -> dict[str, Any]:
        return {**super().state_dict(), "data_position": self.position}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        super().load_state_dict(state)
        self.position = int(state["data_position"])


def micro_batch_size(batch_size: int, micro: int | None, world_size: int) -> int:
    """``--micro-batch-size`` or, by default, the global batch split evenly over the processes."""
    micro = micro or max(1, batch_size // world_size)
    if micro < 1 or batch_size % micro:
        raise ValueError(f"--batch-size {batch_size} is not a multiple of --micro-batch-size {micro}")
    return micro
