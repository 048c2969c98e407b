"""Sapiens (Prihoda et al., 2022, mAbs; the model behind BioPhi) as a second, neutral antibody judge: humanness.

Why a second judge: IgLM scores our antibody designs, but IgLM is trained on all species and is used elsewhere in
the project; Sapiens is a small RoBERTa masked LM trained only on human OAS repertoires, one model for heavy chains
(VH) and one for light chains (VL, kappa and lambda), so "how human does this variable domain look" is asked of a
model that had no part in making the designs.

Why the checkpoints are read here, without fairseq: ``sapiens==1.0.5`` (MIT) ships them in its wheel
(``sapiens/models/v1/checkpoint_vh.pt``, ``checkpoint_vl.pt``, ``dict.txt``), but it depends on fairseq and
``torch<2.5``, which cannot be installed next to this project. So ``python -m protein_didi.eval.sapiens_judge``
fetches the wheel with ``pip download --no-deps`` (no install) and keeps the three files, checked against their
SHA-256 sums, in ``$PROTEIN_DIDI_CACHE/sapiens-1.0.5`` (:mod:`protein_didi.core.wheel_files`); this module
unpickles them with an allow-list unpickler (no fairseq class is ever imported or run) and loads the weights into
:class:`SapiensRoberta`, a small re-implementation of the fairseq 0.9/0.10 RoBERTa the checkpoints come from:

* tokens ``<s> r1 … rL </s>`` with the fairseq dictionary ``<s> <pad> </s> <unk>``, ``dict.txt`` (A…Y), ``<mask>``
  (25 symbols), exactly as ``sapiens.roberta.seq2tokens`` builds them (BOS added: the task is ``masked_lm``);
* learned positions starting at ``padding_idx + 1 = 2`` (fairseq's ``make_positions``; the table has
  ``max_positions + 2`` rows: 146 for VH, 130 for VL, so at most 142 / 126 residues);
* token + position embedding, then ``emb_layer_norm`` (RoBERTa's ``encoder_normalize_before=True`` means only
  this), then post-LN layers (attention → residual → LayerNorm → GELU FFN → residual → LayerNorm, eps 1e-5), no
  final LayerNorm; the LM head is dense → GELU → LayerNorm → the tied output projection plus bias.

The port is verified without fairseq (``tests/test_sapiens_judge.py``): against ``transformers``'
``RobertaForMaskedLM`` with the well-known fairseq→HF key mapping on a random checkpoint of the same layout, and on
the real checkpoints by what only a correct port can do (recover the residues of human V domains, score a real VH
far above its shuffle, the VH model prefer a VH to the VL model and vice versa).

Two humanness scores (mean per-residue log-probability of the sequence's own residues, in nats; higher = more
human; per residue so lengths compare):

* ``"unmasked"``: Sapiens' own ``predict_scores``: one forward pass on the unmasked sequence, the softmax over all
  25 symbols at each residue (BioPhi's Sapiens scores are these probabilities; this takes their log);
* ``"pll"``: the pseudo-log-likelihood: mask each position in turn (the ``L`` masked copies of a sequence are one
  batched forward pass) and read the masked position.

The default (:data:`DEFAULT_METHOD`, :func:`humanness`) is ``"unmasked"``. Measured in
``bench/sapiens_calibration.py`` (``bench/results/sapiens_calibration.json``; AUROC / Cohen's d on the same 16+16
picks, unmasked vs PLL):

* it is the better judge of partly broken sequences, the case that matters for generated designs: real human VH vs
  the same VH with 10 % point substitutions 1.00 / 4.7 vs 0.88 / 2.1, with a 10 % homopolymer run 1.00 / 3.1 vs
  0.87 / 1.9, with a 10 % tandem copy 0.97 / 2.9 vs 0.89 / 1.9. The PLL spreads real sequences ~2.5× wider
  (sd 0.24 vs 0.09 nats on real VH), which drowns the corruption;
* the easy contrasts saturate for both (real vs shuffled, VH vs VL model, human vs mouse germline: AUROC ≥ 0.997
  for both; d 4 to 17, PLL somewhat larger on shuffles), and the two rank sequences alike (Spearman 0.94);
* it is what Sapiens' ``predict_scores`` and BioPhi compute (they report the probabilities; this is their log);
* the released checkpoints were fine-tuned last without ``<mask>`` inputs ("13_unmasked_700epochs" /
  "08_unmasked_300epochs" in their stored args: of the 15 % corrupted positions half stay unchanged and half get a
  random residue, none ``<mask>``), i.e. trained to judge every position of an unmasked sequence in one pass;
* it costs one forward per sequence instead of ``L``: ~4 vs ~420 ms per VH on one CPU thread (≈ 100×).

Caveat, for both scores but stronger for ``unmasked`` (whose training taught it to trust the residue it sees):
self-consistent junk is not scored as low as a shuffle: poly-G -0.74 (PLL -2.89), ``(GGGGS)×24`` -0.79, against
-0.25 for real VH and -1.14 for shuffled VH. Read humanness next to the project's low-complexity metric. The PLL
stays available (``method="pll"``) as the textbook masked-LM likelihood. Label smoothing 0.1 in training caps
both scores near -0.1 nats per residue.
"""

