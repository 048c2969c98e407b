"""Generative perplexity: an independent autoregressive LM scores generated text.

The paper scores OpenWebText samples with GPT-2 Large. That model is used when
it is on this machine (``--judge gpt2-large``, any ``transformers`` causal-LM
folder, or ``auto`` when it sits in the local HF cache). Otherwise the judge is a
small causal transformer with ALiBi attention biases trained left to right on
the same corpus (shipped in protein_didi/checkpoints/text-judge) — not the
teacher's architecture (bidirectional DiT) nor its objective, so a student
cannot score well merely by copying the teacher's quirks.

Protocol (as MDLM's ``compute_generative_perplexity``): decode each sample to
text, re-tokenise it with the judge's own tokenizer, prepend
``<|endoftext|>`` as context and sum −log p of every token. Generative
perplexity is exp(Σ NLL / Σ tokens) over the whole set.

Caveat: repeats are cheap for an autoregressive model, so degenerate, repetitive
text scores a *low* perplexity; read it next to the per-sample token entropy.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Protocol

import numpy as np
import torch

from protein_didi.core.causal_lm import CausalALiBiLM
from protein_didi.core.checkpoint import load_json
from protein_didi.core.judge import SIZES, JudgeConfig, judge_folder, read_judge, save_judge
from protein_didi.text.pretrained import CHECKPOINT_DIR, ModelNotFoundError
from protein_didi.text.tokenizer import TextTokenizer, load_tokenizer_file

FORMAT = "protein_didi.text.judge/1"
SHIPPED = CHECKPOINT_DIR / "text-judge"
TRAIN_HINT = (
    "python -m protein_didi.train_judge --domain text --data data/text-pydoc --out runs/text-judge "
    "&& cp -r runs/text-judge/model protein_didi/checkpoints/text-judge"
)


ARCHITECTURES: dict[str, dict[str, int]] = SIZES  # a JudgeConfig's vocab_size is the tokenizer's (no [MASK])


class CausalTextLM(CausalALiBiLM):
    """``log p(x_{i+1} | x_≤i)`` at every position; ALiBi lets it score texts longer than its training windows."""

    def __init__(self, cfg: JudgeConfig) -> None:
        super().__init__(cfg)

    def target_log_probs(self, tokens: torch.Tensor) -> torch.Tensor:
        """(B, L−1) ``log p(tokens[:, i+1] | tokens[:, ≤i])``."""
        return self.next_token_log_probs(tokens)


class TextScorer(Protocol):
    """What a judge offers: per-text summed NLL (nats) and the number of scored tokens."""

    info: dict[str, Any]

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]: ...


def perplexity(nll_sum: np.ndarray, n_tokens: np.ndarray) -> float:
    """exp(Σ NLL / Σ tokens): generative perplexity of a set (token-weighted, as MDLM)."""
    return float(math.exp(float(np.sum(nll_sum)) / max(int(np.sum(n_tokens)), 1)))


class TextJudge:
    """A trained :class:`CausalTextLM` with its tokenizer."""

    def __init__(self, model: CausalTextLM, tokenizer: TextTokenizer, info: dict[str, Any] | None = None) -> None:
        if model.config.vocab_size != tokenizer.mask_id:
            raise ValueError(f"judge has {model.config.vocab_size} tokens, its tokenizer {tokenizer.mask_id}")
        self.model, self.tokenizer, self.info = model.eval(), tokenizer, info or {}
        self.info.setdefault("judge", "causal ALiBi transformer trained on the corpus")

    @property
    def device(self) -> torch.device:
        return self.model.embed.weight.device

    @torch.no_grad()
    def score_ids(self, rows: list[list[int]], batch_size: int = 32) -> tuple[np.ndarray, np.ndarray]:
        """Summed NLL of every token after the first of each row, and how many were scored."""
        nll, count = np.zeros(len(rows)), np.zeros(len(rows), dtype=np.int64)
        order = np.argsort([len(r) for r in rows], kind="stable")
        for start in range(0, len(order), batch_size):
            idx = order[start : start + batch_size]
            width = max(len(rows[i]) for i in idx)
            x = torch.full((len(idx), width), self.tokenizer.eos_id, dtype=torch.long)
            real = torch.zeros(len(idx), width - 1, dtype=torch.bool)
            for j, i in enumerate(idx):  # right padding: causal attention never sees it
                x[j, : len(rows[i])] = torch.as_tensor(rows[i])
                real[j, : len(rows[i]) - 1] = True
            logp = self.model.target_log_probs(x.to(self.device)).cpu()
            nll[idx] = (-(logp * real)).sum(1).double().numpy()
            count[idx] = real.sum(1).numpy()
        return nll, count

    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        """Re-tokenise each text with the judge's tokenizer, prepend ``<|endoftext|>``, score every token."""
        return self.score_ids([[self.tokenizer.eos_id, *ids] for ids in self.tokenizer.encode_batch(texts)])

    def save(self, out_dir: str | Path) -> Path:
        """``config.json`` + half-precision ``model.safetensors`` + ``tokenizer.json``."""
        self.tokenizer.save(out_dir)
        return save_judge(out_dir, self.model, FORMAT, self.info, tokenizer=self.tokenizer.record())


