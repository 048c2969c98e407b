"""IgLM (Shuai et al., 2023) as the antibody judge: per-residue NLL, CDR span NLL, infilling and generation.

IgLM is a GPT-2 trained on antibody variable domains written as
``[chain] [species] residues… [SEP]`` and, for infilling, as
``[chain] [species] left [MASK] right [SEP] span [CLS]``. Its weights ship inside
the ``iglm`` package, so nothing is downloaded. The package is optional and
licensed by Johns Hopkins University for NON-COMMERCIAL academic use only
(``pip install -e .[iglm]``).

Two things differ from ``iglm.IgLM`` on purpose:

* Tokens are mapped from the package's ``vocab.txt`` here: under transformers 5,
  ``BertTokenizerFast(vocab_file=...)`` (what ``iglm.IgLM`` builds) silently has a
  5-token vocabulary and turns every residue into ``[UNK]``. Infilling and
  generation still run IgLM's own ``infill``/``generate`` code, with this
  tokenizer put in place of the broken one.
* Scoring is batched, float32, under ``torch.no_grad``.

Chain and species tags come from ANARCI (:mod:`protein_didi.protein.numbering`):
``[HEAVY]`` for H, ``[LIGHT]`` for K and L; the germline species when IgLM has a
tag for it (alpaca → ``[CAMEL]``), ``[HUMAN]`` otherwise. A sequence ANARCI cannot
number has no chain to read, so it is scored under both ``[HEAVY]`` and ``[LIGHT]``
and keeps the lower NLL, with ``numbered=False``: this never charges a chain-tag
mismatch on top of the failure already counted by the numbered fraction, so the
NLL of unnumbered sequences is an optimistic bound (the most favourable reading),
not a penalty of unknown size.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

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
GENERATION_WINDOW = 150
"""``iglm.IgLM`` generates at most 150 tokens (``max_length=150``) and retries forever on a truncated answer."""


def _iglm_module():
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


@dataclass(frozen=True)
class IgLMSamples:
    """Sequences from IgLM's own sampler and the wall time it took per sequence."""

    sequences: list[str]
    seconds_per_sequence: float
    chain_tag: str
    species_tag: str


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


@contextmanager
def _quiet_progress(module) -> Iterator[None]:
    """Silence the tqdm bar ``iglm.IgLM._generate`` draws (the judge runs inside reports and tests)."""
    original = module.tqdm
    module.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        module.tqdm = original


