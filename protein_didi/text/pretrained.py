"""One registry of named text models, and the only place that reads or writes text model folders.

Names:
    ``teacher``   the embedded tiny DiT teacher (trained on CPU, shipped in protein_didi/checkpoints/text-teacher)
    ``student``   its DiDi-Instruct student (8-step), shipped in protein_didi/checkpoints/text-student
A path may be given instead:
    * a folder written by :func:`save_model` (``config.json``, ``model.safetensors``, ``tokenizer.json``);
    * an MDLM/DUO checkpoint: a Lightning ``.ckpt`` file from their training code, or a folder holding
      ``config.json`` + ``model.safetensors``/``pytorch_model.bin`` with ``backbone.*`` tensors (as
      ``kuleshov-group/mdlm-owt``). These use GPT-2's tokenizer, taken from the folder when it holds one,
      else from ``--tokenizer`` (a local GPT-2 folder) or the hub id ``gpt2``.

The folder format, the name dispatch, the discriminator and the precision are the domain-agnostic
:mod:`protein_didi.core.pretrained`; this module fills in the DiT, its tokenizer and MDLM/DUO's checkpoints.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from protein_didi.core import pretrained as core
from protein_didi.core.checkpoint import CheckpointError, load_tensors
from protein_didi.core.pretrained import CHECKPOINT_DIR, ModelNotFoundError, load_state
from protein_didi.core.schedule import NoiseSchedule, get_schedule
from protein_didi.text.model import DiT, DiTConfig
from protein_didi.text.tokenizer import FILE as TOKENIZER_FILE
from protein_didi.text.tokenizer import HUB_ID, TextTokenizer, TokenizerError, load_gpt2, load_tokenizer_file

EMBEDDED = {"teacher": "text-teacher", "student": "text-student"}
FORMAT = "protein_didi.text/1"

__all__ = [
    "CHECKPOINT_DIR",
    "EMBEDDED",
    "FORMAT",
    "LoadedModel",
    "ModelNotFoundError",
    "load_model",
    "mdlm_config",
    "mdlm_state_dict",
    "save_model",
]


@dataclass
class LoadedModel(core.LoadedModel[DiT]):
    """A text denoiser plus its tokenizer and what sampling needs to know about it."""

    tokenizer: TextTokenizer = field(kw_only=True)

    @property
    def block_length(self) -> int:
        return int(self.info.get("block_length", 128))


class TextModels(core.ModelRegistry[DiT]):
    """Text folders: a DiT and the tokenizer it decodes with; foreign checkpoints are MDLM/DUO's."""

    format = FORMAT
    embedded = EMBEDDED
    noun = "text model"
    not_a_model = "(a folder with config.json, or an MDLM/DUO .ckpt file)"
    missing_hint = "train it (README: python -m protein_didi.train_teacher --domain text, then distill --domain text)"
    choices = "teacher, student, a model folder or a .ckpt file"
    file_suffixes = (".ckpt",)

    def describe(self, model: DiT) -> dict[str, Any]:
        return {"architecture": model.config.to_dict(), "mask_id": model.mask_id}

    def weights(self, model: DiT) -> dict[str, torch.Tensor]:
        return model.weights()

    def load_weights(self, model: DiT, state: dict[str, torch.Tensor]) -> None:
        model.load_weights(state)

    def builder(self, path: Path, cfg: dict) -> Callable[[], DiT]:
        config, mask_id = DiTConfig(**cfg["architecture"]), cfg.get("mask_id")
        return lambda: DiT(config, mask_id)

    def derived(self, key: str) -> bool:
        return key.endswith("inv_freq")  # rotary frequencies, recomputed by the model

    def loaded(
        self, model: DiT, schedule: NoiseSchedule, name: str, info: dict, role: str, path: Path, cfg: dict
    ) -> LoadedModel:
        tok = load_tokenizer_file(path, cfg.get("tokenizer"))
        if tok.vocab_size != model.vocab_size:
            raise CheckpointError(f"{path}/{TOKENIZER_FILE} has {tok.vocab_size} tokens, the model {model.vocab_size}")
        return LoadedModel(model, schedule, name, info, role, tokenizer=tok)

    def read_foreign(
        self, path: Path, cfg: dict | None, name: str, device: torch.device | str, tokenizer: str | None = None
    ) -> LoadedModel:
        return _load_mdlm(path, name, device, tokenizer, cfg)


MODELS = TextModels()


def save_model(
    out_dir: str | Path,
    model: DiT,
    schedule: NoiseSchedule,
    tokenizer: TextTokenizer,
    role: str,
    info: dict[str, Any] | None = None,
    extra_tensors: dict[str, dict[str, torch.Tensor]] | None = None,
    dtype: torch.dtype = torch.float16,
) -> Path:
    """Write ``config.json`` + ``model.safetensors`` (half precision) + the tokenizer it decodes with."""
    if tokenizer.vocab_size != model.vocab_size or tokenizer.mask_id != model.mask_id:
        raise ValueError(
            f"tokenizer ({tokenizer.vocab_size} tokens with [MASK]) does not match the model ({model.vocab_size})"
        )
    tokenizer.save(out_dir)
    return MODELS.save(out_dir, model, schedule, role, info, extra_tensors, dtype, tokenizer=tokenizer.record())


def resolve(name_or_path: str) -> Path:
    """The folder of an embedded name, else the path given."""
    return MODELS.resolve(name_or_path)


