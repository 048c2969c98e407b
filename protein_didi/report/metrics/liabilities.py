"""Sequence liabilities of antibody sets: per design each motif with position and IMGT region, per set the share free.

Runs after the antibody family and reuses its ANARCI numbering (no second
hmmscan). Shares count numbered sequences only, because regions (and so CDR
oxidation) are unknown for the rest; the cell says how many were scored. The
natural antibody rows sit in the same table, so "62 % free of deamidation"
reads against what nature carries.
"""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.protein.liabilities import (
    CDR_ONLY,
    DESCRIPTIONS,
    LIABILITY_CLASSES,
    Liability,
    describe_all,
    find_liabilities,
)
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_float, fmt_int, fmt_percent
from protein_didi.report.sets import SequenceSet
from protein_didi.report.tables import summary_table

SHORT = {
    "glycosylation": "N-glycosylation",
    "deamidation": "deamidation",
    "isomerisation": "isomerisation",
    "cysteine": "unpaired Cys",
    "oxidation": "CDR Met/Trp",
    "cleavage": "Asp-Pro",
}
MAX_LISTED = 200  # designs listed on the page; all of them are in metrics.csv and liabilities.csv
NOT_NUMBERED = "not numbered by ANARCI (no regions)"


class Liabilities(MetricFamily):
    name = "liabilities"
    table = "liabilities"
    summary_columns = (
        *(
            Column(
                f"lb_free_{k}",
                f"free of {SHORT[k]}{' in CDRs' if k in CDR_ONLY else ''} (%)",
                fmt_percent(0),
                scored="lb_scored",
                title=DESCRIPTIONS[k],
            )
            for k in LIABILITY_CLASSES
        ),
        Column("lb_free_all", "free of all (%)", fmt_percent(0), scored="lb_scored", title="none of the classes"),
        Column("lb_cdr_mean", "liabilities in CDRs (per seq.)", fmt_float(2), title="mean count inside CDR1–3"),
    )
    sequence_columns = (
        Column(
            "lb_count",
            "liabilities (count)",
            fmt_int,
            short="liab.",
            title="as counted in the liabilities table; each one is listed in the liabilities section",
        ),
    )
    hint = (
        "liabilities: "
        + "; ".join(f"{SHORT[k]} = {DESCRIPTIONS[k]}" for k in LIABILITY_CLASSES)
        + f". Counted inside CDRs only (framework sites are germline-conserved): "
        f"{', '.join(SHORT[k] for k in LIABILITY_CLASSES if k in CDR_ONLY)}; anywhere in the V domain: "
        f"{', '.join(SHORT[k] for k in LIABILITY_CLASSES if k not in CDR_ONLY)}. Shares over ANARCI-numbered "
        "sequences."
    )

    def score(self, sc: Scoring) -> None:
        numbering = sc.antibody_numbering(self.name)
        if numbering is None:
            return
        m = sc.metrics
        found: dict[int, list[Liability]] = {}
        m["liabilities"] = pd.Series([None] * len(m), index=m.index, dtype=object)
        for i, num in numbering.items():
            if num.numbered:
                found[i] = find_liabilities(m.at[i, "sequence"], num)
                m.at[i, "liabilities"] = describe_all(found[i])
        unnumbered = [i for i, num in numbering.items() if not num.numbered]
        sc.skip("liabilities", unnumbered, NOT_NUMBERED)
        sc.skip("lb_count", unnumbered, "not numbered")
        for k in LIABILITY_CLASSES:
            m[f"lb_{k}"] = pd.array([pd.NA] * len(m), dtype="Int64")
            for i, items in found.items():
                m.at[i, f"lb_{k}"] = sum(x.kind == k and x.counts for x in items)
        m["lb_count"] = m[[f"lb_{k}" for k in LIABILITY_CLASSES]].sum(axis=1, min_count=1)
        m["lb_cdr"] = pd.array([pd.NA] * len(m), dtype="Int64")
        for i, items in found.items():
            m.at[i, "lb_cdr"] = sum(_in_cdr(x) for x in items)
        sc.results[self.name] = found
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed.get(self.name) or s.label not in sc.antibody_sets:
            return {}
        scored = rows[rows["liabilities"].notna()]
        n = len(scored)
        out: dict[str, Any] = {"lb_scored": n}
        for k in LIABILITY_CLASSES:
            out[f"lb_free_{k}"] = float((scored[f"lb_{k}"] == 0).mean()) if n else np.nan
        total = scored[[f"lb_{k}" for k in LIABILITY_CLASSES]].sum(axis=1)
        out["lb_free_all"] = float((total == 0).mean()) if n else np.nan
        out["lb_cdr_mean"] = float(scored["lb_cdr"].mean()) if n else np.nan
        return out

    def tables(self, ev: Any) -> dict[str, pd.DataFrame]:
        return {"liabilities.csv": liability_rows(ev)} if ev.computed.get(self.name) else {}

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        """The per-set table (antibody rows, natural ones included) and every input design's liabilities."""
        if not ev.computed.get(self.name) or "lb_free_all" not in ev.summary:
            return []
        import dataclasses

        part = dataclasses.replace(ev, summary=ev.summary[ev.summary["lb_free_all"].notna()])
        return [("Sequence liabilities (antibody sets)", summary_table(part, "liabilities") + design_list(ev))]


