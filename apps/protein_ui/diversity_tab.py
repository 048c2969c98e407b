"""Diversity tab: MMseqs2 clusters of the last generated batch; IMGT-aligned identity for antibodies.

Antibody frameworks are conserved, so MMseqs2 at 30 % identity puts every antibody in one cluster (entropy 0):
an antibody batch is measured where antibodies vary instead (:mod:`protein_didi.eval.antibody`): identity over
IMGT-numbered positions within heavy and within light chains, each chain's nearest neighbour, CDR3 uniqueness.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
import streamlit as st

from protein_ui.common import (
    AppState,
    fmt,
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
    if run.antibody:
        antibody_diversity(run)
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


def antibody_diversity(run: Run) -> None:
    """IMGT-aligned identity of the valid chains of an antibody batch: means, nearest neighbours, CDR3 uniqueness."""
    st.caption(
        f"Batch: {len(run.seqs)} chains from {run.model}. Antibodies are compared over IMGT-numbered positions (the "
        "numbering is the alignment), within heavy and within light chains: MMseqs2 at 30 % identity would put every "
        "antibody in one cluster, since their frameworks are conserved."
    )
    if run.numberings is None:
        show_notices(run.notices or ["antibody diversity needs ANARCI: pip install -e .[antibody] and hmmer"])
        return
    from protein_didi.eval.antibody import imgt_identity_matrix, mean_pairwise_identity

    valid = list(run.table["chain check"].eq("valid"))
    nums = [n for n, ok in zip(run.numberings, valid, strict=True) if ok]
    ids = [i for i, ok in zip(run.ids, valid, strict=True) if ok]
    means = mean_pairwise_identity(nums)
    m1, m2, m3, m4 = st.columns(4)
    m1.metric("chains compared", f"{len(nums)} of {len(run.seqs)}", help="diversity is measured over valid chains only")
    m2.metric("mean identity, heavy", fmt(means["H"], ".1%"), help="IMGT-aligned, over pairs of valid heavy chains")
    m3.metric("mean identity, light", fmt(means["L"], ".1%"), help="IMGT-aligned, over pairs of valid light chains")
    m4.metric("unique CDR-H3", fmt(run.summary.get("cdrh3_unique"), ".0%"), help="distinct CDR-H3 / valid heavy")
    rows, pairs = [], []
    for cls, name in (("H", "heavy"), ("L", "light")):
        members = [k for k, n in enumerate(nums) if n.chain_class == cls]
        if len(members) < 2:
            rows += [{"id": ids[k], "chain": name, "CDR3": nums[k].cdr3, "nearest": "—", "identity": np.nan}
                     for k in members]  # fmt: skip
            continue
        ident = imgt_identity_matrix([nums[k] for k in members])
        np.fill_diagonal(ident, -1.0)
        for row, k in enumerate(members):
            best = int(np.argmax(ident[row]))
            rows.append({"id": ids[k], "chain": name, "CDR3": nums[k].cdr3, "nearest": ids[members[best]],
                         "identity": float(ident[row, best])})  # fmt: skip
        pairs += [(name, float(v)) for v in ident[np.triu_indices(len(members), k=1)]]
    if pairs:
        frame = pd.DataFrame(pairs, columns=["chain", "identity"])
        bins = pd.cut(frame["identity"], np.linspace(0, 1, 21), include_lowest=True)
        chart = frame.groupby([bins.map(lambda b: f"{b.left:.0%}–{b.right:.0%}"), "chain"], observed=True).size()
        st.markdown("**Pairwise IMGT identity** (pairs of valid chains of one class)")
        st.bar_chart(chart.unstack(fill_value=0), x_label="identity", y_label="pairs", height=240)
    st.dataframe(
        pd.DataFrame(rows),
        hide_index=True,
        key="div_ab_table",
        column_config={"identity": st.column_config.NumberColumn("identity to nearest", format="percent")},
    )
