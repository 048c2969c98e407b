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
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import torch

from protein_didi.core.checkpoint import CheckpointError, load_json, load_tensors, save_json, save_tensors
from protein_didi.core.precision import convert_for_inference, resolve_precision
from protein_didi.core.schedule import NoiseSchedule, get_schedule
from protein_didi.text.model import DiT, DiTConfig
from protein_didi.text.tokenizer import FILE as TOKENIZER_FILE
from protein_didi.text.tokenizer import HUB_ID, TextTokenizer, TokenizerError, load_gpt2, load_tokenizer_file

CHECKPOINT_DIR = Path(__file__).resolve().parent.parent / "checkpoints"
EMBEDDED = {"teacher": "text-teacher", "student": "text-student"}
FORMAT = "protein_didi.text/1"


class ModelNotFoundError(CheckpointError):
    """Weights for a requested text model are not on this machine."""


@dataclass
class LoadedModel:
    """A text denoiser plus its tokenizer and what sampling needs to know about it."""

    model: DiT
    schedule: NoiseSchedule
    tokenizer: TextTokenizer
    name: str
    info: dict[str, Any] = field(default_factory=dict)
    role: str = "teacher"
    discriminator: torch.nn.Module | None = None
    precision: str = "fp32"

    @property
    def block_length(self) -> int:
        return int(self.info.get("block_length", 128))


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
    out = Path(out_dir)

    def cast(tensors: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
        return {k: v.to(dtype) if v.is_floating_point() else v for k, v in tensors.items()}

    save_tensors(out / "model.safetensors", cast(model.weights()))
    for name, tensors in (extra_tensors or {}).items():
        save_tensors(out / f"{name}.safetensors", cast({k: v for k, v in tensors.items() if "inv_freq" not in k}))
    tokenizer.save(out)
    save_json(
        out / "config.json",
        {
            "format": FORMAT,
            "role": role,
            "architecture": model.config.to_dict(),
            "mask_id": model.mask_id,
            "schedule": {"name": schedule.name, "eps": schedule.eps},
            "tokenizer": tokenizer.record(),
            "extra": sorted(extra_tensors or {}),
            "info": info or {},
        },
    )
    return out


def resolve(name_or_path: str) -> Path:
    return CHECKPOINT_DIR / EMBEDDED[name_or_path] if name_or_path in EMBEDDED else Path(name_or_path)


def load_model(
    name_or_path: str, device: torch.device | str = "cpu", tokenizer: str | None = None, precision: str = "fp32"
) -> LoadedModel:
    """Load a named model, one of our folders or an MDLM/DUO checkpoint for inference in ``precision``.

    One-line errors otherwise; the precision is checked against the device before any weights are read and
    applied once (:mod:`protein_didi.core.precision`). Trainers load in the default fp32.

    Args:
        tokenizer: GPT-2 tokenizer folder or hub id for MDLM/DUO checkpoints that do not carry one.
    """
    resolved = resolve_precision(precision, device)
    loaded = _load(name_or_path, device, tokenizer)
    convert_for_inference(loaded.model, loaded.discriminator, resolved)
    loaded.precision = resolved
    return loaded


def _load(name_or_path: str, device: torch.device | str, tokenizer: str | None) -> LoadedModel:
    path = resolve(name_or_path)
    if path.is_file() and path.suffix == ".ckpt":
        return _load_mdlm(path, name_or_path, device, tokenizer)
    if path.is_dir() and (path / "config.json").is_file():
        cfg = load_json(path / "config.json")
        if cfg.get("format") == FORMAT:
            return _load_ours(path, cfg, name_or_path, device)
        return _load_mdlm(path, name_or_path, device, tokenizer, cfg)
    if path.exists():
        raise CheckpointError(f"{path} is not a text model (a folder with config.json, or an MDLM/DUO .ckpt file)")
    if name_or_path in EMBEDDED:
        raise ModelNotFoundError(
            f"embedded text model '{name_or_path}' is missing from {path}; train it "
            "(README: python -m protein_didi.train_teacher --domain text, then distill --domain text)"
        )
    raise ModelNotFoundError(f"no text model '{name_or_path}': give teacher, student, a model folder or a .ckpt file")


def _dit_from(cfg: dict, path: Path, mask_id: int | None) -> DiT:
    try:
        return DiT(DiTConfig(**cfg), mask_id)
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path} has no valid DiT architecture ({err}); re-export the model") from None


def _load_weights(model: DiT, state: dict[str, torch.Tensor], path: Path) -> None:
    try:
        model.load_weights({k: v.float() for k, v in state.items()})
    except RuntimeError as err:
        first = str(err).splitlines()[0]
        raise CheckpointError(f"{path} does not match its architecture ({first[:200]})") from None


def _load_ours(path: Path, cfg: dict, name: str, device: torch.device | str) -> LoadedModel:
    if "architecture" not in cfg:
        raise CheckpointError(f"{path}/config.json has no 'architecture'; re-export the model")
    model = _dit_from(cfg["architecture"], path / "config.json", cfg.get("mask_id"))
    _load_weights(model, load_tensors(path / "model.safetensors"), path / "model.safetensors")
    tok = load_tokenizer_file(path, cfg.get("tokenizer"))
    if tok.vocab_size != model.vocab_size:
        raise CheckpointError(f"{path}/{TOKENIZER_FILE} has {tok.vocab_size} tokens, the model {model.vocab_size}")
    loaded = LoadedModel(
        model.to(device).eval(),
        get_schedule(**cfg["schedule"]),
        tok,
        name,
        cfg.get("info", {}),
        cfg.get("role", "teacher"),
    )
    if "discriminator" in cfg.get("extra", []):
        from protein_didi.core.discriminator import Discriminator

        disc = Discriminator(DiT(model.config, model.mask_id))
        state = {k: v.float() for k, v in load_tensors(path / "discriminator.safetensors").items()}
        missing, unexpected = disc.load_state_dict(state, strict=False)
        if unexpected or [k for k in missing if "inv_freq" not in k]:
            raise CheckpointError(f"{path}/discriminator.safetensors does not match the model architecture")
        loaded.discriminator = disc.to(device).eval()
    return loaded


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
    _load_weights(model, state, path)
    info = {"source": str(path), "block_length": int(hints.get("model_length", 1024))}
    return LoadedModel(model.to(device).eval(), get_schedule("loglinear"), tok, name, info, "teacher")