class HFJudge:
    """A ``transformers`` causal LM (GPT-2 Large in the paper) scoring text with its own tokenizer."""

    def __init__(self, name_or_path: str, local_only: bool = False, device: torch.device | str = "cpu") -> None:
        from transformers import AutoModelForCausalLM, AutoTokenizer

        try:
            self.tok = AutoTokenizer.from_pretrained(name_or_path, local_files_only=local_only)
            self.model = AutoModelForCausalLM.from_pretrained(name_or_path, local_files_only=local_only).to(device)
        except Exception as err:  # hub and file errors come in many types
            first = str(err).strip().splitlines()[0][:120] if str(err).strip() else type(err).__name__
            raise ModelNotFoundError(f"cannot load judge {name_or_path!r} ({first})") from None
        self.model.eval()
        self.max_len = int(getattr(self.model.config, "n_positions", None) or self.tok.model_max_length or 1024)
        self.info = {"judge": name_or_path}

    @torch.no_grad()
    def score(self, texts: list[str]) -> tuple[np.ndarray, np.ndarray]:
        nll, count = np.zeros(len(texts)), np.zeros(len(texts), dtype=np.int64)
        bos = self.tok.bos_token_id if self.tok.bos_token_id is not None else self.tok.eos_token_id
        device = next(self.model.parameters()).device
        for i, text in enumerate(texts):
            ids = self.tok(text, add_special_tokens=False)["input_ids"]
            for start in range(0, max(len(ids), 1), self.max_len - 1):  # chunks of the context window
                x = torch.tensor([[bos, *ids[start : start + self.max_len - 1]]], device=device)
                logp = self.model(x).logits[:, :-1].float().log_softmax(-1)
                nll[i] -= float(logp.gather(-1, x[:, 1:, None]).sum())
                count[i] += x.shape[1] - 1
        return nll, count


def load_judge(name_or_path: str = "auto", device: torch.device | str = "cpu") -> TextScorer:
    """``auto`` (GPT-2 Large if cached locally, else the shipped judge), ``judge``, a folder, or an HF id."""
    if name_or_path == "auto":
        try:
            return HFJudge("gpt2-large", local_only=True, device=device)
        except ModelNotFoundError:
            name_or_path = "judge"
    path = judge_folder(name_or_path, SHIPPED)
    if (path / "config.json").is_file():
        cfg = load_json(path / "config.json")
        if cfg.get("format") != FORMAT:
            return HFJudge(str(path), local_only=True, device=device)
        model = read_judge(path, cfg, lambda arch: CausalTextLM(JudgeConfig(**arch)))
        return TextJudge(model.to(device), load_tokenizer_file(path, cfg.get("tokenizer")), cfg.get("info", {}))
    if name_or_path == "judge" or path.exists() or str(name_or_path).startswith((".", "/")):
        raise ModelNotFoundError(f"no text judge checkpoint at {path}; train one: {TRAIN_HINT}")
    return HFJudge(name_or_path, device=device)  # a hub id such as gpt2-large