from __future__ import annotations

import argparse
import functools
import math
import pickle
import sys
import types
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from protein_didi.cli import error_line
from protein_didi.core.checkpoint import file_sha256
from protein_didi.core.wheel_files import WheelFilesMissing, cache_root, fetch_wheel
from protein_didi.protein.numbering import AntibodyError

WHEEL = "sapiens==1.0.5"
WHEEL_PREFIX = "sapiens/models/v1/"
SHA256 = {
    "checkpoint_vh.pt": "43254666e9ac0d5aa8fc120f12ac02b6ff082cd1f107c389023c1b947f214825",
    "checkpoint_vl.pt": "570a63a6bdd60750c2cc2d280a419c300fafff8ab83f343f8e3847fd07903f6e",
    "dict.txt": "8ff5c1d10c4e921ffb6c4ef6161e55880c1d9efb1c7c74fa3b39654470118dcd",
}
"""The files of the sapiens 1.0.5 wheel's ``sapiens/models/v1/`` (PyPI), checked after a fetch and before a load."""
CHECKPOINTS = {"H": "checkpoint_vh.pt", "K": "checkpoint_vl.pt", "L": "checkpoint_vl.pt"}
"""Chain → checkpoint, as ``sapiens.predict.predict_scores``: one light-chain model for kappa and lambda."""
FETCH_HINT = f"run python -m protein_didi.eval.sapiens_judge (fetches {WHEEL} from PyPI)"
RESIDUES = "ACDEFGHIKLMNPQRSTVWY"
SPECIALS = ("<s>", "<pad>", "</s>", "<unk>")
"""fairseq's ``Dictionary`` puts these first; ``MaskedLMTask`` appends ``<mask>`` after ``dict.txt``'s symbols."""
MASK = "<mask>"
METHODS = ("unmasked", "pll")
DEFAULT_METHOD = "unmasked"
"""The default humanness score; why ``unmasked`` and not the PLL: see the module docstring."""


class SapiensCheckpointsMissing(WheelFilesMissing):
    """The Sapiens checkpoints are not in the cache (or fail their checksum); the message gives the fetch command."""


class SapiensCheckpointError(ValueError):
    """A file is not a fairseq RoBERTa checkpoint of the layout Sapiens uses; the message names the file."""


# ----------------------------------------------------------------------------------------------------------------
# files


def cache_dir() -> Path:
    """Where :func:`fetch` keeps ``checkpoint_vh.pt``, ``checkpoint_vl.pt`` and ``dict.txt``."""
    return cache_root() / "sapiens-1.0.5"


