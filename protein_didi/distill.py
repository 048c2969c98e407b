"""Distil a masked-diffusion teacher into a few-step student.

    python -m protein_didi.distill --teacher teacher --out runs/student --student-nfe 8 --steps 600

DiDi-Instruct (default) follows Zheng et al. 2025, Algorithm 1, with a switch for
every trick (ablations); ``--method idlm`` runs inverse distillation (IDLM) on
the same loop, teacher bank and checkpointing. Runs checkpoint atomically to OUT/train_state.pt and
continue exactly with ``--resume``; the exported student (EMA weights plus the
discriminator RGAS needs) lands in OUT/model and loads with
``python -m protein_didi.sample --model OUT/model``.

``--domain text`` distils a text DiT teacher with the same trainers and loop
(see :mod:`protein_didi.text.distill`)::

    python -m protein_didi.distill --domain text --teacher teacher --data data/text-pydoc \\
        --out runs/text-student --student-nfe 8 --steps 200
"""

from __future__ import annotations

import argparse
from pathlib import Path
from typing import Any

import torch

from protein_didi.cli import int_list
from protein_didi.core.checkpoint import CheckpointError, save_json
from protein_didi.core.didi import DidiConfig, DidiTrainer
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.distill_base import DistillConfig, DistillTrainer
from protein_didi.core.distributed import DistributedError
from protein_didi.core.idlm import IdlmConfig, IdlmTrainer
from protein_didi.core.loop import TrainingDiverged
from protein_didi.core.timesampling import TIME_DISTRIBUTIONS
from protein_didi.core.train_cli import add_fsdp_arg, distill_run, fail, start_parallel_run, succeed
from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError
from protein_didi.protein.fasta import FastaError, read_fasta
from protein_didi.protein.model import EsmDenoiser
from protein_didi.protein.pretrained import load_model, save_model
from protein_didi.protein.prompts import ProteinPrompts
from protein_didi.protein.shards import ShardError, read_meta


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.distill", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--teacher", default="teacher", help="teacher: a registered name, a checkpoint folder or hub id")
    io.add_argument(
        "--data",
        type=Path,
        default=None,
        help="prepared data folder (data_prep.fasta); checked for a matching alphabet and recorded",
    )
    io.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    io.add_argument("--domain", choices=["protein", "text"], default="protein", help="what the teacher generates")
    io.add_argument("--tokenizer", default=None, help="text: GPT-2 tokenizer folder for an MDLM/DUO teacher")
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
    run.add_argument(
        "--lengths",
        type=int_list,
        default=None,
        help="sequence lengths to train on, one drawn per step (default 50,100,150,200; text: the teacher's block)",
    )
    run.add_argument("--teacher-nfe", type=int, default=128, help="teacher steps for its sample bank (128)")
    run.add_argument("--bank-size", type=int, default=32, help="teacher samples per length in the bank (32)")
    run.add_argument(
        "--teacher-samples",
        type=Path,
        default=None,
        help="FASTA of samples the same teacher made (a benchmark's or earlier run's): fills the bank for the "
        "lengths it covers (the first --bank-size of each) instead of sampling the teacher",
    )
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
    return p


def config_from_args(args: argparse.Namespace) -> DistillConfig:
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


PROTEIN_LENGTHS = [50, 100, 150, 200]


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
    args = build_parser().parse_args(argv)
    if args.domain == "text":
        from protein_didi.text.distill import main_text

        return main_text(args, config_from_args, TRAINERS)
    args.lengths = args.lengths or PROTEIN_LENGTHS
    ctx = None
    try:
        ctx = start_parallel_run(args)
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
        config = config_from_args(args)
        prompts = ProteinPrompts(args.lengths, args.seed)
        bank = None
        if args.teacher_samples is not None:
            bank = read_teacher_samples(args.teacher_samples, args.lengths, config.bank_size)
            data_info["teacher_samples"] = str(args.teacher_samples)

        def export(out: Path, student: EsmDenoiser, aux: torch.nn.Module, info: dict[str, Any]) -> None:
            keep = {k: v for k, v in teacher.info.items() if k.startswith("train_") or k == "max_residues"}
            info = {**keep, **data_info, **info, "teacher": teacher.name, "lengths": args.lengths}
            # RGAS needs the discriminator at sampling time; IDLM's fake model is only a training device
            extra = {"discriminator": aux.state_dict()} if isinstance(aux, Discriminator) else None
            save_model(out / "model", student, teacher.schedule, f"student-{args.method}", info, extra_tensors=extra)
            save_json(out / "distill_config.json", info)

        summary = distill_run(
            TRAINERS[args.method], teacher.model, teacher.schedule, prompts, config, export, args, ctx, bank
        )
    except (
        CheckpointError,
        ShardError,
        FastaError,
        InvalidSequenceError,
        TrainingDiverged,
        DistributedError,
        ValueError,
    ) as err:
        return fail(err, ctx)
    return succeed(ctx, f"student written to {args.out / 'model'}; {summary}")


if __name__ == "__main__":
    raise SystemExit(main())
