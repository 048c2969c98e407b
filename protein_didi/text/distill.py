"""``python -m protein_didi.distill --domain text``: the same trainers and loop with text teacher, prompts, export.

    python -m protein_didi.distill --domain text --teacher teacher --data data/text-pydoc \\
        --out runs/text-student --student-nfe 8 --steps 200 --lengths 128

:mod:`protein_didi.distill` parses the arguments and builds the method's
config; this module supplies what is domain-specific — the DiT teacher (ours or
an MDLM/DUO checkpoint), ``<bos> [MASK]… <eos>`` prompts of ``--lengths`` tokens
(default: the teacher's block length) and an exporter that writes the student
with its tokenizer (and DiDi-Instruct's discriminator, for RGAS) to OUT/model.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import torch

from protein_didi.core.checkpoint import CheckpointError, save_json
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.distill_base import DistillConfig, DistillTrainer
from protein_didi.core.distributed import DistributedError
from protein_didi.core.loop import TrainingDiverged
from protein_didi.core.train_cli import distill_run, fail, start_parallel_run, succeed
from protein_didi.text.data import TextCorpus, TextDataError
from protein_didi.text.model import DiT
from protein_didi.text.pretrained import load_model, save_model
from protein_didi.text.prompts import TextPrompts
from protein_didi.text.tokenizer import TokenizerError


def main_text(
    args: argparse.Namespace,
    config_from_args: Callable[[argparse.Namespace], DistillConfig],
    trainers: Mapping[str, type[DistillTrainer]],
) -> int:
    """Run one distillation with parsed ``distill`` arguments; 0 on success, 2 with a one-line error."""
    ctx = None
    try:
        ctx = start_parallel_run(args)
        device = ctx.device
        teacher = load_model(args.teacher, device, getattr(args, "tokenizer", None))
        data_info: dict[str, Any] = {}
        if args.data is not None:
            corpus = TextCorpus(args.data)
            corpus.check_tokenizer(teacher.tokenizer, f"teacher {args.teacher}")
            data_info = {"distill_data": corpus.meta["source"]}
        config = config_from_args(args)
        lengths = args.lengths or [teacher.block_length]
        prompts = TextPrompts(teacher.tokenizer, lengths, args.seed)

        def export(out: Path, student: DiT, aux: torch.nn.Module, info: dict[str, Any]) -> None:
            keep = {k: v for k, v in teacher.info.items() if k in ("block_length", "data", "data_dir", "arch")}
            info = {
                **keep,
                **data_info,
                **info,
                "teacher": teacher.name,
                "lengths": lengths,
                "distill_steps": args.steps,
            }
            # RGAS needs the discriminator at sampling time; IDLM's fake model is only a training device
            extra = {"discriminator": aux.state_dict()} if isinstance(aux, Discriminator) else None
            save_model(
                out / "model", student, teacher.schedule, teacher.tokenizer, f"student-{args.method}", info, extra
            )
            save_json(out / "distill_config.json", info)

        summary = distill_run(
            trainers[args.method], teacher.model, teacher.schedule, prompts, config, export, args, ctx
        )
    except (CheckpointError, TextDataError, TokenizerError, TrainingDiverged, DistributedError, ValueError) as err:
        return fail(err, ctx)
    return succeed(ctx, f"student written to {args.out / 'model'}; {summary}")
