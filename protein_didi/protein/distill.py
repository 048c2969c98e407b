"""Distil a masked-diffusion protein teacher into a few-step student.

    python -m protein_didi.distill --teacher teacher --out runs/student --student-nfe 8 --steps 600

DiDi-Instruct (default) follows Zheng et al. 2025, Algorithm 1, with a switch for
every trick (ablations); ``--method idlm`` runs inverse distillation (IDLM) on
the same loop, teacher bank and checkpointing. Runs checkpoint atomically to OUT/train_state.pt and
continue exactly with ``--resume``; the exported student (EMA weights plus the
discriminator RGAS needs) lands in OUT/model and loads with
``python -m protein_didi.sample --model OUT/model``.

``--domain text`` distils a text DiT teacher with the same trainers and loop
(options: ``python -m protein_didi.distill --domain text --help``)::

    python -m protein_didi.distill --domain text --teacher teacher --data data/text-pydoc \\
        --out runs/text-student --student-nfe 8 --steps 200
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
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.chain_validity import chain_mix
from protein_didi.protein.fasta import read_fasta
from protein_didi.protein.model import EsmDenoiser
from protein_didi.protein.numbering import anarci_available
from protein_didi.protein.pretrained import is_antibody_model, load_model, save_model
from protein_didi.protein.prompts import ProteinPrompts
from protein_didi.protein.shards import read_meta

PROTEIN_LENGTHS = [50, 100, 150, 200]


def build_parser() -> argparse.ArgumentParser:
    p, _, run = distill_parser(
        "python -m protein_didi.distill",
        __doc__,
        teacher_help="teacher: a registered name, a checkpoint folder or hub id",
        data_help="prepared data folder (data_prep.fasta); checked for a matching alphabet and recorded",
        lengths_type=int_list,
        lengths_help="sequence lengths to train on, one drawn per step (default 50,100,150,200)",
    )
    run.add_argument(
        "--teacher-samples",
        type=Path,
        default=None,
        help="FASTA of samples the same teacher made (a benchmark's or earlier run's): fills the bank for the "
        "lengths it covers (the first --bank-size of each) instead of sampling the teacher",
    )
    run.add_argument(
        "--student-init",
        default=None,
        metavar="MODEL",
        help="start the student from this model (e.g. an earlier student of the same teacher family) instead of "
        "a copy of the teacher; KL and the discriminator still read --teacher",
    )
    return p


def read_teacher_samples(path: Path, lengths: list[int], bank_size: int) -> dict[int, torch.Tensor]:
    """Length → tokenised teacher samples from a FASTA (the first ``bank_size`` of each training length)."""
    by_length: dict[int, list[str]] = {}
    for record_id, seq in read_fasta(path):
        by_length.setdefault(len(seq), []).append(ALPHABET.validate(seq, record_id))
    if unused := sorted(set(by_length) - set(lengths)):
        raise ValueError(f"{path} has samples of lengths {unused} that are not in --lengths {lengths}; drop them")
    for n, seqs in by_length.items():
        if len(seqs) < bank_size:
            raise ValueError(f"{path} has {len(seqs)} samples of length {n}; --bank-size {bank_size} needs as many")
    return {n: ALPHABET.encode(seqs[:bank_size]) for n, seqs in by_length.items()}


def main(argv: list[str] | None = None) -> int:
    """Run one distillation; 0 on success. Errors are raised (``python -m protein_didi.distill`` prints them)."""
    args = build_parser().parse_args(argv)
    args.lengths = args.lengths or PROTEIN_LENGTHS
    config = distill_config(args)
    ctx = start_parallel_run(args.device, config.seed, fsdp=args.fsdp)
    device = ctx.device
    teacher = load_model(args.teacher, device)
    # distil the distribution we sample: the 20 standard residues. Renormalising non-standard ones away after
    # the model's softmax (the sampler's suppression) leaves their logits rounding-noise gradients, which Adam
    # amplifies into a random walk of those weights; masked before the softmax they get exactly none
    teacher.model.allowed.copy_(ALPHABET.standard_ids)
    data_info: dict[str, Any] = {}
    if args.data is not None:
        meta = read_meta(args.data)
        if not str(meta.get("alphabet", "")).startswith("esm"):
            raise ValueError(f"{args.data} was tokenised with {meta.get('alphabet')!r}, the teacher uses ESM's")
        data_info = {"distill_data": meta.get("source")}
    # antibody teachers: log the student's chain mix per step (when ANARCI is here), the early sign of a collapse
    # into one chain type
    describe = chain_mix if is_antibody_model(teacher.info) and anarci_available() else None
    prompts = ProteinPrompts(args.lengths, config.seed, describe=describe)
    bank = None
    if args.teacher_samples is not None:
        bank = read_teacher_samples(args.teacher_samples, args.lengths, config.bank_size)
        data_info["teacher_samples"] = str(args.teacher_samples)

    def export(out: Path, student: EsmDenoiser, aux: torch.nn.Module, info: dict[str, Any]) -> None:
        keep = {
            k: v
            for k, v in teacher.info.items()
            if k.startswith("train_") or k in ("max_residues", "antibody", "licence")
        }
        info = {**keep, **data_info, **info, "teacher": teacher.name, "lengths": args.lengths}
        extra = shipped_tensors(aux)
        save_model(out / "model", student, teacher.schedule, f"student-{args.method}", info, extra_tensors=extra)
        save_json(out / "distill_config.json", info)

    student_init = None
    if args.student_init is not None:
        student_init = load_model(args.student_init, device).model
        student_init.allowed.copy_(ALPHABET.standard_ids)
        data_info["student_init"] = args.student_init
    summary = distill_run(
        config, teacher.model, teacher.schedule, prompts, export, ctx,
        out=args.out, resume=args.resume, checkpoint_every=args.checkpoint_every, teacher_samples=bank,
        student_init=student_init,
    )  # fmt: skip
    return succeed(ctx, f"student written to {args.out / 'model'}; {summary}")