def _bad_files(folder: Path) -> list[str]:
    """The names in :data:`SHA256` that are missing from ``folder`` or differ from sapiens 1.0.5's.

    Hashing 9 MB takes tens of milliseconds, so a verdict is reused while the files' size and mtime stay the same.
    """
    stamps = []
    for name in SHA256:
        try:
            st = (folder / name).stat()
            stamps.append((name, st.st_size, st.st_mtime_ns))
        except OSError:
            stamps.append((name, -1, -1))
    return list(_bad_files_cached(str(folder), tuple(stamps)))


@functools.lru_cache(maxsize=16)
def _bad_files_cached(folder: str, stamps: tuple[tuple[str, int, int], ...]) -> tuple[str, ...]:
    root = Path(folder)
    return tuple(
        name
        for name, size, _ in stamps
        if size < 0 or not (root / name).is_file() or file_sha256(root / name) != SHA256[name]
    )


def resolve_checkpoints(folder: Path | None = None) -> Path:
    """The folder holding intact Sapiens v1 files (``folder`` or :func:`cache_dir`), or a one-line error with the fix.

    Every file is checked against its SHA-256: a truncated download or another version must not quietly become a
    different judge.
    """
    folder = Path(folder).expanduser() if folder is not None else cache_dir()
    bad = _bad_files(folder)
    if not bad:
        return folder
    if all(not (folder / name).exists() for name in SHA256):
        raise SapiensCheckpointsMissing(f"Sapiens checkpoints not found in {folder}; {FETCH_HINT}")
    raise SapiensCheckpointsMissing(
        f"Sapiens files {', '.join(bad)} in {folder} are missing or fail their SHA-256 check; {FETCH_HINT} again"
    )


def fetch(dest: Path | None = None, wheel: Path | None = None) -> Path:
    """Put sapiens 1.0.5's ``models/v1/`` files into ``dest`` (default :func:`cache_dir`), checked; returns ``dest``.

    Downloads the wheel with pip (no install) unless ``wheel`` (a local copy of it) is given; does nothing when
    intact files are already there.
    """
    dest = Path(dest) if dest is not None else cache_dir()
    if not _bad_files(dest):
        return dest
    try:
        fetch_wheel(WHEEL, WHEEL_PREFIX, dest, SHA256, wheel=wheel)
    except WheelFilesMissing as err:
        raise SapiensCheckpointsMissing(str(err)) from None
    return resolve_checkpoints(dest)


# ----------------------------------------------------------------------------------------------------------------
# reading a fairseq checkpoint without fairseq


class _StandIn:
    """What any class or function outside the allow-list unpickles to: it takes any arguments and does nothing.

    fairseq checkpoints pickle ``argparse.Namespace`` args and, in ``extra_state``/``optimizer_history``, whatever
    the training run held (meters, numpy scalars); none of it is needed to score, and none of it may run code.
    """

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        self.args = args

    def __setstate__(self, state: Any) -> None:
        self.state = state

    def __call__(self, *args: Any, **kwargs: Any) -> _StandIn:
        return _StandIn(*args)


class _AllowListUnpickler(pickle.Unpickler):
    """Resolves only what a checkpoint's weights and args need; everything else becomes :class:`_StandIn`.

    Why not ``torch.load(weights_only=True)``: it refuses ``argparse.Namespace`` (the args we need) unless the
    ``safe_globals`` API of torch ≥ 2.5 allows it, while ``pyproject.toml`` accepts torch ≥ 2.3. Tensor storages
    are resolved by torch's own wrapper before this ``find_class`` is asked.
    """

    def find_class(self, module: str, name: str) -> Any:
        if (module, name) == ("collections", "OrderedDict"):
            return super().find_class(module, name)
        if (module, name) == ("argparse", "Namespace"):
            return types.SimpleNamespace
        if module == "torch._utils" and name in ("_rebuild_tensor_v2", "_rebuild_parameter"):
            return super().find_class(module, name)
        if (module, name) in (("torch", "Size"), ("torch", "float32"), ("collections", "defaultdict")):
            return super().find_class(module, name)
        return _StandIn