class IgLMJudge:
    """IgLM loaded from the installed package (no network), on CPU unless told otherwise."""

    def __init__(self, model_name: str = "IgLM", device: str | torch.device = "cpu") -> None:
        module = _iglm_module()
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

    def _iglm(self):
        """An ``iglm.IgLM`` sharing this model and carrying the working tokenizer, for IgLM's own sampling code."""
        runner = self.module.IgLM.__new__(self.module.IgLM)
        runner.device = self.device
        runner.model = self.model
        runner.tokenizer = self.tokens
        return runner

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

    def _tags(self, parent: str, chain: str | None, species: str | None) -> tuple[str, str, AntibodyNumbering | None]:
        if chain is not None:
            return chain_tag(chain), species_tag(species), None
        num = number_antibodies([parent])[0]
        if not num.numbered:
            raise AntibodyError(
                f"parent '{parent[:20]}…' could not be numbered by ANARCI as an antibody variable domain; "
                "give a heavy or light chain V domain (or pass chain=)"
            )
        return CHAIN_TAGS[num.chain_type], species_tag(species if species is not None else num.species), num

    def _span(self, parent: str, span: tuple[int, int] | str, num: AntibodyNumbering | None) -> tuple[int, int]:
        if isinstance(span, str):
            return cdr_span(num if num is not None else parent, span)
        start, end = (int(span[0]), int(span[1]))
        if not 0 <= start < end <= len(parent):
            raise AntibodyError(f"span {span} is not a non-empty range inside the parent's {len(parent)} residues")
        return start, end

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
        ctag, stag, num = self._tags(parent, chain, species)
        start, end = self._span(parent, span, num)
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

    def infill(
        self,
        parent: str,
        span: tuple[int, int] | str,
        num: int,
        chain: str | None = None,
        species: str | None = None,
        top_p: float = 1.0,
        temperature: float = 1.0,
        seed: int = 0,
    ) -> IgLMSamples:
        """``num`` distinct redesigns of ``parent[start:end]`` (or CDR ``"H3"`` etc.) by ``IgLM.infill``.

        Returns full sequences (flanks kept, new span in place). IgLM's own loop
        draws until ``num`` distinct designs exist, one per ``generate`` call.
        Seeded without touching the caller's RNG state.
        """
        parent = parent.strip().upper()
        if num < 1:
            raise AntibodyError(f"num must be ≥ 1, got {num}")
        ctag, stag, numbering = self._tags(parent, chain, species)
        start, end = self._span(parent, span, numbering)
        self.tokens.encode_residues(parent)
        fixed = 2 + len(parent) - (end - start) + 3  # tags, flanks, [MASK] [SEP] [CLS]
        if fixed + 2 * (end - start) > GENERATION_WINDOW:
            raise AntibodyError(
                f"parent of {len(parent)} residues leaves too little of IgLM's {GENERATION_WINDOW}-token generation "
                f"window for a {end - start}-residue span; pass the V domain only"
            )
        runner = self._iglm()
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]), _quiet_progress(self.module), torch.no_grad():
            torch.manual_seed(seed)
            designs = runner.infill(
                parent, ctag, stag, (start, end), num_to_generate=num, top_p=top_p, temperature=temperature
            )
        elapsed = time.perf_counter() - t0
        return IgLMSamples(sorted(designs), elapsed / num, ctag, stag)

    def generate(
        self,
        num: int,
        chain: str = "H",
        species: str = "human",
        top_p: float = 1.0,
        temperature: float = 1.0,
        seed: int = 0,
        batch_size: int = 48,
        prompt: str = "",
    ) -> IgLMSamples:
        """``num`` distinct sequences sampled as ``IgLM.generate`` does, ``batch_size`` at a time: the baseline.

        ``prompt``: residues the sequences start with, after the tags (IgLM's CLI ``--prompt_sequence``, e.g.
        ``EVQ``); tags alone let IgLM start anywhere in framework 1, so many samples lack the first residues.

        IgLM's own ``generate`` draws one sequence per ``model.generate`` call (≈ 1 s each on 2 CPU cores); the
        same call on a batch of prompts (same tags, sampling settings, banned tokens, window and well-formedness
        check) costs ≈ 0.1 s per sequence, so IgLM is timed as a user who batches would run it.
        """
        if num < 1 or batch_size < 1:
            raise AntibodyError(f"num and batch size must be ≥ 1, got {num}, {batch_size}")
        ctag, stag = chain_tag(chain), species_tag(species)
        tok, module = self.tokens, self.module
        residues = [int(i) for i in tok.encode_residues(prompt.upper())] if prompt else []
        start = torch.tensor([[tok.ids[ctag], tok.ids[stag], *residues]], device=self.device)
        seqs: list[str] = []
        t0 = time.perf_counter()
        with torch.random.fork_rng(devices=[]), torch.no_grad():
            torch.manual_seed(seed)
            while len(seqs) < num:
                out = self.model.generate(
                    start.repeat(min(batch_size, num - len(seqs)), 1),  # exactly what is still missing: timed fairly
                    max_length=GENERATION_WINDOW,
                    pad_token_id=tok.pad_token_id,
                    eos_token_id=tok.cls_token_id,
                    forced_eos_token_id=tok.cls_token_id,
                    bad_words_ids=module.BAD_WORD_IDS,
                    do_sample=True,
                    top_p=top_p,
                    temperature=temperature,
                )
                for row in out.cpu().numpy():
                    if not module.validate_generated_seq(row, tok):  # truncated or malformed: IgLM retries too
                        continue
                    seq = "".join(tok.decode(module.iglm_to_infilled(row, tok)).split())
                    if seq not in seqs and len(seqs) < num:
                        seqs.append(seq)
        elapsed = time.perf_counter() - t0
        return IgLMSamples(sorted(seqs), elapsed / num, ctag, stag)


@functools.lru_cache(maxsize=2)
def load_iglm(model_name: str = "IgLM") -> IgLMJudge:
    """The IgLM judge on CPU, loaded once per process (``"IgLM"`` 13 M params, or ``"IgLM-S"``)."""
    return IgLMJudge(model_name)


def iglm_available() -> bool:
    """Whether the optional iglm package can be imported."""
    try:
        _iglm_module()
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


def iglm_span_nll(
    parent: str,
    span: tuple[int, int] | str,
    chain: str | None = None,
    species: str | None = None,
    mode: str = "left",
    model_name: str = "IgLM",
) -> SpanNLL:
    """NLL of a residue span or CDR of ``parent``; see :meth:`IgLMJudge.span_nll`."""
    return load_iglm(model_name).span_nll(parent, span, chain=chain, species=species, mode=mode)


def iglm_infill(
    parent: str,
    span: tuple[int, int] | str,
    num: int,
    chain: str | None = None,
    species: str | None = None,
    top_p: float = 1.0,
    temperature: float = 1.0,
    seed: int = 0,
    model_name: str = "IgLM",
) -> IgLMSamples:
    """IgLM's own CDR infilling, the anchor CDR redesign is compared against; see :meth:`IgLMJudge.infill`."""
    return load_iglm(model_name).infill(
        parent, span, num, chain=chain, species=species, top_p=top_p, temperature=temperature, seed=seed
    )


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
