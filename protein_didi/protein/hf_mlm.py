"""Hugging Face BERT-family masked LMs (AntiBERTy, ProtBert, …) as denoisers over the project's ESM alphabet.

Samplers, trainers, RGAS and checkpoints all speak ESM's 33-token alphabet, so
instead of teaching them a second vocabulary the adapter translates at both
ends of the network: project ids → model ids at the input (``<cls>``→[CLS],
``<eos>``→[SEP], ``<pad>``→[PAD], ``<mask>``→[MASK], residue letters → the same
letter, anything the model lacks → [UNK]) and model logits → the 33 project
tokens at the output (letters the model lacks get NEG_INF, so they are never
predicted). Both maps are buffers computed once from the model's vocabulary
list; a forward pass only indexes. ESM/DPLM checkpoints stay on
:class:`~protein_didi.protein.model.EsmDenoiser`.

Dropout is switched off in the config: DiDi-Instruct and IDLM train deep
copies of the teacher in train mode, and BERT's default 0.1 dropout would add
noise to student, discriminator and fake model that the paper's setting does not
have (and would make train-mode forwards differ from the teacher's).
"""

from __future__ import annotations

import copy
import json
from collections.abc import Mapping, Sequence
from pathlib import Path

import torch
import torch.nn.functional as F
from torch import nn
from transformers import BertConfig, BertForMaskedLM

from protein_didi.core.checkpoint import CheckpointError, load_tensors
from protein_didi.core.denoiser import NEG_INF, subs_log_probs
from protein_didi.protein.alphabet import ALPHABET, EXTRA_AA, MAX_RESIDUES, STANDARD_AA, InvalidSequenceError

# project special token → role; roles name the model's own special tokens in ``special_tokens``
BERT_SPECIALS: dict[str, str] = {"cls": "[CLS]", "eos": "[SEP]", "pad": "[PAD]", "mask": "[MASK]", "unk": "[UNK]"}
_PROJECT_ROLE = {ALPHABET.cls_id: "cls", ALPHABET.eos_id: "eos", ALPHABET.pad_id: "pad", ALPHABET.mask_id: "mask"}
_RESIDUE_LETTERS = STANDARD_AA + EXTRA_AA


