"""Atomic files: write to a temporary sibling, fsync, then rename over the target.

A crash mid-write therefore leaves the previous checkpoint intact, never a
half-written one. Loading failures become one-line :class:`CheckpointError`s.
"""

from __future__ import annotations

import hashlib
import json
import os
import tempfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file

from protein_didi.core.errors import UserError


class CheckpointError(RuntimeError, UserError):
    """A checkpoint is missing, unreadable or does not match what is asked of it."""


def atomic_write(path: str | Path, write: Callable[[Path], None]) -> Path:
    """Call ``write(tmp_path)`` and atomically move the result to ``path``."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(Path(tmp))
        with open(tmp, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp, path)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
    return path


def save_json(path: str | Path, obj: Any) -> Path:
    return atomic_write(path, lambda p: p.write_text(json.dumps(obj, indent=2, sort_keys=True) + "\n"))


def load_json(path: str | Path) -> Any:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        return json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError) as err:
        raise CheckpointError(f"{path} is not valid JSON ({err}); re-export or delete it") from None


def save_tensors(path: str | Path, tensors: dict[str, torch.Tensor], metadata: dict[str, str] | None = None) -> Path:
    # clone: tied weights (e.g. embeddings shared with the LM head) must be stored as separate tensors
    tensors = {k: v.detach().cpu().contiguous().clone() for k, v in tensors.items()}
    return atomic_write(path, lambda p: save_file(tensors, str(p), metadata=metadata))


def load_tensors(path: str | Path) -> dict[str, torch.Tensor]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found")
    try:
        return load_file(str(path))
    except Exception as err:  # safetensors raises several types for truncated/corrupt files
        raise CheckpointError(f"{path} is corrupt or not a safetensors file ({err}); delete it and re-train") from None


def save_state(path: str | Path, state: dict[str, Any]) -> Path:
    """Full training state (weights, optimizer, RNG) for exact resume."""
    return atomic_write(path, lambda p: torch.save(state, p))


def load_state(path: str | Path, map_location: str | torch.device = "cpu") -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"no training state at {path}; start without --resume")
    try:
        return torch.load(path, map_location=map_location, weights_only=False)
    except Exception as err:
        raise CheckpointError(f"training state {path} is corrupt ({err}); delete it to restart") from None


def file_sha256(path: str | Path) -> str:
    """Hex SHA-256 of a file, read in 1 MiB blocks: checks that a shipped or fetched file is the one recorded."""
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        for block in iter(lambda: fh.read(1 << 20), b""):
            h.update(block)
    return h.hexdigest()
