"""CDR redesign: keep an antibody's framework, regenerate one or more CDR loops with a masked-diffusion model.

The parent is numbered with ANARCI (IMGT); every residue outside the chosen
CDRs is fixed, the CDRs are replaced by [MASK] runs of a drawn length and the
sampler fills them in — the infilling a masked diffusion model does natively,
with no retraining. Lengths vary per design when a range is given (natural
CDR-H3s span ~5–25 residues), so a batch groups designs of equal total length.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np
import torch

from protein_didi.core.sampler import SamplerConfig
from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError
from protein_didi.protein.generate import sample_batch
from protein_didi.protein.liabilities import LIABILITY_CLASSES, Liability, span_liabilities
from protein_didi.protein.pretrained import LoadedModel

if TYPE_CHECKING:  # numbering imports ANARCI, which redesign loads only when it plans
    from protein_didi.protein.numbering import AntibodyNumbering

ProgressCallback = Callable[[int, int], None]
MAX_CDR_LENGTH = 40


@dataclass(frozen=True)
class RedesignPlan:
    """Where to generate: the parent split into kept segments around the CDRs to redesign."""

    parent_id: str
    parent: str
    cdrs: tuple[str, ...]  # e.g. ("H3",) in parent order
    spans: tuple[tuple[int, int], ...]  # half-open index spans of those CDRs in ``parent``
    lengths: tuple[tuple[int, int], ...]  # (lo, hi) residues each CDR may take
    numbering: AntibodyNumbering = field(compare=False)  # the parent's (regions and chain, for display)

    @property
    def longest(self) -> int:
        """Residues of the longest possible design."""
        return len(self.parent) + sum(
            hi - (end - start) for (start, end), (_, hi) in zip(self.spans, self.lengths, strict=True)
        )

    def check_fits(self, max_residues: int) -> None:
        """One-line error when a design could exceed the model's positions."""
        if self.longest > max_residues:
            raise InvalidSequenceError(
                f"{self.parent_id}: designs would reach {self.longest} residues, more than the model's "
                f"{max_residues}; shorten --cdr-length"
            )

    def template(self, cdr_lengths: Sequence[int]) -> np.ndarray:
        """Residue ids (no specials) of the parent with each CDR replaced by ``cdr_lengths[k]`` [MASK]s."""
        pieces, cursor = [], 0
        for (start, end), n in zip(self.spans, cdr_lengths, strict=True):
            pieces += [ALPHABET.encode_residues(self.parent[cursor:start]), np.full(n, ALPHABET.mask_id, np.uint8)]
            cursor = end
        pieces.append(ALPHABET.encode_residues(self.parent[cursor:]))
        return np.concatenate(pieces)

    def framework(self, design: str, cdr_lengths: Sequence[int]) -> str:
        """``design`` with its CDRs cut out: equals the parent's framework for every valid design."""
        out, cursor_d, cursor_p = [], 0, 0
        for (start, end), n in zip(self.spans, cdr_lengths, strict=True):
            out.append(design[cursor_d : cursor_d + start - cursor_p])
            cursor_d += start - cursor_p + n
            cursor_p = end
        out.append(design[cursor_d:])
        return "".join(out)


def parse_cdr_names(text: str) -> tuple[str, ...]:
    """``"H3"`` or ``"H1,H3"`` → ("H1", "H3"); one chain letter for all."""
    names = tuple(dict.fromkeys(p.strip().upper() for p in text.split(",") if p.strip()))
    bad = [n for n in names if not re.fullmatch(r"[HL][123]", n)]
    if not names or bad:
        raise InvalidSequenceError(
            f"--redesign {text!r}: CDR names must be H1, H2, H3, L1, L2 or L3 (comma-separated, e.g. H3 or H1,H3)"
        )
    if len({n[0] for n in names}) > 1:
        raise InvalidSequenceError(f"--redesign {text!r} mixes heavy and light CDRs; a parent is one chain")
    return names


def parse_cdr_length(text: str | None) -> tuple[int, int] | None:
    """``"10-14"`` or ``"12"`` → (lo, hi); None keeps each CDR's parent length."""
    if text is None:
        return None
    m = re.fullmatch(r"\s*(\d+)\s*(?:-\s*(\d+))?\s*", text)
    if m is None:
        raise InvalidSequenceError(f"--cdr-length {text!r} is not N or LO-HI (e.g. 10-14)")
    lo, hi = int(m.group(1)), int(m.group(2) or m.group(1))
    if not 1 <= lo <= hi <= MAX_CDR_LENGTH:
        raise InvalidSequenceError(f"--cdr-length {text!r} is out of range; choose 1 ≤ LO ≤ HI ≤ {MAX_CDR_LENGTH}")
    return lo, hi


