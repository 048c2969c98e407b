"""Compare tab: two models side by side, each with its own stored settings (or the same NFE), the same seed.

Antibody models are scored with the antibody metrics (and give valid chains, as ``sample`` does); the speed line
states one ratio in words that agree.
"""

from __future__ import annotations

import pandas as pd
import streamlit as st

from protein_didi.core.request import plain_sampling
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
from protein_ui.model_settings import ANTIBODY_LENGTH, antibody, describe, initial, stored_settings
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


SETTINGS = {
    "stored": "each model's own stored settings",
    "same": "the same NFE for both (ancestral)",
}


def compare_tab() -> None:
    st.subheader("Compare two models")
    st.caption(
        "Both models sample with the same seed: by default each with its own stored settings (as the CLI would), "
        "or at the same NFE with the plain ancestral sampler. Antibody models are judged as antibodies."
    )
    models = available_models()
    student = next((m for m in models if m.startswith("student")), None)
    left, right = st.columns(2)
    with left:
        name_a, model_a = model_picker("Model A", "cmp_a", "teacher")
        if model_a is not None:
            st.caption(f"defaults: {stored_settings(model_a)}")
    with right:
        name_b, model_b = model_picker("Model B", "cmp_b", student or "teacher")
        if model_b is not None:
            st.caption(f"defaults: {stored_settings(model_b)}")
        if student is None:
            st.caption("No embedded student on this machine yet; pick a checkpoint folder to compare against.")
    pair = (name_a, name_b)
    if st.session_state.get("cmp_pair") != pair:  # a new pair: antibodies get a V domain's length
        st.session_state["cmp_pair"] = pair
        if antibody(model_a) or antibody(model_b):
            st.session_state["cmp_length"] = ANTIBODY_LENGTH
    mode = st.radio(
        "Sampler settings", list(SETTINGS), horizontal=True, key="cmp_settings", format_func=SETTINGS.__getitem__
    )
    c1, c2, c3, c4 = st.columns(4)
    num = c1.number_input("Sequences per model", value=DEFAULT_NUM, step=1, key="cmp_num")
    length = c2.number_input("Residues", value=initial("cmp_length", DEFAULT_LENGTH), step=10, key="cmp_length")
    seed = c4.number_input("Seed", value=0, step=1, key="cmp_seed")
    nfe = nfe_a = None
    if mode == "same":
        nfe = c3.number_input("NFE (both models)", value=DEFAULT_NFE, step=1, key="cmp_nfe")
        own_nfe = st.checkbox("Give model A its own NFE (e.g. the teacher at many steps)", key="cmp_own_nfe")
        nfe_a = st.number_input("NFE for model A", value=64, step=1, key="cmp_nfe_a") if own_nfe else nfe
    judge = st.checkbox(
        "Score with the judge model (protein judge NLL; IgLM for antibody models)", value=True, key="cmp_judge"
    )

    if st.button("Compare", type="primary", key="cmp_run"):
        errors: list[str] = []
        if model_a is None or model_b is None:
            errors.append("both models must load before comparing (see the errors above)")
        common: dict = {
            "num": _int(num, "number of sequences", 1, MAX_NUM, errors),
            "length": _int(length, "length", 1, MAX_RESIDUES, errors),
            "seed": _int(seed, "seed", 0, 2**32 - 1, errors),
            "batch_size": 32,
        }
        if mode == "same":  # the plain sampler at the steps given; otherwise every setting is the model's own
            nfes = (_int(nfe_a, "NFE for model A", 1, MAX_NFE, errors), _int(nfe, "NFE", 1, MAX_NFE, errors))
            requests = [make_request(errors, nfe=n, **common, **plain_sampling()) for n in nfes]
        else:
            requests = [make_request(errors, **common)] * 2
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
                for label, name, loaded, request in pairs:  # antibody models: valid chains, as sample gives them
                    runs.append(sample_and_score(loaded, label, name, request, judge, valid_only=True))
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
            st.caption(f"role: {run.role} · {describe(run.request)} · seed {run.request.seed}")
            if run.account:
                st.caption(f"Valid-chain filter: {run.account}.")
            show_summary(run, per_row=2)
            st.dataframe(run.table, hide_index=True, height=180, key=f"cmp_table_{run.run_id}")
    show_notices(list(dict.fromkeys(n for run in runs for n in run.notices)))
    summary = pd.DataFrame([summary_row(r) for r in runs])
    st.dataframe(
        summary,
        hide_index=True,
        key="cmp_summary",
        column_config={
            "ms / sequence": st.column_config.NumberColumn(format="%.1f"),
            "judge NLL": st.column_config.NumberColumn(format="%.3f"),
            "composition KL": st.column_config.NumberColumn(format="%.4f"),
            "IgLM NLL": st.column_config.NumberColumn(format="%.3f"),
            "liabilities / chain": st.column_config.NumberColumn(format="%.2f"),
            **{c: st.column_config.NumberColumn(format="percent") for c in PERCENT_COLUMNS},
        },
    )
    st.caption(speed_line(runs))
    comps = {r.model: r.composition for r in runs if r.composition}  # protein runs only
    if comps:
        reference = runs[0].reference
        frame = pd.DataFrame(comps)
        if reference:
            frame.insert(0, "training", pd.Series(reference))
        st.markdown("**Amino-acid composition**")
        st.bar_chart(frame, stack=False, x_label="amino acid", y_label="frequency", height=280)


