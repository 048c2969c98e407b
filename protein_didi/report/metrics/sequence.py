"""Length, amino-acid composition KL and low complexity: model-free, any length, always computed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from protein_didi.eval.stats import composition, composition_kl, low_complexity_fraction
from protein_didi.protein.alphabet import STANDARD_AA
from protein_didi.report.figures import png
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_float, fmt_percent
from protein_didi.report.sets import SequenceSet


class SequenceStats(MetricFamily):
    name = "sequence statistics"
    summary_columns = (
        Column("mean_length", "mean length (residues)", fmt_float(0)),
        Column("composition_kl", "composition KL (nats)", title="KL(set ‖ reference composition)"),
        Column("low_complexity", "low complexity (% residues)", fmt_percent(1)),
    )
    sequence_columns = (
        Column("composition_kl", "composition KL (nats)"),
        Column("low_complexity", "low complexity (% residues)", fmt_percent(0)),
    )
    hint = (
        "composition KL = KL(set ‖ reference) in nats; low complexity = share of residues in 12-residue windows "
        "below 2.2 bits (SEG-like)."
    )

    def score(self, sc: Scoring) -> None:
        seqs = sc.metrics["sequence"].tolist()
        sc.metrics["low_complexity"] = [low_complexity_fraction(s) for s in seqs]
        sc.metrics["composition_kl"] = [composition_kl(s, sc.reference_composition) for s in seqs]
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        return {
            "mean_length": float(rows["length"].mean()),
            "composition_kl": composition_kl(s.sequences, sc.reference_composition),
            "low_complexity": float(rows["low_complexity"].mean()),
        }

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        return [("Amino-acid composition vs reference", composition_bars(ev))]


def composition_bars(ev: Any) -> str:
    """Pooled composition per set (per model for big sweeps), reference rows pooled by kind; reference as ticks."""
    import matplotlib.pyplot as plt

    pooled: dict[str, list[str]] = {}
    sets = list(ev.sets)
    generated = [s for s in sets if not s.is_reference]
    by_model = len(generated) > 6 and all(isinstance(s.model, str) for s in generated)
    for s in sets:
        if s.is_reference:
            name = f"{s.kind} (reference)"
        else:
            name = f"{s.model} (all sets)" if by_model else s.label
            name = name if name not in {f"{k} (reference)" for k in ("natural", "random")} else f"{name} (yours)"
        pooled.setdefault(name, []).extend(s.sequences)
    series = {name: composition(seqs) for name, seqs in pooled.items()}
    fig, ax = plt.subplots(figsize=(10, 3.4))
    width = 0.85 / len(series)
    x = np.arange(len(STANDARD_AA))
    for i, (name, comp) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [comp[a] for a in STANDARD_AA], width, label=name)
    ref = [ev.reference_composition[a] for a in STANDARD_AA]
    ax.hlines(ref, x - 0.45, x + 0.45, colors="black", lw=1.5, label="reference composition")
    ax.set_xticks(x, list(STANDARD_AA))
    ax.set_xlim(-0.6, len(STANDARD_AA) - 0.4)
    ax.set_ylabel("frequency")
    ax.legend(fontsize=7, ncol=min(len(series) + 1, 5), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return png(fig, "amino-acid composition of each set against the reference composition")
