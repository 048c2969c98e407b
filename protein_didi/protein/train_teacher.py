"""Train a masked-diffusion protein teacher: ``python -m protein_didi.train_teacher --data DIR --out DIR``.

Minimises the continuous-time masked-diffusion NELBO with AdamW, keeps an EMA
of the weights, checkpoints atomically every ``--checkpoint-every`` steps and
continues exactly where it stopped with ``--resume``. The exported folder
(EMA weights, half precision) is what ``sample`` and ``distill`` load.

``--domain text`` trains the text teacher instead (options: ``python -m protein_didi.train_teacher --domain
text --help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

import torch

from protein_didi.core.checkpoint import CheckpointError, save_json
from protein_didi.core.distributed import SINGLE, Context, DistributedError
from protein_didi.core.loop import TrainingDiverged, run_training
from protein_didi.core.teacher_task import NelboTeacherTask
from protein_didi.core.train_cli import (
    add_arch_and_steps,
    add_optimizer_args,
    add_parallel_args,
    add_run_args,
    fail,
    start_parallel_run,
    training_parser,
)
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.evaluate import heldout_elbo, unigram_cross_entropy
from protein_didi.protein.model import ARCHITECTURES, EsmDenoiser, esm_config
from protein_didi.protein.pretrained import save_model
from protein_didi.protein.shards import ProteinShards, ShardError, read_meta


def residue_positions(x: torch.Tensor) -> torch.Tensor:
    """The positions the NELBO may mask: every residue, never ``<cls>``/``<eos>``/padding."""
    return ~ALPHABET.special_positions(x)


class TeacherTask(NelboTeacherTask):
    """One AdamW step on the masked-diffusion NELBO per call (data-parallel under torchrun)."""

    keep_seconds = False  # its train_state.pt never recorded wall time

    def __init__(self, model: EsmDenoiser, shards: ProteinShards, args: argparse.Namespace, ctx: Context = SINGLE):
        batches = ProteinBatches(shards, args.max_residues, args.seed)
        super().__init__(model, batches.batch, residue_positions, len(batches), args, ctx, lr_floor=0.1)

    def export(self, out_dir: Path) -> None:
        ema_model = self.averaged_model()
        if ema_model is None:  # not rank 0
            return
        meta = read_meta(self.args.data)
        valid = ProteinShards.open(self.args.data, "valid")
        elbo = heldout_elbo(ema_model, valid, self.schedule, self.args.max_residues, device=self.device)
        unigram = unigram_cross_entropy(meta["splits"]["train"]["composition"], valid, self.args.max_residues)
        info = {
            "trained_steps": self.args.steps,
            "batch_size": self.args.batch_size,
            "max_residues": self.args.max_residues,
            "data": meta["source"],
            "valid_elbo_nats_per_residue": round(elbo, 4),
            "valid_unigram_nats_per_residue": round(unigram, 4),
            "train_length_histogram": meta["splits"]["train"]["length_histogram"],
            "train_composition": meta["splits"]["train"]["composition"],
        }
        save_model(out_dir / "model", ema_model, self.schedule, "teacher", info)
        save_json(out_dir / "eval.json", {k: v for k, v in info.items() if not k.startswith("train_")})
        print(
            f"valid NELBO {elbo:.4f} nats/residue vs unigram {unigram:.4f}; model in {out_dir / 'model'}",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    p = training_parser("python -m protein_didi.train_teacher", __doc__, "folder made by `python -m data_prep.fasta`")
    add_arch_and_steps(p, ARCHITECTURES, "tiny", "model size (default tiny, ~1.8M)", steps=4000)
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    p.add_argument("--max-residues", type=int, default=128, help="random crop length for training (default 128)")
    add_optimizer_args(p, lr=1e-3, warmup=200, weight_decay=0.01, ema=0.999)
    p.add_argument("--schedule", choices=["loglinear", "cosine"], default="loglinear", help="noise schedule α_t")
    add_parallel_args(p)
    add_run_args(p, checkpoint_every=200, seed_help="batches, times and masks", threads=False)
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    ctx = None
    try:
        ctx = start_parallel_run(args)
        shards = ProteinShards.open(args.data, "train")
        task = TeacherTask(EsmDenoiser(esm_config(args.arch)), shards, args, ctx)
        run_training(task, args.out, args.steps, args.resume, args.checkpoint_every, desc="teacher", ctx=ctx)
    except (ShardError, CheckpointError, TrainingDiverged, DistributedError, ValueError) as err:
        return fail(err, ctx)
    ctx.close()
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
