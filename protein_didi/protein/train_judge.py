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
import time
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from protein_didi.core.judge import JudgeSettings
from protein_didi.core.loop import run_training
from protein_didi.core.optim import OptimizerState, adamw_for, optimizer_step
from protein_didi.core.run_driver import report_export, start_run
from protein_didi.core.settings import dataclass_from_args, redefault, setting, settings_dict
from protein_didi.core.train_cli import trainer_parser
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.evaluate import unigram_cross_entropy
from protein_didi.protein.judge import ARCHITECTURES, CausalProteinLM, Judge
from protein_didi.protein.shards import ProteinShards, read_meta


@dataclass(kw_only=True)
class ProteinJudgeSettings(JudgeSettings):
    """The protein judge's settings, each also its flag."""

    steps: int = redefault(JudgeSettings, "steps", 1600)
    batch_size: int = redefault(JudgeSettings, "batch_size", 16)
    warmup: int = redefault(JudgeSettings, "warmup", 100)
    bf16: bool = redefault(
        JudgeSettings, "bf16", help="bfloat16 autocast (fp32 weights): ~1.5x faster on AVX512-BF16 CPUs"
    )
    max_residues: int = setting(256, "random crop length for training (default {default})", "--max-residues")


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

    def __init__(
        self, model: CausalProteinLM, batches: ProteinBatches, settings: ProteinJudgeSettings, data: Path,
        device: torch.device,
    ) -> None:  # fmt: skip
        """``data`` is the prepared folder ``batches`` come from: the export reads its valid split and metadata."""
        self.model = model.to(device)
        self.batches, self.settings, self.data, self.device = batches, settings, data, device
        # linear warm-up, then cosine decay to 5 %
        self.opt, self.sched = adamw_for(model.parameters(), settings, floor=0.05)
        self.started, self.earlier_seconds = time.time(), 0.0  # wall time of sessions before a --resume

    def train_step(self, step: int) -> dict[str, float]:
        self.model.train()
        settings = self.settings
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=settings.bf16):
            x = self.batches.batch(step * settings.batch_size, settings.batch_size).to(self.device)
            loss = causal_loss(self.model, x, settings.max_residues)
        grad_norm = optimizer_step(loss, self.model, self.opt, self.sched, settings.grad_clip)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self.sched.get_last_lr()[0]}

    def export(self, out_dir: Path) -> None:
        self.model.eval()
        settings = self.settings
        meta = read_meta(self.data)
        valid = ProteinShards.open(self.data, "valid")
        n, crop = len(valid), settings.max_residues
        nll = heldout_residue_nll(self.model, valid, crop, n, device=self.device)
        unigram = unigram_cross_entropy(meta["splits"]["train"]["composition"], valid, crop, n)
        judge = Judge(self.model)
        full = judge.nll(ALPHABET.decode(ALPHABET.pack([valid[i] for i in range(n)])))
        info = {
            **settings.export_info(sum(p.numel() for p in self.model.parameters()), self.seconds()),
            "max_residues": crop,
            "data": meta["source"],
            "data_dir": str(self.data),
            "data_split": meta.get("split", {}),
            "valid_sequences": n,
            "valid_nll_nats_per_residue": round(nll, 4),
            "valid_unigram_nats_per_residue": round(unigram, 4),
            "valid_judge_nll_full_length_mean": round(float(full.mean()), 4),
            "metric_note": (
                f"valid_nll / valid_unigram: residues only, first {crop} residues of every valid sequence; "
                "valid_judge_nll_full_length_mean: mean of Judge.nll (full length, residues + <eos>)"
            ),
            "settings": settings_dict(settings),
        }
        judge.info = info
        judge.save(out_dir / "model")
        report_export(out_dir, info, f"valid NLL {nll:.4f} nats/residue vs unigram {unigram:.4f}", "judge")


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser(
        "python -m protein_didi.train_judge", __doc__, ProteinJudgeSettings,
        data_help="folder made by `python -m data_prep.fasta`", checkpoint_every=100,
    )  # fmt: skip


def build_task(args: argparse.Namespace) -> JudgeTask:
    """A fresh task (weights seeded by ``--seed``); :func:`run_training` restores state on ``--resume``."""
    settings = dataclass_from_args(ProteinJudgeSettings, args)
    device = start_run(args.device, settings.seed, args.threads)
    model = CausalProteinLM(ARCHITECTURES[settings.arch])
    shards = ProteinShards.open(args.data, "train")
    return JudgeTask(model, ProteinBatches(shards, settings.max_residues, settings.seed), settings, args.data, device)


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_judge`` prints them)."""
    args = build_parser().parse_args(argv)
    task = build_task(args)
    run_training(task, args.out, task.settings.steps, args.resume, args.checkpoint_every, desc="judge")
    return 0
