"""Train a masked-diffusion protein teacher: ``python -m protein_didi.train_teacher --data DIR --out DIR``.

Minimises the continuous-time masked-diffusion NELBO with AdamW, keeps an EMA
of the weights, checkpoints atomically every ``--checkpoint-every`` steps and
continues exactly where it stopped with ``--resume``. The exported folder
(EMA weights, half precision) is what ``sample`` and ``distill`` load.

``--init NAME_OR_FOLDER`` continues a pretrained masked LM instead of a fresh
model (any ``load_model`` name or folder: AntiBERTy, a BERT-family folder, an
ESM-2/DPLM folder, a teacher exported here), as DPLM continues ESM-2: a BERT
learnt to fill 15 % masks, a diffusion sampler starts from 100 %. The model
keeps its architecture, vocabulary and noise schedule, and the export is of
the same family, so ``load_model(OUT/model)`` reads it like the original.
With ``--init`` the defaults follow DPLM's continued training of ESM-2: peak
rate 4e-5 after a 100-step warm-up, decaying to 1e-5 (``--lr-end``); to
continue a model already trained with this objective (one of our exports),
start at the end rate, ``--lr 1e-5`` (DPLM issue #11). ``--train-layers N``
trains only the top N transformer layers and the LM head; ``--band-sequences``
validation chains (64 by default with ``--init``) give the held-out NELBO per
mask-rate band before the first step and at every checkpoint (metrics.jsonl,
curves.png).

``--domain text`` trains the text teacher instead (options: ``python -m protein_didi.train_teacher --domain
text --help``).
"""

from __future__ import annotations

import argparse
import dataclasses
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from protein_didi.core.distributed import SINGLE, Context
from protein_didi.core.loop import run_training
from protein_didi.core.precision import native_bf16
from protein_didi.core.run_driver import report_export, start_parallel_run
from protein_didi.core.schedule import NoiseSchedule, get_schedule
from protein_didi.core.settings import dataclass_from_args, default_text, redefault, setting, settings_dict
from protein_didi.core.teacher_task import BandedNelbo, NelboTeacherTask, TeacherSettings
from protein_didi.core.train_cli import trainer_parser
from protein_didi.protein.alphabet import ALPHABET, MAX_RESIDUES
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.evaluate import heldout_nelbo, unigram_cross_entropy
from protein_didi.protein.hf_mlm import BertDenoiser
from protein_didi.protein.model import ARCHITECTURES, EsmDenoiser, esm_config
from protein_didi.protein.pretrained import ProteinDenoiser, is_antibody_model, load_model, save_model
from protein_didi.protein.shards import ProteinShards, read_meta

# the defaults that depend on whether a fresh model is trained or a pretrained one continued (None in the parser)
FRESH_DEFAULTS: dict[str, Any] = {"arch": "tiny", "schedule": "loglinear", "lr": 1e-3, "warmup": 200, "bands": 0}
# DPLM continues ESM-2 at a peak of 4e-5 decaying to 1e-5 (its warm-up is 2,000 of 500,000 steps; ours are
# CPU-length runs of a few thousand steps, hence 100)
INIT_DEFAULTS: dict[str, Any] = {"lr": 4e-5, "lr_end": 1e-5, "warmup": 100, "bands": 64}
BAND_SEED = 0  # the held-out draws do not follow --seed, so runs with different seeds are compared on the same draws
BAND_BATCH = 16


