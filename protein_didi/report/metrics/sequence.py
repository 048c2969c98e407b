"""Length, amino-acid composition KL and low complexity: model-free, any length, always computed."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from protein_didi.eval.stats import composition, composition_kl, low_complexity_fraction
from protein_didi.protein.alphabet import STANDARD_AA
from protein_didi.report.figures import png
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_float, fmt_percent
from protein_didi.report.sets import ANTIBODY_KIND, RIVAL_KIND, SequenceSet


class SequenceStats(MetricFamily):
    name = "sequence statistics"
    summary_columns = (
        Column("mean_length", "mean length (residues)", fmt_float(0)),
        Column("composition_kl", "composition KL (nats)", title="KL(set ‖ reference composition)"),
        Column("low_complexity", "low complexity (% residues)", fmt_percent(1)),
    )
    sequence_columns = (
        Column(
            "composition_kl",
            "composition KL (nats)",
            short="KL (nats)",
            title="KL(sequence ‖ reference composition); antibodies: against natural antibodies'",
        ),
        Column(
            "low_complexity",
            "low complexity (% residues)",
            fmt_percent(0),
            short="low cx. (%)",
            title="share of residues in 12-residue windows below 2.2 bits (SEG-like)",
        ),
    )
    hint = (
        "composition KL = KL(set ‖ reference) in nats (antibody sets: against the natural antibodies' composition); "
        "low complexity = share of residues in 12-residue windows "
        "below 2.2 bits (SEG-like)."
    )

    def score(self, sc: Scoring) -> None:
        seqs = sc.metrics["sequence"].tolist()
        sc.metrics["low_complexity"] = [low_complexity_fraction(s) for s in seqs]
        labels = sc.metrics["set"].tolist()
        sc.metrics["composition_kl"] = [
            composition_kl(s, sc.composition_for(k)) for s, k in zip(seqs, labels, strict=True)
        ]
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        return {
            "mean_length": float(rows["length"].mean()),
            "composition_kl": composition_kl(s.sequences, sc.composition_for(s.label)),
            "low_complexity": float(rows["low_complexity"].mean()),
        }

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        """Proteins against the reference composition; antibody sets (if any) apart, against natural antibodies'."""
        antibodies = [s for s in ev.sets if s.label in ev.antibody_sets]
        proteins = [s for s in ev.sets if s.label not in ev.antibody_sets]
        out = []
        if not antibodies or any(not s.is_reference for s in proteins):
            out.append(("Amino-acid composition vs reference", composition_bars(proteins, ev.reference_composition)))
        if antibodies and ev.antibody_composition is not None:
            bars = composition_bars(antibodies, ev.antibody_composition, "natural antibodies' composition")
            out.append(("Amino-acid composition of antibody sets vs natural antibodies", bars))
        return out


def composition_bars(
    sets: list[SequenceSet], reference: dict[str, float], reference_label: str = "reference composition"
) -> str:
    """Pooled composition per set (per model for big sweeps), reference rows pooled by kind; reference as ticks."""
    import matplotlib.pyplot as plt

    pooled: dict[str, list[str]] = {}
    generated = [s for s in sets if not s.is_reference]
    by_model = len(generated) > 6 and all(isinstance(s.model, str) for s in generated)
    for s in sets:
        if s.is_reference:
            name = s.label if s.kind in (ANTIBODY_KIND, RIVAL_KIND) else f"{s.kind} (reference)"
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
    ref = [reference[a] for a in STANDARD_AA]
    ax.hlines(ref, x - 0.45, x + 0.45, colors="black", lw=1.5, label=reference_label)
    ax.set_xticks(x, list(STANDARD_AA))
    ax.set_xlim(-0.6, len(STANDARD_AA) - 0.4)
    ax.set_ylabel("frequency")
    ax.legend(fontsize=7, ncol=min(len(series) + 1, 5), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return png(fig, f"amino-acid composition of each set against the {reference_label}")
