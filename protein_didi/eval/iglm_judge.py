"""IgLM (Shuai et al., 2023) as the antibody judge: per-residue NLL of whole chains and NLL of CDR spans.

IgLM's package, vocabulary and tags are :mod:`.iglm_tokens` (read that for the licence and why the tokenizer is
our own); its sampling (CDR infilling, generation) is :mod:`.iglm_sampler`, reached as the ``infill`` and
``generate`` methods of the loaded :class:`IgLMJudge`. Scoring is batched, float32, under ``torch.no_grad``.

A sequence ANARCI cannot number has no chain to read, so it is scored under both ``[HEAVY]`` and ``[LIGHT]``
and keeps the lower NLL, with ``numbered=False``: this never charges a chain-tag
mismatch on top of the failure already counted by the numbered fraction, so the
NLL of unnumbered sequences is an optimistic bound (the most favourable reading),
not a penalty of unknown size.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from protein_didi.eval import iglm_sampler
from protein_didi.eval.iglm_sampler import IgLMSamples
from protein_didi.eval.iglm_tokens import (
    CHAIN_TAGS,
    IgLMTokens,
    iglm_module,
    iglm_runner,
    parent_span,
    parent_tags,
    species_tag,
)
from protein_didi.protein.numbering import AntibodyError, AntibodyNumbering, number_antibodies


@dataclass(frozen=True)
class IgLMScore:
    """IgLM's judgement of one sequence.

    ``nll``: mean NLL (nats) over the residues, each given the tags and the residues before it.
    ``nll_iglm``: the same mean including the closing ``[SEP]``, i.e. ``-IgLM.log_likelihood`` (IgLM's convention).
    ``numbered=False`` means ANARCI found no antibody chain and the lower of the two chain tags' NLLs is kept.
    """

    sequence: str
    nll: float
    nll_iglm: float
    chain_tag: str
    species_tag: str
    numbered: bool


@dataclass(frozen=True)
class SpanNLL:
    """NLL of a residue span: ``total`` (nats, summed) and ``per_residue``; ``mode`` says which context was given.

    ``closing``: in infill mode, the NLL of the ``[CLS]`` that ends the span (IgLM's
    ``log_likelihood`` averages it in: ``-(total + closing) / (n + 1)``); None in left mode.
    """

    span: tuple[int, int]
    total: float
    per_residue: float
    mode: str
    closing: float | None = None


class IgLMJudge:
    """IgLM loaded from the installed package (no network), on CPU unless told otherwise."""

    def __init__(self, model_name: str = "IgLM", device: str | torch.device = "cpu") -> None:
        module = iglm_module()
        if model_name not in module.CHECKPOINT_DICT:
            raise AntibodyError(f"unknown IgLM model {model_name!r}; use one of {', '.join(module.CHECKPOINT_DICT)}")
        folder = Path(module.CHECKPOINT_DICT[model_name])
        if not (folder / "config.json").is_file():
            raise AntibodyError(
                f"IgLM weights missing at {folder}; reinstall: pip install --force-reinstall iglm==0.1.0"
            )
        from transformers import GPT2LMHeadModel
        from transformers.utils import logging as hf_logging

        verbosity, bars = hf_logging.get_verbosity(), hf_logging.is_progress_bar_enabled()
        hf_logging.set_verbosity_error()  # the checkpoint's unused attn.masked_bias buffers are reported otherwise
        hf_logging.disable_progress_bar()
        try:
            model = GPT2LMHeadModel.from_pretrained(str(folder)).float()
        finally:
            hf_logging.set_verbosity(verbosity)
            if bars:
                hf_logging.enable_progress_bar()
        self.module = module
        self.model_name = model_name
        self.device = torch.device(device)
        self.model = model.to(self.device).eval()
        self.tokens = IgLMTokens(module.VOCAB_FILE)
        if self.model.config.vocab_size != len(self.tokens):
            raise AntibodyError(
                f"IgLM vocab.txt has {len(self.tokens)} tokens but the model {self.model.config.vocab_size}; "
                "reinstall: pip install --force-reinstall iglm==0.1.0"
            )
        self.max_tokens = int(self.model.config.n_positions)

    def _iglm(self) -> Any:
        """An ``iglm.IgLM`` sharing this model and carrying the working tokenizer (IgLM's own code, for checks)."""
        return iglm_runner(self)

    # IgLM's own sampling on this model: methods, so a loaded judge samples too (``load_iglm().generate(…)``)
    infill = iglm_sampler.infill
    generate = iglm_sampler.generate

    @torch.no_grad()
    def residue_log_probs(
        self, sequences: Sequence[str], chain_tags: Sequence[str], species_tags: Sequence[str], batch_size: int = 16
    ) -> list[np.ndarray]:
        """Per sequence, log p of each residue and of the closing ``[SEP]`` (length L + 1), left to right."""
        encoded = [self.tokens.encode_residues(s, k) for k, s in enumerate(sequences)]
        for k, codes in enumerate(encoded):
            if codes.size + 3 > self.max_tokens:
                raise AntibodyError(
                    f"sequence {k} has {codes.size} residues; IgLM takes at most {self.max_tokens - 3} "
                    "(score the V domain only)"
                )
        ids = self.tokens.ids
        rows = [
            np.concatenate([[ids[c], ids[s]], codes, [self.tokens.sep_token_id]])
            for codes, c, s in zip(encoded, chain_tags, species_tags, strict=True)
        ]
        out: list[np.ndarray] = [np.empty(0)] * len(rows)
        order = np.argsort([len(r) for r in rows], kind="stable")  # similar lengths per batch: less padding
        for lo in range(0, len(order), batch_size):
            batch = order[lo : lo + batch_size]
            width = max(len(rows[i]) for i in batch)
            tok = torch.full((len(batch), width), self.tokens.pad_token_id, dtype=torch.long)
            att = torch.zeros((len(batch), width), dtype=torch.long)
            for b, i in enumerate(batch):
                tok[b, : len(rows[i])] = torch.as_tensor(rows[i])
                att[b, : len(rows[i])] = 1
            logits = self.model(input_ids=tok.to(self.device), attention_mask=att.to(self.device)).logits.float()
            logp = torch.log_softmax(logits[:, 1:-1], dim=-1)  # position t predicts token t + 1; from the species tag
            target = tok[:, 2:].to(self.device)
            picked = logp.gather(-1, target.unsqueeze(-1)).squeeze(-1).cpu().numpy()
            for b, i in enumerate(batch):
                out[i] = picked[b, : len(rows[i]) - 2].astype(np.float64)
        return out

    def score(
        self,
        sequences: Sequence[str],
        numbering: Sequence[AntibodyNumbering] | None = None,
        species: str | None = None,
        batch_size: int = 16,
    ) -> list[IgLMScore]:
        """IgLM NLL per residue of each sequence, tags from ANARCI (numbered here unless ``numbering`` is given).

        ``species`` forces one species tag for all sequences (e.g. ``"human"``); by default it is ANARCI's.
        """
        seqs = [s.strip().upper() for s in sequences]
        if numbering is None:
            numbering = number_antibodies(seqs)
        if len(numbering) != len(seqs):
            raise AntibodyError(f"{len(numbering)} numberings given for {len(seqs)} sequences; pass one per sequence")
        jobs: list[tuple[int, str, str]] = []
        for k, num in enumerate(numbering):
            sp = species_tag(species if species is not None else (num.species if num.numbered else None))
            if num.numbered:
                jobs.append((k, CHAIN_TAGS[num.chain_type], sp))
            else:
                jobs.extend([(k, "[HEAVY]", sp), (k, "[LIGHT]", sp)])
        logps = self.residue_log_probs(
            [seqs[k] for k, _, _ in jobs], [c for _, c, _ in jobs], [s for _, _, s in jobs], batch_size
        )
        best: dict[int, IgLMScore] = {}
        for (k, ctag, stag), lp in zip(jobs, logps, strict=True):
            cand = IgLMScore(
                sequence=seqs[k],
                nll=float(-lp[:-1].mean()),
                nll_iglm=float(-lp.mean()),
                chain_tag=ctag,
                species_tag=stag,
                numbered=numbering[k].numbered,
            )
            if k not in best or cand.nll < best[k].nll:
                best[k] = cand
        return [best[k] for k in range(len(seqs))]

    @torch.no_grad()
    def span_nll(
        self,
        parent: str,
        span: tuple[int, int] | str,
        chain: str | None = None,
        species: str | None = None,
        mode: str = "left",
    ) -> SpanNLL:
        """NLL of ``parent[start:end]`` (or a CDR name such as ``"H3"``) under IgLM.

        ``mode="left"``: the span's residues given the tags and everything to their
        left (summed AR log-probs of those positions in the full-sequence reading).
        ``mode="infill"``: IgLM's infilling reading, the span (and its closing
        ``[CLS]``, as in ``IgLM.log_likelihood``) given both flanks; ``total`` sums
        the span residues only, so the two modes compare the same residues.
        """
        parent = parent.strip().upper()
        ctag, stag, num = parent_tags(parent, chain, species)
        start, end = parent_span(parent, span, num)
        if mode == "left":
            lp = self.residue_log_probs([parent], [ctag], [stag])[0][start:end]
            closing = None
        elif mode == "infill":
            codes = self.tokens.encode_residues(parent)
            ids = self.tokens.ids
            row = np.concatenate(
                [
                    [ids[ctag], ids[stag]],
                    codes[:start],
                    [self.tokens.mask_token_id],
                    codes[end:],
                    [self.tokens.sep_token_id],
                    codes[start:end],
                    [self.tokens.cls_token_id],
                ]
            )
            tok = torch.as_tensor(row, dtype=torch.long, device=self.device)[None]
            logp = torch.log_softmax(self.model(input_ids=tok).logits.float()[0, :-1], dim=-1)
            picked = logp.gather(-1, tok[0, 1:, None]).squeeze(-1).cpu().numpy()
            first = len(row) - (end - start) - 1  # index of the first span residue in ``row``
            lp = picked[first - 1 : first - 1 + end - start]
            closing = float(-picked[-1])
        else:
            raise AntibodyError(f"unknown span mode {mode!r}; use 'left' or 'infill'")
        total = float(-lp.sum())
        return SpanNLL(span=(start, end), total=total, per_residue=total / (end - start), mode=mode, closing=closing)


@functools.lru_cache(maxsize=2)
def load_iglm(model_name: str = "IgLM") -> IgLMJudge:
    """The IgLM judge on CPU, loaded once per process (``"IgLM"`` 13 M params, or ``"IgLM-S"``)."""
    return IgLMJudge(model_name)


def iglm_available() -> bool:
    """Whether the optional iglm package can be imported."""
    try:
        iglm_module()
    except AntibodyError:
        return False
    return True


def iglm_nll(
    sequences: Sequence[str],
    numbering: Sequence[AntibodyNumbering] | None = None,
    species: str | None = None,
    batch_size: int = 16,
    model_name: str = "IgLM",
) -> list[IgLMScore]:
    """IgLM NLL per residue (nats) of each sequence; see :meth:`IgLMJudge.score`."""
    return load_iglm(model_name).score(sequences, numbering=numbering, species=species, batch_size=batch_size)


def iglm_generate(
    num: int,
    chain: str = "H",
    species: str = "human",
    top_p: float = 1.0,
    temperature: float = 1.0,
    seed: int = 0,
    model_name: str = "IgLM",
    prompt: str = "",
) -> IgLMSamples:
    """IgLM generation (optionally from a residue ``prompt``), the baseline the antibody benchmark compares against."""
    return load_iglm(model_name).generate(
        num, chain=chain, species=species, top_p=top_p, temperature=temperature, seed=seed, prompt=prompt
    )
