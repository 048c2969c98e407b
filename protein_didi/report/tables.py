"""HTML table cells and the summary tables, below both the metric families and the page.

The families draw their own summary tables (antibody, liabilities, regions,
structures) and :mod:`~protein_didi.report.render` draws the main ones; both
import this module, which imports neither, so the report has no import cycle.
"""

from __future__ import annotations

import html
from typing import Protocol

import pandas as pd

from protein_didi.report.metrics.base import NOT_COMPUTED, Column, MetricFamily, fmt_int, is_blank

ROW_KIND = {
    "generated": "input",
    "natural": "natural ref.",
    "random": "random ref.",
    "natural antibody": "natural antibody ref.",
    "rival": "rival (IgLM)",
}


class SummarySource(Protocol):
    """What a summary table reads of an :class:`~protein_didi.report.evaluate.Evaluation`."""

    summary: pd.DataFrame
    computed: dict[str, bool]
    families: tuple[MetricFamily, ...]


def td(text: str, cls: str = "", title: str = "") -> str:
    attrs = (f' class="{cls}"' if cls else "") + (f' title="{html.escape(title)}"' if title else "")
    return f"<td{attrs}>{text}</td>"


def html_table(headers: list[tuple[str, str, str]], rows: list[tuple[str, list[str]]], cls: str = "") -> str:
    """``headers``: (text, css class, tooltip); ``rows``: (tr class, cell html); ``cls``: the table's css class."""
    head = "".join(
        f'<th class="{c}"' + (f' title="{html.escape(t)}"' if t else "") + f">{html.escape(h)}</th>"
        for h, c, t in headers
    )
    body = "".join(f'<tr class="{cls}">' + "".join(cells) + "</tr>" for cls, cells in rows)
    attr = f' class="{cls}"' if cls else ""
    return f"<table{attr}><thead><tr>{head}</tr></thead><tbody>{body}</tbody></table>"


def summary_cell(ev: SummarySource, family_name: str, col: Column, row: pd.Series) -> str:
    value = row.get(col.key)
    if (isinstance(value, str) and value == NOT_COMPUTED) or not ev.computed.get(family_name, False):
        return td('<span class="muted">not computed</span>')
    text = html.escape(col.blank) if is_blank(value) else html.escape(col.fmt(value))
    if col.scored is not None and not is_blank(row.get(col.scored)) and int(row[col.scored]) < int(row["n"]):
        text += f' <span class="muted">({int(row[col.scored])}/{int(row["n"])} scored)</span>'
    return td(text)


def summary_table(ev: SummarySource, table: str) -> str:
    columns = [(f.name, c) for f in ev.families if f.table == table for c in f.summary_columns]
    headers = [("set", "txt", ""), ("row", "txt", "input = your set; ref. = reference rows"), ("n (seqs)", "", "")]
    headers += [(c.header, "", c.title) for _, c in columns]
    rows = []
    for _, r in ev.summary.iterrows():
        cells = [td(html.escape(str(r["set"])), "txt"), td(ROW_KIND.get(r["kind"], r["kind"]), "txt")]
        cells.append(td(fmt_int(r["n"])))
        cells += [summary_cell(ev, name, c, r) for name, c in columns]
        rows.append(("ref" if r["kind"] != "generated" else "", cells))
    return html_table(headers, rows)