def load_model(
    name_or_path: str, device: torch.device | str = "cpu", tokenizer: str | None = None, precision: str = "fp32"
) -> LoadedModel:
    """Load a named model, one of our folders or an MDLM/DUO checkpoint for inference in ``precision``.

    One-line errors otherwise; the precision is checked against the device before any weights are read and
    applied once (:mod:`protein_didi.core.precision`). Trainers load in the default fp32.

    Args:
        tokenizer: GPT-2 tokenizer folder or hub id for MDLM/DUO checkpoints that do not carry one.
    """
    return MODELS.load(name_or_path, device, precision, tokenizer=tokenizer)


def mdlm_state_dict(raw: dict[str, Any], use_ema: bool = True) -> dict[str, torch.Tensor]:
    """``backbone.*`` tensors of an MDLM/DUO Lightning checkpoint or HF export, EMA weights when present.

    MDLM's EMA keeps ``shadow_params`` as a list in ``backbone.parameters()``
    order; our DiT registers the same parameters in the same order.
    """
    state = raw.get("state_dict", raw)
    backbone = {k[len("backbone.") :]: v for k, v in state.items() if k.startswith("backbone.")}
    if not backbone:
        raise CheckpointError("no backbone.* tensors: not an MDLM/DUO DiT checkpoint")
    backbone = {k: v for k, v in backbone.items() if not k.endswith("inv_freq")}
    shadow = (raw.get("ema") or {}).get("shadow_params") if use_ema else None
    if shadow:
        names = [k for k in backbone if not k.endswith("inv_freq")]  # parameters, in registration order
        if len(shadow) >= len(names):
            backbone = dict(zip(names, shadow[: len(names)], strict=True))
    return backbone


def mdlm_config(state: dict[str, torch.Tensor], hints: dict[str, Any]) -> DiTConfig:
    """Infer the DiT size from tensor shapes; heads and time conditioning come from the checkpoint's config."""
    vocab, hidden = state["vocab_embed.embedding"].shape
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"blocks\.(\d+)\.", k)))
    cond = state["sigma_map.mlp.0.weight"].shape[0]
    ratio = state["blocks.0.mlp.0.weight"].shape[0] // hidden
    heads = int(hints.get("n_heads") or hints.get("num_heads") or max(1, hidden // 64))
    return DiTConfig(
        vocab_size=int(vocab),
        hidden_size=int(hidden),
        num_layers=layers,
        num_heads=heads,
        cond_dim=int(cond),
        mlp_ratio=int(ratio),
        dropout=0.0,
        time_conditioning=bool(hints.get("time_conditioning", False)),
    )


def _find_hints(obj: Any) -> dict[str, Any]:
    """n_heads / time_conditioning / model_length wherever a Hydra or HF config put them."""
    found: dict[str, Any] = {}
    if hasattr(obj, "items"):  # dicts and OmegaConf DictConfigs
        for k, v in obj.items():
            if hasattr(v, "items"):
                for kk, vv in _find_hints(v).items():
                    found.setdefault(kk, vv)
            elif k in ("n_heads", "num_heads", "time_conditioning", "model_length"):
                found.setdefault(k, v)
    return found


def _load_mdlm(
    path: Path, name: str, device: torch.device | str, tokenizer: str | None, cfg: dict | None = None
) -> LoadedModel:
    """An MDLM/DUO DiT (GPT-2 vocabulary + [MASK]) as a SUBS denoiser with the log-linear schedule."""
    if path.is_file():
        try:
            raw = torch.load(path, map_location="cpu", weights_only=False)
        except Exception as err:
            raise CheckpointError(f"{path} is not a readable checkpoint ({str(err)[:120]})") from None
        hints = _find_hints(raw.get("hyper_parameters", {}))
        tok_dir = path.parent
    else:
        weights = path / "model.safetensors"
        if weights.is_file():
            raw = load_tensors(weights)
        elif (path / "pytorch_model.bin").is_file():
            raw = torch.load(path / "pytorch_model.bin", map_location="cpu", weights_only=True)
        else:
            raise CheckpointError(f"{path} has config.json but neither model.safetensors nor pytorch_model.bin")
        hints, tok_dir = _find_hints(cfg or {}), path
    state = mdlm_state_dict(raw)
    try:
        config = mdlm_config(state, hints)
    except (KeyError, ValueError) as err:
        raise CheckpointError(f"{path}: cannot infer the DiT architecture ({err})") from None
    try:
        if tokenizer is not None:
            tok = load_gpt2(tokenizer)
        elif (tok_dir / TOKENIZER_FILE).is_file() or (tok_dir / "vocab.json").is_file():
            tok = load_gpt2(str(tok_dir))
        else:
            tok = load_gpt2(HUB_ID)
    except TokenizerError as err:
        raise ModelNotFoundError(str(err)) from None
    if config.vocab_size == tok.mask_id:
        raise CheckpointError(
            f"{path} has {config.vocab_size} output tokens = the tokenizer's, with no [MASK] row: a uniform-state "
            "(DUO) model cannot be used as a masked-diffusion teacher"
        )
    if config.vocab_size != tok.vocab_size:
        raise CheckpointError(f"{path} has {config.vocab_size} tokens, GPT-2 + [MASK] has {tok.vocab_size}")
    model = DiT(config, tok.mask_id)
    load_state(model.load_weights, state, f"{path} does not match its architecture")
    info = {"source": str(path), "block_length": int(hints.get("model_length", 1024))}
    return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), name, info, "teacher", tokenizer=tok)
