"""Tokenised protein shards: residue ids concatenated in ``uint8`` plus offsets, memory-mapped on read.

Layout of a prepared directory::

    meta.json                      counts, composition, length histogram, provenance
    {split}/shard-00000.tokens.npy residues (no <cls>/<eos>), uint8
    {split}/shard-00000.offsets.npy int64 start offsets, one more than sequences
    {split}.fasta                  the same sequences as FASTA (for MMseqs2 search/reference)
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from protein_didi.core.checkpoint import load_json

SPLITS = ("train", "valid", "test")


class ShardError(ValueError):
    """A data directory is missing or not produced by ``data_prep.fasta``."""


class ShardWriter:
    """Append sequences of residue ids; flush a shard every ``shard_residues`` residues."""

    def __init__(self, directory: Path, shard_residues: int = 50_000_000) -> None:
        self.directory = directory
        self.directory.mkdir(parents=True, exist_ok=True)
        self.shard_residues = shard_residues
        self._chunks: list[np.ndarray] = []
        self._size = 0
        self._index = 0
        self.num_sequences = 0

    def add(self, residues: np.ndarray) -> None:
        self._chunks.append(residues.astype(np.uint8, copy=False))
        self._size += len(residues)
        self.num_sequences += 1
        if self._size >= self.shard_residues:
            self.flush()

    def flush(self) -> None:
        if not self._chunks:
            return
        lengths = np.array([len(c) for c in self._chunks], dtype=np.int64)
        offsets = np.concatenate([[0], np.cumsum(lengths)])
        stem = self.directory / f"shard-{self._index:05d}"
        np.save(f"{stem}.tokens.npy", np.concatenate(self._chunks))
        np.save(f"{stem}.offsets.npy", offsets)
        self._chunks, self._size = [], 0
        self._index += 1


@dataclass
class ProteinShards:
    """All sequences of one split as one virtual list of residue-id arrays (memory-mapped)."""

    tokens: list[np.ndarray]
    offsets: list[np.ndarray]

    @classmethod
    def open(cls, data_dir: str | Path, split: str = "train") -> ProteinShards:
        root = _prepared(data_dir)
        files = sorted((root / split).glob("shard-*.tokens.npy"))
        if not files:
            raise ShardError(f"{root} has no '{split}' shards; re-run data_prep.fasta")
        tokens = [np.load(f, mmap_mode="r") for f in files]
        offsets = [np.load(str(f).replace(".tokens.npy", ".offsets.npy")) for f in files]
        return cls(tokens, offsets)

    def __post_init__(self) -> None:
        counts = np.array([len(o) - 1 for o in self.offsets], dtype=np.int64)
        self._starts = np.concatenate([[0], np.cumsum(counts)])

    def __len__(self) -> int:
        return int(self._starts[-1])

    def __getitem__(self, i: int) -> np.ndarray:
        shard = int(np.searchsorted(self._starts, i, side="right") - 1)
        j = i - self._starts[shard]
        off = self.offsets[shard]
        return np.asarray(self.tokens[shard][off[j] : off[j + 1]])

    def shard_sizes(self) -> list[int]:
        """Sequences per shard file, in file order."""
        return [len(o) - 1 for o in self.offsets]

    def lengths(self) -> np.ndarray:
        return np.concatenate([np.diff(o) for o in self.offsets])


def _prepared(data_dir: str | Path) -> Path:
    root = Path(data_dir)
    if not (root / "meta.json").is_file():
        raise ShardError(f"{root} is not a prepared data directory (no meta.json); run `python -m data_prep.fasta`")
    return root


def read_meta(data_dir: str | Path) -> dict:
    return load_json(_prepared(data_dir) / "meta.json")