PERCENT_COLUMNS = (
    "low complexity", "valid chains", "chimeras", "V-gene identity", "unique CDR-H3", "IMGT pairwise identity",
    "engineers' checks passed",
)  # fmt: skip


def summary_row(run: Run) -> dict:
    """One model's row of the comparison: its settings, speed, and its metrics (antibody ones for antibody runs)."""
    s = run.summary
    row = {"model": run.model, "role": run.role, "settings": describe(run.request), "NFE": run.request.nfe}
    row["ms / sequence"] = run.seconds_per_sequence * 1000
    if not run.antibody:
        return row | {
            "judge NLL": s["judge_nll"], "composition KL": s["composition_kl"], "low complexity": s["low_complexity"],
        }  # fmt: skip
    return row | {
        "valid chains": s["valid_fraction"], "chimeras": s["chimera_fraction"], "V-gene identity": s["v_identity"],
        "IgLM NLL": s["iglm_nll"], "liabilities / chain": s["liabilities"], "unique CDR-H3": s["cdrh3_unique"],
        "IMGT pairwise identity": s["pairwise_identity"], "engineers' checks passed": s["checks_ok"],
    }  # fmt: skip


SAME_SPEED = 1.1  # within 10 %: timing noise on a shared CPU, not a difference worth a ratio


def speed_line(runs: list[Run]) -> str:
    """Which model is faster per sequence and by how much, in words that agree with each other."""
    if len(runs) < 2:
        return ""
    fast, slow = sorted(runs, key=lambda r: r.seconds_per_sequence)[:: len(runs) - 1]
    ms = f"{fast.seconds_per_sequence * 1000:.0f} vs {slow.seconds_per_sequence * 1000:.0f} ms per sequence"
    if fast.seconds_per_sequence <= 0 or slow.seconds_per_sequence / fast.seconds_per_sequence < SAME_SPEED:
        line = f"{fast.model} and {slow.model} take about the same time ({ms}; within timing noise)."
    else:
        ratio = slow.seconds_per_sequence / fast.seconds_per_sequence
        line = f"{fast.model} is {ratio:.1f}× faster than {slow.model} ({ms}; it takes {1 / ratio:.2f}× the time)."
    if any(r.account for r in runs):  # whichever sentence: the unit must be said
        line += " An antibody model's time is per valid chain: its ANARCI checks and resampling are included."
    return line