_ALLOW_LIST_PICKLE = types.SimpleNamespace(
    __name__="protein_didi_allow_list_pickle",
    Unpickler=_AllowListUnpickler,
    load=lambda fh, **kwargs: _AllowListUnpickler(fh, **kwargs).load(),
)
"""A ``pickle_module`` for ``torch.load``: torch uses its ``Unpickler`` (subclassed) and ``load`` (legacy header)."""


def read_fairseq_checkpoint(path: Path) -> tuple[dict[str, Any], dict[str, torch.Tensor]]:
    """(args as a dict, model state dict) of a fairseq checkpoint, unpickled through the allow-list."""
    try:
        ckpt = torch.load(Path(path), map_location="cpu", pickle_module=_ALLOW_LIST_PICKLE, weights_only=False)
    except FileNotFoundError:
        raise SapiensCheckpointsMissing(f"{path} does not exist; {FETCH_HINT}") from None
    except Exception as err:  # any unpickling or format failure means "not a readable checkpoint"
        why = " ".join(str(err).split())[:200]
        raise SapiensCheckpointError(
            f"{path} is not a readable fairseq checkpoint ({type(err).__name__}: {why})"
        ) from None
    if not isinstance(ckpt, dict) or not isinstance(ckpt.get("model"), dict):
        raise SapiensCheckpointError(f"{path} has no 'model' state dict; not a fairseq checkpoint")
    args = ckpt.get("args")
    if isinstance(args, types.SimpleNamespace):
        args_dict = vars(args)
    elif isinstance(args, dict):
        args_dict = args
    else:  # newer fairseq stores an omegaconf 'cfg' instead; Sapiens v1 does not
        raise SapiensCheckpointError(f"{path} has no argparse args (an omegaconf 'cfg' checkpoint?); not Sapiens v1's")
    state = {k: v for k, v in ckpt["model"].items() if isinstance(v, torch.Tensor)}
    return args_dict, state


# ----------------------------------------------------------------------------------------------------------------
# the model


@dataclass(frozen=True)
class SapiensConfig:
    """The architecture, read from the checkpoint's args (and checked against its tensor shapes)."""

    vocab_size: int
    embed_dim: int
    ffn_dim: int
    layers: int
    heads: int
    max_positions: int
    padding_idx: int = 1

    @property
    def max_residues(self) -> int:
        """Residues that fit: ``<s>`` and ``</s>`` take two of the ``max_positions`` tokens."""
        return self.max_positions - 2


