"""Figure helpers shared by metric families: PNGs embedded as base64 and metric-vs-NFE curves."""

from __future__ import annotations

import base64
import html
import io
from typing import Any

import pandas as pd


def png(fig: Any, alt: str) -> str:
    """An ``<img>`` holding ``fig`` as base64 PNG, so the page works offline and when mailed around."""
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    data = base64.b64encode(buf.getvalue()).decode()
    return f'<img class="fig" alt="{html.escape(alt)}" src="data:image/png;base64,{data}">'


def metric_vs_nfe(ev: Any, column: str, ylabel: str) -> str | None:
    """One panel per length: mean ± s.e. of ``column`` against NFE for each model, reference sets as lines."""
    import matplotlib.pyplot as plt

    gen = ev.metrics[(ev.metrics["kind"] == "generated") & ev.metrics["nfe"].notna()].copy()
    if gen.empty or gen[column].isna().all():
        return None
    gen["panel"] = gen["set_length"].map(lambda v: "all lengths" if pd.isna(v) else f"L = {int(v)}")
    panels = sorted(gen["panel"].unique(), key=lambda p: (p == "all lengths", int(p[4:]) if p[:2] == "L " else 0))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 0.5, 3.2), squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], panels, strict=True):
        sub = gen[gen["panel"] == panel]
        for model, g in sub.groupby("model"):
            stats = g.groupby("nfe")[column].agg(["mean", "sem"]).sort_index()
            ax.errorbar(
                stats.index.to_numpy(dtype=float),
                stats["mean"],
                yerr=stats["sem"].fillna(0),
                marker="o",
                capsize=3,
                label=model,
            )
        for kind, style in (("natural", "-"), ("random", ":"), ("natural antibody", "--")):
            ref = ev.metrics[ev.metrics["kind"] == kind]
            if panel != "all lengths":
                ref = ref[ref["target_length"] == int(panel[4:])]
            if ref[column].notna().any():
                ax.axhline(ref[column].mean(), color="grey", ls=style, lw=1, label=kind)
        ax.set_xscale("log", base=2)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(panel)
        ax.set_xlabel("NFE (sampling steps)")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="best")
    return png(fig, f"{ylabel} against the number of sampling steps")
