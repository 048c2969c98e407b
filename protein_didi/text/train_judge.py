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
from protein_didi.text.data import TextCorpus, TextDataError
from protein_didi.text.judge import ARCHITECTURES, CausalTextLM, JudgeConfig, TextJudge


@dataclass(kw_only=True)
class TextJudgeSettings(JudgeSettings):
    """The text judge's settings, each also its flag."""

    steps: int = redefault(JudgeSettings, "steps", 1000)
    batch_size: int = redefault(JudgeSettings, "batch_size", 32, help="windows per step (default {default})")
    warmup: int = redefault(JudgeSettings, "warmup", 50)
    seed: int = redefault(JudgeSettings, "seed", help="seed of windows and initial weights (default {default})")
    context: int = setting(128, "tokens predicted per window (default {default})", "--context")


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

    def __init__(
        self, model: CausalTextLM, corpus: TextCorpus, settings: TextJudgeSettings, device: torch.device
    ) -> None:
        self.model, self.corpus, self.settings, self.device = model.to(device), corpus, settings, device
        self.train = corpus.stream("train")
        if len(self.train) <= settings.context + 1:
            raise TextDataError(f"the train split has fewer than {settings.context + 1} tokens")
        # linear warm-up, then cosine decay to 5 %
        self.opt, self.sched = adamw_for(model.parameters(), settings, floor=0.05)
        self.started, self.earlier_seconds = time.time(), 0.0

    def batch(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.settings.seed, step])
        context = self.settings.context
        return windows(
            self.train, context + 1, rng.integers(0, len(self.train) - context - 1, self.settings.batch_size)
        )

    def train_step(self, step: int) -> dict[str, float]:
        self.model.train()
        x = self.batch(step).to(self.device)
        with torch.autocast(self.device.type, dtype=torch.bfloat16, enabled=self.settings.bf16):
            loss = -self.model.target_log_probs(x).mean()
        grad_norm = optimizer_step(loss, self.model, self.opt, self.sched, self.settings.grad_clip)
        return {"loss": float(loss.detach()), "grad_norm": float(grad_norm), "lr": self.sched.get_last_lr()[0]}

    def export(self, out_dir: Path) -> None:
        settings = self.settings
        valid = self.corpus.stream("valid")
        nll = heldout_nll(self.model, valid, settings.context)
        unigram = unigram_nll(self.corpus.unigram_counts(), valid, settings.context)
        info = {
            "judge": "causal ALiBi transformer trained on the corpus",
            **settings.export_info(sum(p.numel() for p in self.model.parameters()), self.seconds()),
            "context": settings.context,
            "data": self.corpus.meta["source"],
            "data_dir": str(self.corpus.root),
            "valid_nll_nats_per_token": round(nll, 4),
            "valid_ppl": round(math.exp(nll), 2),
            "valid_unigram_nats_per_token": round(unigram, 4),
            "settings": settings_dict(settings),
        }
        TextJudge(self.model.eval(), self.corpus.tokenizer, info).save(out_dir / "model")
        held_out = f"valid NLL {nll:.4f} nats/token (PPL {math.exp(nll):.1f}) vs unigram {unigram:.4f}"
        report_export(out_dir, info, held_out, "judge")


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser(
        "python -m protein_didi.train_judge --domain text", __doc__, TextJudgeSettings,
        data_help="folder made by `python -m data_prep.text`", checkpoint_every=100,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_judge --domain text`` prints them)."""
    args = build_parser().parse_args(argv)
    settings = dataclass_from_args(TextJudgeSettings, args)
    device = start_run(args.device, settings.seed, args.threads)
    corpus = TextCorpus(args.data)
    model = CausalTextLM(JudgeConfig(vocab_size=corpus.tokenizer.mask_id, **ARCHITECTURES[settings.arch]))
    run_training(JudgeTask(model, corpus, settings, device), args.out, settings.steps, args.resume,
                 args.checkpoint_every, desc="text judge")  # fmt: skip
    return 0