class _Layer(nn.Module):
    """fairseq's ``TransformerSentenceEncoderLayer`` (post-LN, as BERT); parameter names as in the checkpoint."""

    def __init__(self, cfg: SapiensConfig) -> None:
        super().__init__()
        self.heads = cfg.heads
        self.self_attn = nn.Module()
        for proj in ("q_proj", "k_proj", "v_proj", "out_proj"):
            self.self_attn.add_module(proj, nn.Linear(cfg.embed_dim, cfg.embed_dim))
        self.self_attn_layer_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-5)
        self.fc1 = nn.Linear(cfg.embed_dim, cfg.ffn_dim)
        self.fc2 = nn.Linear(cfg.ffn_dim, cfg.embed_dim)
        self.final_layer_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-5)

    def forward(self, x: torch.Tensor, keep: torch.Tensor | None) -> torch.Tensor:
        """``x`` (B, T, D); ``keep`` (B, 1, 1, T) is True at keys that are not padding (None: no padding)."""
        b, t, d = x.shape
        att = self.self_attn

        def heads(y: torch.Tensor) -> torch.Tensor:
            return y.view(b, t, self.heads, d // self.heads).transpose(1, 2)

        q, k, v = heads(att.q_proj(x)), heads(att.k_proj(x)), heads(att.v_proj(x))
        # fairseq scales q by head_dim**-0.5 after the projection bias: the same as SDPA's default scale
        y = F.scaled_dot_product_attention(q, k, v, attn_mask=keep).transpose(1, 2).reshape(b, t, d)
        x = self.self_attn_layer_norm(x + att.out_proj(y))
        return self.final_layer_norm(x + self.fc2(F.gelu(self.fc1(x))))


class SapiensRoberta(nn.Module):
    """The fairseq 0.9/0.10 RoBERTa masked LM of Sapiens, in plain torch (see the module docstring).

    Parameter names are the checkpoint's minus its ``decoder.`` prefix, so loading is a strict ``load_state_dict``
    with nothing to remap: any missing, extra or misshapen tensor is an error, never a silently random weight.
    """

    def __init__(self, cfg: SapiensConfig, vocab: Sequence[str]) -> None:
        super().__init__()
        if len(vocab) != cfg.vocab_size:
            raise SapiensCheckpointError(f"vocabulary has {len(vocab)} symbols but the embedding {cfg.vocab_size} rows")
        self.cfg = cfg
        self.vocab = tuple(vocab)
        self.index = {s: i for i, s in enumerate(self.vocab)}
        missing = [s for s in (*SPECIALS, MASK, *RESIDUES) if s not in self.index]
        if missing or self.index["<pad>"] != cfg.padding_idx:
            raise SapiensCheckpointError(f"vocabulary lacks {missing or '<pad> at 1'}; not Sapiens' dictionary")
        enc = nn.Module()
        enc.embed_tokens = nn.Embedding(cfg.vocab_size, cfg.embed_dim, padding_idx=cfg.padding_idx)
        enc.embed_positions = nn.Embedding(cfg.max_positions + cfg.padding_idx + 1, cfg.embed_dim, cfg.padding_idx)
        enc.emb_layer_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-5)
        enc.layers = nn.ModuleList(_Layer(cfg) for _ in range(cfg.layers))
        self.sentence_encoder = enc
        head = nn.Module()
        head.dense = nn.Linear(cfg.embed_dim, cfg.embed_dim)
        head.layer_norm = nn.LayerNorm(cfg.embed_dim, eps=1e-5)
        head.weight = nn.Parameter(torch.zeros(cfg.vocab_size, cfg.embed_dim))
        head.bias = nn.Parameter(torch.zeros(cfg.vocab_size))
        self.lm_head = head
        # residue letter → token id, for vectorised encoding
        self._letter_ids = torch.full((128,), -1, dtype=torch.long)
        for aa in RESIDUES:
            self._letter_ids[ord(aa)] = self.index[aa]

    @property
    def pad_id(self) -> int:
        return self.cfg.padding_idx

    @property
    def mask_id(self) -> int:
        return self.index[MASK]

    def encode(self, seq: str) -> torch.Tensor:
        """``<s> residues </s>`` as ``sapiens.roberta.seq2tokens`` builds it (the caller has checked the letters)."""
        body = self._letter_ids[torch.frombuffer(bytearray(seq.encode("ascii")), dtype=torch.uint8).long()]
        return torch.cat([torch.tensor([self.index["<s>"]]), body, torch.tensor([self.index["</s>"]])])

    def forward(self, tokens: torch.Tensor) -> torch.Tensor:
        """Logits (B, T, vocab) for token ids (B, T) padded with ``<pad>``."""
        enc = self.sentence_encoder
        real = tokens.ne(self.cfg.padding_idx)
        # fairseq make_positions: real tokens count from padding_idx + 1, padding sits on the (zero) padding row
        positions = torch.cumsum(real, dim=1) * real + self.cfg.padding_idx
        x = enc.emb_layer_norm(enc.embed_tokens(tokens) + enc.embed_positions(positions))
        x = x * real.unsqueeze(-1).to(x.dtype)
        keep = None if bool(real.all()) else real[:, None, None, :]  # no mask lets SDPA take its fast path
        for layer in enc.layers:
            x = layer(x, keep)
        head = self.lm_head
        x = head.layer_norm(F.gelu(head.dense(x)))
        return F.linear(x, head.weight) + head.bias


