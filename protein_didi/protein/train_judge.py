"""Train the autoregressive judge: ``python -m protein_didi.train_judge --data DIR --out DIR``.

Minimises next-token cross-entropy of a small causal transformer on random
≤``--max-residues`` crops of the train split with AdamW, checkpoints atomically
and continues exactly with ``--resume`` (batches are a pure function of
``(seed, step)``). The export (``OUT/model``) records the held-out NLL on the
valid split next to the unigram baseline it must beat; copy it to
``protein_didi/checkpoints/judge`` to ship it.

``--domain text`` trains the text judge instead (options: ``python -m protein_didi.train_judge --domain text
--help``).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np
import torch

from protein_didi.core.checkpoint import save_json
from protein_didi.core.loop import run_training
from protein_didi.core.optim import OptimizerState, adamw_from_args, optimizer_step
from protein_didi.core.train_cli import add_arch_and_steps, add_optimizer_args, add_run_args, start_run, training_parser
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.evaluate import unigram_cross_entropy
from protein_didi.protein.judge import ARCHITECTURES, CausalProteinLM, Judge
from protein_didi.protein.shards import ProteinShards, read_meta


def causal_loss(model: CausalProteinLM, tokens: torch.Tensor, max_residues: int) -> torch.Tensor:
    """Mean next-token NLL over residues and ``<eos>``, skipping the ``<eos>`` of cropped rows.

    :class:`ProteinBatches` closes every crop with ``<eos>``; for a crop cut out of
    a longer protein that ``<eos>`` is false, so rows holding exactly
    ``max_residues`` residues do not train it (a protein of exactly that length
    loses one target, which is harmless).
    """
    logp, real = model.target_log_probs(tokens)
    cropped = (tokens != ALPHABET.pad_id).sum(1) - 2 >= max_residues
    real = real & ~(cropped[:, None] & (tokens[:, 1:] == ALPHABET.eos_id))
    return -(logp * real).sum() / real.sum()


@torch.no_grad()
def heldout_residue_nll(
    model: CausalProteinLM,
    shards: ProteinShards,
    max_residues: int,
    num_sequences: int,
    batch_size: int = 32,
    seed: int = 0,
    device: torch.device | str = "cpu",
) -> float:
    """Nats per residue on the first ``max_residues`` residues of held-out sequences, ``<eos>`` excluded.

    Uses the same sequences and residues as :func:`unigram_cross_entropy` with the
    same arguments, so the two numbers are directly comparable.
    """
    model.eval()
    idx = np.random.default_rng(seed).permutation(len(shards))[:num_sequences]
    total, count = 0.0, 0
    for start in range(0, len(idx), batch_size):
        x = ALPHABET.pack([shards[int(i)][:max_residues] for i in idx[start : start + batch_size]]).to(device)
        logp, real = model.target_log_probs(x)
        residue = real & (x[:, 1:] != ALPHABET.eos_id)
        total -= float((logp * residue).sum())
        count += int(residue.sum())
    return total / count


class JudgeTask(OptimizerState):
    """One AdamW step on next-token cross-entropy per call."""

    def __init__(self, model: CausalProteinLM, batches: ProteinBatches, args: argparse.Namespace, device: torch.device):
        self.model = model.to(device)
        self.batches = batches
        self.args = args
        self.device = device
        # linear warm-up, then cosine decay to 5 %
        self.opt, self.sched = adamw_from_args(model.parameters(), args, floor=0.05)
        self.started, self.earlier_seconds = time.time(), 0.0  # wall time of sessions before a --resume

    def train_step(self, step: int) -> dict[str, float]:
        self.model.train()
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.args.bf16):
            x = self.batches.batch(step * self.args.batch_size, self.args.batch_size).to(self.device)
            loss = causal_loss(self.model, x, self.args.max_residues)
        grad_norm = optimizer_step(loss, self.model, self.opt, self.sched, self.args.grad_clip)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self.sched.get_last_lr()[0]}

    def export(self, out_dir: Path) -> None:
        self.model.eval()
        meta = read_meta(self.args.data)
        valid = ProteinShards.open(self.args.data, "valid")
        n, crop = len(valid), self.args.max_residues
        nll = heldout_residue_nll(self.model, valid, crop, n, device=self.device)
        unigram = unigram_cross_entropy(meta["splits"]["train"]["composition"], valid, crop, n)
        judge = Judge(self.model)
        full = judge.nll(ALPHABET.decode(ALPHABET.pack([valid[i] for i in range(n)])))
        info = {
            "arch": self.args.arch,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "trained_steps": self.args.steps,
            "batch_size": self.args.batch_size,
            "lr": self.args.lr,
            "bf16_autocast": self.args.bf16,
            "max_residues": crop,
            "seed": self.args.seed,
            "train_seconds": round(self.seconds(), 1),
            "data": meta["source"],
            "data_dir": str(self.args.data),
            "data_split": meta.get("split", {}),
            "valid_sequences": n,
            "valid_nll_nats_per_residue": round(nll, 4),
            "valid_unigram_nats_per_residue": round(unigram, 4),
            "valid_judge_nll_full_length_mean": round(float(full.mean()), 4),
            "metric_note": (
                f"valid_nll / valid_unigram: residues only, first {crop} residues of every valid sequence; "
                "valid_judge_nll_full_length_mean: mean of Judge.nll (full length, residues + <eos>)"
            ),
        }
        judge.info = info
        judge.save(out_dir / "model")
        save_json(out_dir / "eval.json", info)
        print(
            f"valid NLL {nll:.4f} nats/residue vs unigram {unigram:.4f}; judge in {out_dir / 'model'}",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    p = training_parser("python -m protein_didi.train_judge", __doc__, "folder made by `python -m data_prep.fasta`")
    add_arch_and_steps(p, ARCHITECTURES, "small", "judge size (default small)", steps=1600)
    p.add_argument("--batch-size", type=int, default=16, help="sequences per step (default 16)")
    p.add_argument("--max-residues", type=int, default=256, help="random crop length for training (default 256)")
    add_optimizer_args(p, lr=3e-3, warmup=100, weight_decay=0.01)
    p.add_argument(
        "--bf16", action="store_true", help="bfloat16 autocast (fp32 weights): ~1.5x faster on AVX512-BF16 CPUs"
    )
    add_run_args(p, checkpoint_every=100, seed_help="batches and initial weights")
    return p


def build_task(args: argparse.Namespace) -> JudgeTask:
    """A fresh task (weights seeded by ``--seed``); :func:`run_training` restores state on ``--resume``."""
    device = start_run(args)
    model = CausalProteinLM(ARCHITECTURES[args.arch])
    shards = ProteinShards.open(args.data, "train")
    return JudgeTask(model, ProteinBatches(shards, args.max_residues, args.seed), args, device)


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_judge`` prints them)."""
    args = build_parser().parse_args(argv)
    task = build_task(args)
    run_training(task, args.out, args.steps, args.resume, args.checkpoint_every, desc="judge")
    return 0