@dataclass(kw_only=True)
class ProteinTeacherSettings(TeacherSettings):
    """The protein teacher's settings, each also its flag; made from the flags or in code, the same object.

    The model size, schedule, rate, warm-up, end rate and bands left ``None`` take the defaults of a fresh run
    (:data:`FRESH_DEFAULTS`) or of a continued one (``init``: :data:`INIT_DEFAULTS`) when the settings are made;
    with ``init`` the schedule stays ``None`` until the pretrained model's is known (:func:`build_model`).
    """

    arch: str = redefault(
        TeacherSettings, "arch", None, choices=sorted(ARCHITECTURES),
        help=f"model size of a fresh model (default {FRESH_DEFAULTS['arch']}, ~1.8M)",
    )  # fmt: skip
    steps: int = redefault(TeacherSettings, "steps", 4000)
    batch_size: int = redefault(TeacherSettings, "batch_size", 32)
    lr: float = redefault(
        TeacherSettings, "lr", None, help=f"peak AdamW learning rate (default {default_text(FRESH_DEFAULTS['lr'])})"
    )
    warmup: int = redefault(
        TeacherSettings, "warmup", None, help=f"linear warm-up steps (default {FRESH_DEFAULTS['warmup']})"
    )
    bf16: bool = redefault(
        TeacherSettings, "bf16",
        help="bfloat16 autocast (fp32 weights); refused where the device has no native bf16 (emulated bf16 is "
        "slower than fp32: AVX2-only CPUs)",
    )  # fmt: skip
    seed: int = redefault(TeacherSettings, "seed", help="seed of batches, times and masks (default {default})")
    schedule: str = redefault(
        TeacherSettings, "schedule", None,
        help="noise schedule α_t of a fresh model (default loglinear); with --init the model's own",
    )  # fmt: skip
    init: str | None = setting(
        None,
        "continue this pretrained masked LM (a load_model name such as antiberty, or a folder) instead of "
        "training a fresh model; keeps its architecture and schedule, and changes the defaults to --lr 4e-5 "
        "--lr-end 1e-5 --warmup 100 --band-sequences 64",
        "--init",
        metavar="MODEL",
    )
    train_layers: int | None = setting(
        None,
        "train only the top N transformer layers and the LM head, the rest frozen (default: all)",
        "--train-layers",
        metavar="N",
    )
    max_residues: int = setting(128, "random crop length for training (default {default})", "--max-residues")
    lr_end: float | None = setting(
        None, "rate the cosine decay ends at (default: 10 %% of --lr; with --init 1e-5, DPLM's end rate)", "--lr-end"
    )
    band_sequences: int = setting(
        None,
        "validation sequences for the held-out NELBO per mask-rate band, logged at step 0 and every "
        "checkpoint (default 0, off; with --init 64)",
        "--band-sequences",
        metavar="N",
    )
    licence: str | None = setting(
        None, "licence recorded in the exported model (default: the data folder's, if any)", "--licence"
    )

    def __post_init__(self) -> None:
        """Fill the settings left unset with the defaults of a fresh run or of a continued (``init``) one."""
        if self.init is None:
            self.arch = self.arch or FRESH_DEFAULTS["arch"]
            self.schedule = self.schedule or FRESH_DEFAULTS["schedule"]
            self.lr = FRESH_DEFAULTS["lr"] if self.lr is None else self.lr
            self.warmup = FRESH_DEFAULTS["warmup"] if self.warmup is None else self.warmup
            if self.band_sequences is None:
                self.band_sequences = FRESH_DEFAULTS["bands"]
        else:
            if self.arch is not None:
                raise ValueError(f"--arch {self.arch} describes a fresh model; --init {self.init} brings its own")
            self.lr = INIT_DEFAULTS["lr"] if self.lr is None else self.lr
            self.warmup = INIT_DEFAULTS["warmup"] if self.warmup is None else self.warmup
            if self.lr_end is None:
                self.lr_end = min(INIT_DEFAULTS["lr_end"], self.lr)
            if self.band_sequences is None:
                self.band_sequences = INIT_DEFAULTS["bands"]
        if self.lr_end is not None and not 0 < self.lr_end <= self.lr:
            raise ValueError(f"--lr-end {self.lr_end:g} must be positive and at most --lr {self.lr:g}")
        if self.band_sequences < 0:
            raise ValueError(f"--band-sequences {self.band_sequences} must be ≥ 0 (0 turns the bands off)")

    @property
    def lr_floor(self) -> float:
        """The cosine decay's end as a share of the peak: ``lr_end / lr``, else 10 % (fresh teachers, as always)."""
        return 0.1 if self.lr_end is None else self.lr_end / self.lr


def residue_positions(x: torch.Tensor) -> torch.Tensor:
    """The positions the NELBO may mask: every residue, never ``<cls>``/``<eos>``/padding."""
    return ~ALPHABET.special_positions(x)


def layer_stack(model: nn.Module) -> tuple[nn.Module, nn.ModuleList, list[nn.Module]]:
    """(input embeddings, transformer layers bottom-up, modules above the layers) of a BERT or ESM denoiser."""
    if isinstance(model, BertDenoiser):
        return model.mlm.bert.embeddings, model.mlm.bert.encoder.layer, [model.mlm.cls]
    if isinstance(model, EsmDenoiser):
        encoder = model.mlm.esm.encoder
        top = [m for m in (getattr(encoder, "emb_layer_norm_after", None), model.mlm.lm_head) if m is not None]
        return model.mlm.esm.embeddings, encoder.layer, top
    raise ValueError(f"--train-layers knows BERT and ESM denoisers, not {type(model).__name__}")


