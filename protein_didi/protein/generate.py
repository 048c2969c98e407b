"""Generate proteins from any loaded model: lengths, motifs, batching, seeds → sequences.

This is the one entry point the CLI, the app and the benchmarks share, so a
seed gives the same proteins everywhere.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from protein_didi.core.confidence import ConfidenceConfig, confidence_sample
from protein_didi.core.rgas import RGASConfig, rgas_sample
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.protein.alphabet import ALPHABET, MAX_RESIDUES, InvalidSequenceError
from protein_didi.protein.pretrained import LoadedModel

SAMPLERS = ("ancestral", "confidence", "rgas")
ProgressCallback = Callable[[int, int], None]


@dataclass(frozen=True)
class Motif:
    """Residues fixed at 1-based positions; the sampler fills in the rest around them."""

    residues: dict[int, str]

    @classmethod
    def parse(cls, spec: str | None = None, prefix: str | None = None) -> Motif | None:
        """From ``"5:WW,40:C"`` (segments at 1-based starts) and/or a prefix (segment at position 1)."""
        residues: dict[int, str] = {}
        segments: list[tuple[int, str]] = []
        if prefix is not None:
            if not prefix.strip():
                raise InvalidSequenceError("prefix is empty; give residues such as MKT or leave it out")
            segments.append((1, prefix))
        if spec is not None:
            if not spec.strip():
                raise InvalidSequenceError("motif is empty; use POSITION:RESIDUES, e.g. 5:WW,40:C")
            for part in spec.split(","):
                m = re.fullmatch(r"\s*(\d+)\s*:\s*([A-Za-z]+)\s*", part)
                if m is None:
                    raise InvalidSequenceError(f"motif part {part.strip()!r} is not POSITION:RESIDUES (e.g. 5:WW)")
                segments.append((int(m.group(1)), m.group(2)))
        for start, seg in segments:
            if start < 1:
                raise InvalidSequenceError(f"motif position {start} must be ≥ 1 (positions are 1-based)")
            seg = ALPHABET.validate(seg, f"motif at {start}")
            for k, aa in enumerate(seg):
                residues[start + k] = aa
        return cls(residues) if residues else None

    @property
    def span(self) -> int:
        return max(self.residues)

    def apply(self, tokens: torch.Tensor, fixed: torch.Tensor) -> None:
        """Write the motif into ``<cls>``-prefixed token rows and mark it fixed (in place)."""
        for pos, aa in self.residues.items():
            tokens[:, pos] = ALPHABET.esm.get_idx(aa)
            fixed[:, pos] = True


SAMPLING_KEYS = ("nfe", "sampler", "temperature", "top_p", "order_temperature")


def recommended_sampling(info: dict, role: str) -> dict:
    """The sampler settings a model is used with when the user gives none.

    A checkpoint may store its own (``info["sampling"]``: chosen on a validation set when it was
    shipped); otherwise students take 8 ancestral steps and teachers 64. Flags override either.
    """
    settings = {"nfe": 8 if role.startswith("student") else 64, "sampler": "ancestral", "temperature": 1.0}
    settings |= {"top_p": 1.0, "order_temperature": 0.0}
    stored = info.get("sampling", {})
    unknown = set(stored) - set(SAMPLING_KEYS) - {"chosen_on"}
    if unknown:
        raise ValueError(
            f"checkpoint's sampling settings have unknown keys {sorted(unknown)}; expected {SAMPLING_KEYS}"
        )
    return settings | {k: stored[k] for k in SAMPLING_KEYS if k in stored}


def draw_lengths(num: int, length: int | str | tuple[int, int], rng: np.random.Generator, info: dict) -> list[int]:
    """Fixed, ``(lo, hi)`` uniform, or ``"auto"``: the model's training length distribution."""
    if isinstance(length, tuple):
        lo, hi = length
        return [int(x) for x in rng.integers(lo, hi + 1, num)]
    if length == "auto":
        hist = np.asarray(info.get("train_length_histogram", []), dtype=np.float64)
        cap = int(info.get("max_residues", MAX_RESIDUES))
        if hist.sum() == 0:
            raise ValueError("this model records no training length distribution; give --length N")
        hist = hist[: cap + 1] if hist.size > cap + 1 else hist
        hist[:10] = 0  # very short fragments are not what a user means by a protein
        return [int(x) for x in rng.choice(len(hist), size=num, p=hist / hist.sum())]
    return [int(length)] * num


