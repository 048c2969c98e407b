"""Command-line options every trainer shares (data, run folder, size, steps, optimiser, checkpointing, seed…).

Each trainer passes its own defaults; the help texts quote them, so ``--help``
reads the same as when every trainer spelt the options out.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Hashable, Iterable, Mapping
from pathlib import Path

import torch

from protein_didi.core import distributed
from protein_didi.core.denoiser import Denoiser
from protein_didi.core.device import resolve_device
from protein_didi.core.distill_base import DistillConfig, DistillTrainer, Exporter
from protein_didi.core.distill_common import PromptSource
from protein_didi.core.loop import run_training
from protein_didi.core.schedule import NoiseSchedule


def training_parser(prog: str, doc: str | None, data_help: str) -> argparse.ArgumentParser:
    """A trainer's parser (``doc`` as description) with ``--data`` and ``--out``."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help=data_help)
    p.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    return p


def add_arch_and_steps(
    p: argparse.ArgumentParser, archs: Iterable[str], default: str, arch_help: str, *, steps: int
) -> None:
    """``--arch`` (one of ``archs``) and ``--steps``."""
    p.add_argument("--arch", choices=sorted(archs), default=default, help=arch_help)
    p.add_argument("--steps", type=int, default=steps, help=f"optimizer steps (default {steps})")


def _short(x: float) -> str:
    """``1e-3`` rather than ``0.001`` when it is shorter; ``0.01``, ``0.999`` and ``1.0`` as written."""
    plain = repr(x)
    mantissa, exponent = f"{x:e}".split("e")
    sci = f"{mantissa.rstrip('0').rstrip('.')}e{int(exponent)}"
    return sci if len(sci) < len(plain) else plain


def add_optimizer_args(
    p: argparse.ArgumentParser,
    *,
    lr: float,
    warmup: int,
    weight_decay: float,
    weight_decay_note: str | None = None,
    grad_clip: float = 1.0,
    ema: float | None = None,
) -> None:
    """``--lr --warmup --weight-decay --grad-clip`` and, when ``ema`` is given, ``--ema``."""
    note = weight_decay_note or _short(weight_decay)
    p.add_argument("--lr", type=float, default=lr, help=f"peak AdamW learning rate (default {_short(lr)})")
    p.add_argument("--warmup", type=int, default=warmup, help=f"linear warm-up steps (default {warmup})")
    p.add_argument("--weight-decay", type=float, default=weight_decay, help=f"AdamW weight decay (default {note})")
    p.add_argument(
        "--grad-clip", type=float, default=grad_clip, help=f"gradient-norm clip (default {_short(grad_clip)})"
    )
    if ema is not None:
        p.add_argument("--ema", type=float, default=ema, help=f"EMA decay of exported weights (default {_short(ema)})")


def add_run_args(p: argparse.ArgumentParser, *, checkpoint_every: int, seed_help: str, threads: bool = True) -> None:
    """``--checkpoint-every --seed [--threads] --device --resume``; ``seed_help`` says what the seed drives."""
    p.add_argument("--checkpoint-every", type=int, default=checkpoint_every, help="steps between atomic checkpoints")
    p.add_argument("--seed", type=int, default=0, help=f"seed of {seed_help} (default 0)")
    if threads:
        p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default 0: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, mps")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")


def start_run(args: argparse.Namespace) -> torch.device:
    """Apply ``--threads`` (when the trainer has it), resolve ``--device`` and seed torch with ``--seed``."""
    if getattr(args, "threads", 0) > 0:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(args.seed)
    return device


def add_fsdp_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--fsdp``: shard instead of replicate under torchrun."""
    p.add_argument(
        "--fsdp",
        action="store_true",
        help="under torchrun: shard parameters, gradients and optimiser state (FSDP2) instead of replicating "
        "them (DDP), for models whose training state does not fit one device",
    )


def add_parallel_args(p: argparse.ArgumentParser) -> None:
    """``--micro-batch-size`` (the unit a data-parallel run splits the global batch into) and ``--fsdp``."""
    add_fsdp_arg(p)
    p.add_argument(
        "--micro-batch-size",
        type=int,
        default=None,
        help="examples per gradient-accumulation unit (default: batch size / processes); "
        "fix it to make runs on different process counts compute the same updates",
    )


def start_parallel_run(args: argparse.Namespace) -> distributed.Context:
    """:func:`start_run` for trainers that may run under ``torchrun``: joins the job and picks the rank's device."""
    if getattr(args, "threads", 0) > 0:
        torch.set_num_threads(args.threads)
    ctx = distributed.init(args.device, fsdp=getattr(args, "fsdp", False))
    torch.manual_seed(args.seed)
    return ctx


def fail(err: BaseException, ctx: distributed.Context | None = None) -> int:
    """Print a one-line ``error: …`` (naming the rank in a torchrun job) and return exit code 2."""
    where = f" (rank {ctx.rank} of {ctx.world_size})" if ctx is not None and ctx.distributed else ""
    print(f"error{where}: {err}", file=sys.stderr)
    return 2


def distill_run(
    trainer_cls: type[DistillTrainer],
    teacher: Denoiser,
    schedule: NoiseSchedule,
    prompts: PromptSource,
    config: DistillConfig,
    export: Exporter,
    args: argparse.Namespace,
    ctx: distributed.Context,
    teacher_samples: Mapping[Hashable, torch.Tensor] | None = None,
) -> str:
    """Build the method's trainer and run it to ``--steps`` (from OUT's checkpoint with ``--resume``).

    ``teacher_samples`` (template key → tokenised samples) fill the teacher bank instead of sampling the teacher.
    Returns the trainer's export summary (how far the exported student moved from the teacher).
    """
    trainer = trainer_cls(teacher, schedule, prompts, config, export, ctx=ctx)
    for key, samples in (teacher_samples or {}).items():
        trainer.bank.preload(key, samples)
    desc = f"distill {args.method}"
    run_training(trainer, args.out, args.steps, args.resume, args.checkpoint_every, desc=desc, ctx=ctx)
    return trainer.summary


def succeed(ctx: distributed.Context, message: str) -> int:
    """Rank 0 prints ``message``; leave the process group; exit code 0."""
    if ctx.is_main:
        print(message, file=sys.stderr)
    ctx.close()
    return 0
