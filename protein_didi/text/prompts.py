"""Unconditional text prompts: ``<bos> [MASK]×(L−2) <eos>`` blocks, the shape MDLM's wrapped training blocks have."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from protein_didi.text.tokenizer import TextTokenizer


def masked_blocks(tokenizer: TextTokenizer, length: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
    """``n`` all-[MASK] blocks of ``length`` tokens with fixed ``<bos>``/``<eos>`` ends, and the fixed mask."""
    if length < 3:
        raise ValueError(f"text length must be ≥ 3 tokens (<bos>, text, <eos>), got {length}")
    z = torch.full((n, length), tokenizer.mask_id, dtype=torch.long)
    z[:, 0], z[:, -1] = tokenizer.bos_id, tokenizer.eos_id
    fixed = torch.zeros_like(z, dtype=torch.bool)
    fixed[:, 0] = fixed[:, -1] = True
    return z, fixed


class TextPrompts:
    """One block length per training step, drawn uniformly from ``lengths`` (a pure function of the step).

    Nothing is suppressed: ``<|endoftext|>`` inside a block is a legitimate
    document boundary, and SUBS already gives [MASK] zero probability.
    """

    suppress: tuple[int, ...] = ()

    def __init__(self, tokenizer: TextTokenizer, lengths: Sequence[int], seed: int = 0) -> None:
        if not lengths:
            raise ValueError("give at least one training length")
        for n in lengths:
            if n < 3:
                raise ValueError(f"text length must be ≥ 3 tokens (<bos>, text, <eos>), got {n}")
        self.tokenizer = tokenizer
        self.lengths = sorted(set(int(n) for n in lengths))
        self.seed = seed

    def draw_key(self, step: int) -> int:
        return int(np.random.default_rng([self.seed, step, 7]).choice(self.lengths))

    def template(self, key: int, n: int) -> tuple[torch.Tensor, torch.Tensor]:
        return masked_blocks(self.tokenizer, key, n)
