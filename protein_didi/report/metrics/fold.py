"""Foldability: ESMFold mean pLDDT (0–100) per sequence, up to 1022 residues, with a progress bar."""

from __future__ import annotations

import html
import sys
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from protein_didi.protein.alphabet import MAX_RESIDUES
from protein_didi.report.figures import metric_vs_nfe, png
from protein_didi.report.metrics.base import NOT_COMPUTED, Column, MetricFamily, Scoring, fmt_float, fmt_percent
from protein_didi.report.sets import SequenceSet

CONFIDENT_PLDDT = 70.0
TOO_LONG = f"longer than {MAX_RESIDUES} residues (ESMFold's ESM-2 limit)"


def progress_bar(desc: str, total: int | None = None) -> tuple[Any, Any]:
    """A tqdm bar on stderr and the ``progress(done, total)`` callback the folders call."""
    bar = tqdm(total=total, desc=desc, unit="seq", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, progress


def foldable(seqs: list[str]) -> list[str]:
    """The sequences ESMFold is asked to fold (the rest are reported as too long)."""
    return [s for s in seqs if len(s) <= MAX_RESIDUES]


class Foldability(MetricFamily):
    name = "pLDDT"
    summary_columns = (
        Column("plddt_mean", "mean pLDDT (0–100)", fmt_float(1), scored="plddt_scored"),
        Column("plddt_frac_confident", "pLDDT > 70 (% seqs)", fmt_percent(0)),
    )
    sequence_columns = (Column("plddt", "pLDDT (0–100)", fmt_float(1)),)
    hint = "pLDDT = ESMFold's mean predicted lDDT, 0–100; above 70 is a confident fold."

    def score(self, sc: Scoring) -> None:
        m = sc.metrics
        m["plddt"] = np.nan
        sc.computed[self.name] = False
        folder = sc.options.folder
        if folder is None:
            sc.notes.append(f"pLDDT not computed: {sc.options.no_fold_reason}")
            return
        from protein_didi.eval.fold import FoldingUnavailable

        fits = m.index[m["length"] <= MAX_RESIDUES]
        sc.skip("plddt", m.index[m["length"] > MAX_RESIDUES], TOO_LONG)
        seqs = m.loc[fits, "sequence"].tolist()
        bar, progress = progress_bar("folding (ESMFold)", len(set(seqs)))
        try:
            results = folder.fold(seqs, progress=progress) if seqs else []
        except FoldingUnavailable as err:
            sc.notes.append(f"pLDDT not computed: {err}")
            return
        finally:
            bar.close()
        m.loc[fits, "plddt"] = [r.mean_plddt for r in results]
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed[self.name]:
            return {"plddt_mean": NOT_COMPUTED, "plddt_std": np.nan, "plddt_frac_confident": np.nan, "plddt_scored": 0}
        v = rows["plddt"].dropna().to_numpy(dtype=np.float64)
        if not v.size:
            return {"plddt_mean": np.nan, "plddt_std": np.nan, "plddt_frac_confident": np.nan, "plddt_scored": 0}
        return {
            "plddt_mean": float(v.mean()),
            "plddt_std": float(v.std()),
            "plddt_frac_confident": float(np.mean(v > CONFIDENT_PLDDT)),
            "plddt_scored": int(v.size),
        }

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        if not ev.plddt_computed:
            note = next((n for n in ev.notes if n.startswith("pLDDT")), "pLDDT not computed")
            return [("Foldability: ESMFold pLDDT", f'<p class="warn">{html.escape(note)}</p>')]
        out = [("Foldability: ESMFold pLDDT", distribution(ev))]
        curve = metric_vs_nfe(ev, "plddt", "mean pLDDT")
        if curve:
            out.append(("pLDDT vs NFE", curve))
        return out


def distribution(ev: Any) -> str:
    """Box plot with jittered points of per-sequence pLDDT, one box per set."""
    import matplotlib.pyplot as plt

    labels = list(ev.summary["set"])
    data = [ev.metrics.loc[ev.metrics["set"] == lab, "plddt"].dropna().to_numpy() for lab in labels]
    fig, ax = plt.subplots(figsize=(min(0.6 * len(labels) + 2.5, 10), 3.6))
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=6, alpha=0.5, color="tab:blue")
    ax.axhline(CONFIDENT_PLDDT, color="grey", ls="--", lw=1)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("mean pLDDT (ESMFold)")
    return png(fig, "distribution of mean pLDDT per set")
