"""Distil a masked-diffusion text teacher into a few-step student, with the same trainers and loop as proteins.

    python -m protein_didi.distill --domain text --teacher teacher --data data/text-pydoc \\
        --out runs/text-student --student-nfe 8 --steps 200 --lengths 128

The options the two domains share (method, loop, optimiser, ablations) are
:func:`protein_didi.core.train_cli.distill_parser`'s; this module supplies what
is text's own — the DiT teacher (ours or an MDLM/DUO checkpoint, ``--tokenizer``
for the latter), ``<bos> [MASK]… <eos>`` prompts of ``--lengths`` tokens
(default: the teacher's block length) and an exporter that writes the student
with its tokenizer (and DiDi-Instruct's discriminator, for RGAS) to OUT/model.
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from protein_didi.cli import int_list
from protein_didi.core.checkpoint import save_json
from protein_didi.core.run_driver import distill_run, shipped_tensors, start_parallel_run, succeed
from protein_didi.core.train_cli import distill_config, distill_parser
from protein_didi.text.data import TextCorpus
from protein_didi.text.model import DiT
from protein_didi.text.pretrained import load_model, save_model
from protein_didi.text.prompts import TextPrompts


def build_parser() -> argparse.ArgumentParser:
    p, inputs, _ = distill_parser(
        "python -m protein_didi.distill --domain text",
        __doc__,
        teacher_help="teacher: a registered name, a model folder or an MDLM/DUO checkpoint (see --tokenizer)",
        data_help="prepared corpus (data_prep.text); checked for a matching tokenizer and recorded",
        lengths_type=int_list,
        lengths_help="block lengths to train on incl. <bos>/<eos>, one drawn per step (default: the teacher's block)",
    )
    inputs.add_argument("--tokenizer", default=None, help="GPT-2 tokenizer folder for an MDLM/DUO teacher")
    return p


def main(argv: list[str] | None = None) -> int:
    """Run one distillation; 0 on success. Errors are raised (``python -m protein_didi.distill`` prints them)."""
    args = build_parser().parse_args(argv)
    config = distill_config(args)
    ctx = start_parallel_run(args.device, config.seed, fsdp=args.fsdp)
    device = ctx.device
    teacher = load_model(args.teacher, device, args.tokenizer)
    data_info: dict[str, Any] = {}
    if args.data is not None:
        corpus = TextCorpus(args.data)
        corpus.check_tokenizer(teacher.tokenizer, f"teacher {args.teacher}")
        data_info = {"distill_data": corpus.meta["source"]}
    lengths = args.lengths or [teacher.block_length]
    prompts = TextPrompts(teacher.tokenizer, lengths, config.seed)

    def export(out: Path, student: DiT, aux: torch.nn.Module, info: dict[str, Any]) -> None:
        keep = {k: v for k, v in teacher.info.items() if k in ("block_length", "data", "data_dir", "arch")}
        info = {
            **keep,
            **data_info,
            **info,
            "teacher": teacher.name,
            "lengths": lengths,
            "distill_steps": config.steps,
        }
        save_model(
            out / "model", student, teacher.schedule, teacher.tokenizer, f"student-{args.method}", info,
            shipped_tensors(aux),
        )  # fmt: skip
        save_json(out / "distill_config.json", info)

    summary = distill_run(
        config, teacher.model, teacher.schedule, prompts, export, ctx,
        out=args.out, resume=args.resume, checkpoint_every=args.checkpoint_every,
    )  # fmt: skip
    return succeed(ctx, f"student written to {args.out / 'model'}; {summary}")
