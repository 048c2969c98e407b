"""Train an MDLM-style text teacher: ``python -m protein_didi.train_teacher --domain text --data DIR --out DIR``.

A DiT denoiser (``--arch tiny`` on CPU, ``mdlm-169m`` for the paper's size)
minimises the core's continuous-time masked-diffusion NELBO on wrapped
``<bos> … <eos>`` blocks of ``--block-length`` tokens with AdamW (warm-up, cosine
decay), keeps an EMA of the weights, checkpoints atomically and continues
exactly with ``--resume``. The export (``OUT/model``: EMA weights in half
precision plus the corpus's tokenizer) records the held-out NELBO next to the
unigram baseline it must beat; it is what ``sample --domain text`` and
``distill --domain text`` load.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protein_didi.core.checkpoint import save_json
from protein_didi.core.distributed import SINGLE, Context
from protein_didi.core.loop import run_training
from protein_didi.core.teacher_task import NelboTeacherTask
from protein_didi.core.train_cli import (
    add_arch_and_steps,
    add_optimizer_args,
    add_parallel_args,
    add_run_args,
    start_parallel_run,
    training_parser,
)
from protein_didi.text.data import TextBatches, TextCorpus, content_mask
from protein_didi.text.evaluate import heldout_nelbo, mean_token_entropy, unigram_cross_entropy
from protein_didi.text.model import ARCHITECTURES, DiT, dit_config
from protein_didi.text.pretrained import save_model


class TeacherTask(NelboTeacherTask):
    """One AdamW step on the masked-diffusion NELBO per call (data-parallel under torchrun)."""

    def __init__(self, model: DiT, corpus: TextCorpus, args: argparse.Namespace, ctx: Context = SINGLE) -> None:
        self.corpus = corpus
        batches = TextBatches(corpus.blocks("train", args.block_length), args.seed)
        # linear warm-up, then cosine decay to 10 %
        super().__init__(model, batches.batch, content_mask, len(batches), args, ctx, lr_floor=0.1)

    def export(self, out_dir: Path) -> None:
        ema_model = self.averaged_model()
        if ema_model is None:  # not rank 0
            return
        valid = self.corpus.blocks("valid", self.args.block_length)
        n = min(len(valid), self.args.eval_blocks)
        nelbo = heldout_nelbo(ema_model, valid, self.schedule, num_blocks=n, device=self.device)
        unigram = unigram_cross_entropy(self.corpus.unigram_counts(), valid, num_blocks=n)
        info = {
            "arch": self.args.arch,
            "parameters": ema_model.num_parameters(),
            "trained_steps": self.args.steps,
            "batch_size": self.args.batch_size,
            "block_length": self.args.block_length,
            "lr": self.args.lr,
            "bf16_autocast": self.args.bf16,
            "seed": self.args.seed,
            "train_seconds": round(self.seconds(), 1),
            "data": self.corpus.meta["source"],
            "data_dir": str(self.args.data),
            "train_tokens": self.corpus.meta["splits"]["train"]["tokens"],
            "valid_blocks": n,
            "valid_nelbo_nats_per_token": round(nelbo, 4),
            "valid_unigram_nats_per_token": round(unigram, 4),
            "valid_token_entropy": round(mean_token_entropy(valid[:n]), 4),
        }
        save_model(out_dir / "model", ema_model, self.schedule, self.corpus.tokenizer, "teacher", info)
        save_json(out_dir / "eval.json", info)
        print(
            f"valid NELBO {nelbo:.4f} nats/token vs unigram {unigram:.4f}; model in {out_dir / 'model'}",
            file=sys.stderr,
        )


def build_parser() -> argparse.ArgumentParser:
    p = training_parser(
        "python -m protein_didi.train_teacher --domain text", __doc__, "folder made by `python -m data_prep.text`"
    )
    add_arch_and_steps(p, ARCHITECTURES, "tiny", "DiT size (default tiny, ~1.6M)", steps=2000)
    p.add_argument("--batch-size", type=int, default=32, help="blocks per step (default 32)")
    p.add_argument("--block-length", type=int, default=128, help="tokens per block incl. <bos>/<eos> (default 128)")
    add_optimizer_args(p, lr=2e-3, warmup=100, weight_decay=0.0, weight_decay_note="0, as MDLM", ema=0.999)
    p.add_argument("--schedule", choices=["loglinear", "cosine"], default="loglinear", help="noise schedule α_t")
    p.add_argument("--bf16", action="store_true", help="bfloat16 autocast (fp32 weights); faster on AVX512-BF16 CPUs")
    p.add_argument("--eval-blocks", type=int, default=256, help="held-out blocks for the exported NELBO (256)")
    add_parallel_args(p)
    add_run_args(p, checkpoint_every=200, seed_help="weights, batches, times and masks")
    return p


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_teacher`` prints them)."""
    args = build_parser().parse_args(argv)
    ctx = start_parallel_run(args)
    corpus = TextCorpus(args.data)
    model = DiT(dit_config(args.arch, corpus.tokenizer.vocab_size), corpus.tokenizer.mask_id)
    task = TeacherTask(model, corpus, args, ctx)
    run_training(task, args.out, args.steps, args.resume, args.checkpoint_every, desc="text teacher", ctx=ctx)
    ctx.close()
    return 0
