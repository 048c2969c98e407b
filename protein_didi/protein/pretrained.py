"""One registry of named protein models, and the only place that reads or writes model folders.

Names:
    ``teacher``       the embedded tiny teacher (trained on CPU, shipped in the package)
    ``student``       its DiDi-Instruct student (8-step)
    ``student-idlm``  its IDLM student
    ``antibody-student``  AntiBERTy distilled by DiDi-Instruct into an 8-step antibody generator (120 CPU
                      iterations at 120 residues); samples confidence-ordered (τ = 0.1) by default, the setting
                      chosen on the frontier benchmark's validation split; its head-only discriminator reads
                      AntiBERTy's features, so RGAS needs ``pip install -e .[antibody]`` (as does CDR redesign)
    ``antibody-student-idlm``  AntiBERTy distilled by IDLM (60 CPU iterations; no discriminator)
    ``dplm-150m``     DPLM-150M from the hub id ``airkingbd/dplm_150m`` (needs the weights)
    ``antiberty``     AntiBERTy (BERT, 26 M parameters, antibodies; ≤ 510 residues), read from the
                      installed ``antiberty`` package's files (``pip install -e .[antibody]``), no network
A path may be given instead: a folder written by :func:`save_model`, or a
``transformers`` ESM/DPLM or BERT masked-LM folder (``config.json`` + weights, + ``vocab.txt`` for BERT).

Model folders record a ``family``: ``esm`` (:class:`EsmDenoiser`; the default for
folders written before families existed) or ``bert`` (:class:`BertDenoiser`,
whose folder also keeps the model's vocabulary list and special tokens).
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch
from transformers import BertConfig, EsmConfig, EsmForMaskedLM

from protein_didi.core.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors
from protein_didi.core.precision import (
    apply_precision,
    convert_for_inference,
    discriminator_precision,
    resolve_precision,
)
from protein_didi.core.schedule import NoiseSchedule, get_schedule
from protein_didi.protein.antiberty_weights import AntibertyWeights, AntibertyWeightsMissing, resolve_antiberty_weights
from protein_didi.protein.hf_mlm import BertDenoiser, load_bert_folder
from protein_didi.protein.model import EsmDenoiser

ProteinDenoiser = EsmDenoiser | BertDenoiser
CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
EMBEDDED = {
    "teacher": "teacher",
    "student": "student",
    "student-idlm": "student-idlm",
    "antibody-student": "antibody-student",
    "antibody-student-idlm": "antibody-student-idlm",
}
HUB_IDS = {"dplm-150m": "airkingbd/dplm_150m", "dplm-650m": "airkingbd/dplm_650m"}
PACKAGED = {"antiberty": "AntiBERTy_md_smooth"}  # name → folder under the package's trained_models/
FORMAT = "protein_didi/1"
FAMILIES = ("esm", "bert")


class ModelNotFoundError(CheckpointError):
    """Weights for a requested model are not on this machine."""


@dataclass
class LoadedModel:
    """A denoiser plus what sampling needs to know about it."""

    model: ProteinDenoiser
    schedule: NoiseSchedule
    name: str
    info: dict[str, Any] = field(default_factory=dict)
    role: str = "teacher"
    discriminator: torch.nn.Module | None = None
    precision: str = "fp32"
    # a head-only discriminator reads its features from the teacher, loaded on first use (RGAS) only
    discriminator_loader: Callable[[], torch.nn.Module] | None = None

    @property
    def has_discriminator(self) -> bool:
        """Whether RGAS can run: a discriminator is loaded or loadable."""
        return self.discriminator is not None or self.discriminator_loader is not None

    def require_discriminator(self) -> torch.nn.Module:
        """The discriminator RGAS needs (loaded now if it is head-only), or a one-line ValueError."""
        if self.discriminator is None and self.discriminator_loader is not None:
            disc = self.discriminator_loader()
            if discriminator_precision(self.precision) != "fp32":  # the head; the frozen backbone loads converted
                apply_precision(disc, discriminator_precision(self.precision))
            self.discriminator = disc
        if self.discriminator is None:
            raise ValueError(
                f"RGAS needs a discriminator; model '{self.name}' has none (use a DiDi-Instruct student, or "
                "--sampler ancestral)"
            )
        return self.discriminator


def save_model(
    out_dir: str | Path,
    model: ProteinDenoiser,
    schedule: NoiseSchedule,
    role: str,
    info: dict[str, Any] | None = None,
    extra_tensors: dict[str, dict[str, torch.Tensor]] | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (half precision by default to keep the repo small).

    Works for either family, so trainers export students without knowing which one they distilled.
    """
    out = Path(out_dir)
    family = getattr(model, "family", "esm")
    if family not in FAMILIES:
        raise ValueError(f"cannot save a model of family {family!r}; known: {FAMILIES}")
    weights = {k: v.to(dtype) if v.is_floating_point() else v for k, v in model.mlm.state_dict().items()}
    save_tensors(out / "model.safetensors", weights)
    for name, tensors in (extra_tensors or {}).items():
        save_tensors(
            out / f"{name}.safetensors", {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}
        )
    cfg: dict[str, Any] = {
        "format": FORMAT,
        "family": family,
        "role": role,
        "architecture": model.config.to_diff_dict() | {"model_type": family},
        "schedule": {"name": schedule.name, "eps": schedule.eps},
        "extra": sorted(extra_tensors or {}),
        "info": info or {},
    }
    if family == "bert":
        cfg |= {"vocabulary": model.vocab, "special_tokens": model.special_tokens}
    save_json(out / "config.json", cfg)
    return out


