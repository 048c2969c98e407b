"""Judge NLL: nats per residue under the independent autoregressive judge (scores up to 1022 residues)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from protein_didi.protein.alphabet import MAX_RESIDUES
from protein_didi.report.figures import metric_vs_nfe
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring
from protein_didi.report.sets import SequenceSet

TOO_LONG = f"longer than {MAX_RESIDUES} residues (the judge's limit)"


def judge_scores(seqs: list[str], judge_path: str | None, precision: str = "fp32") -> tuple[np.ndarray, str | None]:
    """Judge NLL (nats/residue) or NaN with the reason; the judge is optional and lives in another module."""
    nan = np.full(len(seqs), np.nan)
    try:
        from protein_didi.protein.judge import judge_nll, load_judge
    except ImportError as err:
        return nan, f"judge NLL not computed: judge module unavailable ({err})"
    try:
        if judge_path is not None or precision != "fp32":
            return np.asarray(load_judge(judge_path or "judge", precision=precision).nll(seqs), dtype=np.float64), None
        load_judge()  # raises ModelNotFoundError with the training command when the weights are absent
        return np.asarray(judge_nll(seqs), dtype=np.float64), None
    except Exception as err:  # the judge is a nice-to-have: any failure must not cost the rest of the report
        return nan, f"judge NLL not computed: {' '.join(str(err).split()) or type(err).__name__}"


class JudgeNLL(MetricFamily):
    name = "judge"
    summary_columns = (
        Column("judge_nll", "judge NLL (nats/residue)", scored="judge_nll_scored", title="lower = more protein-like"),
    )
    sequence_columns = (
        Column("judge_nll", "judge NLL (nats/residue)", short="judge NLL", title="lower = more protein-like"),
    )
    hint = "judge NLL = nats per residue under an independent autoregressive protein LM (lower is more protein-like)."

    def score(self, sc: Scoring) -> None:
        m = sc.metrics
        m["judge_nll"] = np.nan
        sc.computed[self.name] = False
        if not sc.options.judge:
            sc.notes.append("judge NLL not computed: disabled with --no-judge")
            return
        antibody = m["set"].isin(sc.antibody_sets)
        if antibody.any():
            sc.notes.append(
                "judge NLL not computed for antibody sets: the judge is a protein LM trained on UniProt, not on "
                "antibodies; their language-model score is IgLM NLL in the antibody table"
            )
            sc.skip("judge_nll", m.index[antibody], "antibody (see notes)")
        fits = m.index[(m["length"] <= MAX_RESIDUES) & ~antibody]
        sc.skip("judge_nll", m.index[(m["length"] > MAX_RESIDUES) & ~antibody], TOO_LONG)
        if len(fits) == 0:
            if not antibody.all():
                sc.notes.append(f"judge NLL not computed: every sequence is {TOO_LONG}")
            return
        values, note = judge_scores(m.loc[fits, "sequence"].tolist(), sc.options.judge_path, sc.options.judge_precision)
        m.loc[fits, "judge_nll"] = values
        if note:
            sc.notes.append(note)
            return
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if s.label in sc.antibody_sets:
            return {"judge_nll": np.nan, "judge_nll_scored": np.nan}
        v = rows["judge_nll"]
        scored = int(v.notna().sum())
        return {"judge_nll": float(v.mean()) if scored else np.nan, "judge_nll_scored": scored}

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        curve = metric_vs_nfe(ev, "judge_nll", "judge NLL (nats/residue)")
        return [("Judge NLL vs NFE", curve)] if curve else []
