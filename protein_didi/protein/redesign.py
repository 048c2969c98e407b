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
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch

from protein_didi.core.request import ProgressCallback, steps_reporter
from protein_didi.core.resample import resample_until
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.cdr_plan import (
    MAX_CDR_LENGTH,
    SCHEME_NAMES,
    RedesignPlan,
    design_spans,
    parse_cdr_length,
    parse_cdr_names,
    plan_redesign,
)
from protein_didi.protein.engineer_checks import DesignChecks, check_designs, plain_table
from protein_didi.protein.generate import plan_batches, sample_batch
from protein_didi.protein.liabilities import LIABILITY_CLASSES, Liability, describe_all, span_liabilities
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.protein.request import ProteinRequest

__all__ = [  # the plan's names too: redesign is where users look for them
    "MAX_CDR_LENGTH",
    "FilteredDesigns",
    "LoopTable",
    "RedesignPlan",
    "design_liabilities",
    "loop_nll",
    "loop_table",
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


def record_cdr_lengths(plan: RedesignPlan, header: str) -> tuple[int, ...]:
    """CDR lengths of a design from its FASTA header (``… H3:12``, as :func:`redesign` writes it)."""
    found = [re.search(rf"\b{name}:(\d+)\b", header) for name in plan.cdrs]
    if not all(found):
        raise ValueError(f"record {header.split()[0]!r} names no length for {', '.join(plan.cdrs)}; not a design")
    return tuple(int(m.group(1)) for m in found if m)


@torch.no_grad()
def loop_nll(loaded: LoadedModel, plan: RedesignPlan, designs: Sequence[tuple[str, Sequence[int]]]) -> list[float]:
    """The sampling model's NLL of each sequence's redesigned loops (nats/residue) given its framework, with every
    loop residue masked at once, as generation starts: one forward pass per sequence. The parent scored the same way
    is the baseline a design's loop reads against (lower: more like what the model expects there)."""
    device = next(loaded.model.parameters()).device
    out = []
    for seq, lengths in designs:
        codes = ALPHABET.encode_residues(seq)
        masked = codes.copy()
        for start, end in design_spans(plan, lengths):
            masked[start:end] = ALPHABET.mask_id
        tokens = ALPHABET.pack([masked]).to(device)
        target = ALPHABET.pack([codes]).to(device)
        log_probs = loaded.model(tokens)[0].float()
        picked = log_probs.gather(-1, target[0, :, None]).squeeze(-1)
        out.append(float(-picked[tokens[0] == ALPHABET.mask_id].mean()))
    return out


LoopScorer = Callable[[Sequence[tuple[str, Sequence[int]]]], list[float]]
"""(sequence, CDR lengths) pairs → one loop NLL each (nats/residue): the model's own (:func:`loop_nll`) or IgLM's."""


@dataclass(frozen=True)
class LoopRow:
    """One row of the redesign table: the parent (``baseline``) or a design, its loops and what they carry."""

    id: str
    loops: tuple[str, ...]  # the redesigned CDRs' residues (the plan's scheme), in plan order
    liabilities: tuple[Liability, ...]  # of the table's classes, touching those loops
    nll: float | None  # loop NLL (nats/residue) under the table's scorer; None: not scored
    checks: DesignChecks  # the engineer's checks of the whole chain
    other_schemes: dict[str, str]  # "H3 Kabat" → residues of the same CDR under the schemes not redesigned
    baseline: bool = False


@dataclass
class LoopTable:
    """The parent first (the baseline every design reads against), then the designs; data for the CLI and the app."""

    plan: RedesignPlan
    rows: list[LoopRow]
    definitions: list[str]  # one line per CDR: the definition used (IMGT positions) and Kabat/Chothia boundaries
    score: str  # what ``nll`` measures ("" when not scored)

    def frame(self) -> pd.DataFrame:
        """One row per sequence: id, each loop (the plan's scheme) and its length, under the other schemes, loop NLL,
        liabilities in the loops and the engineer's checks."""
        rows = []
        for r in self.rows:
            row: dict[str, object] = {"id": f"{r.id} (parent, baseline)" if r.baseline else r.id}
            for name, loop in zip(self.plan.cdrs, r.loops, strict=True):
                row[f"{name} ({SCHEME_NAMES[self.plan.scheme]})"] = loop
                row[f"{name} length"] = len(loop)
            row.update(r.other_schemes)
            if self.score:
                row[self.score] = None if r.nll is None else round(r.nll, 3)
            row["liabilities"] = describe_all(r.liabilities)
            row["checks"] = "ok" if r.checks.ok else "; ".join(r.checks.flags)
            rows.append(row)
        return pd.DataFrame(rows)

    def text(self) -> str:
        """What ``sample --redesign`` prints below its designs: the definitions, then the table."""
        return "\n".join([*self.definitions, plain_table(self.frame())])


def loop_table(
    plan: RedesignPlan,
    records: Sequence[tuple[str, str]],
    classes: Sequence[str] = LIABILITY_CLASSES,
    scorer: LoopScorer | None = None,
    score: str = "",
) -> LoopTable:
    """The parent of ``plan`` scored exactly as its designs ``records`` are (loop NLL under ``scorer``, liabilities
    of ``classes`` in the loops, the engineer's checks, the loop under the other schemes), parent first."""
    from protein_didi.protein.cdr_plan import cdr_definitions, scheme_cdrs
    from protein_didi.protein.numbering import number_antibodies

    own = tuple(end - start for start, end in plan.spans)
    entries = [(plan.parent_id, plan.parent, own)] + [
        (rid.split()[0], seq, record_cdr_lengths(plan, rid)) for rid, seq in records
    ]
    seqs = [seq for _, seq, _ in entries]
    nlls: list[float | None] = list(scorer([(s, n) for _, s, n in entries])) if scorer else [None] * len(entries)
    checks = check_designs(number_antibodies(seqs))
    others: list[dict[str, str]] = [{} for _ in entries]
    for cdr in plan.cdrs:
        for k, found in enumerate(scheme_cdrs(seqs, cdr, [s for s in SCHEME_NAMES if s != plan.scheme])):
            for scheme, c in found.items():
                others[k][f"{cdr} {SCHEME_NAMES[scheme]}"] = c.residues if c is not None else "not numbered"
    rows = []
    for k, (rid, seq, lengths) in enumerate(entries):
        spans = design_spans(plan, lengths)
        rows.append(
            LoopRow(
                rid,
                tuple(seq[a:b] for a, b in spans),
                tuple(design_liabilities(plan, seq, lengths, classes)),
                nlls[k],
                checks[k],
                others[k],
                baseline=k == 0,
            )
        )
    return LoopTable(plan, rows, cdr_definitions(plan), score if scorer else "")
