"""The order a (data-parallel) run reads a sharded corpus in: reshuffled each epoch, identical on every rank.

A run's data position is one integer — how many items all ranks together have
consumed — stored in its checkpoint. Item p of the stream is a pure function
of (seed, p), so a run resumed on a different number of processes reads on
from exactly where it stopped, repeating and skipping nothing.

Shuffling is two-level so that a corpus of tens of millions of sequences never
needs one giant permutation: each epoch visits the shards in a fresh random
order, and each shard's items in a fresh random order. Consecutive positions
therefore read one memory-mapped shard at a time (streaming).
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Sequence

import numpy as np


class StreamOrder:
    """Maps a stream position to a global item index (items numbered shard by shard)."""

    def __init__(self, shard_sizes: Sequence[int], seed: int = 0, cached_shards: int = 4) -> None:
        self.sizes = np.asarray(shard_sizes, dtype=np.int64)
        if self.sizes.size == 0 or self.sizes.sum() == 0:
            raise ValueError("cannot stream an empty corpus; prepare more data")
        self.seed = seed
        self.total = int(self.sizes.sum())
        self._starts = np.concatenate([[0], np.cumsum(self.sizes)[:-1]])
        self._perms: OrderedDict[tuple[int, int], np.ndarray] = OrderedDict()
        self._layouts: OrderedDict[int, tuple[np.ndarray, np.ndarray]] = OrderedDict()
        self._cached = cached_shards

    def epoch(self, position: int) -> int:
        return position // self.total

    def _layout(self, epoch: int) -> tuple[np.ndarray, np.ndarray]:
        """The epoch's shard order and the stream offset at which each of those shards ends."""
        if epoch not in self._layouts:
            order = np.random.default_rng([self.seed, epoch]).permutation(len(self.sizes))
            self._layouts[epoch] = order, np.cumsum(self.sizes[order])
            while len(self._layouts) > 2:
                self._layouts.popitem(last=False)
        return self._layouts[epoch]

    def _perm(self, epoch: int, shard: int) -> np.ndarray:
        key = (epoch, shard)
        if key not in self._perms:
            self._perms[key] = np.random.default_rng([self.seed, epoch, shard + 1]).permutation(self.sizes[shard])
            while len(self._perms) > self._cached:
                self._perms.popitem(last=False)
        return self._perms[key]

    def index(self, position: int) -> int:
        """The global item index read at stream ``position`` (≥ 0)."""
        if position < 0:
            raise ValueError(f"stream position must be ≥ 0, got {position}")
        epoch, offset = divmod(int(position), self.total)
        order, ends = self._layout(epoch)
        k = int(np.searchsorted(ends, offset, side="right"))
        shard = int(order[k])
        within = offset - (int(ends[k - 1]) if k else 0)
        return int(self._starts[shard] + self._perm(epoch, shard)[within])

    def indices(self, start: int, n: int) -> list[int]:
        """Item indices at stream positions ``start … start + n − 1``."""
        return [self.index(p) for p in range(start, start + n)]
