"""Train a masked-diffusion protein teacher: ``python -m protein_didi.train_teacher --data DIR --out DIR``.

Minimises the continuous-time masked-diffusion NELBO with AdamW, keeps an EMA
of the weights, checkpoints atomically every ``--checkpoint-every`` steps and
continues exactly where it stopped with ``--resume``. The exported folder
(EMA weights, half precision) is what ``sample`` and ``distill`` load.
"""

from __future__ import annotations

import argparse
import math
import sys
import time
from pathlib import Path
from typing import Any

import torch

from protein_didi.core.checkpoint import CheckpointError, save_json
from protein_didi.core.device import resolve_device
from protein_didi.core.ema import EMA
from protein_didi.core.loop import TrainingDiverged, run_training, step_seed
from protein_didi.core.loss import masked_diffusion_loss
from protein_didi.core.schedule import get_schedule
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.evaluate import heldout_elbo, unigram_cross_entropy
from protein_didi.protein.model import ARCHITECTURES, EsmDenoiser, esm_config
from protein_didi.protein.pretrained import save_model
from protein_didi.protein.shards import ProteinShards, ShardError, read_meta


class TeacherTask:
    """One AdamW step on the masked-diffusion NELBO per call."""

    def __init__(self, model: EsmDenoiser, batches: ProteinBatches, args: argparse.Namespace, device: torch.device):
        self.model = model.to(device)
        self.batches = batches
        self.args = args
        self.device = device
        self.schedule = get_schedule(args.schedule)
        self.opt = torch.optim.AdamW(model.parameters(), lr=args.lr, betas=(0.9, 0.98), weight_decay=args.weight_decay)
        warmup, total = max(1, args.warmup), max(args.steps, args.warmup + 1)

        def lr_factor(s: int) -> float:  # linear warm-up, then cosine decay to 10 %
            if s < warmup:
                return (s + 1) / warmup
            return 0.1 + 0.45 * (1 + math.cos(math.pi * min(1.0, (s - warmup) / (total - warmup))))

        self.sched = torch.optim.lr_scheduler.LambdaLR(self.opt, lr_factor)
        self.ema = EMA(model, args.ema)
        self.started = time.time()

    def train_step(self, step: int) -> dict[str, float]:
        self.model.train()
        x = self.batches.batch(step).to(self.device)
        gen = torch.Generator(device=self.device).manual_seed(step_seed(self.args.seed, step))
        terms = masked_diffusion_loss(self.model, x, ~ALPHABET.special_positions(x), self.schedule, generator=gen)
        self.opt.zero_grad(set_to_none=True)
        terms.loss.backward()
        grad_norm = torch.nn.utils.clip_grad_norm_(self.model.parameters(), self.args.grad_clip)
        self.opt.step()
        self.sched.step()
        self.ema.update(self.model)
        return {
            "loss": terms.loss.item(),
            "nll_masked": float(terms.nll_masked),
            "grad_norm": float(grad_norm),
            "lr": self.sched.get_last_lr()[0],
        }

    def state_dict(self) -> dict[str, Any]:
        return {
            "model": self.model.state_dict(),
            "opt": self.opt.state_dict(),
            "sched": self.sched.state_dict(),
            "ema": self.ema.state_dict(),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.model.load_state_dict(state["model"])
        self.opt.load_state_dict(state["opt"])
        self.sched.load_state_dict(state["sched"])
        self.ema.load_state_dict(state["ema"])

    def export(self, out_dir: Path) -> None:
        ema_model = self.ema.copy_to(self.model).eval()
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
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.train_teacher",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--data", type=Path, required=True, help="folder made by `python -m data_prep.fasta`")
    p.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    p.add_argument("--arch", choices=sorted(ARCHITECTURES), default="tiny", help="model size (default tiny, ~1.8M)")
    p.add_argument("--steps", type=int, default=4000, help="optimizer steps (default 4000)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per step (default 32)")
    p.add_argument("--max-residues", type=int, default=128, help="random crop length for training (default 128)")
    p.add_argument("--lr", type=float, default=1e-3, help="peak AdamW learning rate (default 1e-3)")
    p.add_argument("--warmup", type=int, default=200, help="linear warm-up steps (default 200)")
    p.add_argument("--weight-decay", type=float, default=0.01, help="AdamW weight decay (default 0.01)")
    p.add_argument("--grad-clip", type=float, default=1.0, help="gradient-norm clip (default 1.0)")
    p.add_argument("--ema", type=float, default=0.999, help="EMA decay of exported weights (default 0.999)")
    p.add_argument("--schedule", choices=["loglinear", "cosine"], default="loglinear", help="noise schedule α_t")
    p.add_argument("--checkpoint-every", type=int, default=200, help="steps between atomic checkpoints")
    p.add_argument("--seed", type=int, default=0, help="seed of batches, times and masks (default 0)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, mps")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        device = resolve_device(args.device)
        torch.manual_seed(args.seed)
        shards = ProteinShards.open(args.data, "train")
        model = EsmDenoiser(esm_config(args.arch))
        task = TeacherTask(model, ProteinBatches(shards, args.batch_size, args.max_residues, args.seed), args, device)
        run_training(task, args.out, args.steps, args.resume, args.checkpoint_every, desc="teacher")
    except (ShardError, CheckpointError, TrainingDiverged, ValueError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
