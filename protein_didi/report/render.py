"""The report page and files: ``report.html`` (self-contained, laptop-width and print friendly), CSVs.

Tables are rendered here and in :mod:`.tables` / :mod:`.per_sequence`, not by pandas, so that every cell
reads as text for a person: units in headers, "no hit" / a reason instead of ``None``/``NaN``/``<NA>``, and
narrow tables instead of one wide one. Nothing empty is drawn: a section that could only say "not computed"
and a column with no value on any row are left out, and "Not in this report" near the top says why, once.
"""

from __future__ import annotations

import dataclasses
import html
import re
from pathlib import Path

import pandas as pd

from protein_didi.core.checkpoint import atomic_write
from protein_didi.report.evaluate import Evaluation
from protein_didi.report.metrics.base import NOT_COMPUTED, MetricFamily, is_blank
from protein_didi.report.per_sequence import sequence_table
from protein_didi.report.tables import summary_table

ANTIBODY_TABLES = frozenset({"antibody", "structure", "liabilities", "regions"})
"""Families whose summary table is one of these are the antibody part of the page."""
LEFT_OUT = re.compile(r"not computed|left out|^no IgLM rival row")
"""Notes that say why something is missing from the page; they are listed under "Not in this report"."""
WARN_ONLY = re.compile(r'\s*<p class="warn">(?P<text>(?:(?!<p[ >]).)*)</p>\s*', re.S)
STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,-apple-system,"Segoe UI",sans-serif;color:#222;line-height:1.4;max-width:1100px;
 margin:0 auto;padding:1.2em 1.5em}
