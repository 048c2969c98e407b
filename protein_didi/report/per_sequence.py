"""The per-sequence table: one row per sequence, grouped by set, with the sequence itself and short headers.

Seventeen metric columns at their full headers ("IgLM NLL (nats/residue)") do not fit a laptop page, and a
browser squeezing them breaks headers letter by letter. So this table uses each column's short header with the
full one in a tooltip and a legend, never breaks a header inside a word, scrolls sideways when it must, and
leaves out a column no shown row has a value for (e.g. clusters when every row is an antibody, with the reason in
the notes). A cell a metric skipped on purpose shows "–" and a footnote number; the footnotes list each reason
once instead of repeating it in every row. The set is a group row rather than a column, which repeats it.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from typing import Any

import pandas as pd

from protein_didi.report.metrics.base import Column, MetricFamily, fmt_int, is_blank
from protein_didi.report.tables import ROW_KIND, left_out_hint, scroll

MAX_SEQUENCE_ROWS = 300  # beyond this the per-sequence table points at metrics.csv
BREAK_AFTER = re.compile(r"([_|/.:-])")  # ids break after these (via <wbr>), not at an arbitrary letter
CDRS = ("CDR1", "CDR2", "CDR3")


def id_html(text: str) -> str:
    """An id that may wrap after ``_ | / . : -`` but never inside a run of letters."""
    return "".join(html.escape(p) + ("<wbr>" if BREAK_AFTER.fullmatch(p) else "") for p in BREAK_AFTER.split(text))


def sequence_html(sequence: str, numbering: Any | None) -> str:
    """The sequence in monospace, CDR1–3 (IMGT, when ANARCI numbered it) in bold colour; copies as plain text."""
    spans = []
    if numbering is not None and getattr(numbering, "numbered", False):
        spans = sorted(numbering.regions[c] for c in CDRS if c in numbering.regions)
    out, at = [], 0
    for start, end in spans:
        if end <= start:
            continue
        out.append(html.escape(sequence[at:start]))
        out.append(f'<b class="cdr">{html.escape(sequence[start:end])}</b>')
        at = end
    out.append(html.escape(sequence[at:]))
    return f'<div class="seq">{"".join(out)}</div>'


def _cell(col: Column, value: Any, reason: str | None, footnotes: dict[str, int]) -> str:
    cls = f' class="{col.css}"' if col.css else ""
    if reason is not None:
        k = footnotes.setdefault(reason, len(footnotes) + 1)
        return f'<td{cls} title="{html.escape(reason)}">–<sup>{k}</sup></td>'
    return f"<td{cls}>{html.escape(col.blank if is_blank(value) else col.fmt(value))}</td>"


def _shows_something(col: Column, rows: pd.DataFrame, skipped: dict[int, str]) -> bool:
    """A column earns its place when a shown row has a value (or a meaningful blank such as "no hit")."""
    for i, value in rows[col.key].items() if col.key in rows else ():
        if int(i) not in skipped and (not is_blank(value) or col.blank != "–"):
            return True
    return False


def legend(columns: Sequence[Column], numbered: bool) -> str:
    """What each short header means (full header and its note), and how the sequence is drawn."""
    items = ["len = length (residues)"]
    if numbered:
        items.append("sequence: CDR1–3 (IMGT, ANARCI) in bold colour")
    for c in columns:
        name = c.short or c.header
        full = c.header if c.header != name else ""
        text = "; ".join(x for x in (full, c.title) if x)
        if text:
            items.append(f"{name} = {text}")
    return '<ul class="legend">' + "".join(f"<li>{html.escape(x)}</li>" for x in items) + "</ul>"


def sequence_table(ev: Any, rows: pd.DataFrame, families: Sequence[MetricFamily]) -> str:
    """``rows`` of ``ev.metrics`` (first :data:`MAX_SEQUENCE_ROWS`), the families' columns in ``families`` order."""
    shown = rows.head(MAX_SEQUENCE_ROWS)
    candidates = [c for f in families if ev.computed.get(f.name) for c in f.sequence_columns]
    columns = [c for c in candidates if _shows_something(c, shown, ev.skipped.get(c.key, {}))]
    dropped = [c.header for c in candidates if c not in columns]
    numbering = ev.results.get("numbering") or {}
    head = ['<th class="txt">id</th>', '<th title="length (residues)">len</th>', '<th class="txt">sequence</th>']
    for c in columns:
        title = "; ".join(x for x in (c.header, c.title) if x)
        cls = "txt" if c.css else ""
        head.append(f'<th class="{cls}" title="{html.escape(title)}">{html.escape(c.short or c.header)}</th>')
    body, footnotes, current = [], {}, None
    for i, r in shown.iterrows():
        if r["set"] != current:
            current = r["set"]
            n = int((rows["set"] == current).sum())
            kind = ROW_KIND.get(r["kind"], r["kind"])
            body.append(
                f'<tr class="group"><th class="txt" colspan="{3 + len(columns)}">{html.escape(str(current))} '
                f'<span class="muted">{html.escape(kind)}, {n:,} sequence{"s" * (n != 1)}</span></th></tr>'
            )
        cells = [
            f'<td class="id">{id_html(str(r["id"]))}</td>',
            f"<td>{fmt_int(r['length'])}</td>",
            f'<td class="seqcell">{sequence_html(str(r["sequence"]), numbering.get(i))}</td>',
        ]
        cells += [_cell(c, r.get(c.key), ev.skipped.get(c.key, {}).get(int(i)), footnotes) for c in columns]
        body.append(f'<tr class="{"ref" if r["kind"] != "generated" else ""}">{"".join(cells)}</tr>')
    table = f'<table class="per-sequence"><thead><tr>{"".join(head)}</tr></thead><tbody>{"".join(body)}</tbody></table>'
    notes = "".join(f"<li><sup>{k}</sup> {html.escape(reason)}</li>" for reason, k in footnotes.items())
    more = len(rows) - MAX_SEQUENCE_ROWS
    tail = f'<p class="hint">… and {more:,} more rows in metrics.csv.</p>' if more > 0 else ""
    return (
        scroll(table)
        + (f'<ul class="footnotes hint">{notes}</ul>' if notes else "")
        + tail
        + legend(columns, any(i in numbering for i in shown.index))
        + left_out_hint(dropped)
    )
