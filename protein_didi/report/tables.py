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


def has_value(ev: SummarySource, family_name: str, col: Column, row: pd.Series) -> bool:
    """Whether a summary cell shows a number or text rather than "not computed" or a blank."""
    value = row.get(col.key)
    if not ev.computed.get(family_name, False) or (isinstance(value, str) and value == NOT_COMPUTED):
        return False
    return not is_blank(value)


def summary_cell(ev: SummarySource, family_name: str, col: Column, row: pd.Series) -> str:
    value = row.get(col.key)
    if (isinstance(value, str) and value == NOT_COMPUTED) or not ev.computed.get(family_name, False):
        return td('<span class="muted">not computed</span>')
    text = html.escape(col.blank) if is_blank(value) else html.escape(col.fmt(value))
    if col.scored is not None and not is_blank(row.get(col.scored)) and int(row[col.scored]) < int(row["n"]):
        text += f' <span class="muted">({int(row[col.scored])}/{int(row["n"])} scored)</span>'
    return td(text)


def left_out_hint(headers: list[str]) -> str:
    """One line naming the columns a table leaves out because no row has a value (the notes say why)."""
    if not headers:
        return ""
    names = ", ".join(html.escape(h) for h in headers)
    return f'<p class="hint left-out">no row has a value, so left out: {names}.</p>'


def scroll(table: str) -> str:
    """A table in a box that scrolls sideways rather than squeezing its columns below their longest word."""
    return f'<div class="scroll">{table}</div>'


def summary_table(ev: SummarySource, table: str) -> str:
    """One summary table; a column with no value on any row (e.g. pLDDT without ESMFold) is left out, and named."""
    columns = [(f.name, c) for f in ev.families if f.table == table for c in f.summary_columns]
    rows_ = [r for _, r in ev.summary.iterrows()]
    kept = [(name, c) for name, c in columns if any(has_value(ev, name, c, r) for r in rows_)]
    dropped = [c.header for name, c in columns if (name, c) not in kept]
    headers = [("set", "txt", ""), ("row", "txt", "input = your set; ref. = reference rows"), ("n (seqs)", "", "")]
    headers += [(c.header, "", c.title) for _, c in kept]
    rows = []
    for r in rows_:
        cells = [td(html.escape(str(r["set"])), "txt"), td(ROW_KIND.get(r["kind"], r["kind"]), "txt")]
        cells.append(td(fmt_int(r["n"])))
        cells += [summary_cell(ev, name, c, r) for name, c in kept]
        rows.append(("ref" if r["kind"] != "generated" else "", cells))
    return scroll(html_table(headers, rows, "summary")) + left_out_hint(dropped)
