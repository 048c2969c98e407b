"""Batches of protein sequences for training, read at a stream position (exact resume on any process count)."""

from __future__ import annotations

import numpy as np
import torch

from protein_didi.core.stream import StreamOrder
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.shards import ProteinShards


class ProteinBatches:
    """Sequences in epoch-shuffled stream order, randomly cropped to ``max_residues``, wrapped as ``<cls> … <eos>``.

    The crop of the item at position p depends only on (seed, p), so a batch is
    the same however the positions are split over processes.
    """

    def __init__(self, shards: ProteinShards, max_residues: int = 128, seed: int = 0) -> None:
        if len(shards) == 0:
            raise ValueError("the training split is empty; prepare more data")
        self.shards = shards
        self.max_residues = max_residues
        self.seed = seed
        self.order = StreamOrder(shards.shard_sizes(), seed)

    def __len__(self) -> int:
        """Sequences per epoch."""
        return len(self.shards)

    def batch(self, position: int, n: int) -> torch.Tensor:
        """The ``n`` sequences at stream positions ``position …``, packed."""
        seqs = []
        for p, i in zip(range(position, position + n), self.order.indices(position, n), strict=True):
            seq = self.shards[i]
            if len(seq) > self.max_residues:
                start = int(np.random.default_rng([self.seed, p, 1]).integers(0, len(seq) - self.max_residues + 1))
                seq = seq[start : start + self.max_residues]
            seqs.append(seq)
        return ALPHABET.pack(seqs)
