"""The contract every metric family of the report fulfils, and the formatting its table cells share.

A family scores sequences (adding columns to the per-sequence frame), sums
them up per set (adding summary columns), names its columns for the reader
(header with units, cell format) and may draw figures. The evaluator and the
renderer only ever talk to this interface, so adding a family is one module
plus one line in :data:`protein_didi.report.metrics.FAMILIES`.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, ClassVar

import pandas as pd

from protein_didi.report.sets import SequenceSet

NOT_COMPUTED = "not computed"


@dataclass
class Options:
    """Run-wide settings the families read (from the CLI)."""

    folder: Any | None = None
    no_fold_reason: str = "disabled with --no-fold"
    threads: int | None = None
    min_seq_id: float = 0.3
    coverage: float = 0.8
    judge: bool = True
    judge_path: str | None = None
    judge_precision: str = "fp32"
    cluster: bool = True
    train_fasta: str | None = None
    no_train_reason: str = "novelty not computed: no training FASTA (give --train, e.g. data/uniprot20k/train.fasta)"
    antibody: bool | None = None  # antibody metrics: True forces them, False skips them, None detects antibody sets
    iglm_rival: bool = True  # with antibody sets and the iglm package: IgLM's own samples as a rival row
    seed: int = 0  # antibody reference rows and the IgLM rival row


@dataclass
class Scoring:
    """Shared state while scoring: the per-sequence frame, notes, per-cell skip reasons, family results."""

    sets: list[SequenceSet]
    metrics: pd.DataFrame
    reference_composition: dict[str, float]
    options: Options
    notes: list[str] = field(default_factory=list)
    skipped: dict[str, dict[int, str]] = field(default_factory=dict)  # column → row index → why it has no value
    computed: dict[str, bool] = field(default_factory=dict)  # family name → did it run at all
    results: dict[str, Any] = field(default_factory=dict)  # family-owned extras (e.g. clusterings)
    antibody_sets: frozenset[str] = frozenset()  # labels of the sets scored as antibodies (inputs and their references)
    antibody_composition: dict[str, float] | None = None  # natural antibodies' composition, for antibody sets

    def composition_for(self, label: str) -> dict[str, float]:
        """The composition a set is compared with: natural antibodies' for antibody sets, else the reference's."""
        if label in self.antibody_sets and self.antibody_composition is not None:
            return self.antibody_composition
        return self.reference_composition

    def skip(self, column: str, rows: Any, reason: str) -> None:
        for i in rows:
            self.skipped.setdefault(column, {})[int(i)] = reason

    def antibody_numbering(self, family: str) -> Any | None:
        """ANARCI's numbering (row → numbering) for a family that reads it; None, with ``family`` marked not
        computed, when the antibody family did not run."""
        self.computed[family] = False
        numbering = self.results.get("numbering")
        return numbering if self.computed.get("antibody") and numbering is not None else None


def fmt_float(digits: int) -> Callable[[Any], str]:
    return lambda v: f"{v:.{digits}f}"


def fmt_percent(digits: int = 0) -> Callable[[Any], str]:
    return lambda v: f"{100 * v:.{digits}f} %"


def fmt_int(v: Any) -> str:
    return f"{int(v):,}"


def is_blank(value: Any) -> bool:
    return value is None or value is pd.NA or (isinstance(value, float) and math.isnan(value))


THREE_DIGITS = fmt_float(3)


@dataclass(frozen=True)
class Column:
    """One displayed column: data key, header with units, cell format, text for an empty cell of a computed metric.

    ``scored`` names a summary column counting the sequences that have a value;
    when it is below ``n`` the cell says so ("2.950 (6/8 scored)"). ``short`` is the header of the narrow
    per-sequence table (the full header and ``title`` go to its legend and tooltip), so 15+ columns fit a laptop
    page without headers breaking inside words; ``css`` is the per-sequence cell's class ("txt" wraps text at
    spaces, "mono" is monospace and may break anywhere, default: numbers that never wrap).
    """

    key: str
    header: str
    fmt: Callable[[Any], str] = THREE_DIGITS
    blank: str = "–"
    scored: str | None = None
    title: str = ""
    short: str = ""
    css: str = ""


class MetricFamily:
    """Base class: override what applies. ``table`` puts summary columns in "quality" or "diversity"."""

    name: ClassVar[str] = "metric"
    table: ClassVar[str] = "quality"
    summary_columns: ClassVar[tuple[Column, ...]] = ()
    sequence_columns: ClassVar[tuple[Column, ...]] = ()
    hint: ClassVar[str] = ""  # one sentence for the reader, under the summary tables

    def score(self, sc: Scoring) -> None:
        raise NotImplementedError

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        return {}

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        """``(heading, html)`` sections with embedded images; ``ev`` is the finished Evaluation."""
        return []

    def tables(self, ev: Any) -> dict[str, pd.DataFrame]:
        """Extra CSV files (name → frame) written beside metrics.csv, for data that is not one row per sequence."""
        return {}
