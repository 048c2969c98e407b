"""Novelty: each sequence's maximum identity to any training protein (MMseqs2 search); any length."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from protein_didi.eval.diversity import novelty
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_int, fmt_percent
from protein_didi.report.sets import SequenceSet


class Novelty(MetricFamily):
    name = "novelty"
    table = "diversity"
    summary_columns = (
        Column("novelty_hits", "with a training hit (seqs)", fmt_int),
        Column("novelty", "mean identity of hits (%)", fmt_percent(0), blank="no hit"),
        Column("novelty_max", "max identity to training (%)", fmt_percent(0), blank="no hit"),
    )
    sequence_columns = (
        Column(
            "novelty",
            "max identity to training (%)",
            fmt_percent(0),
            blank="no hit",
            short="train id. (%)",
            title="identical residues of the best MMseqs2 hit in the training split over the query length",
        ),
    )
    hint = (
        "identity to training = identical residues of the best MMseqs2 hit over the query length (100 % = a copy); "
        "no hit = nothing similar enough for MMseqs2 to report."
    )

    def score(self, sc: Scoring) -> None:
        m = sc.metrics
        m["novelty"] = np.nan
        m["novelty_hit"] = pd.array([pd.NA] * len(m), dtype="boolean")
        train = sc.options.train_fasta
        sc.computed[self.name] = train is not None
        if train is None:
            sc.notes.append(sc.options.no_train_reason)
            return
        antibody = m["set"].isin(sc.antibody_sets).to_numpy()
        if antibody.any():
            sc.notes.append(
                "novelty not computed for antibody sets: the training split holds UniProt proteins, so a hit says "
                "nothing about antibodies; their nearness to nature is V-gene identity in the antibody table"
            )
            sc.skip("novelty", m.index[antibody], "antibody (see notes)")
        best = np.zeros(len(m))
        if (~antibody).any():
            best[~antibody] = novelty(m.loc[~antibody, "sequence"].tolist(), train, threads=sc.options.threads)
        hit = best > 0  # a reported hit has at least one identical residue; 0 means MMseqs2 found nothing
        m["novelty"] = np.where(hit, best, np.nan)
        m["novelty_hit"] = pd.array(np.where(antibody, pd.NA, hit), dtype="boolean")

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed[self.name] or s.label in sc.antibody_sets:
            return {"novelty_hits": np.nan, "novelty": np.nan, "novelty_max": np.nan}
        v = rows["novelty"].dropna()
        return {
            "novelty_hits": len(v),
            "novelty": float(v.mean()) if len(v) else np.nan,
            "novelty_max": float(v.max()) if len(v) else np.nan,
        }
