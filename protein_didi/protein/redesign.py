"""CDR redesign: keep an antibody's framework, regenerate one or more CDR loops with a masked-diffusion model.

The parent is numbered with ANARCI (IMGT); every residue outside the chosen
CDRs is fixed, the CDRs are replaced by [MASK] runs of a drawn length and the
sampler fills them in — the infilling a masked diffusion model does natively,
with no retraining. Lengths vary per design when a range is given (natural
CDR-H3s span ~5–25 residues), so a batch groups designs of equal total length.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch

from protein_didi.core.request import ProgressCallback, steps_reporter
from protein_didi.core.resample import resample_until
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.cdr_plan import (
    MAX_CDR_LENGTH,
    RedesignPlan,
    design_spans,
    parse_cdr_length,
    parse_cdr_names,
    plan_redesign,
)
from protein_didi.protein.generate import plan_batches, sample_batch
from protein_didi.protein.liabilities import LIABILITY_CLASSES, Liability, span_liabilities
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.protein.request import ProteinRequest

__all__ = [  # the plan's names too: redesign is where users look for them
    "MAX_CDR_LENGTH",
    "FilteredDesigns",
    "RedesignPlan",
    "design_liabilities",
    "parse_cdr_length",
    "parse_cdr_names",
    "plan_redesign",
    "redesign",
    "redesign_free_of",
]


def _draw(
    loaded: LoadedModel, request: ProteinRequest, progress: ProgressCallback | None
) -> list[tuple[str, tuple[int, ...]]]:
    """``request.num`` raw designs of ``request.plan`` with their CDR lengths, in draw order (request fitted)."""
    plan = request.plan
    assert plan is not None and request.resolved
    rng = np.random.default_rng(request.seed)
    cdr_lengths = [tuple(int(rng.integers(lo, hi + 1)) for lo, hi in plan.lengths) for _ in range(request.num)]
    device = next(loaded.model.parameters()).device
    gen = torch.Generator(device=device).manual_seed(request.seed)
    order = sorted(range(request.num), key=lambda i: sum(cdr_lengths[i]))  # equal total lengths share a batch
    batches = plan_batches([plan.design_length(cdr_lengths[i]) for i in order], request.batch_size, request.max_tokens)
    designs: list[str] = [""] * request.num
    total, done = request.steps * len(batches), 0
    for start, stop in batches:
        idx = order[start:stop]
        tokens = ALPHABET.pack([plan.template(cdr_lengths[i]) for i in idx]).to(device)
        fixed = ALPHABET.special_positions(tokens) | (tokens != ALPHABET.mask_id)
        z = sample_batch(loaded, request, tokens, fixed, gen, steps_reporter(progress, done, total))
        done += request.steps
        for i, seq in zip(idx, ALPHABET.decode(z), strict=True):
            designs[i] = seq
    return list(zip(designs, cdr_lengths, strict=True))


def _records(plan: RedesignPlan, designs: Sequence[tuple[str, tuple[int, ...]]]) -> list[tuple[str, str]]:
    records = []
    for k, (seq, lens) in enumerate(designs):
        cdr_desc = ",".join(f"{name}:{n}" for name, n in zip(plan.cdrs, lens, strict=True))
        records.append((f"{plan.parent_id}_design{k + 1:04d} parent={plan.parent_id} {cdr_desc}", seq))
    return records


def _fitted(loaded: LoadedModel, request: ProteinRequest) -> tuple[ProteinRequest, RedesignPlan]:
    if request.plan is None:
        raise ValueError("CDR redesign needs a plan: build the request with plan=plan_redesign(parent, cdrs)")
    return request.fitted(loaded), request.plan


def redesign(
    loaded: LoadedModel,
    request: ProteinRequest,
    progress: ProgressCallback | None = None,
    report: Callable[[str], None] | None = None,
) -> list[tuple[str, str]]:
    """``request.num`` designs of ``request.plan`` as FASTA records ``(id, sequence)``; ids name the parent,
    the CDRs and their lengths.

    With ``request.liabilities`` (classes of :mod:`protein_didi.protein.liabilities`), designs with one
    of them in a redesigned CDR are refused and resampled (:func:`redesign_free_of`); ``report``
    receives the one-line account.
    """
    if request.liabilities:
        result = redesign_free_of(loaded, request, progress)
        if report is not None:
            report(result.summary())
        return result.records
    request, plan = _fitted(loaded, request)
    return _records(plan, _draw(loaded, request, progress))


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
    surplus: int = 0  # clean designs drawn beyond the number asked (a round overshoots), not kept

    @property
    def account(self) -> dict[str, int]:
        """Where every draw went: drawn = kept + refused + surplus (the numbers :meth:`summary` prints)."""
        return {
            "drawn": self.drawn,
            "kept": len(self.records),
            "refused": self.refused_designs,
            "surplus": self.surplus,
        }

    def summary(self) -> str:
        """One line whose numbers add up: drawn = kept + refused (by class) + clean extras, and a shortfall if any."""
        by_class = ", ".join(f"{k} {n}" for k, n in self.refused.items() if n)
        if sum(self.refused.values()) > self.refused_designs:
            by_class += "; a design may carry several"
        extras = f"{self.surplus} clean extra{'' if self.surplus == 1 else 's'} beyond the {self.asked} asked"
        line = (
            f"{self.parent_id}: {len(self.records)} of {self.asked} designs free of {', '.join(self.classes)} in the "
            f"redesigned CDRs; {self.drawn} drawn = {len(self.records)} kept + {self.refused_designs} refused"
            f"{f' ({by_class})' if by_class else ''} + {extras}"
        )
        if len(self.records) < self.asked:
            line += (
                f"; stopped after {self.drawn} draws ({MAX_DRAWS_PER_DESIGN} per design): drop a class from "
                "--liabilities or widen --cdr-length"
            )
        return line


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
    request: ProteinRequest,
    progress: ProgressCallback | None = None,
    max_draws: int | None = None,
) -> FilteredDesigns:
    """``request.num`` designs with none of ``request.liabilities`` in the redesigned CDRs: refused designs
    are resampled (:func:`protein_didi.core.resample.resample_until`: the first round is exactly
    :func:`redesign`'s unfiltered draw, so clean designs are the ones an unfiltered run gives). Stops after
    ``max_draws`` (default :data:`MAX_DRAWS_PER_DESIGN` per design) with fewer designs rather than loop
    forever; the summary says so.
    """
    request, plan = _fitted(loaded, request)
    classes, num = request.liabilities, request.num
    if not classes:
        raise ValueError(f"name the liability classes to refuse: {', '.join(LIABILITY_CLASSES)}")

    def draw(size: int, seed: int) -> list[tuple[str, tuple[int, ...]]]:
        return _draw(loaded, request.replace(num=size, seed=seed), progress)

    def refuse(design: tuple[str, tuple[int, ...]]) -> set[str] | None:
        return {x.kind for x in design_liabilities(plan, design[0], design[1], classes)} or None

    limit = max_draws if max_draws is not None else MAX_DRAWS_PER_DESIGN * num
    result = resample_until(num, draw, refuse, request.seed, limit)
    refused = {k: sum(k in kinds for _, kinds in result.refused) for k in classes}
    return FilteredDesigns(
        plan.parent_id, _records(plan, result.kept), num, result.drawn, refused, len(result.refused), classes,
        result.surplus,
    )  # fmt: skip