def _config_from(args: dict[str, Any], state: dict[str, torch.Tensor], path: Path) -> SapiensConfig:
    """The architecture from the stored args, refusing what :class:`SapiensRoberta` does not implement."""
    if args.get("arch", "roberta_small").split("_")[0] != "roberta" or args.get("task", "masked_lm") != "masked_lm":
        raise SapiensCheckpointError(f"{path} is a {args.get('arch')}/{args.get('task')} checkpoint, not a RoBERTa MLM")
    if args.get("activation_fn", "gelu") != "gelu" or args.get("encoder_normalize_before", False):
        raise SapiensCheckpointError(
            f"{path} uses an activation or layer-norm placement this reader does not implement"
        )
    try:
        emb = state["decoder.sentence_encoder.embed_tokens.weight"]
        cfg = SapiensConfig(
            vocab_size=int(emb.shape[0]),
            embed_dim=int(args["encoder_embed_dim"]),
            ffn_dim=int(args["encoder_ffn_embed_dim"]),
            layers=int(args["encoder_layers"]),
            heads=int(args["encoder_attention_heads"]),
            max_positions=int(args["max_positions"]),
        )
    except KeyError as err:
        raise SapiensCheckpointError(f"{path} lacks {err.args[0]}; not a fairseq RoBERTa checkpoint") from None
    if cfg.embed_dim % cfg.heads:
        raise SapiensCheckpointError(f"{path}: {cfg.heads} heads do not divide width {cfg.embed_dim}")
    return cfg


def read_dictionary(path: Path) -> list[str]:
    """fairseq's symbol order for a ``dict.txt``: the four specials, the file's symbols, then ``<mask>``."""
    try:
        symbols = [line.split()[0] for line in Path(path).read_text().splitlines() if line.strip()]
    except OSError as err:
        raise SapiensCheckpointsMissing(f"cannot read {path} ({err}); {FETCH_HINT}") from None
    return [*SPECIALS, *symbols, MASK]


def load_checkpoint(path: Path, dict_file: Path | None = None) -> SapiensRoberta:
    """A :class:`SapiensRoberta` (eval mode, CPU) from any fairseq RoBERTa checkpoint of Sapiens' layout.

    ``dict_file`` defaults to ``dict.txt`` beside the checkpoint. No checksum here (tests feed random checkpoints);
    :func:`load_sapiens` checks the real files first.
    """
    path = Path(path)
    args, state = read_fairseq_checkpoint(path)
    cfg = _config_from(args, state, path)
    model = SapiensRoberta(cfg, read_dictionary(dict_file or path.parent / "dict.txt"))
    prefix = "decoder."
    if not all(k.startswith(prefix) for k in state):
        raise SapiensCheckpointError(f"{path}: keys outside '{prefix}' (a newer fairseq layout?); not Sapiens v1's")
    try:
        model.load_state_dict({k[len(prefix) :]: v for k, v in state.items()}, strict=True)
    except RuntimeError as err:
        first = " ".join(str(err).split())[:300]
        raise SapiensCheckpointError(f"{path} does not match the Sapiens RoBERTa layout ({first})") from None
    return model.eval()


@functools.lru_cache(maxsize=4)
def _load_cached(path: str, dict_file: str, device: str) -> SapiensRoberta:
    return load_checkpoint(Path(path), Path(dict_file)).to(device)


def load_sapiens(chain: str, folder: Path | None = None, device: str | torch.device = "cpu") -> SapiensRoberta:
    """Sapiens' VH model for chain ``H``, its VL model for ``K`` and ``L``; checked, loaded once per process."""
    name = _checkpoint_name(chain)
    root = resolve_checkpoints(folder)
    return _load_cached(str(root / name), str(root / "dict.txt"), str(torch.device(device)))