def resolve(name_or_path: str) -> str | Path:
    if name_or_path in EMBEDDED:
        return CHECKPOINT_DIR / EMBEDDED[name_or_path]
    if name_or_path in HUB_IDS:
        return HUB_IDS[name_or_path]
    return name_or_path


def packaged_weights(name: str) -> AntibertyWeights:
    """Weights folder, vocabulary and source of a packaged model, or a one-line error with the fix.

    AntiBERTy's are resolved by :mod:`protein_didi.protein.antiberty_weights` (``$ANTIBERTY_WEIGHTS_DIR``, the
    antiberty 0.1.3 package, or the project cache), the same files IgFold is given.
    """
    if name not in PACKAGED:
        raise ModelNotFoundError(f"no packaged model '{name}'; choose one of {', '.join(PACKAGED)}")
    try:
        return resolve_antiberty_weights()
    except AntibertyWeightsMissing as err:
        raise ModelNotFoundError(f"model '{name}': {err}; pip install -e .[antibody]") from None


def packaged_folder(name: str) -> Path:
    """The folder holding a packaged model's weights folder (``trained_models/`` of antiberty 0.1.3's layout)."""
    return packaged_weights(name).folder.parent


def load_model(name_or_path: str, device: torch.device | str = "cpu", precision: str = "fp32") -> LoadedModel:
    """Load a named model or a folder for inference in ``precision`` (auto, fp32, bf16, int8).

    The precision is checked against the device before any weights are read
    (one-line :class:`~protein_didi.core.precision.PrecisionError`) and applied
    once here. Trainers load in the default fp32. One-line
    :class:`ModelNotFoundError` when weights are missing.
    """
    resolved = resolve_precision(precision, device)
    loaded = _load(name_or_path, device)
    return with_precision(loaded, resolved)


def with_precision(loaded: LoadedModel, precision: str) -> LoadedModel:
    """Convert a freshly loaded fp32 model (and its discriminator) to a resolved precision, in place.

    A head-only discriminator is converted when it is first loaded (:meth:`LoadedModel.require_discriminator`).
    """
    convert_for_inference(loaded.model, loaded.discriminator, precision)
    loaded.precision = precision
    return loaded


def _load(name_or_path: str, device: torch.device | str) -> LoadedModel:
    if name_or_path in PACKAGED:
        return _load_packaged(name_or_path, device)
    target = resolve(name_or_path)
    path = Path(target)
    if path.is_dir() and (path / "config.json").is_file():
        cfg = load_json(path / "config.json")
        if cfg.get("format") == FORMAT:
            return _load_ours(path, cfg, name_or_path, device)
        return _load_transformers(str(path), name_or_path, device)
    if path.exists():
        raise CheckpointError(f"{path} is not a model folder (needs config.json and model.safetensors)")
    if name_or_path in EMBEDDED:
        raise ModelNotFoundError(
            f"embedded model '{name_or_path}' is missing from {path}; reinstall the package or train it "
            f"(see README: train_teacher / distill)"
        )
    if "/" in str(target) and not str(target).startswith((".", "/")):
        return _load_transformers(str(target), name_or_path, device)
    raise ModelNotFoundError(
        f"no model '{name_or_path}': give teacher, student, student-idlm, antibody-student, antibody-student-idlm, "
        "dplm-150m, antiberty or a checkpoint folder"
    )


