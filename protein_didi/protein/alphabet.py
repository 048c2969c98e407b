"""ESM-2's 33-token alphabet (fair-esm's ``Alphabet``) plus validation and fast array encoding.

The table is fair-esm's, not a copy: ids, special tokens and the [MASK] id come
from ``esm.Alphabet.from_architecture("ESM-1b")``, which ESM-2 and DPLM share.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from functools import cached_property

import esm
import numpy as np
import torch

STANDARD_AA = "ACDEFGHIKLMNPQRSTVWY"
EXTRA_AA = "XBZUO"  # unknown, Asx, Glx, selenocysteine, pyrrolysine: in ESM's vocabulary
MAX_RESIDUES = 1022  # 1024 tokens with <cls> and <eos>, DPLM's maximum


class InvalidSequenceError(ValueError):
    """A sequence cannot be tokenised; the message names the sequence, position and fix."""


class ProteinAlphabet:
    """Tokenisation between residue strings and ESM token ids (``<cls> seq <eos>``)."""

    def __init__(self) -> None:
        self.esm = esm.Alphabet.from_architecture("ESM-1b")
        self.cls_id: int = self.esm.cls_idx
        self.eos_id: int = self.esm.eos_idx
        self.pad_id: int = self.esm.padding_idx
        self.mask_id: int = self.esm.mask_idx
        self.size: int = len(self.esm.all_toks)

    @cached_property
    def _ascii_to_id(self) -> np.ndarray:
        table = np.full(256, -1, dtype=np.int16)
        for aa in STANDARD_AA + EXTRA_AA:
            table[ord(aa)] = self.esm.get_idx(aa)
        return table

    @cached_property
    def _id_to_char(self) -> np.ndarray:
        chars = np.array(["?"] * self.size)
        for aa in STANDARD_AA + EXTRA_AA:
            chars[self.esm.get_idx(aa)] = aa
        return chars

    @cached_property
    def standard_ids(self) -> torch.Tensor:
        """(K,) bool: the 20 standard amino acids, the only tokens we generate."""
        allowed = torch.zeros(self.size, dtype=torch.bool)
        allowed[[self.esm.get_idx(aa) for aa in STANDARD_AA]] = True
        return allowed

    @cached_property
    def residue_mask(self) -> torch.Tensor:
        """(K,) bool: every residue letter ESM accepts, the support of a denoiser's prediction."""
        allowed = torch.zeros(self.size, dtype=torch.bool)
        allowed[torch.from_numpy(self.residue_ids)] = True
        return allowed

    @cached_property
    def nonstandard_ids(self) -> tuple[int, ...]:
        """X, B, Z, U, O: valid input, but never generated."""
        return tuple(self.esm.get_idx(aa) for aa in EXTRA_AA)

    @cached_property
    def residue_ids(self) -> np.ndarray:
        """ids of all residue letters ESM accepts (standard + X/B/Z/U/O)."""
        return np.array([self.esm.get_idx(aa) for aa in STANDARD_AA + EXTRA_AA])

    def validate(self, seq: str, seq_id: str = "sequence", max_residues: int | None = MAX_RESIDUES) -> str:
        """Upper-cased ``seq`` if every letter is a residue ESM knows, else a one-line error."""
        seq = seq.strip().upper()
        if not seq:
            raise InvalidSequenceError(f"{seq_id}: empty sequence; remove the record or give residues")
        codes = self._ascii_to_id[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        bad = np.flatnonzero(codes < 0)
        if bad.size:
            pos = int(bad[0])
            raise InvalidSequenceError(
                f"{seq_id}: invalid residue {seq[pos]!r} at position {pos + 1}; "
                f"use the 20 standard amino acids (or X/B/Z/U/O)"
            )
        if max_residues is not None and len(seq) > max_residues:
            raise InvalidSequenceError(
                f"{seq_id}: length {len(seq)} exceeds {max_residues} residues "
                f"(1024 tokens with <cls>/<eos>); split it or use data_prep, which chunks long proteins"
            )
        return seq

    def encode_residues(self, seq: str) -> np.ndarray:
        """Residue ids (no specials) of an already validated sequence, as uint8."""
        return self._ascii_to_id[np.frombuffer(seq.encode("ascii"), dtype=np.uint8)].astype(np.uint8)

    def encode(self, seqs: Sequence[str], ids: Sequence[str] | None = None) -> torch.Tensor:
        """(B, L_max + 2) tokens ``<cls> residues <eos> <pad>…`` after validating each sequence."""
        ids = ids if ids is not None else [f"sequence {i + 1}" for i in range(len(seqs))]
        encoded = [self.encode_residues(self.validate(s, i)) for s, i in zip(seqs, ids, strict=True)]
        return self.pack(encoded)

    def pack(self, residue_arrays: Iterable[np.ndarray]) -> torch.Tensor:
        """Wrap residue-id arrays in ``<cls>``/``<eos>`` and right-pad them into one tensor."""
        arrays = list(residue_arrays)
        width = max((len(a) for a in arrays), default=0) + 2
        out = torch.full((len(arrays), width), self.pad_id, dtype=torch.long)
        for row, a in enumerate(arrays):
            out[row, 0] = self.cls_id
            out[row, 1 : len(a) + 1] = torch.from_numpy(a.astype(np.int64))
            out[row, len(a) + 1] = self.eos_id
        return out

    def decode(self, tokens: torch.Tensor) -> list[str]:
        """Residue strings from token rows; specials are dropped, a leftover [MASK] shows as '?'."""
        rows = tokens.detach().cpu().numpy()
        out = []
        for row in rows:
            keep = (row != self.cls_id) & (row != self.eos_id) & (row != self.pad_id)
            out.append("".join(self._id_to_char[row[keep]]))
        return out

    def special_positions(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L) bool: ``<cls>``, ``<eos>`` and padding, which are never masked or generated."""
        return (tokens == self.cls_id) | (tokens == self.eos_id) | (tokens == self.pad_id)

    def masked_template(self, lengths: Sequence[int]) -> torch.Tensor:
        """``<cls> [MASK]×L <eos>`` rows (padded) to start generation from."""
        for n in lengths:
            if not 1 <= n <= MAX_RESIDUES:
                raise InvalidSequenceError(
                    f"length {n} is out of range; choose 1..{MAX_RESIDUES} residues (1024 tokens with specials)"
                )
        tokens = self.pack([np.full(n, self.mask_id, dtype=np.int64) for n in lengths])
        return tokens


ALPHABET = ProteinAlphabet()
