"""Generate proteins from any loaded model: a :class:`ProteinRequest` → sequences.

This is the one entry point the CLI, the app and the benchmarks share, so a
request (seed included) gives the same proteins everywhere.
"""

from __future__ import annotations

import functools
from collections.abc import Sequence

import numpy as np
import torch

from protein_didi.core.draw import draw
from protein_didi.core.request import SAMPLERS, ProgressCallback, steps_reporter
from protein_didi.core.sampler import StepCallback
from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError
from protein_didi.protein.pretrained import LoadedModel, load_model
from protein_didi.protein.request import Length, Motif, ProteinRequest, trained_max_residues

__all__ = [
    "SAMPLERS",
    "Motif",
    "ProteinRequest",
    "corrector_for",
    "draw_lengths",
    "generate",
    "plan_batches",
    "sequence_records",
]


def draw_lengths(num: int, length: Length, rng: np.random.Generator, info: dict) -> list[int]:
    """Fixed, ``(lo, hi)`` uniform, or ``"auto"``: the model's training length distribution."""
    if isinstance(length, tuple):
        lo, hi = length
        return [int(x) for x in rng.integers(lo, hi + 1, num)]
    if length == "auto":
        hist = np.asarray(info.get("train_length_histogram", []), dtype=np.float64)
        cap = trained_max_residues(info)
        if hist.sum() == 0:
            raise ValueError("this model records no training length distribution; give --length N")
        hist = hist[: cap + 1] if hist.size > cap + 1 else hist
        hist[:10] = 0  # very short fragments are not what a user means by a protein
        return [int(x) for x in rng.choice(len(hist), size=num, p=hist / hist.sum())]
    return [int(length)] * num


def generate(loaded: LoadedModel, request: ProteinRequest, progress: ProgressCallback | None = None) -> list[str]:
    """``request.num`` sequences; equal lengths are batched together, outputs keep the drawn order.

    A batch holds at most ``request.batch_size`` sequences and at most ``request.max_tokens``
    padded tokens (at least one sequence), so long proteins do not exhaust a laptop's memory.
    Everything is checked before the first ``progress`` call, so a refused request never leaves
    a half-drawn progress bar. CDR redesigns (``request.plan``) go through
    :func:`protein_didi.protein.redesign.redesign`, which returns named records.
    """
    if request.plan is not None:
        raise ValueError("this request redesigns CDRs; call protein_didi.protein.redesign.redesign with it")
    request = request.fitted(loaded)
    corrector_for(loaded, request)  # loaded (once) and checked before any progress
    device = next(loaded.model.parameters()).device
    rng = np.random.default_rng(request.seed)
    lengths = draw_lengths(request.num, request.length, rng, loaded.info)
    motif = request.motif
    if motif is not None and motif.span > min(lengths):
        raise InvalidSequenceError(
            f"motif reaches position {motif.span} but a sequence has only {min(lengths)} residues"
        )
    gen = torch.Generator(device=device).manual_seed(request.seed)
    order = sorted(range(request.num), key=lambda i: lengths[i])
    out: list[str | None] = [None] * request.num
    batches = plan_batches([lengths[i] for i in order], request.batch_size, request.max_tokens)
    total_steps, done_steps = request.steps * len(batches), 0

    for start, stop in batches:
        idx = order[start:stop]
        # sequences of one batch share a length where possible; pad to the longest otherwise
        tokens = ALPHABET.masked_template([lengths[i] for i in idx]).to(device)
        fixed = ALPHABET.special_positions(tokens)
        if motif is not None:
            motif.apply(tokens, fixed)
        z = sample_batch(loaded, request, tokens, fixed, gen, steps_reporter(progress, done_steps, total_steps))
        done_steps += request.steps
        for i, seq in zip(idx, ALPHABET.decode(z), strict=True):
            out[i] = seq
    return [s for s in out if s is not None]


def sample_batch(
    loaded: LoadedModel,
    request: ProteinRequest,
    tokens: torch.Tensor,
    fixed: torch.Tensor,
    gen: torch.Generator,
    on_step: StepCallback | None = None,
) -> torch.Tensor:
    """One batch of masked ``tokens`` through the request's sampler (and its correction rounds, with the request's
    corrector model); non-standard residues are never drawn."""
    corrector = corrector_for(loaded, request) or loaded
    return draw(request, loaded.model, tokens, fixed, loaded.schedule, gen, on_step, loaded.discriminator,
                suppress=ALPHABET.nonstandard_ids, corrector=corrector.model,
                corrector_schedule=corrector.schedule)  # fmt: skip


def corrector_for(loaded: LoadedModel, request: ProteinRequest) -> LoadedModel | None:
    """The fitted ``request``'s corrector model, checked against ``loaded``: None when the rounds use ``loaded``.

    Loaded on the model's device and precision, and kept (:func:`load_corrector`): every batch of a request, and
    the requests of a benchmark, share one copy.
    """
    if request.corrector is None or not request.corrector_steps or request.corrector == loaded.name:
        return None
    device = next(loaded.model.parameters()).device
    corrector = load_corrector(request.corrector, str(device), loaded.precision)
    request.check_corrector(loaded, corrector)
    return corrector


@functools.lru_cache(maxsize=1)
def load_corrector(name_or_path: str, device: str, precision: str) -> LoadedModel:
    """A corrector model, loaded once per (name, device, precision); ``load_corrector.cache_clear()`` frees it."""
    return load_model(name_or_path, device, precision)


def plan_batches(
    sorted_lengths: Sequence[int], batch_size: int, max_tokens: int | None = None
) -> list[tuple[int, int]]:
    """``[start, stop)`` slices of length-sorted sequences: ≤ ``batch_size`` each and ≤ ``max_tokens`` padded tokens.

    A sequence is ``length + 2`` tokens (``<cls>``, ``<eos>``); a batch pads to its longest.
    """
    if max_tokens is not None and max_tokens < 1:
        raise ValueError(f"max tokens per batch must be ≥ 1, got {max_tokens}")
    out, start = [], 0
    while start < len(sorted_lengths):
        stop = start + 1
        while stop < len(sorted_lengths) and stop - start < batch_size:
            if max_tokens is not None and (stop - start + 1) * (sorted_lengths[stop] + 2) > max_tokens:
                break
            stop += 1
        out.append((start, stop))
        start = stop
    return out


def sequence_records(seqs: Sequence[str], prefix: str) -> list[tuple[str, str]]:
    """FASTA records ``prefix_0001 …`` for generated sequences."""
    return [(f"{prefix}_{i + 1:04d} length={len(s)}", s) for i, s in enumerate(seqs)]
