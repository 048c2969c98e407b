"""Diversity tab: MMseqs2 clusters of the last generated batch."""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from protein_ui.common import (
    AppState,
    optional,
    show_notices,
)
from protein_ui.runs import (
    Run,
)

TITLE = "Diversity"


def render(app: AppState) -> None:
    """Draw the tab (the entry file calls this inside the tab)."""
    diversity_tab()


def diversity_tab() -> None:
    st.subheader("Diversity")
    run: Run | None = st.session_state.get("run")
    if run is None:
        st.info("Generate sequences first (Generate tab).")
        return
    st.caption(f"Batch: {len(run.seqs)} sequences from {run.model} (MMseqs2 clustering)")
    c1, c2 = st.columns(2)
    min_seq_id = c1.slider("Minimum sequence identity", 0.1, 1.0, 0.3, 0.05, key="div_id")
    coverage = c2.slider("Coverage", 0.1, 1.0, 0.8, 0.05, key="div_cov")
    if st.button("Cluster with MMseqs2", key="div_run"):
        notices: list[str] = []
        with st.spinner("Clustering…"):
            result = optional(
                "diversity", lambda m: m.diversity(run.seqs, min_seq_id, coverage, threads=1), notices, "diversity"
            )
        show_notices(notices)
        if result is not None:
            st.session_state["diversity"] = (run.run_id, min_seq_id, coverage, result)
    stored = st.session_state.get("diversity")
    if stored is None or stored[0] != run.run_id:
        return
    _, min_seq_id, coverage, result = stored
    m1, m2, m3 = st.columns(3)
    m1.metric("clusters", f"{result.num_clusters}")
    m2.metric("cluster entropy", f"{result.entropy:.3f}", help="higher means a more diverse batch")
    m3.metric("mean cluster size", f"{result.mean_size:.2f}", help="1.0 means every sequence is unique")
    labels = pd.Series(np.asarray(result.labels), name="cluster")
    sizes = labels.value_counts().sort_values(ascending=False).reset_index(drop=True)
    chart = pd.DataFrame({"cluster (by size)": np.arange(1, len(sizes) + 1), "sequences": sizes.to_numpy()})
    st.bar_chart(chart, x="cluster (by size)", y="sequences", height=260, sort=False)
    st.dataframe(pd.DataFrame({"id": run.ids, "cluster": labels.to_numpy()}), hide_index=True, key="div_table")
    st.caption(f"min identity {min_seq_id:g}, coverage {coverage:g}")
