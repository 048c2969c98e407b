"""The one folding interface: batching by length, the cache, progress; backends only fold a batch.

A backend subclasses :class:`FoldBackend` and provides ``model_id`` (the cache
id, computable without loading weights), :meth:`~FoldBackend.load`,
:meth:`~FoldBackend._fold_batch` and, when its input is not a plain protein,
:meth:`~FoldBackend.validate`. Everything else — deduplication, cache lookups,
length-bucketed batches, per-batch commits, the multi-process and multi-machine
fan-out (:mod:`protein_didi.fold.fanout`) — is shared, so ESMFold and IgFold
behave the same way.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from pathlib import Path
from typing import ClassVar

import torch

from protein_didi.fold.cache import FoldCache
from protein_didi.fold.result import FoldResult, ProgressCallback
from protein_didi.protein.alphabet import ALPHABET


def length_batches(lengths: Sequence[int], max_residues: int, max_ratio: float = 1.25) -> list[list[int]]:
    """Indices grouped into batches of similar length (sorted), each padding to at most ``max_residues`` in total.

    A new batch starts when the padded size would exceed the budget or the
    longest member would be more than ``max_ratio`` times the shortest, so
    padding wastes little compute. A sequence longer than the budget folds alone.
    """
    order = sorted(range(len(lengths)), key=lambda i: lengths[i])
    batches: list[list[int]] = []
    for i in order:
        if batches:
            batch = batches[-1]
            first, longest = lengths[batch[0]], lengths[i]
            if (len(batch) + 1) * longest <= max_residues and longest <= max_ratio * first:
                batch.append(i)
                continue
        batches.append([i])
    return batches


class FoldBackend:
    """Shared folding machinery; subclasses fold one planned batch (see the module docstring).

    The model is loaded on the first cache miss, so a fully cached report runs
    even where the weights are absent; :meth:`load` forces it early.
    """

    score: ClassVar[str] = "plddt"
    name: ClassVar[str] = "folding"

    def __init__(self, device: torch.device, cache_path: str | Path | None, max_batch_residues: int) -> None:
        self.device = device
        self.max_batch_residues = max_batch_residues
        self.cache = FoldCache(cache_path) if cache_path is not None else None
        self.model_id = ""
        self.calls = 0  # forward passes run, so tests and benchmarks can see the cache working

    def validate(self, seq: str, where: str) -> str:
        """The canonical form of one input (upper-cased protein); one-line error naming ``where`` otherwise."""
        return ALPHABET.validate(seq, where)

    def load(self) -> FoldBackend:
        raise NotImplementedError

    def _fold_batch(self, seqs: list[str]) -> list[FoldResult]:
        raise NotImplementedError

    def fold(self, seqs: Sequence[str], progress: ProgressCallback | None = None) -> list[FoldResult]:
        """Fold ``seqs`` (validated); cached ones are not folded again, duplicates fold once."""
        seqs = [self.validate(s, f"sequence {i + 1}") for i, s in enumerate(seqs)]
        unique = list(dict.fromkeys(seqs))
        done: dict[str, FoldResult] = self.cache.get(unique, self.model_id, self.score) if self.cache else {}
        todo = [s for s in unique if s not in done]
        total = len(unique)
        if progress is not None:
            progress(len(done), total)
        if todo:
            batches = [[todo[i] for i in b] for b in length_batches([len(s) for s in todo], self.max_batch_residues)]

            def record(results: list[FoldResult]) -> None:
                done.update((r.sequence, r) for r in results)
                if progress is not None:
                    progress(len(done), total)

            self.fold_batches(batches, record)
        return [done[s] for s in seqs]

    def fold_batches(
        self, batches: Sequence[Sequence[str]], on_batch: Callable[[list[FoldResult]], None] | None = None
    ) -> list[FoldResult]:
        """Fold exactly these batches (validated inputs, no cache lookup), storing each in the cache.

        :meth:`fold` plans the batches itself; the multi-process fan-out
        (:mod:`protein_didi.fold.fanout`) plans them once in the parent and hands
        each worker its share, so every sequence is padded with the same partners
        as in a single-process run and the results are the same.
        """
        out: list[FoldResult] = []
        if batches:
            self.load()
        for batch in batches:
            self.calls += 1
            results = self._fold_batch(list(batch))
            if self.cache is not None:
                self.cache.put(results, self.model_id)
            out.extend(results)
            if on_batch is not None:
                on_batch(results)
        return out