h1{font-size:1.5em}h2{font-size:1.2em;margin-top:1.6em;border-bottom:1px solid #ccc}h3{font-size:1.05em}
dl.context{display:grid;grid-template-columns:max-content minmax(0,1fr);gap:2px 14px;font-size:13px}
dl.context dt{font-weight:600}dl.context dd{margin:0;overflow-wrap:anywhere}
.scroll{overflow-x:auto;max-width:100%;margin:.4em 0 1em}
table{border-collapse:collapse;width:100%;font-size:13px}
th,td{padding:4px 6px;border-bottom:1px solid #ddd;text-align:right;vertical-align:top}
th{background:#f4f4f4;font-weight:600;overflow-wrap:normal;word-break:normal;hyphens:manual;vertical-align:bottom}
td{font-variant-numeric:tabular-nums;overflow-wrap:break-word}
th.txt,td.txt{text-align:left;min-width:5.5em}
tr.ref td{background:#fafafa;color:#444}
table.per-sequence{font-size:12px;width:auto;min-width:100%}
table.per-sequence th,table.per-sequence td{padding:3px 4px}
table.per-sequence th.txt{min-width:0}
table.per-sequence td{white-space:nowrap}
table.per-sequence td.txt{white-space:normal;min-width:4.5em;max-width:15em}
table.per-sequence td.name{text-align:left}
table.per-sequence td.mono{text-align:left;white-space:normal;word-break:break-all;min-width:8ch;max-width:13ch;
 font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace}
table.per-sequence td.id{text-align:left;white-space:normal;max-width:11em}
table.per-sequence td.seqcell{text-align:left;white-space:normal}
div.seq{font-family:ui-monospace,"DejaVu Sans Mono",Menlo,Consolas,monospace;font-size:11px;word-break:break-all;
 width:24ch;max-height:9.6em;overflow-y:auto}
b.cdr{color:#a0006e}
tr.group th{text-align:left;background:#e8eef6;font-weight:600}
sup{font-size:9px;line-height:0}
.muted{color:#777;font-size:11px}
.notes li,.warn{color:#a40}
.leftout li{color:#555}
.hint{color:#555;font-size:12px}
ul.footnotes{list-style:none;padding-left:0;margin:.2em 0}
ul.legend{columns:2 22em;column-gap:2em;font-size:11px;color:#555;padding-left:1.1em;margin:.3em 0}
ul.legend li{break-inside:avoid}
img.fig{display:block;max-width:100%;height:auto;margin:.4em 0}
@page{size:A4;margin:12mm}
@media print{body{max-width:none;padding:0;font-size:11px}table{font-size:10px}.scroll{overflow:visible}
 table.per-sequence,table{font-size:8px;min-width:0}th,td{padding:2px 3px;overflow-wrap:anywhere}
 table.per-sequence td{white-space:normal}th.txt,td.txt,table.per-sequence td.txt{min-width:0}
 div.seq{width:14ch;font-size:8px;max-height:none}
 h2,h3{break-after:avoid}img.fig,tr{break-inside:avoid}details:not([open]){display:none}}
"""


def antibody_first(ev: Evaluation) -> bool:
    """Every input set is antibodies: the page opens with the antibody sections and a table of the designs."""
    inputs = [s for s in ev.sets if s.kind == "generated"]
    return bool(inputs) and all(s.label in ev.antibody_sets for s in inputs)


def _sections(ev: Evaluation, families: list[MetricFamily], left_out: list[tuple[str, str]]) -> list[str]:
    """Each family's sections, then its hint when it draws its own table; a section that is only a "not
    computed" warning moves to ``left_out`` (heading, html) instead of standing empty on the page."""
    parts = []
    for family in families:
        drawn = []
        for heading, body in family.figures(ev):
            warn = WARN_ONLY.fullmatch(body)
            if warn:
                left_out.append((heading, warn["text"]))
            elif body:
                drawn.append(f"<h2>{html.escape(heading)}</h2>{body}")
        if drawn and family.table in ANTIBODY_TABLES and family.hint:
            drawn[-1] += f'<p class="hint">{html.escape(family.hint)}</p>'
        parts += drawn
    return parts


def _summary(ev: Evaluation, heading: str) -> str:
    """The quality table, the protein diversity table when there are protein rows, and the legend of both."""
    out = f"<h2>{html.escape(heading)}</h2>" + summary_table(ev, "quality")
    proteins = dataclasses.replace(ev, summary=ev.summary[~ev.summary["set"].isin(ev.antibody_sets)])
    if len(proteins.summary):  # antibody rows have neither (see notes); their diversity is in the antibody table
        out += "<h3>Diversity (MMseqs2 easy-cluster, as Table 13) and novelty</h3>" + summary_table(
            proteins, "diversity"
        )
    hints = []
    if ev.summary["kind"].isin(["natural", "random"]).any():
        hints.append(
            "natural ref. = held-out natural proteins from the reference at the same lengths; random ref. = residues "
            "drawn i.i.d. from the reference composition at the same lengths."
        )
    hints += [
        f.hint for f in ev.families if f.hint and f.table not in ANTIBODY_TABLES and ev.computed.get(f.name, False)
    ]
    return out + ('<p class="hint">' + " ".join(html.escape(h) for h in hints) + "</p>" if hints else "")


def _left_out_html(left_out: list[tuple[str, str]], notes: list[str]) -> str:
    """Everything the page does not show and why, once: the warnings of dropped sections and the notes saying so."""
    shown = {text for _, text in left_out}
    items = [f"<li><b>{html.escape(h)}</b>: {text}</li>" for h, text in left_out]
    items += [f"<li>{html.escape(n)}</li>" for n in notes if LEFT_OUT.search(n) and html.escape(n) not in shown]
    if not items:
        return ""
    return '<h2>Not in this report</h2><ul class="leftout hint">' + "".join(items) + "</ul>"


def render_html(ev: Evaluation, title: str, context: dict[str, str]) -> str:
    """The report page; plots are PNGs embedded as base64, so the file works offline and when mailed around.

    Protein inputs: summary, figures, then every sequence (collapsed). Antibody inputs: the antibody sections
    first with a table of the designs after the antibody metrics, then sequence statistics, then the reference
    rows' sequences (collapsed). Either way a section or column with nothing to show is left out and the reasons
    are listed once under "Not in this report".
    """
    import matplotlib

    matplotlib.use("Agg")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append(
        '<dl class="context">'
        + "".join(f"<dt>{html.escape(k)}</dt><dd>{html.escape(v)}</dd>" for k, v in context.items())
        + "</dl>"
    )
    other = [n for n in ev.notes if not LEFT_OUT.search(n)]
    if other:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in other) + "</ul>")
    left_out: list[tuple[str, str]] = []
    antibody = [f for f in ev.families if f.table in ANTIBODY_TABLES]
    protein = [f for f in ev.families if f.table not in ANTIBODY_TABLES]
    m = ev.metrics
    if antibody_first(ev):
        first, *rest = antibody
        body = _sections(ev, [first], left_out)
        designs = m[m["kind"] == "generated"]
        per_set = [h for f in protein if ev.computed.get(f.name) for h in (c.header for c in f.sequence_columns)]
        elsewhere = f"per design in metrics.csv: {', '.join(per_set)}" if per_set else ""
        body.append(
            f"<h2>Designs ({len(designs):,})</h2>"
            + sequence_table(ev, designs, antibody)  # the engineer's columns; protein-model ones fit no laptop
            + (f'<p class="hint">{html.escape(elsewhere)}.</p>' if elsewhere else "")
        )
        body += _sections(ev, rest, left_out)
        stats = "Sequence statistics" + (" and ESMFold pLDDT" if ev.plddt_computed else "")
        body.append(_summary(ev, stats))
        body += _sections(ev, protein, left_out)
        refs = m[m["kind"] != "generated"]
        if len(refs):
            body.append(
                f"<h2>Reference rows, per sequence</h2><details><summary>{len(refs):,} sequences (click to show; all "
                "columns in metrics.csv)</summary>" + sequence_table(ev, refs, [*antibody, *protein]) + "</details>"
            )
    else:
        body = [_summary(ev, "Summary"), *_sections(ev, list(ev.families), left_out)]
        body.append(
            f"<h2>Per sequence</h2><details><summary>{len(m):,} sequences (click to show; all columns in "
            "metrics.csv)</summary>" + sequence_table(ev, m, list(ev.families)) + "</details>"
        )
    parts.append(_left_out_html(left_out, ev.notes))
    parts += body
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


TERMINAL_TABLES = ("quality", "diversity", "antibody", "structure")


def print_summary(ev: Evaluation) -> None:
    """The summary on stdout, as a terminal table: the main tables' columns (liabilities and regions stay in
    summary.csv and the page), without columns that no row has a value for (they would print as a wall of "–")."""
    keys = ["set", "n"] + [c.key for f in ev.families if f.table in TERMINAL_TABLES for c in f.summary_columns]
    frame = ev.summary[[k for k in dict.fromkeys(keys) if k in ev.summary]]
    empty = frame.apply(lambda col: col.map(lambda v: is_blank(v) or (isinstance(v, str) and v == NOT_COMPUTED)).all())
    if "max_entropy" in empty and empty.get("cluster_entropy", True):
        empty["max_entropy"] = True  # ln n is the scale of cluster entropies: nothing to read it against
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(frame.loc[:, ~empty].to_string(index=False, float_format="%.3f", na_rep="–"))
