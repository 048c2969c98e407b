"""Figure helpers shared by metric families: PNGs embedded as base64, metric-vs-NFE curves, the pRMSD figure.

Every figure lays itself out with matplotlib's constrained layout, wraps long set labels onto lines instead of
cutting them (two cut labels such as "shuffled real V…" read as the same set), and keeps legends outside the axes
so they cover no data.
"""

from __future__ import annotations

import base64
import html
import io
import textwrap
from typing import Any

import numpy as np
import pandas as pd

PRMSD_IS_CONFIDENCE = "IgFold's confidence (its predicted error), not a measured error"
CDR_NAMES = ("H1", "H2", "H3", "L1", "L2", "L3")


def wrap_label(label: str, width: int = 13) -> str:
    """``label`` on lines of at most ``width`` characters, broken at spaces and hyphens (inside a longer word only
    when it has none): wrapped, never cut off."""
    return textwrap.fill(label, width)


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
    fig, axes = plt.subplots(
        1, len(panels), figsize=(3.6 * len(panels) + 2, 3.2), squeeze=False, sharey=True, layout="constrained"
    )
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
    fig.legend(*axes[0][-1].get_legend_handles_labels(), fontsize=7, loc="outside right upper", frameon=False)
    return png(fig, f"{ylabel} against the number of sampling steps")


def prmsd_figure(ev: Any, references: pd.DataFrame) -> str:
    """:func:`prmsd_plot` as an ``<img>`` ("" when no set has a pRMSD)."""
    fig = prmsd_plot(ev, references)
    if fig is None:
        return ""
    return png(fig, f"predicted RMSD per chain for each set, and per CDR; pRMSD is {PRMSD_IS_CONFIDENCE}")


def prmsd_plot(ev: Any, references: pd.DataFrame) -> Any | None:
    """Left: per-chain mean pRMSD of each antibody set and the reference rows (natural, shuffled) as boxes; right:
    each set's mean pRMSD per CDR. Labels wrap, the legend sits under the bars, the title says what pRMSD is."""
    import matplotlib.pyplot as plt

    m = ev.metrics
    labels = [lab for lab in ev.summary["set"] if m.loc[m["set"] == lab, "ab_prmsd"].notna().any()]
    data = [m.loc[m["set"] == lab, "ab_prmsd"].dropna().to_numpy() for lab in labels]
    for label, part in references.groupby("set", sort=False) if len(references) else []:
        labels.append(label)
        data.append(part["ab_prmsd"].to_numpy())
    if not labels:
        return None
    width_in = min(0.85 * len(labels) + 5.5, 12.5)
    fig, (ax, bx) = plt.subplots(1, 2, figsize=(width_in, 4.6), width_ratios=(3, 2), layout="constrained")
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=6, alpha=0.5, color="tab:blue")
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.set_xticks(range(1, len(labels) + 1), [wrap_label(lab) for lab in labels], fontsize=7)
    ax.set_ylabel("mean pRMSD per chain (Å)")
    ax.set_title("per chain: IgFold's confidence, not a measured error", fontsize=9)
    folds = (ev.results.get("antibody structure") or {}).get("folds", {})
    sets = [lab for lab in labels if lab in set(ev.summary["set"])]
    width = 0.8 / max(len(sets), 1)
    for k, lab in enumerate(sets):
        idx = m.index[m["set"] == lab]
        values = [[folds[int(i)].cdr_prmsd[c] for i in idx if c in getattr(folds.get(int(i)), "cdr_prmsd", {})]
                  for c in CDR_NAMES]  # fmt: skip
        means = [float(np.mean(v)) if v else np.nan for v in values]
        bx.bar(np.arange(len(CDR_NAMES)) + k * width - 0.4 + width / 2, means, width, label=wrap_label(lab, 28))
    bx.set_xticks(range(len(CDR_NAMES)), CDR_NAMES)
    bx.set_ylabel("mean pRMSD of the CDR (Å)")
    bx.set_title("per CDR (IMGT)", fontsize=9)
    bx.legend(fontsize=7, loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=2, frameon=False)
    return fig