def _in_cdr(x: Liability) -> bool:
    return bool(x.region and x.region.startswith("CDR"))


def _liability_html(x: Liability) -> str:
    text = html.escape(x.describe())
    if not x.counts:
        return f'<span class="muted">{text}</span>'
    return f"<b>{text}</b>" if _in_cdr(x) else text


def design_list(ev: Any) -> str:
    """Input designs with their liabilities: CDR ones first and bold, ones that do not count (framework) grey."""
    m = ev.metrics
    rows = m[(m["kind"] == "generated") & m["set"].isin(ev.antibody_sets)]
    if rows.empty:
        return ""
    found: dict[int, list[Liability]] = ev.results.get("liabilities", {})
    items = []
    for i, r in rows.head(MAX_LISTED).iterrows():
        if i not in found:
            cell = f'<span class="muted">{NOT_NUMBERED}</span>'
        elif not found[i]:
            cell = "none"
        else:
            ordered = sorted(found[i], key=lambda x: (not x.counts, not _in_cdr(x), x.start))
            cell = "; ".join(_liability_html(x) for x in ordered)
        cdr3 = r.get("ab_cdr3") if isinstance(r.get("ab_cdr3"), str) else "–"
        chain = r.get("ab_chain") if isinstance(r.get("ab_chain"), str) else "–"
        items.append(
            f'<tr><td class="txt">{html.escape(str(r["set"]))}</td><td class="txt">{html.escape(str(r["id"]))}</td>'
            f'<td class="txt">{html.escape(chain)}</td><td class="txt">{html.escape(cdr3)}</td>'
            f'<td class="txt">{cell}</td></tr>'
        )
    more = len(rows) - MAX_LISTED
    tail = f'<p class="hint">… and {more:,} more designs in liabilities.csv.</p>' if more > 0 else ""
    head = (
        '<table><thead><tr><th class="txt">set</th><th class="txt">id</th><th class="txt">chain</th>'
        '<th class="txt">CDR3</th><th class="txt">liabilities (motif, position, IMGT region; CDR ones bold, '
        "framework deamidation/isomerisation grey)</th>"
        "</tr></thead><tbody>"
    )
    return "<h3>Per design</h3>" + head + "".join(items) + "</tbody></table>" + tail


def liability_rows(ev: Any) -> pd.DataFrame:
    """One row per liability of every scored sequence (``liabilities.csv``): set, id, class, motif, where."""
    found: dict[int, list[Liability]] = ev.results.get("liabilities", {})
    rows = [
        {
            "set": ev.metrics.at[i, "set"],
            "id": ev.metrics.at[i, "id"],
            "class": x.kind,
            "motif": x.motif,
            "position": x.position,
            "imgt": x.imgt,
            "region": x.region,
        }
        for i, items in found.items()
        for x in items
    ]
    return pd.DataFrame(rows, columns=["set", "id", "class", "motif", "position", "imgt", "region"])