def vocabulary_maps(
    vocab: Sequence[str], special_tokens: Mapping[str, str] = BERT_SPECIALS
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """(to_model (33,) long, from_model (33,) long, known (33,) bool) between the project and a model vocabulary.

    ``to_model[p]`` is the model id fed for project id ``p``; ``from_model[p]``
    is the model logit read for project token ``p``, meaningful where
    ``known[p]`` (a residue letter in the model's vocabulary).
    """
    index = {tok: i for i, tok in enumerate(vocab)}
    if len(index) != len(vocab):
        raise ValueError("model vocabulary lists a token twice; pass the vocabulary in id order")
    missing = [name for role, name in special_tokens.items() if name not in index]
    if missing or set(BERT_SPECIALS) - set(special_tokens):
        raise ValueError(
            f"model vocabulary lacks special tokens {missing or sorted(set(BERT_SPECIALS) - set(special_tokens))}; "
            f"give special_tokens for roles {sorted(BERT_SPECIALS)}"
        )
    unk = index[special_tokens["unk"]]
    to_model = torch.full((ALPHABET.size,), unk, dtype=torch.long)
    from_model = torch.zeros(ALPHABET.size, dtype=torch.long)
    known = torch.zeros(ALPHABET.size, dtype=torch.bool)
    for pid, tok in enumerate(ALPHABET.esm.all_toks):
        if pid in _PROJECT_ROLE:
            to_model[pid] = index[special_tokens[_PROJECT_ROLE[pid]]]
        elif tok in _RESIDUE_LETTERS and tok in index:
            to_model[pid] = from_model[pid] = index[tok]
            known[pid] = True
    if not (known & ALPHABET.standard_ids).any():
        raise ValueError("model vocabulary has none of the 20 amino-acid letters; it is not a protein masked LM")
    return to_model, from_model, known


class BertDenoiser(nn.Module):
    """``log_probs = model(tokens, t)`` over the project's 33 tokens, computed by a ``BertForMaskedLM``.

    ``features(tokens, t, soft_tokens)`` gives the last hidden states for the
    discriminator; soft tokens (B, L, 33) over the project vocabulary enter as
    ``soft @ (map 33→V) @ word_embeddings``, so RGAS's gradient with respect to
    the one-hot input flows through the same embedding rows hard tokens use.
    """

    time_conditioned = False
    family = "bert"

    def __init__(
        self, config: BertConfig, vocab: Sequence[str], special_tokens: Mapping[str, str] | None = None
    ) -> None:
        super().__init__()
        if config.model_type != "bert":
            raise ValueError(f"model type {config.model_type!r} is not BERT; ESM/DPLM models load as EsmDenoiser")
        if len(vocab) != config.vocab_size:
            raise ValueError(f"vocabulary lists {len(vocab)} tokens but the model config has {config.vocab_size}")
        config = copy.deepcopy(config)
        config.hidden_dropout_prob = 0.0  # see the module docstring: no dropout noise in distillation
        config.attention_probs_dropout_prob = 0.0
        self.config = config
        self.vocab: list[str] = list(vocab)
        self.special_tokens: dict[str, str] = dict(special_tokens or BERT_SPECIALS)
        self.mlm = BertForMaskedLM(config)
        self.mask_id: int = ALPHABET.mask_id
        self.vocab_size: int = ALPHABET.size
        self.hidden_size: int = config.hidden_size
        self.max_tokens: int = config.max_position_embeddings
        self.max_residues: int = min(config.max_position_embeddings - 2, MAX_RESIDUES)
        to_model, from_model, known = vocabulary_maps(self.vocab, self.special_tokens)
        # derived from ``vocab``, hence not persistent: checkpoints hold only network weights
        self.register_buffer("to_model", to_model, persistent=False)
        self.register_buffer("from_model", from_model, persistent=False)
        self.register_buffer("known", known, persistent=False)
        self.register_buffer("embed_map", F.one_hot(to_model, config.vocab_size).float(), persistent=False)
        self.register_buffer("allowed", ALPHABET.standard_ids & known, persistent=False)

    def _check_length(self, tokens: torch.Tensor) -> None:
        if tokens.shape[1] > self.max_tokens:
            raise InvalidSequenceError(
                f"length {tokens.shape[1] - 2} exceeds this model's {self.max_residues} residues "
                f"({self.max_tokens} positions with [CLS]/[SEP]); choose a length ≤ {self.max_residues}"
            )

    def features(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        """(B, L, H) last hidden states; ``t`` is accepted for the interface and ignored (no time input)."""
        self._check_length(tokens)
        attention_mask = (tokens != ALPHABET.pad_id).long()
        if soft_tokens is None:
            out = self.mlm.bert(input_ids=self.to_model[tokens], attention_mask=attention_mask)
        else:
            weight = self.mlm.bert.embeddings.word_embeddings.weight
            emb = soft_tokens.to(weight.dtype) @ (self.embed_map.to(weight.dtype) @ weight)
            out = self.mlm.bert(inputs_embeds=emb, attention_mask=attention_mask)
        return out.last_hidden_state

    def forward(
        self, tokens: torch.Tensor, t: torch.Tensor | None = None, soft_tokens: torch.Tensor | None = None
    ) -> torch.Tensor:
        logits = self.mlm.cls(self.features(tokens, t, soft_tokens))
        logits = logits.index_select(-1, self.from_model).masked_fill(~self.known, NEG_INF)
        return subs_log_probs(logits, tokens, self.mask_id, self.allowed)


def read_vocab(path: str | Path) -> list[str]:
    """A BERT ``vocab.txt``: one token per line, line number = id."""
    path = Path(path)
    if not path.is_file():
        raise CheckpointError(f"{path} not found; a BERT folder needs its vocab.txt")
    return [line.rstrip("\r\n") for line in path.read_text().splitlines() if line.strip()]


def _read_weights(folder: Path) -> dict[str, torch.Tensor]:
    if (folder / "model.safetensors").is_file():
        return load_tensors(folder / "model.safetensors")
    if (folder / "pytorch_model.bin").is_file():
        try:
            return torch.load(folder / "pytorch_model.bin", map_location="cpu", weights_only=True)
        except Exception as err:
            raise CheckpointError(f"{folder}/pytorch_model.bin is corrupt ({str(err).splitlines()[0]})") from None
    raise CheckpointError(f"{folder} has no model.safetensors or pytorch_model.bin")


def load_bert_folder(folder: str | Path, vocab_file: str | Path | None = None) -> BertDenoiser:
    """A ``transformers`` BERT masked-LM folder (``config.json``, ``vocab.txt``, weights) as a :class:`BertDenoiser`.

    ``vocab_file`` overrides ``folder/vocab.txt`` (AntiBERTy keeps it one level up).
    Keys outside ``BertForMaskedLM`` (pooler, AntiBERTy's species/chain/graft
    heads) are dropped; a missing encoder or MLM-head weight is an error.
    """
    folder = Path(folder)
    try:
        raw = json.loads((folder / "config.json").read_text())
        config = BertConfig(**{k: v for k, v in raw.items() if k not in ("architectures", "_name_or_path")})
    except (OSError, json.JSONDecodeError, TypeError, ValueError) as err:
        raise CheckpointError(f"{folder}/config.json is not a BERT config ({err})") from None
    try:
        model = BertDenoiser(config, read_vocab(vocab_file or folder / "vocab.txt"))
    except ValueError as err:
        raise CheckpointError(f"{folder}: {err}") from None
    state = model.mlm.state_dict()
    weights = _read_weights(folder)
    missing = sorted(k for k in state if k not in weights and not _tied(model.mlm, k))
    if missing:
        raise CheckpointError(
            f"{folder} lacks {len(missing)} masked-LM weights (first: {missing[0]}); not a BertForMaskedLM checkpoint?"
        )
    try:
        model.mlm.load_state_dict({k: weights[k].float() for k in state if k in weights}, strict=False)
    except RuntimeError as err:
        raise CheckpointError(f"{folder} weights do not match its config.json ({str(err).splitlines()[0]})") from None
    return model.eval()


def _tied(mlm: BertForMaskedLM, key: str) -> bool:
    """Whether ``key`` is the LM decoder tied to a weight that is loaded under another name."""
    return mlm.config.tie_word_embeddings and key in ("cls.predictions.decoder.weight", "cls.predictions.decoder.bias")
