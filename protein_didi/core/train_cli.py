"""Command-line options every trainer shares (data, run folder, size, steps, optimiser, checkpointing, seed…).

Each trainer passes its own defaults; the help texts quote them, so ``--help``
reads the same as when every trainer spelt the options out. ``distill`` has one
parser for both domains (:func:`distill_parser`, :func:`config_from_args`,
:data:`TRAINERS`): each domain adds only what is its own (a tokenizer, a file of
teacher samples) and the model, prompts and exporter.
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Hashable, Iterable, Mapping
from pathlib import Path
from typing import NamedTuple

import torch

from protein_didi.core import distributed
from protein_didi.core.denoiser import Denoiser
from protein_didi.core.device import resolve_device
from protein_didi.core.didi import DidiConfig, DidiTrainer
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.distill_base import DistillConfig, DistillTrainer, Exporter
from protein_didi.core.distill_common import PromptSource
from protein_didi.core.idlm import IdlmConfig, IdlmTrainer
from protein_didi.core.loop import run_training
from protein_didi.core.schedule import NoiseSchedule
from protein_didi.core.timesampling import TIME_DISTRIBUTIONS


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


def shipped_tensors(aux: torch.nn.Module) -> dict[str, dict[str, torch.Tensor]] | None:
    """What an exported student carries beside its weights: DiDi-Instruct's discriminator, which RGAS needs at
    sampling time; IDLM's fake model is only a training device and stays behind."""
    return {"discriminator": aux.state_dict()} if isinstance(aux, Discriminator) else None


def succeed(ctx: distributed.Context, message: str) -> int:
    """Rank 0 prints ``message``; leave the process group; exit code 0."""
    if ctx.is_main:
        print(message, file=sys.stderr)
    ctx.close()
    return 0


class DistillParser(NamedTuple):
    """``distill``'s parser and the two groups a domain adds its own options to."""

    parser: argparse.ArgumentParser
    inputs: argparse._ArgumentGroup  # "inputs and outputs"
    run: argparse._ArgumentGroup


