"""What every domain's judge shares: its size, its training settings, its folder, and how the folder is read and
written.

A judge is a small causal LM (:class:`~protein_didi.core.causal_lm.CausalALiBiLM`) that scores generated
sequences (generative perplexity). A domain brings its vocabulary, how it reads sequences and what else its
folder keeps (its vocabulary file, say); the folder itself is ``config.json`` (``format``, ``architecture``, ``info``
and the domain's fields) + half-precision ``model.safetensors`` (a judge is small and only measures).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from protein_didi.core.checkpoint import CheckpointError, load_tensors, save_json, save_tensors
from protein_didi.core.optim import TrainSettings
from protein_didi.core.pretrained import cast, load_state
from protein_didi.core.settings import redefault


@dataclass(frozen=True)
class JudgeConfig:
    """Size of the causal transformer; ``vocab_size`` is the domain's vocabulary."""

    vocab_size: int
    hidden_size: int = 128
    num_layers: int = 3
    num_heads: int = 4
    intermediate_size: int = 512


SIZES: dict[str, dict[str, int]] = {  # named judge sizes (all but the vocabulary), for ``--arch``
    "small": dict(hidden_size=128, num_layers=3, num_heads=4, intermediate_size=512),
    "test": dict(hidden_size=32, num_layers=1, num_heads=2, intermediate_size=64),
}


@dataclass(kw_only=True)
class JudgeSettings(TrainSettings):
    """What both domains' judges train with (AdamW on next-token cross-entropy); a domain adds its defaults."""

    arch: str = redefault(TrainSettings, "arch", "small", choices=sorted(SIZES), help="judge size (default {default})")
    lr: float = redefault(TrainSettings, "lr", 3e-3)


def judge_folder(name_or_path: str, shipped: Path) -> Path:
    """The folder of a judge: ``"judge"`` is the ``shipped`` one; a training run's OUT resolves to its ``model/``."""
    path = shipped if name_or_path == "judge" else Path(name_or_path)
    if not (path / "config.json").is_file() and (path / "model" / "config.json").is_file():
        path = path / "model"
    return path


def read_judge(path: Path, cfg: dict, build: Callable[[dict[str, Any]], nn.Module]) -> nn.Module:
    """The fp32 judge of one of our folders (``cfg`` its ``config.json``), built from the architecture by ``build``."""
    try:
        model = build(cfg["architecture"])
    except (KeyError, TypeError, ValueError) as err:
        raise CheckpointError(f"{path}/config.json has no valid 'architecture' ({err}); re-export the judge") from None
    load_state(
        model.load_state_dict,
        load_tensors(path / "model.safetensors"),
        f"{path}/model.safetensors does not match its config.json",
    )
    return model


def save_judge(out_dir: str | Path, model: nn.Module, fmt: str, info: dict[str, Any], **fields: Any) -> Path:
    """Write ``config.json`` (format ``fmt``; ``fields`` are more entries) + half-precision ``model.safetensors``."""
    out = Path(out_dir)
    save_tensors(out / "model.safetensors", cast(model.state_dict(), torch.float16))
    save_json(out / "config.json", {"format": fmt, "architecture": asdict(model.config), "info": info, **fields})
    return out