def plan_redesign(
    parent: str,
    cdrs: str | Sequence[str],
    cdr_length: tuple[int, int] | None = None,
    parent_id: str = "parent",
    max_residues: int | None = None,
) -> RedesignPlan:
    """Number ``parent`` and locate its CDRs; one-line errors for unnumberable parents and bad requests."""
    from protein_didi.protein.numbering import cdr_span, number_antibody

    names = parse_cdr_names(cdrs) if isinstance(cdrs, str) else parse_cdr_names(",".join(cdrs))
    parent = ALPHABET.validate(parent, parent_id, max_residues=None)
    numbering = number_antibody(parent)
    found = sorted((cdr_span(numbering, name), name) for name in names)
    spans = tuple(span for span, _ in found)
    lengths = tuple(cdr_length or (end - start, end - start) for start, end in spans)
    if any(lo < 1 for lo, _ in lengths):
        raise InvalidSequenceError(f"{parent_id}: a CDR to keep at its parent length is empty; give --cdr-length")
    plan = RedesignPlan(parent_id, parent, tuple(name for _, name in found), spans, lengths, numbering)
    if max_residues is not None:
        plan.check_fits(max_residues)
    return plan


def _draw(
    loaded: LoadedModel,
    plan: RedesignPlan,
    num: int,
    nfe: int,
    seed: int,
    sampler: str,
    temperature: float,
    top_p: float,
    batch_size: int,
    progress: ProgressCallback | None,
    order_temperature: float,
) -> list[tuple[str, tuple[int, ...]]]:
    """``num`` raw designs with their CDR lengths, in draw order."""
    rng = np.random.default_rng(seed)
    cdr_lengths = [tuple(int(rng.integers(lo, hi + 1)) for lo, hi in plan.lengths) for _ in range(num)]
    device = next(loaded.model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(seed)
    config = SamplerConfig(nfe, temperature, top_p, suppress=ALPHABET.nonstandard_ids)
    order = sorted(range(num), key=lambda i: sum(cdr_lengths[i]))  # equal total lengths share a batch
    designs: list[str] = [""] * num
    total, done = nfe * -(-num // batch_size), 0
    for start in range(0, num, batch_size):
        idx = order[start : start + batch_size]
        tokens = ALPHABET.pack([plan.template(cdr_lengths[i]) for i in idx]).to(device)
        fixed = ALPHABET.special_positions(tokens) | (tokens != ALPHABET.mask_id)

        def on_step(step: int, n_steps: int, z: torch.Tensor, base: int = done) -> None:
            if progress is not None:
                progress(base + step, total)

        z = sample_batch(loaded, tokens, fixed, config, sampler, gen, on_step, order_temperature=order_temperature)
        done += nfe
        for i, seq in zip(idx, ALPHABET.decode(z), strict=True):
            designs[i] = seq
    return list(zip(designs, cdr_lengths, strict=True))


def _records(plan: RedesignPlan, designs: Sequence[tuple[str, tuple[int, ...]]]) -> list[tuple[str, str]]:
    records = []
    for k, (seq, lens) in enumerate(designs):
        cdr_desc = ",".join(f"{name}:{n}" for name, n in zip(plan.cdrs, lens, strict=True))
        records.append((f"{plan.parent_id}_design{k + 1:04d} parent={plan.parent_id} {cdr_desc}", seq))
    return records


def _check(num: int, nfe: int, batch_size: int, sampler: str, loaded: LoadedModel) -> None:
    if num < 1 or nfe < 1 or batch_size < 1:
        raise ValueError(f"num, nfe and batch size must be ≥ 1 (got {num}, {nfe}, {batch_size})")
    if sampler == "rgas":
        loaded.require_discriminator()  # one line if there is none, before any progress


def redesign(
    loaded: LoadedModel,
    plan: RedesignPlan,
    num: int,
    nfe: int = 8,
    seed: int = 0,
    sampler: str = "ancestral",
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    order_temperature: float = 0.0,
    liabilities: Sequence[str] = (),
    report: Callable[[str], None] | None = None,
) -> list[tuple[str, str]]:
    """``num`` designs as FASTA records ``(id, sequence)``; ids name the parent, the CDRs and their lengths.

    ``liabilities`` (classes of :mod:`protein_didi.protein.liabilities`): designs with
    one of them in a redesigned CDR are refused and resampled
    (:func:`redesign_free_of`); ``report`` receives the one-line account.
    """
    if liabilities:
        result = redesign_free_of(loaded, plan, num, liabilities, nfe, seed, sampler, temperature, top_p,
                                  batch_size, progress, order_temperature)  # fmt: skip
        if report is not None:
            report(result.summary())
        return result.records
    _check(num, nfe, batch_size, sampler, loaded)
    designs = _draw(loaded, plan, num, nfe, seed, sampler, temperature, top_p, batch_size, progress, order_temperature)
    return _records(plan, designs)


MAX_DRAWS_PER_DESIGN = 50
"""Resampling stops after this many draws per design asked for (a loop that cannot be made clean must end)."""


@dataclass
class FilteredDesigns:
    """Designs free of the chosen liabilities in the redesigned CDRs, and what it took to get them."""

    parent_id: str
    records: list[tuple[str, str]]
    asked: int
    drawn: int
    refused: dict[str, int]  # liability class → refused designs that carried it (a design may carry several)
    refused_designs: int
    classes: tuple[str, ...]

    def summary(self) -> str:
        """One line: kept of asked, drawn, refused by class, and a shortfall if any."""
        by_class = ", ".join(f"{k} {n}" for k, n in self.refused.items() if n) or "none"
        line = (
            f"{self.parent_id}: {len(self.records)} of {self.asked} designs free of {', '.join(self.classes)} in the "
            f"redesigned CDRs; {self.drawn} drawn, {self.refused_designs} refused and resampled ({by_class})"
        )
        if len(self.records) < self.asked:
            line += (
                f"; stopped after {self.drawn} draws ({MAX_DRAWS_PER_DESIGN} per design): drop a class from "
                "--liabilities or widen --cdr-length"
            )
        return line


def design_spans(plan: RedesignPlan, cdr_lengths: Sequence[int]) -> list[tuple[int, int]]:
    """Index spans of the redesigned CDRs in a design whose CDRs have ``cdr_lengths``."""
    spans, shift = [], 0
    for (start, end), n in zip(plan.spans, cdr_lengths, strict=True):
        spans.append((start + shift, start + shift + n))
        shift += n - (end - start)
    return spans


def design_liabilities(
    plan: RedesignPlan, design: str, cdr_lengths: Sequence[int], classes: Sequence[str] = LIABILITY_CLASSES
) -> list[Liability]:
    """Liabilities of ``classes`` touching the redesigned CDRs of ``design`` (named ``CDR-H3`` …)."""
    found: list[Liability] = []
    for name, span in zip(plan.cdrs, design_spans(plan, cdr_lengths), strict=True):
        found += span_liabilities(design, span, classes, region=f"CDR-{name}")
    return found


def redesign_free_of(
    loaded: LoadedModel,
    plan: RedesignPlan,
    num: int,
    classes: Sequence[str],
    nfe: int = 8,
    seed: int = 0,
    sampler: str = "ancestral",
    temperature: float = 1.0,
    top_p: float = 1.0,
    batch_size: int = 32,
    progress: ProgressCallback | None = None,
    order_temperature: float = 0.0,
    max_draws: int | None = None,
) -> FilteredDesigns:
    """``num`` designs with none of ``classes`` in the redesigned CDRs: refused designs are resampled.

    The first round is exactly :func:`redesign`'s draw with ``seed`` (so clean
    designs are the ones an unfiltered run gives); later rounds draw, from
    seeds derived from ``seed``, as many as the pass rate so far says are
    needed. Stops after ``max_draws`` (default :data:`MAX_DRAWS_PER_DESIGN` per
    design) with fewer designs rather than loop forever; the summary says so.
    """
    _check(num, nfe, batch_size, sampler, loaded)
    classes = tuple(dict.fromkeys(classes))
    unknown = sorted(set(classes) - set(LIABILITY_CLASSES))
    if unknown or not classes:
        raise ValueError(f"liability classes {unknown or '[]'}: choose from {', '.join(LIABILITY_CLASSES)}")
    limit = max_draws if max_draws is not None else MAX_DRAWS_PER_DESIGN * num
    kept: list[tuple[str, tuple[int, ...]]] = []
    refused = dict.fromkeys(classes, 0)
    drawn = refused_designs = 0
    round_ = 0
    while len(kept) < num and drawn < limit:
        missing = num - len(kept)
        rate = max(len(kept) / drawn, 0.125) if drawn else 1.0
        size = min(limit - drawn, max(missing, int(np.ceil(missing / rate))))
        round_seed = seed if round_ == 0 else int(np.random.SeedSequence([seed, round_]).generate_state(1)[0])
        for seq, lens in _draw(loaded, plan, size, nfe, round_seed, sampler, temperature, top_p, batch_size,
                               progress, order_temperature):  # fmt: skip
            drawn += 1
            found = design_liabilities(plan, seq, lens, classes)
            if found:
                refused_designs += 1
                for k in {x.kind for x in found}:
                    refused[k] += 1
            elif len(kept) < num:
                kept.append((seq, lens))
        round_ += 1
    return FilteredDesigns(plan.parent_id, _records(plan, kept), num, drawn, refused, refused_designs, classes)
