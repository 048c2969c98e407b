"""The report page and files: ``report.html`` (self-contained, laptop-width and print friendly), CSVs.

Tables are rendered here, not by pandas, so that every cell reads as text for a
person: units in headers, "no hit" / "not computed" / a reason instead of
``None``/``NaN``/``<NA>``, and two narrow summary tables instead of one wide one.
"""

from __future__ import annotations

import dataclasses
import html
from pathlib import Path

import pandas as pd

from protein_didi.core.checkpoint import atomic_write
from protein_didi.report.evaluate import Evaluation
from protein_didi.report.metrics.base import fmt_int, is_blank
from protein_didi.report.tables import html_table, summary_table, td

MAX_SEQUENCE_ROWS = 300  # beyond this the per-sequence table points at metrics.csv
STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;line-height:1.4;max-width:1100px;
 margin:0 auto;padding:1.2em 1.5em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
dl.context{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 14px;font-size:13px}
dl.context dt{font-weight:600}dl.context dd{margin:0;overflow-wrap:anywhere}
table{border-collapse:collapse;width:100%;font-size:13px;margin:.4em 0 1em}
th,td{padding:4px 6px;border-bottom:1px solid #ddd;text-align:right;vertical-align:top;overflow-wrap:break-word}
th{background:#f4f4f4;font-weight:600}
th.txt,td.txt{text-align:left;min-width:5.5em;overflow-wrap:anywhere}
tr.ref td{background:#fafafa;color:#444}
table.per-sequence th,table.per-sequence td{overflow-wrap:anywhere}
td{font-variant-numeric:tabular-nums}
.muted{color:#777;font-size:11px}
.notes li,.warn{color:#a40}
.hint{color:#555;font-size:12px}
img.fig{display:block;max-width:100%;height:auto;margin:.4em 0}
@page{size:A4;margin:12mm}
@media print{body{max-width:none;padding:0;font-size:11px}table{font-size:10px}
 h2,h3{break-after:avoid}img.fig,tr{break-inside:avoid}details:not([open]){display:none}}
"""


def sequence_table_html(ev: Evaluation) -> str:
    """Per-sequence values (first rows only for big reports); blanks carry their reason."""
    columns = [(f.name, c) for f in ev.families if ev.computed.get(f.name) for c in f.sequence_columns]
    headers = [("set", "txt", ""), ("id", "txt", ""), ("length (residues)", "", "")]
    headers += [(c.header, "", c.title) for _, c in columns]
    rows = []
    for i, r in ev.metrics.head(MAX_SEQUENCE_ROWS).iterrows():
        cells = [td(html.escape(str(r["set"])), "txt"), td(html.escape(str(r["id"])), "txt")]
        cells.append(td(fmt_int(r["length"])))
        for _, c in columns:
            value, reason = r.get(c.key), ev.skipped.get(c.key, {}).get(int(i))
            if reason is not None:
                cells.append(td(f'– <span class="muted">{html.escape(reason)}</span>'))
            else:
                cells.append(td(html.escape(c.blank if is_blank(value) else c.fmt(value))))
        rows.append(("ref" if r["kind"] != "generated" else "", cells))
    more = len(ev.metrics) - MAX_SEQUENCE_ROWS
    tail = f'<p class="hint">… and {more:,} more rows in metrics.csv.</p>' if more > 0 else ""
    return html_table(headers, rows, "per-sequence") + tail


def render_html(ev: Evaluation, title: str, context: dict[str, str]) -> str:
    """The report page; plots are PNGs embedded as base64, so the file works offline and when mailed around."""
    import matplotlib

    matplotlib.use("Agg")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append(
        '<dl class="context">'
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in context.items())
        + "</dl>"
    )
    if ev.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in ev.notes) + "</ul>")
    parts.append("<h2>Summary</h2>" + summary_table(ev, "quality"))
    proteins = dataclasses.replace(ev, summary=ev.summary[~ev.summary["set"].isin(ev.antibody_sets)])
    heading = "<h3>Diversity (MMseqs2 easy-cluster, as Table 13) and novelty</h3>"
    if len(proteins.summary):  # antibody rows have neither (see notes); their diversity is in the antibody table
        parts.append(heading + summary_table(proteins, "diversity"))
    else:
        parts.append(heading + '<p class="hint">not computed for antibody sets (see notes): their diversity is '
                     "CDR-H3 uniqueness and pairwise identity in the antibody table.</p>")  # fmt: skip
    hints = [
        "natural ref. = held-out natural proteins from the reference at the same lengths; random ref. = residues "
        "drawn i.i.d. from the reference composition at the same lengths."
    ]
    hints += [f.hint for f in ev.families if f.hint]
    parts.append('<p class="hint">' + " ".join(html.escape(h) for h in hints) + "</p>")
    for family in ev.families:
        for heading, body in family.figures(ev):
            parts.append(f"<h2>{html.escape(heading)}</h2>{body}")
    parts.append(
        f"<h2>Per sequence</h2><details><summary>{len(ev.metrics):,} sequences (click to show; "
        "all columns in metrics.csv)</summary>" + sequence_table_html(ev) + "</details>"
    )
    return (
        f'<!doctype html>\n<html lang="en"><head><meta charset="utf-8">'
        f'<meta name="viewport" content="width=device-width, initial-scale=1"><title>{html.escape(title)}</title>'
        f"<style>{STYLE}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_outputs(ev: Evaluation, out: Path, context: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "metrics.csv", lambda p: ev.metrics.to_csv(p, index=False))
    atomic_write(out / "summary.csv", lambda p: ev.summary.to_csv(p, index=False))
    for family in ev.families:
        for name, frame in family.tables(ev).items():
            atomic_write(out / name, lambda p, f=frame: f.to_csv(p, index=False))
    page = render_html(ev, "protein_didi evaluation report", context)
    atomic_write(out / "report.html", lambda p: p.write_text(page, encoding="utf-8"))


def print_summary(ev: Evaluation) -> None:
    """The summary on stdout, as a terminal table."""
    cols = [c for c in ev.summary.columns if c not in ("model", "nfe", "length", "kind") and not c.endswith("_scored")]
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(ev.summary[cols].to_string(index=False, float_format="%.3f", na_rep="–"))
