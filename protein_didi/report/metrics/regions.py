"""Per-region view of antibody sets: CDR lengths against natural antibodies, identity to the closest germline by region.

Runs after the antibody family and reuses its ANARCI numbering. One figure:
CDR length distributions per CDR (inputs, natural rows and the IgLM row side by
side) and mean identity to the closest germline per region, which shows where a
set departs from natural antibodies (frameworks kept, CDRs rewritten, or the
other way round).
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.eval.regions import CDR3_REASON, GERMLINE_REGIONS, region_identity
from protein_didi.report.figures import png
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_float, fmt_percent
from protein_didi.report.sets import SequenceSet
from protein_didi.report.tables import summary_table

CDRS = ("CDR1", "CDR2", "CDR3")
CDR_NAMES = tuple(f"{c}{k}" for c in "HL" for k in "123")  # H1 … L3


class Regions(MetricFamily):
    name = "regions"
    table = "regions"
    summary_columns = (
        Column("rg_cdrh3_length", "CDR-H3 length (mean, residues)", fmt_float(1), title="IMGT 105–117, heavy chains"),
        Column("rg_cdrl3_length", "CDR-L3 length (mean, residues)", fmt_float(1), title="IMGT 105–117, light chains"),
        *(
            Column(f"rg_identity_{r}", f"{r} germline identity (%)", fmt_percent(0),
                   title="identity to the closest germline " + ("J" if r == "FR4" else "V") + " gene at IMGT positions")
            for r in GERMLINE_REGIONS
        ),
    )  # fmt: skip
    sequence_columns = (
        Column(
            "rg_cdr_lengths",
            "CDR1/2/3 lengths (IMGT, residues)",
            str,
            short="CDR lengths",
            title="IMGT CDR1 27–38, CDR2 56–65, CDR3 105–117",
        ),
    )
    hint = (
        "regions: CDR lengths by IMGT numbering; germline identity per region = same residue at the same IMGT position "
        "as the closest germline V gene (FR1–FR3, CDR1–2) or J gene (FR4), over positions either occupies. "
        f"{CDR3_REASON}, so it has no identity column. The natural rows are real human OAS chains (test split): their "
        "CDR lengths are the reference a design's should match."
    )

    def score(self, sc: Scoring) -> None:
        numbering = sc.antibody_numbering(self.name)
        if numbering is None:
            return
        m = sc.metrics
        m["rg_cdr_lengths"] = pd.Series([None] * len(m), index=m.index, dtype=object)
        for key in (
            "rg_chain_class",
            *(f"rg_{c}_length" for c in CDRS),
            *(f"rg_identity_{r}" for r in GERMLINE_REGIONS),
        ):
            m[key] = np.nan if key != "rg_chain_class" else None
        for i, num in numbering.items():
            if not num.numbered:
                continue
            lengths = [num.regions[c][1] - num.regions[c][0] for c in CDRS]
            m.at[i, "rg_chain_class"] = num.chain_class
            m.at[i, "rg_cdr_lengths"] = "/".join(map(str, lengths))
            for c, n in zip(CDRS, lengths, strict=True):
                m.at[i, f"rg_{c}_length"] = n
            for r, v in region_identity(num).items():
                m.at[i, f"rg_identity_{r}"] = v
        sc.skip("rg_cdr_lengths", [i for i, n in numbering.items() if not n.numbered], "not numbered by ANARCI")
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed.get(self.name) or s.label not in sc.antibody_sets:
            return {}
        out: dict[str, Any] = {}
        for cls in "HL":
            part = rows.loc[rows["rg_chain_class"] == cls, "rg_CDR3_length"].dropna()
            out[f"rg_cdr{cls.lower()}3_length"] = float(part.mean()) if len(part) else np.nan
        for r in GERMLINE_REGIONS:
            v = rows[f"rg_identity_{r}"].dropna()
            out[f"rg_identity_{r}"] = float(v.mean()) if len(v) else np.nan
        return out

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        if not ev.computed.get(self.name) or "rg_identity_FR1" not in ev.summary:
            return []
        part = dataclasses.replace(ev, summary=ev.summary[ev.summary["set"].isin(ev.antibody_sets)])
        return [
            (
                "Antibody regions: CDR lengths and germline identity (IMGT)",
                summary_table(part, "regions") + region_figure(ev),
            )
        ]


def region_figure(ev: Any) -> str:
    """Left: CDR length distributions per CDR and set (boxes); right: mean germline identity per region and set."""
    import matplotlib.pyplot as plt

    m = ev.metrics[ev.metrics["set"].isin(ev.antibody_sets) & ev.metrics["rg_chain_class"].notna()]
    labels = [s.label for s in ev.sets if s.label in ev.antibody_sets]
    colours = {label: plt.get_cmap("tab10")(k % 10) for k, label in enumerate(labels)}
    fig, (left, right) = plt.subplots(1, 2, figsize=(11, 3.8), gridspec_kw={"width_ratios": [1.3, 1]})
    width = 0.8 / max(len(labels), 1)
    for k, label in enumerate(labels):
        rows = m[m["set"] == label]
        data, pos = [], []
        for j, name in enumerate(CDR_NAMES):
            values = rows.loc[rows["rg_chain_class"] == name[0], f"rg_CDR{name[1]}_length"].dropna().to_numpy()
            if len(values):
                data.append(values)
                pos.append(j + (k - (len(labels) - 1) / 2) * width)
        if data:
            box = left.boxplot(data, positions=pos, widths=width * 0.9, patch_artist=True, manage_ticks=False,
                               flierprops={"markersize": 2}, medianprops={"color": "black"})  # fmt: skip
            for patch in box["boxes"]:
                patch.set_facecolor(colours[label])
        left.plot([], [], "s", color=colours[label], label=label)
    left.set_xticks(range(len(CDR_NAMES)), [f"CDR-{n}" for n in CDR_NAMES])
    left.set_ylabel("length (residues)")
    left.set_title("CDR lengths (IMGT)", fontsize=10)
    x = np.arange(len(GERMLINE_REGIONS))
    summary = ev.summary.set_index("set")
    for k, label in enumerate(labels):
        values = [summary.at[label, f"rg_identity_{r}"] for r in GERMLINE_REGIONS]
        right.bar(x + (k - (len(labels) - 1) / 2) * width, values, width, color=colours[label])
    right.set_xticks(x, list(GERMLINE_REGIONS))
    right.set_ylim(0, 1.05)
    right.set_ylabel("identity to closest germline")
    right.set_title("germline identity per region (CDR3: none)", fontsize=10)
    fig.legend(fontsize=7, ncol=min(len(labels), 3), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    fig.tight_layout()
    return png(fig, "CDR length distributions and per-region germline identity of each antibody set")
