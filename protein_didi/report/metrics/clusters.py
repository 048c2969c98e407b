"""Diversity: MMseqs2 clusters per set (the paper's Table 13); any length."""

from __future__ import annotations

import math
import sys
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from protein_didi.eval.diversity import diversity
from protein_didi.report.metrics.base import Column, MetricFamily, Scoring, fmt_float, fmt_int
from protein_didi.report.sets import SequenceSet


class Clusters(MetricFamily):
    name = "diversity"
    table = "diversity"
    summary_columns = (
        Column("num_clusters", "clusters", fmt_int),
        Column("cluster_entropy", "cluster entropy (nats)"),
        Column("max_entropy", "ln n (entropy if all distinct, nats)"),
        Column("mean_cluster_size", "mean cluster size (seqs)", fmt_float(2)),
    )
    sequence_columns = (Column("cluster", "cluster", fmt_int),)
    hint = "clusters: mmseqs easy-cluster within each set; entropy = ln n when every sequence is its own family."
    antibody_reason = "antibody (see notes)"

    def score(self, sc: Scoring) -> None:
        m = sc.metrics
        m["cluster"] = -1
        sc.computed[self.name] = sc.options.cluster
        if not sc.options.cluster:
            sc.notes.append("diversity not computed: disabled with --no-diversity")
            return
        results = sc.results.setdefault(self.name, {})
        antibodies = [s for s in sc.sets if s.label in sc.antibody_sets]
        if antibodies:
            sc.notes.append(
                "clusters not computed for antibody sets: MMseqs2 at 30 % identity puts every heavy chain in one "
                "cluster (conserved frameworks); their diversity is the antibody table's CDR-H3 uniqueness and "
                "pairwise identity"
            )
            sc.skip("cluster", m.index[m["set"].isin(sc.antibody_sets)], self.antibody_reason)
        for s in tqdm([s for s in sc.sets if s not in antibodies], desc="clustering (MMseqs2)", unit="set",
                      file=sys.stderr):  # fmt: skip
            d = diversity(s.sequences, sc.options.min_seq_id, sc.options.coverage, sc.options.threads)
            results[s.label] = d
            m.loc[m["set"] == s.label, "cluster"] = d.labels

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        d = sc.results.get(self.name, {}).get(s.label)
        return {
            "num_clusters": d.num_clusters if d else np.nan,
            "cluster_entropy": d.entropy if d else np.nan,
            "max_entropy": math.log(len(rows)) if len(rows) else np.nan,
            "mean_cluster_size": d.mean_size if d else np.nan,
        }
