"""An independent autoregressive protein LM that scores generated sequences (generative perplexity).

DiDi-Instruct judges text samples with an unrelated autoregressive LM; this is
the protein counterpart. The judge is deliberately *not* the teacher's
architecture (bidirectional ESM masked LM): it is a small causal transformer
with ALiBi attention biases, trained left to right on the train split, so a
student cannot score well merely by imitating the teacher's biases. ALiBi
(rather than learned or rotary positions) lets a judge trained on ≤256-residue
crops score full-length proteins up to 1022 residues.

What is counted: a sequence ``r_1..r_L`` is read as ``<cls> r_1 … r_L <eos>`` and
:meth:`Judge.nll` returns ``−(Σ_i log p(r_i | <cls> r_<i) + log p(<eos> | <cls> r_1..L)) / (L + 1)``,
the mean over the L residues and the final ``<eos>`` in nats. Each next token is
normalised over the 25 residue letters ESM accepts plus ``<eos>``.

Caveat, as for generative perplexity of text: repeats are cheap for an
autoregressive model (it copies in context), so homopolymers and tandem repeats
score *lower* than real proteins. Read the judge next to a complexity statistic
(``stats``' low-complexity fraction), never alone.
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protein_didi.core import judge as core
from protein_didi.core.causal_lm import CausalALiBiLM
from protein_didi.core.checkpoint import CheckpointError, load_json
from protein_didi.core.judge import judge_folder, read_judge, save_judge
from protein_didi.core.precision import apply_precision, resolve_precision
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.pretrained import CHECKPOINT_DIR, ModelNotFoundError

FORMAT = "protein_didi.judge/1"
TRAIN_HINT = (
    "python -m protein_didi.train_judge --data data/uniprot20k --out runs/judge "
    "&& cp -r runs/judge/model protein_didi/checkpoints/judge"
)


@dataclass(frozen=True)
class JudgeConfig(core.JudgeConfig):
    """Size of the causal transformer; the vocabulary is always ESM's 33 tokens."""

    vocab_size: int = ALPHABET.size


ARCHITECTURES: dict[str, JudgeConfig] = {name: JudgeConfig(**size) for name, size in core.SIZES.items()}


def target_support() -> torch.Tensor:
    """(K,) bool: tokens that can follow a prefix, i.e. residue letters and ``<eos>``."""
    allowed = ALPHABET.residue_mask.clone()
    allowed[ALPHABET.eos_id] = True
    return allowed


class CausalProteinLM(CausalALiBiLM):
    """``log p(x_{i+1} | x_≤i)`` for every position of ``<cls> residues <eos> <pad>`` rows.

    Right padding needs no attention mask: causal attention never looks at the
    pads that follow a sequence's ``<eos>``. Next tokens are normalised over the
    residue letters and ``<eos>`` only.
    """

    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__(cfg, support=target_support())

    def target_log_probs(self, tokens: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, L−1) ``log p(tokens[:, i+1] | tokens[:, ≤i])`` and the bool mask of real (non-pad) targets."""
        logp = self.next_token_log_probs(tokens)
        real = tokens[:, 1:] != ALPHABET.pad_id
        return logp.masked_fill(~real, 0.0), real


class Judge:
    """A trained :class:`CausalProteinLM` plus its provenance, scoring residue strings."""

    def __init__(self, model: CausalProteinLM, info: dict[str, Any] | None = None, max_tokens: int = 8192) -> None:
        self.model = model.eval()
        self.info = info or {}
        self.max_tokens = max_tokens  # bounds B·L per forward pass, so 1022-residue inputs fit in memory
        self.precision = "fp32"  # set by load_judge when it converts the model

    @property
    def device(self) -> torch.device:
        return self.model.embed.weight.device

    @torch.no_grad()
    def nll(self, sequences: list[str], batch_size: int = 64) -> np.ndarray:
        """Mean NLL in nats per predicted token (L residues + ``<eos>``) of each sequence, shape (N,).

        Raises a one-line :class:`~protein_didi.protein.alphabet.InvalidSequenceError`
        for letters outside ESM's alphabet or lengths above 1022.
        """
        names = [f"sequence {i + 1}" for i in range(len(sequences))]
        residues = [ALPHABET.encode_residues(ALPHABET.validate(s, n)) for s, n in zip(sequences, names, strict=True)]
        order = np.argsort([len(r) for r in residues], kind="stable")  # similar lengths share a batch
        out = np.empty(len(residues), dtype=np.float64)
        start = 0
        while start < len(order):
            width = len(residues[order[start]]) + 2
            stop = start + 1
            while stop < len(order) and stop - start < batch_size:
                width = len(residues[order[stop]]) + 2
                if (stop - start + 1) * width > self.max_tokens:
                    break
                stop += 1
            idx = order[start:stop]
            tokens = ALPHABET.pack([residues[i] for i in idx]).to(self.device)
            logp, real = self.model.target_log_probs(tokens)
            out[idx] = (-logp.sum(1) / real.sum(1)).double().cpu().numpy()
            start = stop
        return out

    def save(self, out_dir: str | Path) -> Path:
        """``config.json`` + half-precision ``model.safetensors``; half precision keeps the repo small."""
        return save_judge(out_dir, self.model, FORMAT, self.info)


def load_judge(name_or_path: str = "judge", device: torch.device | str = "cpu", precision: str = "fp32") -> Judge:
    """The shipped judge (``"judge"``) or one in a folder (a model folder or a training run's ``OUT``).

    ``precision`` (fp32 by default: the judge is a measurement, and it is small) is
    checked before loading and applied once; see :mod:`protein_didi.core.precision`.
    """
    resolved = resolve_precision(precision, device)
    path = judge_folder(name_or_path, CHECKPOINT_DIR / "judge")
    if not (path / "config.json").is_file() or not (path / "model.safetensors").is_file():
        raise ModelNotFoundError(f"no judge checkpoint at {path}; train one: {TRAIN_HINT}")
    cfg = load_json(path / "config.json")
    if cfg.get("format") != FORMAT:
        raise CheckpointError(f"{path}/config.json is not a judge checkpoint (format {cfg.get('format')!r})")
    model = read_judge(path, cfg, lambda arch: CausalProteinLM(JudgeConfig(**arch)))
    judge = Judge(apply_precision(model.to(device), resolved), cfg.get("info", {}))
    judge.precision = resolved
    return judge


@lru_cache(maxsize=1)
def _default_judge() -> Judge:
    return load_judge("judge", "cpu")


def judge_nll(sequences: list[str]) -> np.ndarray:
    """:meth:`Judge.nll` of the shipped judge on CPU (loaded once per process)."""
    return _default_judge().nll(sequences)
