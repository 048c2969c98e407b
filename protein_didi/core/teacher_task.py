"""Teacher training as a loop task: AdamW on the masked-diffusion NELBO, EMA, data-parallel under torchrun.

A domain supplies how to read ``n`` training examples at a stream position and
which positions may be masked; this class owns the rest. The global batch is
split into fixed-size micro-batches ("units"), each with its own generator
seeded by (seed, step, unit) and its own slice of the data stream; a rank
accumulates its share of units and DDP averages gradients across ranks. The
data position (examples consumed) is part of the checkpoint, so a resumed run —
on any number of processes — reads on from exactly there.

The task is given its :class:`TeacherSettings` (the settings and flags both domains' teachers share;
each domain subclasses them with its defaults and its own settings). A task given a :class:`BandedNelbo`
also reports the held-out NELBO per band of mask rates (:meth:`NelboTeacherTask.evaluate`), which the loop
logs before the first step and at every checkpoint.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn

from protein_didi.core.distributed import SINGLE, Context
from protein_didi.core.ema import EMA
from protein_didi.core.loop import step_seed
from protein_didi.core.loss import masked_diffusion_loss
from protein_didi.core.optim import OptimizerState, TrainSettings, adamw_for, nelbo_step
from protein_didi.core.schedule import NoiseSchedule, get_schedule
from protein_didi.core.settings import setting

Reader = Callable[[int, int], torch.Tensor]  # (stream position, n) → (n, L) clean tokens
Maskable = Callable[[torch.Tensor], torch.Tensor]  # (n, L) clean tokens → (n, L) bool, the positions noise may hit
MASK_RATE_BANDS: tuple[tuple[float, float], ...] = ((0.0, 0.25), (0.25, 0.5), (0.5, 0.75), (0.75, 1.0))


@dataclass(kw_only=True)
class TeacherSettings(TrainSettings):
    """A masked-diffusion teacher's settings beyond the optimiser's: its EMA, noise schedule and micro-batches."""

    ema: float = setting(0.999, "EMA decay of exported weights (default {default})", "--ema")
    schedule: str = setting("loglinear", "noise schedule α_t", "--schedule", choices=["loglinear", "cosine"])
    micro_batch_size: int | None = setting(
        None,
        "examples per gradient-accumulation unit (default: batch size / processes); "
        "fix it to make runs on different process counts compute the same updates",
        "--micro-batch-size",
    )


class BandedNelbo:
    """Held-out NELBO per band of mask rates, on one fixed, seeded set of (example, t, mask) draws.

    Why bands: a teacher pretrained as a BERT (15 % masking) denoises well when few positions are masked and
    badly when most are, which is where a diffusion sampler starts; a single held-out NELBO averages that
    away. Why fixed draws: the same examples, times and masks at every checkpoint make the numbers of one run
    (and of runs on the same data and seed) comparable, so a change is the model's, never the draw's.

    Every band holds every example once. Its times sit on the band's midpoint grid
    ``lo + (hi − lo)(i + ½)/n`` (paired with the examples by a seeded permutation): the NELBO weight ω(t) grows
    like 1/t, so a uniform draw near t = 0 would let one lucky mask dominate the lowest band. A band's value is
    the NELBO integrand averaged over the band, in nats per maskable token: the mean of the bands' values is
    the held-out NELBO (t is uniform on (0, 1]). Under the log-linear schedule the mask rate 1 − α_t is
    (1 − ε)·t and ω(t)(1 − α_t) = 1, so a band of t is the band of mask rates and its value the expected
    cross-entropy on the masked tokens at those rates; under another schedule the bands are bands of t.
    """

    def __init__(
        self,
        batches: Sequence[torch.Tensor],
        maskable: Maskable,
        schedule: NoiseSchedule,
        *,
        bands: tuple[tuple[float, float], ...] = MASK_RATE_BANDS,
        seed: int = 0,
    ) -> None:
        """``batches``: the held-out examples as clean-token batches (the domain picks, crops and pads them)."""
        n = sum(int(x.shape[0]) for x in batches)
        if n == 0:
            raise ValueError("no held-out examples to evaluate the mask-rate bands on")
        self.batches, self.maskable, self.schedule = list(batches), maskable, schedule
        self.bands, self.seed = bands, seed
        grid = (torch.arange(n, dtype=torch.float64) + 0.5) / n
        gen = torch.Generator().manual_seed(seed)
        sizes = [int(x.shape[0]) for x in self.batches]
        self.times = [
            list((lo + (hi - lo) * grid[torch.randperm(n, generator=gen)]).float().split(sizes)) for lo, hi in bands
        ]

    @staticmethod
    def key(band: tuple[float, float]) -> str:
        """The metric name of a band: ``heldout_nelbo_t0.25-0.50``."""
        return f"heldout_nelbo_t{band[0]:.2f}-{band[1]:.2f}"

    @torch.no_grad()
    def __call__(self, model: nn.Module, device: torch.device | str = "cpu") -> dict[str, float]:
        """``{band key: nats per maskable token}`` for every band, and ``heldout_nelbo``, their mean."""
        was_training = model.training
        model.eval()
        out: dict[str, float] = {}
        for b, band in enumerate(self.bands):
            total, count = 0.0, 0
            for k, (x, t) in enumerate(zip(self.batches, self.times[b], strict=True)):
                x, t = x.to(device), t.to(device)
                maskable = self.maskable(x)
                gen = torch.Generator(device=device).manual_seed(step_seed(self.seed, b, k))
                terms = masked_diffusion_loss(model, x, maskable, self.schedule, t=t, generator=gen)
                n = int(maskable.sum())
                total, count = total + float(terms.loss) * n, count + n
            out[self.key(band)] = total / max(count, 1)
        out["heldout_nelbo"] = sum(out.values()) / len(self.bands)
        model.train(was_training)
        return out


class NelboTeacherTask(OptimizerState):
    """One optimiser step on the NELBO of one global batch per ``train_step``."""

    def __init__(
        self,
        model: nn.Module,
        read: Reader,
        maskable: Callable[[torch.Tensor], torch.Tensor],
        epoch_size: int,
        settings: TeacherSettings,
        ctx: Context = SINGLE,
        lr_floor: float = 0.1,
        schedule: NoiseSchedule | None = None,
        bands: BandedNelbo | None = None,
    ) -> None:
        """``schedule`` (default: the settings' ``schedule``) is the noise schedule; a pretrained model passes its own.

        Parameters already frozen (``requires_grad`` false) are never updated: AdamW keeps no state for them.
        ``bands`` makes :meth:`evaluate` report the held-out NELBO per mask-rate band; give it on every rank
        (under FSDP the averaged weights it reads are gathered by all ranks together).
        """
        self.model, self.read, self.maskable, self.epoch_size = model.to(ctx.device), read, maskable, epoch_size
        self.settings, self.ctx, self.device = settings, ctx, ctx.device
        # the architecture to export the averaged weights into (FSDP shards self.model in place); rank 0 only
        self.template = copy.deepcopy(self.model).cpu() if ctx.sharded and ctx.is_main else None
        # the probe (one example, only read under torchrun) finds parameters no forward pass reaches
        self.wrapped = ctx.wrap(
            self.model, lambda net: net(read(0, 1).to(ctx.device), torch.full((1,), 0.5, device=ctx.device))
        )
        self.schedule = schedule if schedule is not None else get_schedule(settings.schedule)
        self.bands = bands
        self.opt, self.sched = adamw_for(self.model.parameters(), settings, floor=lr_floor)
        self.ema = EMA(self.model, settings.ema)
        self.micro = micro_batch_size(settings.batch_size, settings.micro_batch_size, ctx.world_size)
        self.units = ctx.units(
            settings.batch_size // self.micro,
            "micro-batches",
            fix="pick --batch-size / --micro-batch-size as a multiple of the process count",
        )
        self.position = 0
        self.started, self.earlier_seconds = time.time(), 0.0

    def train_step(self, step: int) -> dict[str, float]:
        units = []
        for u in self.units:
            x = self.read(self.position + u * self.micro, self.micro).to(self.device)
            gen = torch.Generator(device=self.device).manual_seed(step_seed(self.settings.seed, step, u))
            units.append((x, self.maskable(x), gen))
        metrics = nelbo_step(
            self.model, units, self.schedule, self.opt, self.sched, self.settings.grad_clip, self.settings.bf16,
            self.wrapped,
        )  # fmt: skip
        self.ema.update(self.model)
        self.position += self.settings.batch_size
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

    def evaluate(self) -> dict[str, float]:
        """The held-out NELBO per mask-rate band of the averaged (exported) weights; ``{}`` without bands.

        The loop calls it before the first step and at every checkpoint (every rank under FSDP, whose averaged
        weights are gathered collectively; rank 0 alone otherwise), so ``metrics.jsonl`` shows the gain over
        the initial weights band by band. The averaged weights are what an export at that checkpoint would ship
        (before any step they are the initial weights).
        """
        if self.bands is None:
            return {}
        model = self.averaged_model()
        return {} if model is None else self.bands(model, self.device)

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
