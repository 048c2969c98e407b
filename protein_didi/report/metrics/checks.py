"""Engineers' checks of antibody sets: canonical residues and CDR lengths per design, the share that passes per set.

Runs after the antibody family and reuses its ANARCI numbering (no second hmmscan); the checks themselves are
:mod:`protein_didi.protein.engineer_checks`. A design can be a "valid chain" and still lack Trp41 or carry a CDR
length the repertoire has never seen; IgFold's pRMSD rates such designs as confidently as natural chains, so this
is the column an engineer reads first. The natural rows sit in the same table: real chains fail a strict J-motif
check now and then, and the share they pass is the bar a design set should reach.
"""

from __future__ import annotations

import html
import re
from collections import Counter
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_percent
from protein_didi.report.sets import SequenceSet
from protein_didi.report.tables import ROW_KIND, html_table, scroll, td

CANONICAL = "Cys23, Trp41, Cys104 and the J motif (W-G-x-G heavy, F-G-x-G light, IMGT 118–121)"
TOP_FINDINGS = 4
LENGTHS = "IMGT CDR1–3 lengths within the real repertoire's range for the chain type and seen in ≥ 1 % of its chains"


class EngineerChecks(MetricFamily):
    name = "engineer checks"
    table = "antibody"  # its two shares sit in the antibody metrics table, beside valid chains
    summary_columns = (
        Column("ck_pass", "pass engineers' checks (%)", fmt_percent(0), scored="ck_scored",
               title=f"{CANONICAL} present; {LENGTHS}"),
        Column("ck_canonical", "all canonical residues (%)", fmt_percent(0), scored="ck_scored", title=CANONICAL),
    )  # fmt: skip
    sequence_columns = (
        Column("ck_canonical", "canonical residues", str, short="canonical", css="txt",
               title=f"{CANONICAL}: 'all' or the missing ones"),
        Column("ck_flags", "engineers' checks", str, short="checks", css="txt",
               title=f"'ok', or one phrase per finding: a missing canonical residue, a CDR length outside the real "
               f"repertoire's range or rare in it ({LENGTHS})"),
    )  # fmt: skip
    hint = (
        f"engineers' checks: canonical residues = {CANONICAL}; CDR lengths = {LENGTHS} (shipped OAS sample). A point "
        "change in the J motif, which a few per cent of real chains carry, is flagged too."
    )

    def score(self, sc: Scoring) -> None:
        numbering = sc.antibody_numbering(self.name)
        if numbering is None:
            return
        from protein_didi.protein.engineer_checks import check_designs, checks_frame

        m = sc.metrics
        rows = list(numbering)
        checks = check_designs([numbering[i] for i in rows])
        frame = checks_frame(checks)
        for key in ("ck_canonical", "ck_flags"):
            m[key] = pd.Series([None] * len(m), index=m.index, dtype=object)
        m["ck_ok"] = pd.array([pd.NA] * len(m), dtype="boolean")
        for i, c, canonical, flags in zip(rows, checks, frame["canonical"], frame["checks"], strict=True):
            m.at[i, "ck_canonical"] = canonical if c.chain_type else None
            m.at[i, "ck_flags"] = flags
            m.at[i, "ck_ok"] = c.ok
        sc.skip("ck_canonical", [i for i, c in zip(rows, checks, strict=True) if not c.chain_type], "not numbered")
        sc.results[self.name] = dict(zip(rows, checks, strict=True))
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed.get(self.name) or s.label not in sc.antibody_sets:
            return {}
        checks = [sc.results[self.name][i] for i in rows.index if i in sc.results[self.name]]
        n = len(checks)
        return {
            "ck_scored": n,
            "ck_pass": float(np.mean([c.ok for c in checks])) if n else np.nan,
            "ck_canonical": float(np.mean([all(c.canonical.values()) for c in checks])) if n else np.nan,
        }

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        """Per antibody set: how many pass and the most common findings (each design's own are in its table)."""
        if not ev.computed.get(self.name):
            return []
        found = ev.results.get(self.name, {})
        headers = [
            ("set", "txt", ""),
            ("row", "txt", ""),
            ("pass (designs)", "", "no flag at all"),
            ("most common findings (designs)", "txt", "a flag without its specifics; how many designs have it"),
        ]
        rows = []
        for s in ev.sets:
            checks = [found[i] for i in ev.metrics.index[ev.metrics["set"] == s.label] if i in found]
            if not checks:
                continue
            kinds = Counter(k for c in checks for k in {flag_kind(f) for f in c.flags})
            common = ", ".join(f"{html.escape(k)} ×{n}" for k, n in kinds.most_common(TOP_FINDINGS)) or "none"
            passed = f"{sum(c.ok for c in checks):,} of {len(checks):,}"
            cells = [td(html.escape(s.label), "txt"), td(html.escape(ROW_KIND.get(s.kind, s.kind)), "txt"),
                     td(passed), td(common, "txt")]  # fmt: skip
            rows.append(("ref" if s.kind != "generated" else "", cells))
        if not rows:
            return []
        return [("Engineers' checks: canonical residues and CDR lengths (IMGT)", scroll(html_table(headers, rows)))]


def flag_kind(flag: str) -> str:
    """A flag without its specifics, so that designs with the same finding count together: "no Trp41 (L41)" →
    "no Trp41", "CDR3 length 31: the repertoire's VH range is 3–30" → "CDR3 length 31"."""
    return re.split(r" \(|:", flag, maxsplit=1)[0]