def train_top_layers(model: nn.Module, n: int) -> tuple[int, int]:
    """Freeze all but the top ``n`` transformer layers and the LM head; returns (trainable, all) parameter counts.

    Why: the cheap way to move a pretrained masked LM to high mask rates is to let only its last layers (which
    turn features into predictions) adapt; backward then stops at the lowest trainable layer and AdamW keeps
    moments for the trainable parameters only (the frozen ones never get a gradient, so it makes no state
    for them). BERT and ESM-2 tie the LM head's output matrix to the input embeddings: that one tensor is an
    input embedding, so it stays frozen with the rest of the bottom (the head's transform and bias train).
    """
    embeddings, layers, top = layer_stack(model)
    if not 1 <= n <= len(layers):
        raise ValueError(f"--train-layers {n}: the model has {len(layers)} transformer layers; choose 1..{len(layers)}")
    bottom = {id(p) for p in embeddings.parameters()}
    for p in model.parameters():
        p.requires_grad_(False)
    for module in [*layers[len(layers) - n :], *top]:
        for p in module.parameters():
            if id(p) not in bottom:
                p.requires_grad_(True)
    trainable = sum(p.numel() for p in model.parameters() if p.requires_grad)
    return trainable, sum(p.numel() for p in model.parameters())


def band_batches(shards: ProteinShards, n: int, max_residues: int, seed: int = BAND_SEED) -> list[torch.Tensor]:
    """``n`` held-out sequences (a seeded choice, first ``max_residues`` residues), length-sorted into batches.

    Sorted so that a batch pads little; the choice and order depend only on the split and ``seed``.
    """
    idx = np.random.default_rng([seed, 29]).permutation(len(shards))[:n]
    seqs = sorted((shards[int(i)][:max_residues] for i in idx), key=len)
    return [ALPHABET.pack(seqs[i : i + BAND_BATCH]) for i in range(0, len(seqs), BAND_BATCH)]


class TeacherTask(NelboTeacherTask):
    """One AdamW step on the masked-diffusion NELBO per call (data-parallel under torchrun).

    Why the objective is the NELBO and not DPLM's, for a continued BERT too: the NELBO weighs each masked
    token's cross-entropy by ω(t) = −α'_t/(1 − α_t) = 1/t (log-linear schedule) and divides by the maskable
    tokens, so its integrand at t is the expected masked-token cross-entropy and every mask rate counts the
    same (25 % of the weight on rates above 0.75). DPLM weighs each masked token by 1 − t and divides by the
    batch's masked tokens: the weight on a rate is then ∝ t(1 − t) (6t(1 − t) normalised: 16 % above 0.75,
    vanishing at rate 1). The rates a BERT never saw and a sampler starts from are the reason to continue
    one, and DPLM's weighting would teach least there; the NELBO also bounds −log p(x), which is what the
    held-out numbers report and our distillation assumes. Dropout stays off (DPLM keeps ESM-2's 0.1): see
    :mod:`protein_didi.protein.hf_mlm`. The rest matches DPLM: AdamW (0.9, 0.98), weight decay 0.01, warm-up,
    4e-5 decaying to 1e-5 (cosine here, linear there); we also clip gradients at 1 (DPLM does not).
    """

    keep_seconds = False  # its train_state.pt never recorded wall time

    def __init__(
        self,
        model: ProteinDenoiser,
        shards: ProteinShards,
        settings: ProteinTeacherSettings,
        data: Path,
        ctx: Context = SINGLE,
        *,
        schedule: NoiseSchedule | None = None,
        init_info: dict[str, Any] | None = None,
    ) -> None:
        """``data`` is the prepared folder ``shards`` come from: its valid split gives the bands and the export's
        held-out numbers, its metadata the export's provenance."""
        batches = ProteinBatches(shards, settings.max_residues, settings.seed)
        self.settings, self.data, self.init_info = settings, data, init_info
        bands = None
        if settings.band_sequences > 0:
            valid = ProteinShards.open(data, "valid")
            schedule_for_bands = schedule if schedule is not None else get_schedule(settings.schedule)
            bands = BandedNelbo(
                band_batches(valid, settings.band_sequences, settings.max_residues), residue_positions,
                schedule_for_bands, seed=BAND_SEED,
            )  # fmt: skip
        super().__init__(
            model, batches.batch, residue_positions, len(batches), settings, ctx, lr_floor=settings.lr_floor,
            schedule=schedule, bands=bands,
        )  # fmt: skip

    def export(self, out_dir: Path) -> None:
        ema_model = self.averaged_model()
        if ema_model is None:  # not rank 0
            return
        settings = self.settings
        meta = read_meta(self.data)
        valid = ProteinShards.open(self.data, "valid")
        nelbo = heldout_nelbo(ema_model, valid, self.schedule, settings.max_residues, device=self.device)
        unigram = unigram_cross_entropy(meta["splits"]["train"]["composition"], valid, settings.max_residues)
        info: dict[str, Any] = {
            "trained_steps": settings.steps,
            "batch_size": settings.batch_size,
            "max_residues": settings.max_residues,
            "data": meta["source"],
            "valid_elbo_nats_per_residue": round(nelbo, 4),
            "valid_unigram_nats_per_residue": round(unigram, 4),
        }
        if self.bands is not None:
            info["valid_nelbo_by_mask_rate"] = {k: round(v, 4) for k, v in self.bands(ema_model, self.device).items()}
        if self.init_info is not None:
            info |= {
                "init": settings.init,
                "init_source": self.init_info.get("source", settings.init),
                "train_layers": settings.train_layers or "all",
                "lr": settings.lr,
                "lr_end": settings.lr_end,
                "warmup": settings.warmup,
                "antibody": is_antibody_model(self.init_info),  # what sample, distill and reports key off
            }
        licence = settings.licence or meta.get("licence")
        if licence:
            info["licence"] = licence
        info |= {
            "settings": settings_dict(settings),
            "train_length_histogram": meta["splits"]["train"]["length_histogram"],
            "train_composition": meta["splits"]["train"]["composition"],
        }
        save_model(out_dir / "model", ema_model, self.schedule, "teacher", info)
        evaluation = {k: v for k, v in info.items() if not k.startswith("train_")}
        report_export(out_dir, evaluation, f"valid NELBO {nelbo:.4f} nats/residue vs unigram {unigram:.4f}")


