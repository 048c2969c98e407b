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
from dataclasses import dataclass
from pathlib import Path

from protein_didi.core.distributed import SINGLE, Context
from protein_didi.core.loop import run_training
from protein_didi.core.run_driver import report_export, start_parallel_run
from protein_didi.core.settings import dataclass_from_args, redefault, setting, settings_dict
from protein_didi.core.teacher_task import NelboTeacherTask, TeacherSettings
from protein_didi.core.train_cli import trainer_parser
from protein_didi.text.data import TextBatches, TextCorpus, content_mask
from protein_didi.text.evaluate import heldout_nelbo, mean_token_entropy, unigram_cross_entropy
from protein_didi.text.model import ARCHITECTURES, DiT, dit_config
from protein_didi.text.pretrained import save_model


@dataclass(kw_only=True)
class TextTeacherSettings(TeacherSettings):
    """The text teacher's settings, each also its flag."""

    arch: str = redefault(
        TeacherSettings, "arch", "tiny", choices=sorted(ARCHITECTURES), help="DiT size (default tiny, ~1.6M)"
    )
    steps: int = redefault(TeacherSettings, "steps", 2000)
    batch_size: int = redefault(TeacherSettings, "batch_size", 32, help="blocks per step (default {default})")
    lr: float = redefault(TeacherSettings, "lr", 2e-3)
    warmup: int = redefault(TeacherSettings, "warmup", 100)
    weight_decay: float = redefault(
        TeacherSettings, "weight_decay", 0.0, help="AdamW weight decay (default 0, as MDLM)"
    )
    seed: int = redefault(TeacherSettings, "seed", help="seed of weights, batches, times and masks (default {default})")
    block_length: int = setting(128, "tokens per block incl. <bos>/<eos> (default {default})", "--block-length")
    eval_blocks: int = setting(256, "held-out blocks for the exported NELBO ({default})", "--eval-blocks")


class TeacherTask(NelboTeacherTask):
    """One AdamW step on the masked-diffusion NELBO per call (data-parallel under torchrun)."""

    def __init__(self, model: DiT, corpus: TextCorpus, settings: TextTeacherSettings, ctx: Context = SINGLE) -> None:
        self.corpus, self.settings = corpus, settings
        batches = TextBatches(corpus.blocks("train", settings.block_length), settings.seed)
        # linear warm-up, then cosine decay to 10 %
        super().__init__(model, batches.batch, content_mask, len(batches), settings, ctx, lr_floor=0.1)

    def export(self, out_dir: Path) -> None:
        ema_model = self.averaged_model()
        if ema_model is None:  # not rank 0
            return
        settings = self.settings
        valid = self.corpus.blocks("valid", settings.block_length)
        n = min(len(valid), settings.eval_blocks)
        nelbo = heldout_nelbo(ema_model, valid, self.schedule, num_blocks=n, device=self.device)
        unigram = unigram_cross_entropy(self.corpus.unigram_counts(), valid, num_blocks=n)
        info = {
            **settings.export_info(ema_model.num_parameters(), self.seconds()),
            "block_length": settings.block_length,
            "data": self.corpus.meta["source"],
            "data_dir": str(self.corpus.root),
            "train_tokens": self.corpus.meta["splits"]["train"]["tokens"],
            "valid_blocks": n,
            "valid_nelbo_nats_per_token": round(nelbo, 4),
            "valid_unigram_nats_per_token": round(unigram, 4),
            "valid_token_entropy": round(mean_token_entropy(valid[:n]), 4),
            "settings": settings_dict(settings),
        }
        save_model(out_dir / "model", ema_model, self.schedule, self.corpus.tokenizer, "teacher", info)
        report_export(out_dir, info, f"valid NELBO {nelbo:.4f} nats/token vs unigram {unigram:.4f}")


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser(
        "python -m protein_didi.train_teacher --domain text", __doc__, TextTeacherSettings,
        data_help="folder made by `python -m data_prep.text`", checkpoint_every=200, fsdp=True,
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_teacher`` prints them)."""
    args = build_parser().parse_args(argv)
    settings = dataclass_from_args(TextTeacherSettings, args)
    ctx = start_parallel_run(args.device, settings.seed, threads=args.threads, fsdp=args.fsdp)
    corpus = TextCorpus(args.data)
    model = DiT(dit_config(settings.arch, corpus.tokenizer.vocab_size), corpus.tokenizer.mask_id)
    task = TeacherTask(model, corpus, settings, ctx)
    run_training(task, args.out, settings.steps, args.resume, args.checkpoint_every, desc="text teacher", ctx=ctx)
    ctx.close()
    return 0
