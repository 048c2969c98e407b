"""Text tokenizers: GPT-2 BPE when it is on this machine (or the hub is reachable), else a byte-level BPE trained here.

The paper tokenises OpenWebText with GPT-2's BPE. Offline machines cannot
download it, so :func:`train_bpe` trains the same kind of tokenizer (byte-level
BPE, GPT-2 pre-tokenisation, ``<|endoftext|>`` as the only special token) on the
local corpus. Either way the tokenizer travels with every checkpoint as
``tokenizer.json`` and its provenance is recorded as ``{"kind", "source",
"sha256"}``, so sampling always decodes with the tokenizer the model was trained
on. Diffusion adds one token: ``[MASK]`` is the id right after the tokenizer's
vocabulary, as in MDLM (GPT-2: 50257).
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

from protein_didi.core.checkpoint import CheckpointError, atomic_write

EOS = "<|endoftext|>"
FILE = "tokenizer.json"
HUB_ID = "gpt2"


class TokenizerError(ValueError):
    """A tokenizer cannot be found, loaded or trained; always a one-line message."""


class TextTokenizer:
    """A ``tokenizers.Tokenizer`` plus the ids diffusion needs.

    Attributes:
        kind: ``"gpt2"`` (GPT-2's BPE) or ``"bpe"`` (byte-level BPE trained on a local corpus).
        source: where it came from (hub id, folder or corpus description).
        eos_id: ``<|endoftext|>``, which is also the block-opening BOS, as in GPT-2/MDLM.
        mask_id: the extra [MASK] id (= tokenizer vocabulary size).
        vocab_size: tokenizer vocabulary + [MASK], the denoiser's K.
    """

    def __init__(self, tokenizer: Tokenizer, kind: str, source: str) -> None:
        eos = tokenizer.token_to_id(EOS)
        if eos is None:
            raise TokenizerError(f"tokenizer from {source} has no {EOS} token; GPT-2-style BPE tokenizers need it")
        self.tokenizer, self.kind, self.source = tokenizer, kind, source
        self.eos_id: int = eos
        self.bos_id: int = eos
        self.mask_id: int = tokenizer.get_vocab_size(with_added_tokens=True)
        self.vocab_size: int = self.mask_id + 1

    def encode(self, text: str) -> list[int]:
        """Token ids of ``text``; ``<|endoftext|>`` written in the text becomes the special token."""
        return self.tokenizer.encode(text, add_special_tokens=False).ids

    def encode_batch(self, texts: Sequence[str]) -> list[list[int]]:
        return [e.ids for e in self.tokenizer.encode_batch(list(texts), add_special_tokens=False)]

    def decode(self, ids: Iterable[int]) -> str:
        """Text of ``ids``, keeping ``<|endoftext|>`` visible (it separates documents); [MASK] shows as ``[MASK]``."""
        ids = [int(i) for i in ids]
        out, run = [], []
        for i in ids:
            if i == self.mask_id:
                out.append(self.tokenizer.decode(run, skip_special_tokens=False))
                out.append("[MASK]")
                run = []
            else:
                run.append(i)
        out.append(self.tokenizer.decode(run, skip_special_tokens=False))
        return "".join(out)

    def to_json(self) -> str:
        return self.tokenizer.to_str()

    @property
    def sha256(self) -> str:
        """Fingerprint of the vocabulary and merges: two tokenizers with equal hashes encode identically."""
        return hashlib.sha256(self.to_json().encode()).hexdigest()

    def record(self) -> dict[str, Any]:
        """What a checkpoint records about its tokenizer."""
        return {"kind": self.kind, "source": self.source, "sha256": self.sha256, "vocab_size": self.mask_id}

    def save(self, folder: str | Path) -> Path:
        """Write ``folder/tokenizer.json`` atomically."""
        return atomic_write(Path(folder) / FILE, lambda p: p.write_text(self.to_json()))


def _byte_level(tok: Tokenizer) -> Tokenizer:
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    return tok


def train_bpe(texts: Iterable[str], vocab_size: int = 4096, source: str = "local corpus") -> TextTokenizer:
    """Byte-level BPE with GPT-2's pre-tokenisation, trained on ``texts`` (the offline stand-in for GPT-2)."""
    if vocab_size < 300:
        raise TokenizerError(f"BPE vocabulary must be ≥ 300 (256 bytes + merges), got {vocab_size}")
    tok = _byte_level(Tokenizer(models.BPE()))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=[EOS],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator(texts, trainer)
    return TextTokenizer(tok, "bpe", source)


def load_gpt2(source: str = HUB_ID) -> TextTokenizer:
    """GPT-2's BPE from a local folder (``tokenizer.json`` or ``vocab.json`` + ``merges.txt``) or the hub id."""
    path = Path(source)
    if path.is_dir():
        if (path / FILE).is_file():
            return TextTokenizer(Tokenizer.from_file(str(path / FILE)), "gpt2", str(path))
        if (path / "vocab.json").is_file() and (path / "merges.txt").is_file():
            bpe = models.BPE.from_file(str(path / "vocab.json"), str(path / "merges.txt"))
            return TextTokenizer(_byte_level(Tokenizer(bpe)), "gpt2", str(path))
        raise TokenizerError(f"{path} holds neither tokenizer.json nor vocab.json + merges.txt")
    if path.exists():
        raise TokenizerError(f"{path} is not a tokenizer folder")
    try:
        return TextTokenizer(Tokenizer.from_pretrained(source), "gpt2", source)
    except Exception as err:  # the hub client raises many types when offline
        first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
        raise TokenizerError(
            f"cannot load GPT-2 tokenizer {source!r} ({first}); copy gpt2's tokenizer.json to a folder and pass "
            f"that folder, or use --tokenizer bpe to train one offline"
        ) from None


def load_tokenizer_file(folder: str | Path, record: dict[str, Any] | None = None) -> TextTokenizer:
    """The tokenizer saved in a checkpoint or data folder, checked against the recorded fingerprint."""
    path = Path(folder) / FILE
    if not path.is_file():
        raise CheckpointError(f"{path} not found; text checkpoints carry their tokenizer")
    try:
        tok = Tokenizer.from_file(str(path))
    except Exception as err:
        raise CheckpointError(f"{path} is not a valid tokenizer file ({str(err)[:100]})") from None
    record = record or {}
    out = TextTokenizer(tok, record.get("kind", "bpe"), record.get("source", str(folder)))
    if record.get("sha256") and record["sha256"] != out.sha256:
        raise CheckpointError(f"{path} differs from the tokenizer recorded in {Path(folder) / 'config.json'}")
    return out