def check_request(
    num: int,
    length: int | str | tuple[int, int],
    nfe: int,
    sampler: str = "ancestral",
    temperature: float = 1.0,
    top_p: float = 1.0,
    motif: Motif | None = None,
    batch_size: int = 32,
    seed: int = 0,
    order_temperature: float = 0.0,
) -> None:
    """Every model-independent check of a request, so callers can refuse it before showing any progress."""
    if num < 1:
        raise ValueError(f"number of sequences must be ≥ 1, got {num}")
    if nfe < 1:
        raise ValueError(f"NFE (sampling steps) must be ≥ 1, got {nfe}")
    if batch_size < 1:
        raise ValueError(f"batch size must be ≥ 1, got {batch_size}")
    if seed < 0:
        raise ValueError(f"seed must be ≥ 0, got {seed}")
    if sampler not in SAMPLERS:
        raise ValueError(f"unknown sampler {sampler!r}; choose one of {SAMPLERS}")
    if not (math.isfinite(temperature) and temperature > 0):
        raise ValueError(f"temperature must be > 0, got {temperature}")
    if not 0 < top_p <= 1:
        raise ValueError(f"top-p must be in (0, 1], got {top_p}")
    if math.isnan(order_temperature) or order_temperature < 0:
        raise ValueError(
            f"order temperature must be ≥ 0 (0 = greedy confidence, inf = random order), got {order_temperature}"
        )
    lo, hi = (length if isinstance(length, tuple) else (length, length)) if length != "auto" else (None, None)
    if lo is not None:
        if not 1 <= int(lo) <= int(hi) <= MAX_RESIDUES:
            raise ValueError(
                f"length {lo if lo == hi else f'{lo}-{hi}'} is out of range; choose 1..{MAX_RESIDUES} residues "
                "(1024 tokens with <cls> and <eos>)"
            )
        if motif is not None and motif.span > int(lo):
            raise InvalidSequenceError(f"motif reaches position {motif.span} but a sequence has only {lo} residues")


def generate(
    loaded: LoadedModel,
    num: int,
    length: int | str | tuple[int, int] = 100,
    nfe: int = 32,
    sampler: str = "ancestral",
    temperature: float = 1.0,
    top_p: float = 1.0,
    seed: int = 0,
    motif: Motif | None = None,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    rgas_kwargs: dict | None = None,
    max_tokens: int | None = None,
    order_temperature: float = 0.0,
) -> list[str]:
    """``num`` sequences; equal lengths are batched together, outputs keep the drawn order.

    A batch holds at most ``batch_size`` sequences and, if ``max_tokens`` is
    given, at most that many padded tokens (at least one sequence), so long
    proteins do not exhaust a laptop's memory. Everything is checked before the
    first ``progress`` call, so a refused request never leaves a half-drawn progress bar.
    """
    check_request(num, length, nfe, sampler, temperature, top_p, motif, batch_size, seed, order_temperature)
    if sampler == "rgas":
        loaded.require_discriminator()  # one line if there is none, before any progress
    device = next(loaded.model.parameters()).device
    rng = np.random.default_rng(seed)
    lengths = draw_lengths(num, length, rng, loaded.info)
    if motif is not None and motif.span > min(lengths):
        raise InvalidSequenceError(
            f"motif reaches position {motif.span} but a sequence has only {min(lengths)} residues"
        )
    gen = torch.Generator(device=device).manual_seed(seed)
    config = SamplerConfig(nfe, temperature, top_p, suppress=ALPHABET.nonstandard_ids)
    order = sorted(range(num), key=lambda i: lengths[i])
    out: list[str | None] = [None] * num
    batches = plan_batches([lengths[i] for i in order], batch_size, max_tokens)
    total_steps = nfe * len(batches)
    done_steps = 0

    for start, stop in batches:
        idx = order[start:stop]
        # sequences of one batch share a length where possible; pad to the longest otherwise
        tokens = ALPHABET.masked_template([lengths[i] for i in idx]).to(device)
        fixed = ALPHABET.special_positions(tokens)
        if motif is not None:
            motif.apply(tokens, fixed)

        def on_step(step: int, n_steps: int, z: torch.Tensor, _base: int = done_steps) -> None:
            if progress is not None:
                progress(_base + step, total_steps)

        z = sample_batch(loaded, tokens, fixed, config, sampler, gen, on_step, rgas_kwargs, order_temperature)
        done_steps += nfe
        for i, seq in zip(idx, ALPHABET.decode(z), strict=True):
            out[i] = seq
    return [s for s in out if s is not None]


def sample_batch(
    loaded: LoadedModel,
    tokens: torch.Tensor,
    fixed: torch.Tensor,
    config: SamplerConfig,
    sampler: str,
    gen: torch.Generator,
    on_step: Callable[[int, int, torch.Tensor], None] | None = None,
    rgas_kwargs: dict | None = None,
    order_temperature: float = 0.0,
) -> torch.Tensor:
    """One batch through the chosen sampler: ``ancestral``, ``confidence`` (reveal order by the model's
    confidence at ``order_temperature``) or ``rgas`` (reward-guided by the model's discriminator)."""
    if sampler == "rgas":
        rgas = RGASConfig(sampler=config, **(rgas_kwargs or {}))
        disc = loaded.require_discriminator()
        return rgas_sample(loaded.model, disc, tokens, fixed, loaded.schedule, rgas, gen, on_step)
    if sampler == "confidence":
        ordered = ConfidenceConfig(config, order_temperature)
        return confidence_sample(loaded.model, tokens, fixed, loaded.schedule, ordered, gen, on_step)
    return ancestral_sample(loaded.model, tokens, fixed, loaded.schedule, config, gen, on_step)


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
