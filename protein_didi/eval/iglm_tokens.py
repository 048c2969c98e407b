"""IgLM's package, vocabulary and tags: what its judge (:mod:`.iglm_judge`) and sampler (:mod:`.iglm_sampler`) share.

IgLM (Shuai et al., 2023) is a GPT-2 trained on antibody variable domains written as
``[chain] [species] residues… [SEP]`` and, for infilling, as
``[chain] [species] left [MASK] right [SEP] span [CLS]``. Its weights ship inside
the ``iglm`` package, so nothing is downloaded. The package is optional and
licensed by Johns Hopkins University for NON-COMMERCIAL academic use only
(``pip install -e .[iglm]``).

Tokens are mapped from the package's ``vocab.txt`` here (:class:`IgLMTokens`) on purpose: under transformers 5,
``BertTokenizerFast(vocab_file=...)`` (what ``iglm.IgLM`` builds) silently has a 5-token vocabulary and turns
every residue into ``[UNK]``. IgLM's own code (its ``log_likelihood`` and ``infill``) still runs, with this
tokenizer put in place of the broken one (:func:`iglm_runner`).

Chain and species tags come from ANARCI (:mod:`protein_didi.protein.numbering`):
``[HEAVY]`` for H, ``[LIGHT]`` for K and L; the germline species when IgLM has a
tag for it (alpaca → ``[CAMEL]``), ``[HUMAN]`` otherwise.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from pathlib import Path
from types import ModuleType
from typing import Any, Protocol

import numpy as np
import torch

from protein_didi.protein.numbering import AntibodyError, AntibodyNumbering, cdr_span, number_antibodies

IGLM_LICENCE = "IgLM is licensed by Johns Hopkins University for non-commercial academic use only"
CHAIN_TAGS = {"H": "[HEAVY]", "K": "[LIGHT]", "L": "[LIGHT]"}
SPECIES_TAGS = {
    "human": "[HUMAN]",
    "mouse": "[MOUSE]",
    "rat": "[RAT]",
    "rabbit": "[RABBIT]",
    "rhesus": "[RHESUS]",
    "alpaca": "[CAMEL]",
    "camel": "[CAMEL]",
}
"""ANARCI species → IgLM species tag; species IgLM was not trained on (pig, cow) fall back to ``[HUMAN]``."""
DEFAULT_SPECIES_TAG = "[HUMAN]"
RESIDUES = "ACDEFGHIKLMNPQRSTVWY"


def iglm_module() -> ModuleType:
    """``iglm.model.IgLM`` (the module), or a one-line error naming the extra and the licence."""
    try:
        return importlib.import_module("iglm.model.IgLM")
    except ImportError as exc:
        raise AntibodyError(
            f"the iglm package is not installed ({exc}); run: pip install -e .[iglm] ({IGLM_LICENCE})"
        ) from None


class IgLMTokens:
    """IgLM's vocabulary read from the package's ``vocab.txt``, with the tokenizer API ``iglm.IgLM`` calls.

    ``[ANS]`` is not in ``vocab.txt`` and IgLM never emits it, so it maps to ``[UNK]`` like any unknown token.
    """

    def __init__(self, vocab_file: str | Path) -> None:
        self.tokens = Path(vocab_file).read_text().split()
        self.ids = {t: i for i, t in enumerate(self.tokens)}
        missing = [t for t in ("[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *RESIDUES) if t not in self.ids]
        if missing:
            raise AntibodyError(f"IgLM vocab.txt at {vocab_file} lacks {missing}; reinstall: pip install -e .[iglm]")
        self.pad_token, self.unk_token, self.cls_token, self.sep_token, self.mask_token = (
            "[PAD]",
            "[UNK]",
            "[CLS]",
            "[SEP]",
            "[MASK]",
        )
        self.pad_token_id = self.ids["[PAD]"]
        self.unk_token_id = self.ids["[UNK]"]
        self.cls_token_id = self.ids["[CLS]"]
        self.sep_token_id = self.ids["[SEP]"]
        self.mask_token_id = self.ids["[MASK]"]
        self.residue_lut = np.full(256, -1, dtype=np.int64)
        for aa in RESIDUES:
            self.residue_lut[ord(aa)] = self.ids[aa]

    def __len__(self) -> int:
        return len(self.tokens)

    def convert_tokens_to_ids(self, tokens: str | Sequence[str]) -> int | list[int]:
        if isinstance(tokens, str):
            return self.ids.get(tokens, self.unk_token_id)
        return [self.ids.get(t, self.unk_token_id) for t in tokens]

    def decode(self, ids: Sequence[int]) -> str:
        return " ".join(self.tokens[int(i)] for i in ids)

    def encode_residues(self, seq: str, index: int = 0) -> np.ndarray:
        """Residue ids of ``seq``; refuses letters IgLM has no token for, naming sequence and position."""
        codes = self.residue_lut[np.frombuffer(seq.encode("ascii", "replace"), dtype=np.uint8)]
        if (codes < 0).any():
            pos = int(np.flatnonzero(codes < 0)[0])
            raise AntibodyError(
                f"sequence {index} has {seq[pos]!r} at position {pos + 1}; IgLM scores only the 20 amino acids"
            )
        return codes


class LoadedIgLM(Protocol):
    """What IgLM's own code needs of a loaded IgLM (:class:`~protein_didi.eval.iglm_judge.IgLMJudge` has it)."""

    module: ModuleType  # iglm.model.IgLM
    model: Any  # transformers' GPT2LMHeadModel, float32, in eval mode
    tokens: IgLMTokens
    device: torch.device