# ----------------------------------------------------------------------------------------------------------------
# scoring


def _checkpoint_name(chain: str, index: int | None = None) -> str:
    if chain not in CHECKPOINTS:
        where = f" for sequence {index}" if index is not None else ""
        raise AntibodyError(f"unknown chain {chain!r}{where}; use H (heavy) or K / L (light)")
    return CHECKPOINTS[chain]


def _check_sequences(sequences: Sequence[str], chains: str | Sequence[str]) -> list[str]:
    """One chain per sequence; every sequence non-empty and made of the 20 standard residues (one-line errors)."""
    if isinstance(sequences, str):
        raise AntibodyError("pass a list of sequences, not one string")
    per_seq = [chains] * len(sequences) if isinstance(chains, str) else list(chains)
    if len(per_seq) != len(sequences):
        raise AntibodyError(f"{len(per_seq)} chains given for {len(sequences)} sequences; pass one chain or one each")
    for i, (seq, chain) in enumerate(zip(sequences, per_seq, strict=True)):
        _checkpoint_name(chain, i)
        if not isinstance(seq, str) or not seq:
            raise AntibodyError(f"sequence {i} is empty or not a string; pass variable-domain residues")
        for pos, aa in enumerate(seq, start=1):
            if aa not in RESIDUES:
                raise AntibodyError(
                    f"sequence {i} has invalid residue {aa!r} at position {pos}; use the 20 standard uppercase letters"
                )
    return per_seq


def _check_fit(model: SapiensRoberta, sequences: Sequence[str], indices: Sequence[int]) -> None:
    """Every sequence fits the model's position table; the error names the caller's index ``indices[k]``."""
    for i, seq in zip(indices, sequences, strict=True):
        if len(seq) > model.cfg.max_residues:
            raise AntibodyError(
                f"sequence {i} has {len(seq)} residues, more than Sapiens' {model.cfg.max_residues}; "
                "pass only the variable domain"
            )


def _own_log_probs(logits: torch.Tensor, tokens: torch.Tensor) -> torch.Tensor:
    """log p(token) under a softmax over the whole vocabulary (as Sapiens: specials are not renormalised away)."""
    return torch.log_softmax(logits.float(), dim=-1).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


@torch.no_grad()
def model_residue_log_probs(
    model: SapiensRoberta, sequences: Sequence[str], method: str = DEFAULT_METHOD, batch_size: int = 64
) -> list[np.ndarray]:
    """Per-residue log-probabilities of each (already checked) sequence's own residues under ``model``.

    ``unmasked``: sequences sorted by length and padded into batches of ``batch_size`` (padding never changes a
    result: padded keys are masked and positions count real tokens only). ``pll``: the ``L`` copies of one
    sequence, each with one residue replaced by ``<mask>``, go through as one batch.
    """
    if method not in METHODS:
        raise AntibodyError(f"unknown Sapiens score {method!r}; use one of {', '.join(METHODS)}")
    device = next(model.parameters()).device
    _check_fit(model, sequences, range(len(sequences)))
    out: list[np.ndarray] = [np.empty(0)] * len(sequences)
    if method == "unmasked":
        order = sorted(range(len(sequences)), key=lambda j: len(sequences[j]))
        for start in range(0, len(order), batch_size):
            chunk = order[start : start + batch_size]
            encoded = [model.encode(sequences[j]) for j in chunk]
            tokens = nn.utils.rnn.pad_sequence(encoded, batch_first=True, padding_value=model.pad_id).to(device)
            lp = _own_log_probs(model(tokens), tokens).cpu()
            for row, j in enumerate(chunk):
                out[j] = lp[row, 1 : len(sequences[j]) + 1].numpy().astype(np.float64)
        return out
    for j, seq in enumerate(sequences):
        tokens = model.encode(seq).to(device)
        n = len(seq)
        copies = tokens.repeat(n, 1)
        where = torch.arange(1, n + 1, device=device)
        copies[torch.arange(n, device=device), where] = model.mask_id
        logits = model(copies)[torch.arange(n, device=device), where]
        out[j] = _own_log_probs(logits, tokens[1 : n + 1]).cpu().numpy().astype(np.float64)
    return out


