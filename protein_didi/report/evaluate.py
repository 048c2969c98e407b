"""Score every set with every metric family: one row per sequence, one summary row per set.

Nothing is dropped silently: a metric that cannot score a sequence (e.g. the
judge or ESMFold beyond 1022 residues) leaves it blank and says why in the
``not_scored`` column; the summary counts the scored sequences; a metric that
cannot run at all adds one note instead of failing the report.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from protein_didi.report.metrics import FAMILIES, MetricFamily, Options, Scoring
from protein_didi.report.metrics.antibody import antibody_references, choose_antibody_sets
from protein_didi.report.sets import REFERENCE_KINDS, SequenceSet


@dataclass
class Evaluation:
    metrics: pd.DataFrame
    summary: pd.DataFrame
    notes: list[str]
    reference_composition: dict[str, float]
    sets: list[SequenceSet]
    computed: dict[str, bool]
    skipped: dict[str, dict[int, str]]
    families: tuple[MetricFamily, ...] = FAMILIES
    antibody_sets: frozenset[str] = frozenset()
    antibody_composition: dict[str, float] | None = None
    results: dict[str, Any] = field(default_factory=dict)  # the families' extras (numbering, liabilities …)

    @property
    def plddt_computed(self) -> bool:
        return self.computed.get("pLDDT", False)


def sequence_frame(sets: Sequence[SequenceSet]) -> pd.DataFrame:
    """The per-sequence frame every family adds its columns to."""
    rows = []
    for s in sets:
        for (rid, seq), target in zip(s.records, s.target_lengths or [len(q) for q in s.sequences], strict=True):
            rows.append({"set": s.label, "kind": s.kind, "id": rid, "sequence": seq, "length": len(seq),
                         "model": s.model, "nfe": s.nfe, "set_length": s.length, "target_length": target})  # fmt: skip
    return pd.DataFrame(rows)


def not_scored(skipped: dict[str, dict[int, str]], n: int) -> list[str]:
    """Per row: ``column: reason; …`` for every metric that left it blank on purpose."""
    out = [""] * n
    for column, rows in skipped.items():
        for i, reason in rows.items():
            out[i] = f"{out[i]}; {column}: {reason}" if out[i] else f"{column}: {reason}"
    return out


def evaluate(
    sets: Sequence[SequenceSet],
    reference_composition: dict[str, float],
    options: Options,
    families: Sequence[MetricFamily] = FAMILIES,
) -> Evaluation:
    """All metrics for every set; optional parts (fold, judge, novelty) degrade to blanks plus a note.

    Antibody inputs get natural-antibody reference rows (and IgLM's samples as a
    rival row where installed) before any family runs, so every metric of theirs
    reads against antibodies rather than UniProt proteins. When every input is
    antibodies the protein reference rows are dropped (nothing is compared with them).
    """
    sets, notes = list(sets), []
    antibody = choose_antibody_sets(sets, options, notes)
    antibody_composition = None
    if antibody:
        extra, antibody_composition = antibody_references(sets, antibody, options, notes)
        if all(s.label in antibody for s in sets if s.kind == "generated"):
            sets = [s for s in sets if s.kind not in REFERENCE_KINDS]
            notes.append(
                "natural and random protein reference rows left out: every input set is antibodies, read against "
                "the natural antibody rows"
            )
        sets += extra
        antibody |= {s.label for s in extra}
    sc = Scoring(sets, sequence_frame(sets), reference_composition, options, notes=notes,
                 antibody_sets=frozenset(antibody), antibody_composition=antibody_composition)  # fmt: skip
    for family in families:
        family.score(sc)
    metrics = sc.metrics
    metrics["not_scored"] = not_scored(sc.skipped, len(metrics))
    rows = []
    for s in sets:
        part = metrics[metrics["set"] == s.label]
        row = {"set": s.label, "kind": s.kind, "model": s.model, "nfe": s.nfe, "length": s.length, "n": len(part)}
        for family in families:
            row |= family.summarize(sc, s, part)
        rows.append(row)
    summary = pd.DataFrame(rows)
    # integer columns with gaps (reference rows have no NFE) stay integers instead of turning into 8.000
    ints = [c for c in ("nfe", "length", "num_clusters", "novelty_hits") if c in summary]
    summary = summary.astype(dict.fromkeys(ints, "Int64"))
    metrics = metrics.astype({"nfe": "Int64", "set_length": "Int64"})
    return Evaluation(metrics, summary, sc.notes, reference_composition, list(sets), sc.computed, sc.skipped,
                      tuple(families), sc.antibody_sets, antibody_composition, sc.results)  # fmt: skip