def _builder(path: Path, cfg: dict) -> Callable[[], ProteinDenoiser]:
    """A factory of fresh (random) models of the folder's family and architecture: the model and D's backbone."""
    family = cfg.get("family", "esm")
    if family not in FAMILIES:
        raise CheckpointError(f"{path}/config.json names unknown model family {family!r}; known: {FAMILIES}")
    try:
        if family == "bert":
            bert_config = BertConfig(**cfg["architecture"])
            vocab, special_tokens = cfg["vocabulary"], cfg.get("special_tokens")
            return lambda: BertDenoiser(bert_config, vocab, special_tokens)
        esm = EsmConfig(**cfg["architecture"])
        return lambda: EsmDenoiser(esm)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/config.json has no valid 'architecture' ({err}); re-export the model") from None


def _load_ours(path: Path, cfg: dict, name: str, device: torch.device | str) -> LoadedModel:
    build = _builder(path, cfg)
    try:
        model = build()
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/config.json has no valid 'architecture' ({err}); re-export the model") from None
    state = load_tensors(path / "model.safetensors")
    try:
        model.mlm.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}/model.safetensors does not match its config.json ({first})") from None
    loaded = LoadedModel(
        model.to(device).eval(), get_schedule(**cfg["schedule"]), name, cfg.get("info", {}), cfg.get("role", "teacher")
    )
    if "discriminator" in cfg.get("extra", []):
        head_only = bool(loaded.info.get("disc_head_only"))
        load_disc = functools.partial(_load_discriminator, path, build, device, loaded)
        if head_only:
            loaded.discriminator_loader = load_disc
        else:
            loaded.discriminator = load_disc()
    return loaded


def _load_discriminator(
    path: Path, build: Callable[[], ProteinDenoiser], device: torch.device | str, owner: LoadedModel
) -> torch.nn.Module:
    """D from ``discriminator.safetensors``: a full copy, or (``disc_head_only``) a head on the teacher it names."""
    from protein_didi.core.discriminator import Discriminator

    if owner.info.get("disc_head_only"):
        teacher = owner.info.get("teacher")
        if not teacher:
            raise CheckpointError(f"{path}/config.json has a head-only discriminator but names no teacher")
        try:
            backbone = load_model(str(teacher), device, discriminator_precision(owner.precision)).model
        except ModelNotFoundError as err:
            raise ModelNotFoundError(f"RGAS with '{owner.name}' reads the teacher's features: {err}") from None
        disc = Discriminator(backbone, frozen_backbone=True)
    else:
        disc = Discriminator(build())
    state = {k: v.float() for k, v in load_tensors(path / "discriminator.safetensors").items()}
    try:
        disc.load_state_dict(state)
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path}/discriminator.safetensors does not match its config.json ({first})") from None
    return disc.to(device).eval()


def _load_packaged(name: str, device: torch.device | str) -> LoadedModel:
    """A model shipped inside a pip package (AntiBERTy), read from its files; log-linear schedule."""
    weights = packaged_weights(name)
    model = load_bert_folder(weights.folder, vocab_file=weights.vocab_file)
    info = {"source": f"{name}: {weights.source}", "max_residues": model.max_residues}
    return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, info)


def _load_transformers(name_or_path: str, name: str, device: torch.device | str) -> LoadedModel:
    """ESM-2 / DPLM (local folder or hub id) or BERT-family (local folder) masked LMs saved by ``transformers``."""
    local = Path(name_or_path)
    if local.is_dir() and load_json(local / "config.json").get("model_type") == "bert":
        model = load_bert_folder(local)
        info = {"source": name_or_path, "max_residues": model.max_residues}
        return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, info)
    try:
        mlm = EsmForMaskedLM.from_pretrained(name_or_path)
    except OSError as err:
        raise ModelNotFoundError(
            f"cannot load '{name_or_path}' ({str(err).splitlines()[0][:120]}); download it where the hub is reachable "
            f"(huggingface-cli download {name_or_path} --local-dir DIR) and pass --model DIR"
        ) from None
    model = EsmDenoiser.from_mlm(mlm)
    return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, {"source": name_or_path})