def sapiens_residue_log_probs(
    sequences: Sequence[str],
    chains: str | Sequence[str],
    method: str = DEFAULT_METHOD,
    folder: Path | None = None,
    device: str | torch.device = "cpu",
) -> list[np.ndarray]:
    """Per-residue log p(own residue) of each sequence under its chain's Sapiens model (H → VH, K/L → VL).

    ``chains`` is one letter for all sequences or one per sequence. Results keep the input order.
    """
    per_seq = _check_sequences(sequences, chains)
    if method not in METHODS:
        raise AntibodyError(f"unknown Sapiens score {method!r}; use one of {', '.join(METHODS)}")
    out: list[np.ndarray] = [np.empty(0)] * len(sequences)
    for name in sorted({CHECKPOINTS[c] for c in per_seq}):
        idx = [i for i, c in enumerate(per_seq) if CHECKPOINTS[c] == name]
        model = load_sapiens("H" if name == CHECKPOINTS["H"] else "L", folder, device)
        subset = [sequences[i] for i in idx]
        _check_fit(model, subset, idx)  # here, so that errors name the caller's index, not the subset's
        for i, lp in zip(idx, model_residue_log_probs(model, subset, method), strict=True):
            out[i] = lp
    return out


def sapiens_scores(
    sequences: Sequence[str],
    chains: str | Sequence[str],
    method: str = DEFAULT_METHOD,
    folder: Path | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """Humanness per sequence: the mean per-residue log-probability of its own residues (nats; higher = more human).

    ``method`` is ``"unmasked"`` (Sapiens' ``predict_scores``; the default) or ``"pll"`` (pseudo-log-likelihood).
    """
    per_residue = sapiens_residue_log_probs(sequences, chains, method, folder, device)
    return np.array([float(lp.mean()) for lp in per_residue], dtype=np.float64)


def humanness(
    sequences: Sequence[str],
    chains: str | Sequence[str],
    folder: Path | None = None,
    device: str | torch.device = "cpu",
) -> np.ndarray:
    """The project's Sapiens humanness judge: :func:`sapiens_scores` with :data:`DEFAULT_METHOD` (``unmasked``).

    Why the unmasked score and not the PLL (numbers in the module docstring, from ``bench/sapiens_calibration.py``):
    it separates real human VH from the same VH with 10 % substitutions, a homopolymer run or a tandem copy far
    better (AUROC 0.97 to 1.00 vs 0.87 to 0.89), both saturate on shuffles and mouse germlines, it is Sapiens' and
    BioPhi's own score, the checkpoints were last trained without ``<mask>`` inputs, and it costs one forward pass
    instead of one per residue (≈ 100× less time).
    """
    return sapiens_scores(sequences, chains, DEFAULT_METHOD, folder, device)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m protein_didi.eval.sapiens_judge",
        description=f"Put Sapiens' VH/VL checkpoints ({WHEEL}'s, from PyPI; MIT) in the project cache for the "
        "humanness judge. pip downloads the wheel only; nothing is installed.",
    )
    parser.add_argument("--check", action="store_true", help="only say where the checkpoints are (exit 2 if absent)")
    parser.add_argument("--wheel", type=Path, help="take the files from this local sapiens-1.0.5 wheel instead of PyPI")
    args = parser.parse_args(argv)
    try:
        folder = resolve_checkpoints() if args.check else fetch(wheel=args.wheel)
    except (WheelFilesMissing, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    sizes = ", ".join(f"{name} ({math.ceil((folder / name).stat().st_size / 1024)} KiB)" for name in SHA256)
    print(f"Sapiens checkpoints ({WHEEL}, SHA-256 checked): {folder}: {sizes}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
