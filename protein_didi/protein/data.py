"""Batches of protein sequences for training, a pure function of (seed, step) for exact resume."""

from __future__ import annotations

import numpy as np
import torch

from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.shards import ProteinShards


class ProteinBatches:
    """Random sequences, randomly cropped to ``max_residues`` and wrapped as ``<cls> … <eos>``."""

    def __init__(self, shards: ProteinShards, batch_size: int, max_residues: int = 128, seed: int = 0) -> None:
        if len(shards) == 0:
            raise ValueError("the training split is empty; prepare more data")
        self.shards = shards
        self.batch_size = batch_size
        self.max_residues = max_residues
        self.seed = seed

    def batch(self, step: int) -> torch.Tensor:
        rng = np.random.default_rng([self.seed, step])
        idx = rng.integers(0, len(self.shards), self.batch_size)
        seqs = []
        for i in idx:
            seq = self.shards[int(i)]
            if len(seq) > self.max_residues:
                start = int(rng.integers(0, len(seq) - self.max_residues + 1))
                seq = seq[start : start + self.max_residues]
            seqs.append(seq)
        return ALPHABET.pack(seqs)

    def sample_lengths(self, n: int, rng: np.random.Generator) -> np.ndarray:
        """Lengths drawn from the training distribution (capped at ``max_residues``)."""
        lengths = self.shards.lengths()
        return np.minimum(lengths[rng.integers(0, len(lengths), n)], self.max_residues)
