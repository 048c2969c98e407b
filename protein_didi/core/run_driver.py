"""How a training command runs once its settings are made: start (threads, device, process group, seed), the
distillation methods and their run, what a student ships, what an export reports, and a clean finish.

Why apart from the flags (:mod:`protein_didi.core.train_cli`): these take plain values and settings objects, so a
benchmark or a test drives a run exactly as a command does without building an argument list.
"""

from __future__ import annotations

import sys
from collections.abc import Hashable, Mapping
from pathlib import Path
from typing import Any

import torch

from protein_didi.core import distributed
from protein_didi.core.checkpoint import save_json
from protein_didi.core.denoiser import Denoiser
from protein_didi.core.device import resolve_device
from protein_didi.core.didi import DidiTrainer
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.distill_base import DistillConfig, DistillTrainer, Exporter
from protein_didi.core.idlm import IdlmTrainer
from protein_didi.core.loop import run_training
from protein_didi.core.schedule import NoiseSchedule
from protein_didi.core.teacher_bank import PromptSource

TRAINERS: dict[str, type[DistillTrainer]] = {"didi": DidiTrainer, "idlm": IdlmTrainer}
"""``--method`` → its trainer; the trainer's ``config_type`` is its settings (and the flags ``distill`` has for it)."""


def start_run(device: str, seed: int, threads: int = 0) -> torch.device:
    """Set torch's CPU threads (``threads`` > 0), resolve ``device`` and seed torch (fresh weights follow ``seed``)."""
    if threads > 0:
        torch.set_num_threads(threads)
    resolved = resolve_device(device)
    torch.manual_seed(seed)
    return resolved


def start_parallel_run(device: str, seed: int, *, threads: int = 0, fsdp: bool = False) -> distributed.Context:
    """:func:`start_run` for trainers that may run under ``torchrun``: joins the job and picks the rank's device."""
    if threads > 0:
        torch.set_num_threads(threads)
    ctx = distributed.init(device, fsdp=fsdp)
    torch.manual_seed(seed)
    return ctx


def distill_run(
    config: DistillConfig,
    teacher: Denoiser,
    schedule: NoiseSchedule,
    prompts: PromptSource,
    export: Exporter,
    ctx: distributed.Context,
    *,
    out: Path,
    resume: bool,
    checkpoint_every: int,
    teacher_samples: Mapping[Hashable, torch.Tensor] | None = None,
    student_init: torch.nn.Module | None = None,
) -> str:
    """Build the trainer of ``config``'s method; run it to ``config.steps`` (from ``out``'s checkpoint on ``resume``).

    ``teacher_samples`` (template key → tokenised samples) fill the teacher bank instead of sampling the teacher;
    ``student_init`` is where the student starts (default: a copy of the teacher).
    Returns the trainer's export summary (how far the exported student moved from the teacher).
    """
    trainer_cls = next((t for t in TRAINERS.values() if isinstance(config, t.config_type)), None)
    if trainer_cls is None:
        raise TypeError(f"no distillation method takes a {type(config).__name__}; see run_driver.TRAINERS")
    trainer = trainer_cls(teacher, schedule, prompts, config, export, ctx=ctx, student_init=student_init)
    for key, samples in (teacher_samples or {}).items():
        trainer.bank.preload(key, samples)
    desc = f"distill {trainer.method}"
    run_training(trainer, out, config.steps, resume, checkpoint_every, desc=desc, ctx=ctx)
    return trainer.summary


def shipped_tensors(aux: torch.nn.Module) -> dict[str, dict[str, torch.Tensor]] | None:
    """What an exported student carries beside its weights: DiDi-Instruct's discriminator, which RGAS needs at
    sampling time; IDLM's fake model is only a training device and stays behind."""
    return {"discriminator": aux.state_dict()} if isinstance(aux, Discriminator) else None


def report_export(out_dir: Path, evaluation: Mapping[str, Any], held_out: str, kind: str = "model") -> None:
    """Write ``evaluation`` to ``eval.json`` beside the exported ``model/``; print the held-out numbers and where."""
    save_json(out_dir / "eval.json", dict(evaluation))
    print(f"{held_out}; {kind} in {out_dir / 'model'}", file=sys.stderr)


def succeed(ctx: distributed.Context, message: str) -> int:
    """Rank 0 prints ``message``; leave the process group; exit code 0."""
    if ctx.is_main:
        print(message, file=sys.stderr)
    ctx.close()
    return 0
