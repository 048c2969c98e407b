"""Train the text judge: ``python -m protein_didi.text.train_judge --data DIR --out DIR``.

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
from typing import Any

import numpy as np
import torch

from protein_didi.core.checkpoint import CheckpointError, save_json
from protein_didi.core.device import resolve_device
from protein_didi.core.loop import TrainingDiverged, run_training
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


class JudgeTask:
    """One AdamW step on next-token cross-entropy per call."""

    def __init__(self, model: CausalTextLM, corpus: TextCorpus, args: argparse.Namespace, device: torch.device):
        self.model, self.corpus, self.args, self.device = model.to(device), corpus, args, device
        self.train = corpus.stream("train")
        if len(self.train) <= args.context + 1:
            raise TextDataError(f"the train split has fewer than {args.context + 1} tokens")
        self.opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=args.weight_decay)
        warmup, total = max(1, args.warmup), max(args.steps, args.warmup + 1)

        def lr_factor(s: int) -> float:  # linear warm-up, then cosine decay to 5 %
            if s < warmup:
                return (s + 1) / warmup
            return 0.05 + 0.475 * (1 + math.cos(math.pi * min(1.0, (s - warmup) / (total - warmup))))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor)
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
        self.opt.zero_grad(set_to_none=True)
        loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.grad_clip)
        self.opt.step()
        self.sched.step()
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self.sched.get_last_lr()[0]}

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "seconds": self.seconds(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.started, self.earlier_seconds = time.time(), float(state.get("seconds", 0.0))

    def seconds(self) -> float:
        return self.earlier_seconds + time.time() - self.started

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
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.text.train_judge",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="folder made by `python -m data_prep.text`")
    p.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="small", help="judge size (default small)")
    p.add_argument("--steps", type=int, default=1000, help="optimizer steps (default 1000)")
    p.add_argument("--batch-size", type=int, default=32, help="windows per step (default 32)")
    p.add_argument("--context", type=int, default=128, help="tokens predicted per window (default 128)")
    p.add_argument("--lr", type=float, default=3e-3, help="peak AdamW learning rate (default 3e-3)")
    p.add_argument("--warmup", type=int, default=50, help="linear warm-up steps (default 50)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (default 1.0)")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fp32 weights); faster on AVX512-BF16 CPUs")
    p.add_argument("--checkpoint-every", type=int, default=100, help="steps between atomic checkpoints")
    p.add_argument("--seed", type=int, default=0, help="seed of windows and initial weights (default 0)")
    p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default 0: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, mps")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        if args.threads > 0:
            torch.set_num_threads(args.threads)
        device = resolve_device(args.device)
        torch.manual_seed(args.seed)
        corpus = TextCorpus(args.data)
        model = CausalTextLM(JudgeConfig(vocab_size=corpus.tokenizer.mask_id, **ARCHITECTURES[args.arch]))
        run_training(JudgeTask(model, corpus, args, device), args.out, args.steps, args.resume, args.checkpoint_every,
                     desc="text judge")  # fmt: skip
    except (TextDataError, CheckpointError, TrainingDiverged, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