def distill_parser(
    prog: str,
    doc: str | None,
    *,
    teacher_help: str,
    data_help: str,
    lengths_type: Callable[[str], list[int]],
    lengths_help: str,
) -> DistillParser:
    """The options every ``distill`` run has: teacher and run folder, method, loop, optimiser, ablations.

    The domain names what its teacher, data and lengths are (``lengths_type`` parses ``50,100``).
    """
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--teacher", default="teacher", help=teacher_help)
    io.add_argument("--data", type=Path, default=None, help=data_help)
    io.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    io.add_argument("--method", choices=["didi", "idlm"], default="didi", help="DiDi-Instruct (didi) or IDLM")
    io.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt exactly")
    io.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, mps")
    add_fsdp_arg(io)
    run = p.add_argument_group("run")
    run.add_argument("--steps", type=int, default=600, help="training iterations (default 600)")
    run.add_argument("--student-nfe", type=int, default=8, help="sampling steps the student is trained for (8)")
    run.add_argument("--batch-size", type=int, default=8, help="student samples per iteration, all processes (8)")
    run.add_argument(
        "--group-size",
        type=int,
        default=None,
        help="samples sharing one reward normalisation and random stream (default: the batch); "
        "under torchrun, batch/group must be a multiple of the process count",
    )
    run.add_argument("--lengths", type=lengths_type, default=None, help=lengths_help)
    run.add_argument("--teacher-nfe", type=int, default=128, help="teacher steps for its sample bank (128)")
    run.add_argument("--bank-size", type=int, default=32, help="teacher samples per length in the bank (32)")
    run.add_argument("--checkpoint-every", type=int, default=50, help="iterations between atomic checkpoints")
    run.add_argument("--seed", type=int, default=0, help="seed of every random draw (default 0)")
    opt = p.add_argument_group("optimisation (paper defaults)")
    opt.add_argument("--lr-student", type=float, default=1e-5, help="student AdamW lr (paper: 1e-5)")
    opt.add_argument("--lr-disc", type=float, default=5e-6, help="didi: discriminator AdamW lr (paper: 5e-6)")
    opt.add_argument("--lr-fake", type=float, default=None, help="idlm: fake-model lr (default: --lr-student)")
    opt.add_argument("--fake-updates", type=int, default=1, help="idlm: fake-model steps per student step (1)")
    opt.add_argument(
        "--warmup",
        type=int,
        default=None,
        help="linear lr warm-up updates for each network, then linear decay to 0 "
        "(default: 10%% of that network's updates; paper: 1,000 of 10,000)",
    )
    opt.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay, both networks (0.01)")
    opt.add_argument(
        "--ema",
        type=float,
        default=0.9999,
        help="student EMA decay (paper 0.9999); bias-corrected, so short runs average their own updates",
    )
    opt.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip for both networks")
    opt.add_argument("--reward-clip", type=float, default=5.0, help="clip normalised rewards to ±this")
    opt.add_argument("--disc-warmup", type=int, default=100, help="iterations training only D (student frozen)")
    opt.add_argument(
        "--disc-head-only",
        action="store_true",
        help="didi: train D's head on the frozen teacher's features (not the paper's full D): the student ships a "
        "few-MB discriminator and D's update needs no backward pass through the backbone",
    )
    opt.add_argument("--kl-weight", type=float, default=0.05, help="forward KL(teacher‖student) weight (0.05)")
    opt.add_argument("--entropy-weight", type=float, default=5e-4, help="student entropy bonus weight (5e-4)")
    abl = p.add_argument_group("ablations")
    abl.add_argument(
        "--time-dist",
        choices=sorted(TIME_DISTRIBUTIONS),
        default=None,
        help="π(t) for τ (default: beta25 for ≤16-step students, beta52 above; uniform = ablation)",
    )
    abl.add_argument("--omega", choices=["elbo", "one"], default="elbo", help="ω(t): −α'/(1−α) or 1 (ablation)")
    abl.add_argument("--no-grouped-norm", action="store_true", help="use raw rewards (no (R−μ)/σ per group)")
    abl.add_argument("--no-score-decompose", action="store_true", help="one-jump student from all-[MASK]")
    abl.add_argument("--no-coupled-time", action="store_true", help="draw D's corruption time independently")
    abl.add_argument("--no-regularization", action="store_true", help="drop the KL and entropy terms")
    abl.add_argument(
        "--path-samples",
        type=int,
        default=None,
        help="score the student's trajectory on its first step plus this many later steps, importance-weighted "
        "(unbiased, noisier; default: every step, as the paper)",
    )
    return DistillParser(p, io, run)


def config_from_args(args: argparse.Namespace) -> DistillConfig:
    """The ``--method``'s config from parsed :func:`distill_parser` arguments."""
    common = dict(
        student_nfe=args.student_nfe, batch_size=args.batch_size, steps=args.steps, lr_student=args.lr_student,
        warmup=args.warmup, weight_decay=args.weight_decay, ema=args.ema, grad_clip=args.grad_clip,
        teacher_nfe=args.teacher_nfe, bank_size=args.bank_size, seed=args.seed, group_size=args.group_size,
    )  # fmt: skip
    if args.method == "idlm":
        return IdlmConfig(**common, lr_aux=args.lr_fake or args.lr_student, fake_updates=args.fake_updates)
    return DidiConfig(
        **common, lr_aux=args.lr_disc, reward_clip=args.reward_clip,
        disc_warmup=args.disc_warmup, kl_weight=0.0 if args.no_regularization else args.kl_weight,
        entropy_weight=0.0 if args.no_regularization else args.entropy_weight,
        time_dist=args.time_dist, omega=args.omega, grouped_norm=not args.no_grouped_norm,
        score_decompose=not args.no_score_decompose, coupled_time=not args.no_coupled_time,
        disc_head_only=args.disc_head_only, path_samples=args.path_samples,
    )  # fmt: skip


TRAINERS: dict[str, type[DistillTrainer]] = {"didi": DidiTrainer, "idlm": IdlmTrainer}
