"""Prepared text corpora: token streams wrapped into fixed-length blocks exactly as MDLM's ``wrap`` mode does.

Every document ends with ``<|endoftext|>``; the documents of a split are
concatenated into one stream, cut into chunks of ``L − 2`` tokens and each chunk
becomes ``<bos> chunk <eos>`` (GPT-2's ``<|endoftext|>`` serves as both), so no
token is padding and documents flow across block boundaries. The trailing
partial chunk is dropped.

A prepared folder (``python -m data_prep.text``) holds ``{train,valid,test}.bin``
(flat uint16/uint32 token streams), ``tokenizer.json``, ``unigram.npy`` (train
token counts) and ``meta.json``.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protein_didi.core.checkpoint import CheckpointError, load_json
from protein_didi.core.stream import StreamOrder
from protein_didi.text.tokenizer import TextTokenizer, load_tokenizer_file

SPLITS = ("train", "valid", "test")
FORMAT = "protein_didi.text/1"


class TextDataError(ValueError):
    """A prepared text folder is missing, incomplete or does not match the model; one-line message."""


def stream_dtype(vocab_size: int) -> np.dtype:
    return np.dtype(np.uint16) if vocab_size <= np.iinfo(np.uint16).max + 1 else np.dtype(np.uint32)


def document_stream(docs: Iterable[Sequence[int]], eos_id: int) -> np.ndarray:
    """Concatenate token lists, each followed by ``eos_id`` (MDLM/GPT-2 document separator)."""
    parts: list[np.ndarray] = []
    for doc in docs:
        parts.append(np.asarray(doc, dtype=np.int64))
        parts.append(np.array([eos_id], dtype=np.int64))
    return np.concatenate(parts) if parts else np.zeros(0, dtype=np.int64)


def pack_blocks(stream: np.ndarray, block_length: int, bos_id: int, eos_id: int) -> np.ndarray:
    """(N, block_length) int64 blocks ``<bos> stream[i(L−2):(i+1)(L−2)] <eos>``; the remainder is dropped."""
    if block_length < 3:
        raise TextDataError(f"block length must be ≥ 3 (<bos>, one token, <eos>), got {block_length}")
    inner = block_length - 2
    n = len(stream) // inner
    body = np.asarray(stream[: n * inner], dtype=np.int64).reshape(n, inner)
    out = np.empty((n, block_length), dtype=np.int64)
    out[:, 0], out[:, -1], out[:, 1:-1] = bos_id, eos_id, body
    return out


def content_mask(x: torch.Tensor) -> torch.Tensor:
    """(B, L) bool: the positions diffusion noises and generates (all but the fixed first and last token)."""
    mask = torch.ones_like(x, dtype=torch.bool)
    mask[:, 0] = False
    mask[:, -1] = False
    return mask


class TextCorpus:
    """One prepared folder: its tokenizer, metadata and memory-mapped token streams."""

    def __init__(self, root: str | Path) -> None:
        self.root = Path(root)
        if not (self.root / "meta.json").is_file():
            raise TextDataError(
                f"{self.root} is not a prepared text folder (no meta.json); run python -m data_prep.text"
            )
        try:
            self.meta: dict[str, Any] = load_json(self.root / "meta.json")
        except CheckpointError as err:
            raise TextDataError(str(err)) from None
        if self.meta.get("format") != FORMAT:
            raise TextDataError(f"{self.root}/meta.json is not a text corpus (format {self.meta.get('format')!r})")
        try:
            self.tokenizer: TextTokenizer = load_tokenizer_file(self.root, self.meta.get("tokenizer"))
        except CheckpointError as err:
            raise TextDataError(str(err)) from None
        self.dtype = stream_dtype(self.tokenizer.mask_id)

    def stream(self, split: str) -> np.ndarray:
        if split not in SPLITS:
            raise TextDataError(f"unknown split {split!r}; choose one of {SPLITS}")
        path = self.root / f"{split}.bin"
        if not path.is_file():
            raise TextDataError(f"{path} missing; re-run python -m data_prep.text")
        return np.memmap(path, dtype=self.dtype, mode="r")

    def blocks(self, split: str, block_length: int) -> np.ndarray:
        out = pack_blocks(self.stream(split), block_length, self.tokenizer.bos_id, self.tokenizer.eos_id)
        if len(out) == 0:
            raise TextDataError(f"the {split} split of {self.root} is shorter than one block of {block_length}")
        return out

    def unigram_counts(self) -> np.ndarray:
        path = self.root / "unigram.npy"
        if not path.is_file():
            raise TextDataError(f"{path} missing; re-run python -m data_prep.text")
        return np.load(path)

    def check_tokenizer(self, tokenizer: TextTokenizer, what: str) -> None:
        """Refuse a model whose tokenizer differs from the corpus's (ids would mean different strings)."""
        if tokenizer.sha256 != self.tokenizer.sha256:
            raise TextDataError(
                f"{self.root} was tokenised with {self.tokenizer.kind} ({self.tokenizer.source}), "
                f"but {what} uses a different tokenizer ({tokenizer.kind}, {tokenizer.source})"
            )


class TextBatches:
    """Training blocks in epoch-shuffled stream order: a batch is a pure function of its stream position."""

    def __init__(self, blocks: np.ndarray, seed: int = 0) -> None:
        if len(blocks) == 0:
            raise TextDataError("no training blocks; prepare more text or shorten the block length")
        self.blocks, self.seed = blocks, seed
        self.order = StreamOrder([len(blocks)], seed)

    def __len__(self) -> int:
        """Blocks per epoch."""
        return len(self.blocks)

    def batch(self, position: int, n: int) -> torch.Tensor:
        """The ``n`` blocks at stream positions ``position …``."""
        return torch.from_numpy(self.blocks[self.order.indices(position, n)].astype(np.int64))
