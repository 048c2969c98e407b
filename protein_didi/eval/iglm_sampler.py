"""IgLM as a sampler: CDR infilling and whole-chain generation, the baseline the benchmarks and the report compare with.

Both run on a loaded IgLM (:class:`~protein_didi.eval.iglm_judge.IgLMJudge`, whose ``infill`` and ``generate``
methods these functions are) and are seeded without touching the caller's RNG state. Infilling runs IgLM's own
``infill``; generation makes IgLM's own ``model.generate`` call on a batch of prompts (see :func:`generate`).
"""

from __future__ import annotations

import functools
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from types import ModuleType

import torch

from protein_didi.eval.iglm_tokens import LoadedIgLM, chain_tag, iglm_runner, parent_span, parent_tags, species_tag
from protein_didi.protein.numbering import AntibodyError

GENERATION_WINDOW = 150
"""``iglm.IgLM`` generates at most 150 tokens (``max_length=150``) and retries forever on a truncated answer."""


@dataclass(frozen=True)
class IgLMSamples:
    """Sequences from IgLM's own sampler and the wall time it took per sequence."""

    sequences: list[str]
    seconds_per_sequence: float
    chain_tag: str
    species_tag: str


@contextmanager
def _quiet_progress(module: ModuleType) -> Iterator[None]:
    """Silence the tqdm bar ``iglm.IgLM._generate`` draws (the judge runs inside reports and tests)."""
    original = module.tqdm
    module.tqdm = functools.partial(original, disable=True)
    try:
        yield
    finally:
        module.tqdm = original


def infill(
    iglm: LoadedIgLM,
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
    """
    parent = parent.strip().upper()
    if num < 1:
        raise AntibodyError(f"num must be ≥ 1, got {num}")
    ctag, stag, numbering = parent_tags(parent, chain, species)
    start, end = parent_span(parent, span, numbering)
    iglm.tokens.encode_residues(parent)
    fixed = 2 + len(parent) - (end - start) + 3  # tags, flanks, [MASK] [SEP] [CLS]
    if fixed + 2 * (end - start) > GENERATION_WINDOW:
        raise AntibodyError(
            f"parent of {len(parent)} residues leaves too little of IgLM's {GENERATION_WINDOW}-token generation "
            f"window for a {end - start}-residue span; pass the V domain only"
        )
    runner = iglm_runner(iglm)
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]), _quiet_progress(iglm.module), torch.no_grad():
        torch.manual_seed(seed)
        designs = runner.infill(
            parent, ctag, stag, (start, end), num_to_generate=num, top_p=top_p, temperature=temperature
        )
    elapsed = time.perf_counter() - t0
    return IgLMSamples(sorted(designs), elapsed / num, ctag, stag)


def generate(
    iglm: LoadedIgLM,
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
    tok, module = iglm.tokens, iglm.module
    residues = [int(i) for i in tok.encode_residues(prompt.upper())] if prompt else []
    start = torch.tensor([[tok.ids[ctag], tok.ids[stag], *residues]], device=iglm.device)
    seqs: list[str] = []
    t0 = time.perf_counter()
    with torch.random.fork_rng(devices=[]), torch.no_grad():
        torch.manual_seed(seed)
        while len(seqs) < num:
            out = iglm.model.generate(
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