def build_parser() -> argparse.ArgumentParser:
    return trainer_parser(
        "python -m protein_didi.train_teacher", __doc__, ProteinTeacherSettings,
        data_help="folder made by `python -m data_prep.fasta`", checkpoint_every=200, threads=False, fsdp=True,
    )  # fmt: skip


def settings_from_args(args: argparse.Namespace) -> ProteinTeacherSettings:
    """The settings the flags give, the defaults of a fresh or a continued (``--init``) run filled in."""
    return dataclass_from_args(ProteinTeacherSettings, args)


def build_model(
    settings: ProteinTeacherSettings, device: torch.device
) -> tuple[ProteinDenoiser, ProteinTeacherSettings, NoiseSchedule | None, dict[str, Any] | None]:
    """The model to train, the settings with its schedule, the schedule (None: the settings') and, with ``init``,
    the pretrained model's info."""
    if settings.bf16 and not native_bf16(device):
        raise ValueError(
            f"--bf16: {device} has no native bf16 (CPUs need AVX512-BF16 or AMX), so PyTorch would emulate it, "
            "slower than fp32; leave --bf16 off"
        )
    if settings.init is None:
        return EsmDenoiser(esm_config(settings.arch)), settings, None, None
    loaded = load_model(settings.init)  # fp32, on the CPU; the task moves it to the device
    if settings.schedule is not None and settings.schedule != loaded.schedule.name:
        raise ValueError(
            f"--schedule {settings.schedule}: {settings.init} was trained with the {loaded.schedule.name} schedule, "
            "which a continued model keeps; leave --schedule out"
        )
    limit = int(getattr(loaded.model, "max_residues", MAX_RESIDUES))
    if settings.max_residues > limit:
        raise ValueError(f"--max-residues {settings.max_residues}: {settings.init} takes at most {limit} residues")
    settings = dataclasses.replace(settings, schedule=loaded.schedule.name)
    return loaded.model.train(), settings, loaded.schedule, dict(loaded.info)


def main(argv: list[str] | None = None) -> int:
    """Train; 0 on success. Errors are raised (``python -m protein_didi.train_teacher`` prints them as one line)."""
    args = build_parser().parse_args(argv)
    settings = settings_from_args(args)
    ctx = start_parallel_run(args.device, settings.seed, fsdp=args.fsdp)
    shards = ProteinShards.open(args.data, "train")
    model, settings, schedule, init_info = build_model(settings, ctx.device)
    if settings.train_layers is not None:
        trainable, total = train_top_layers(model, settings.train_layers)
        if ctx.is_main:
            print(
                f"training the top {settings.train_layers} layers and the LM head: {trainable / 1e6:.2f} M of "
                f"{total / 1e6:.2f} M parameters",
                file=sys.stderr,
            )
    task = TeacherTask(model, shards, settings, args.data, ctx, schedule=schedule, init_info=init_info)
    run_training(task, args.out, settings.steps, args.resume, args.checkpoint_every, desc="teacher", ctx=ctx)
    ctx.close()
    return 0