def iglm_runner(iglm: LoadedIgLM) -> Any:
    """An ``iglm.IgLM`` sharing ``iglm``'s model and carrying the working tokenizer, to run IgLM's own code."""
    runner = iglm.module.IgLM.__new__(iglm.module.IgLM)
    runner.device = iglm.device
    runner.model = iglm.model
    runner.tokenizer = iglm.tokens
    return runner


def chain_tag(chain: str) -> str:
    """IgLM chain tag from ``"H"``/``"K"``/``"L"``, ``"heavy"``/``"light"`` or a tag itself."""
    key = chain.strip()
    if key in ("[HEAVY]", "[LIGHT]"):
        return key
    upper = key.upper()
    if upper in CHAIN_TAGS:
        return CHAIN_TAGS[upper]
    if upper in ("HEAVY", "LIGHT"):
        return f"[{upper}]"
    raise AntibodyError(f"unknown chain {chain!r}; use H, K, L (or heavy, light)")


def species_tag(species: str | None) -> str:
    """IgLM species tag from an ANARCI species name or a tag; None and species IgLM lacks give ``[HUMAN]``."""
    if species is None:
        return DEFAULT_SPECIES_TAG
    key = species.strip()
    if key.startswith("[") and key.upper() in SPECIES_TAGS.values():
        return key.upper()
    if key.lower() in ("pig", "cow"):
        return DEFAULT_SPECIES_TAG
    if key.lower() in SPECIES_TAGS:
        return SPECIES_TAGS[key.lower()]
    raise AntibodyError(f"unknown species {species!r}; use one of {', '.join(sorted(SPECIES_TAGS))}")


def parent_tags(parent: str, chain: str | None, species: str | None) -> tuple[str, str, AntibodyNumbering | None]:
    """Chain and species tags of a parent chain: the ones given, else ANARCI's (with its numbering, for CDR names)."""
    if chain is not None:
        return chain_tag(chain), species_tag(species), None
    num = number_antibodies([parent])[0]
    if not num.numbered:
        raise AntibodyError(
            f"parent '{parent[:20]}…' could not be numbered by ANARCI as an antibody variable domain; "
            "give a heavy or light chain V domain (or pass chain=)"
        )
    return CHAIN_TAGS[num.chain_type], species_tag(species if species is not None else num.species), num


def parent_span(parent: str, span: tuple[int, int] | str, num: AntibodyNumbering | None) -> tuple[int, int]:
    """``(start, end)`` of a residue range of ``parent`` or of a CDR named like ``"H3"``; refuses an empty range."""
    if isinstance(span, str):
        return cdr_span(num if num is not None else parent, span)
    start, end = (int(span[0]), int(span[1]))
    if not 0 <= start < end <= len(parent):
        raise AntibodyError(f"span {span} is not a non-empty range inside the parent's {len(parent)} residues")
    return start, end
