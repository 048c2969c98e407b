"""Train the text judge: ``python -m protein_didi.train_judge --domain text --data DIR --out DIR``.

Minimises next-token cross-entropy of a small causal ALiBi transformer on
random ``--context``-token windows of the train stream with AdamW, checkpoints
atomically and continues exactly with ``--resume`` (windows are a pure function
of ``(seed, step)``). The export (``OUT/model``) records the held-out NLL on the
valid split next to the unigram baseline it must beat; copy it to
``protein_didi/checkpoints/text-judge`` to ship it.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path

import numpy as np
import torch

from protein_didi.core.checkpoint import save_json
from protein_didi.core.loop import run_training
from protein_didi.core.optim import OptimizerState, adamw_from_args, optimizer_step
from protein_didi.core.train_cli import add_arch_and_steps, add_optimizer_args, add_run_args, start_run, training_parser
from protein_didi.text.data import TextCorpus, TextDataError
from protein_didi.text.judge import ARCHITECTURES, CausalTextLM, JudgeConfig, TextJudge


def windows(stream: np.ndarray, length: int, starts: np.ndarray) -> torch.Tensor:
    """(N, length) token windows of ``stream`` beginning at ``starts``."""
    return torch.from_numpy(np.stack([np.asarray(stream[s : s + length], dtype=np.int64) for s in starts]))


@torch.no_grad()
def heldout_nll(model: CausalTextLM, stream: np.ndarray, context: int, batch_size: int = 32) -> float:
    """Nats per token over consecutive non-overlapping windows of a held-out stream (first token of each as context)."""
    model.eval()
    starts = np.arange(0, len(stream) - context, context)
    total, count = 0.0, 0
    for i in range(0, len(starts), batch_size):
        x = windows(stream, context + 1, starts[i : i + batch_size])
        total -= float(model.target_log_probs(x.to(next(model.parameters()).device)).sum())
        count += x.shape[0] * context
    return total / count


def unigram_nll(train_counts: np.ndarray, stream: np.ndarray, context: int) -> float:
    """The same tokens as :func:`heldout_nll` under the add-½ training unigram (the baseline to beat)."""
    counts = np.asarray(train_counts, dtype=np.float64)[:-1] + 0.5  # drop the [MASK] slot
    log_p = np.log(counts / counts.sum())
    starts = np.arange(0, len(stream) - context, context)
    ids = np.concatenate([np.asarray(stream[s + 1 : s + context + 1], dtype=np.int64) for s in starts])
    return float(-log_p[ids].mean())


class JudgeTask(OptimizerState):
    """One AdamW step on next-token cross-entropy per call."""

    def __init__(self, model: CausalTextLM, corpus: TextCorpus, args: argparse.Namespace, device: torch.device):
        self.model, self.corpus, self.args, self.device = model.to(device), corpus, args, device
        self.train = corpus.stream("train")
        if len(self.train) <= args.context + 1:
            raise TextDataError(f"the train split has fewer than {args.context + 1} tokens")
        # linear warm-up, then cosine decay to 5 %
        self.opt, self.sched = adamw_from_args(model.parameters(), args, floor=0.05)
        self.started, self.earlier_seconds = time.time(), 0.0

    def batch(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.args.seed, step])
        return windows(
            self.train,
            self.args.context + 1,
            rng.integers(0, len(self.train) - self.args.context - 1, self.args.batch_size),
        )

    def train_step(self, step: int) -> dict[str, float]:
        self.model.train()
        x = self.batch(step).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.args.bf16):
            loss = -self.model.target_log_probs(x).mean()
        grad_norm = optimizer_step(loss, self.model, self.opt, self.sched, self.args.grad_clip)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self.sched.get_last_lr()[0]}

    def export(self, out_dir: Path) -> None:
        valid = self.corpus.stream("valid")
        nll = heldout_nll(self.model, valid, self.args.context)
        unigram = unigram_nll(self.corpus.unigram_counts(), valid, self.args.context)
        info = {
            "judge": "causal ALiBi transformer trained on the corpus",
            "arch": self.args.arch,
            "parameters": sum(p.numel() for p in self.model.parameters()),
            "trained_steps": self.args.steps,
            "batch_size": self.args.batch_size,
            "context": self.args.context,
            "lr": self.args.lr,
            "bf16_autocast": self.args.bf16,
            "seed": self.args.seed,
            "train_seconds": round(self.seconds(), 1),
            "data": self.corpus.meta["source"],
            "data_dir": str(self.args.data),
            "valid_nll_nats_per_token": round(nll, 4),
            "valid_ppl": round(math.exp(nll), 2),
            "valid_unigram_nats_per_token": round(unigram, 4),
        }
        TextJudge(self.model.eval(), self.corpus.tokenizer, info).save(out_dir / "model")
        save_json(out_dir / "eval.json", info)
        print(
            f"valid NLL {nll:.4f} nats/token (PPL {math.exp(nll):.1f}) vs unigram {unigram:.4f}; "
            f"judge in {out_dir / 'model'}",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    p = training_parser(
        "python -m protein_didi.train_judge --domain text", __doc__, "folder made by `python -m data_prep.text`"
    )
    add_arch_and_steps(p, ARCHITECTURES, "small", "judge size (default small)", steps=1000)
    p.add_argument("--batch-size", type=int, default=32, help="windows per step (default 32)")
    p.add_argument("--context", type=int, default=128, help="tokens predicted per window (default 128)")
    add_optimizer_args(p, lr=3e-3, warmup=50, weight_decay=0.01)
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fp32 weights); faster on AVX512-BF16 CPUs")
    add_run_args(p, checkpoint_every=100, seed_help="windows and initial weights")
    return p


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_judge --domain text`` prints them)."""
    args = build_parser().parse_args(argv)
    device = start_run(args)
    corpus = TextCorpus(args.data)
    model = CausalTextLM(JudgeConfig(vocab_size=corpus.tokenizer.mask_id, **ARCHITECTURES[args.arch]))
    run_training(JudgeTask(model, corpus, args, device), args.out, args.steps, args.resume, args.checkpoint_every,
                 desc="text judge")  # fmt: skip
    return 0
