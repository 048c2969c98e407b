"""Compare tab: two models at the same settings and seed, side by side."""

from __future__ import annotations

import pandas as pd
import streamlit as st

from protein_didi.protein.alphabet import MAX_RESIDUES, InvalidSequenceError
from protein_didi.protein.generate import ProteinRequest, generate
from protein_ui.common import (
    DEFAULT_LENGTH,
    DEFAULT_NFE,
    DEFAULT_NUM,
    MAX_NFE,
    MAX_NUM,
    AppState,
    _int,
    _one_line,
    show_notices,
)
from protein_ui.models import (
    available_models,
    model_picker,
)
from protein_ui.runs import (
    Run,
    check_budget,
    make_request,
    sample_and_score,
    show_summary,
)

TITLE = "Compare"


def render(app: AppState) -> None:
    """Draw the tab (the entry file calls this inside the tab)."""
    compare_tab()


def compare_tab() -> None:
    st.subheader("Compare teacher and student")
    st.caption("Both models sample at the same settings and seed; the speed/quality trade-off at a glance.")
    models = available_models()
    student = next((m for m in models if m.startswith("student")), None)
    left, right = st.columns(2)
    with left:
        name_a, model_a = model_picker("Model A", "cmp_a", "teacher")
    with right:
        name_b, model_b = model_picker("Model B", "cmp_b", student or "teacher")
        if student is None:
            st.caption("No embedded student on this machine yet; pick a checkpoint folder to compare against.")
    c1, c2, c3, c4 = st.columns(4)
    num = c1.number_input("Sequences per model", value=DEFAULT_NUM, step=1, key="cmp_num")
    length = c2.number_input("Residues", value=DEFAULT_LENGTH, step=10, key="cmp_length")
    nfe = c3.number_input("NFE (both models)", value=DEFAULT_NFE, step=1, key="cmp_nfe")
    seed = c4.number_input("Seed", value=0, step=1, key="cmp_seed")
    own_nfe = st.checkbox("Give model A its own NFE (e.g. the teacher at many steps)", key="cmp_own_nfe")
    nfe_a = st.number_input("NFE for model A", value=64, step=1, key="cmp_nfe_a") if own_nfe else nfe
    judge = st.checkbox("Score with the judge model (NLL)", value=True, key="cmp_judge")

    if st.button("Compare", type="primary", key="cmp_run"):
        errors: list[str] = []
        if model_a is None or model_b is None:
            errors.append("both models must load before comparing (see the errors above)")
        common = {
            "num": _int(num, "number of sequences", 1, MAX_NUM, errors),
            "length": _int(length, "length", 1, MAX_RESIDUES, errors),
            "sampler": "ancestral",
            "temperature": 1.0,
            "top_p": 1.0,
            "seed": _int(seed, "seed", 0, 2**32 - 1, errors),
            "batch_size": 32,
        }
        nfes = (_int(nfe_a, "NFE for model A", 1, MAX_NFE, errors), _int(nfe, "NFE", 1, MAX_NFE, errors))
        requests = [make_request(errors, nfe=n, **common) for n in nfes]
        pairs = [(f"A: {name_a}", name_a, model_a, requests[0]), (f"B: {name_b}", name_b, model_b, requests[1])]
        if not errors:
            for _, _, loaded, request in pairs:
                check_budget(request, loaded, errors)
        for error in dict.fromkeys(errors):
            st.error(error)
        if not errors:
            runs = []
            try:
                for _, _, loaded, _ in pairs:  # warm up, so one-off setup is not timed against model A
                    generate(loaded, ProteinRequest(num=1, length=8, nfe=1, sampler="ancestral"))
                for label, name, loaded, request in pairs:
                    runs.append(sample_and_score(loaded, label, name, request, judge))
            except (InvalidSequenceError, ValueError, RuntimeError) as err:
                st.error(_one_line(err))
            else:
                st.session_state["compare"] = runs

    runs: list[Run] | None = st.session_state.get("compare")
    if runs:
        comparison_section(runs)


def comparison_section(runs: list[Run]) -> None:
    st.divider()
    cols = st.columns(len(runs))
    for col, run in zip(cols, runs, strict=True):
        with col:
            st.markdown(f"#### {run.model}")
            st.caption(f"role: {run.role} · NFE {run.request.nfe} · seed {run.request.seed}")
            show_summary(run, per_row=2)
            st.dataframe(run.table, hide_index=True, height=180, key=f"cmp_table_{run.run_id}")
    show_notices(list(dict.fromkeys(n for run in runs for n in run.notices)))
    summary = pd.DataFrame(
        [
            {
                "model": r.model,
                "role": r.role,
                "NFE": r.request.nfe,
                "ms / sequence": r.seconds_per_sequence * 1000,
                "judge NLL": r.summary["judge_nll"],
                "composition KL": r.summary["composition_kl"],
                "low complexity": r.summary["low_complexity"],
            }
            for r in runs
        ]
    )
    st.dataframe(
        summary,
        hide_index=True,
        key="cmp_summary",
        column_config={
            "ms / sequence": st.column_config.NumberColumn(format="%.1f"),
            "judge NLL": st.column_config.NumberColumn(format="%.3f"),
            "composition KL": st.column_config.NumberColumn(format="%.4f"),
            "low complexity": st.column_config.NumberColumn(format="percent"),
        },
    )
    fast, slow = sorted(runs, key=lambda r: r.seconds_per_sequence)[:: len(runs) - 1]
    if fast is not slow and fast.seconds_per_sequence > 0:
        ratio = slow.seconds_per_sequence / fast.seconds_per_sequence
        st.caption(f"{fast.model} takes {1 / ratio:.2f}× the time per sequence of {slow.model} ({ratio:.1f}× faster).")
    comps = {r.model: r.composition for r in runs if r.composition}
    if comps:
        reference = runs[0].reference
        frame = pd.DataFrame(comps)
        if reference:
            frame.insert(0, "training", pd.Series(reference))
        st.markdown("**Amino-acid composition**")
        st.bar_chart(frame, stack=False, x_label="amino acid", y_label="frequency", height=280)
