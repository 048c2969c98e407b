"""Unconditional protein prompts for distillation: ``<cls> [MASK]×L <eos>`` at a few lengths."""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from protein_didi.protein.alphabet import ALPHABET


class ProteinPrompts:
    """One length per training step, drawn uniformly from ``lengths`` (a pure function of the step).

    ``describe`` (optional) maps sequences to a few shares the trainer logs per step for the student's samples
    (antibody teachers: :func:`~protein_didi.protein.chain_validity.chain_mix`).
    """

    suppress = ALPHABET.nonstandard_ids

    def __init__(
        self, lengths: Sequence[int], seed: int = 0, describe: Callable[[list[str]], dict[str, float]] | None = None
    ) -> None:
        if not lengths:
            raise ValueError("give at least one training length")
        ALPHABET.masked_template(list(lengths))  # validates the range
        self.lengths = sorted(set(int(n) for n in lengths))
        self.seed = seed
        # the trainer reads ``describe(tokens)`` for the student's clean samples; None: nothing to log
        self.describe: Callable[[torch.Tensor], dict[str, float]] | None = (
            None if describe is None else lambda tokens: describe(ALPHABET.decode(tokens))
        )

    def draw_key(self, step: int) -> int:
        return int(np.random.default_rng([self.seed, step, 7]).choice(self.lengths))

    def template(self, key: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        tokens = ALPHABET.masked_template([key] * n)
        return tokens, ALPHABET.special_positions(tokens)
