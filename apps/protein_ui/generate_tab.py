"""Generate tab: sample a batch with the sidebar model, show metrics, table and FASTA."""

from __future__ import annotations

import streamlit as st

from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.protein.request import ProteinRequest
from protein_ui.common import (
    DEFAULT_NUM,
    MAX_NFE,
    MAX_NUM,
    AppState,
    _int,
    _one_line,
    show_notices,
)
from protein_ui.runs import (
    Run,
    check_budget,
    fasta_text,
    length_from_inputs,
    length_inputs,
    make_request,
    parse_motif,
    sample_and_score,
    show_summary,
)

TITLE = "Generate"


def render(app: AppState) -> None:
    """Draw the tab (the entry file calls this inside the tab)."""
    generate_tab(app.loaded, app.model_name)


def generate_tab(loaded: LoadedModel | None, label: str) -> None:
    st.subheader("Generate")
    if loaded is None:
        st.warning("Choose a model that loads (sidebar) to generate.")
        return
    c1, c2, c3 = st.columns(3)
    with c1:
        num = st.number_input("Number of sequences", value=DEFAULT_NUM, step=1, key="gen_num")
        mode, a, b = length_inputs("gen", loaded)
        trained, longest = loaded.info.get("max_residues"), {"Fixed": a, "Range": b}.get(mode)
        if trained and isinstance(longest, (int, float)) and longest > int(trained):
            st.caption(f"'{label}' was trained on proteins of ≤ {trained} residues; longer ones may be poor.")
    with c2:
        own = ProteinRequest.recommended(loaded.info, loaded.role)  # the model's stored settings, else role defaults
        nfe = st.number_input("NFE (sampling steps)", value=int(own["nfe"]), step=1, key="gen_nfe")
        has_disc = loaded.has_discriminator
        if not has_disc and st.session_state.get("gen_sampler") == "rgas":
            st.session_state["gen_sampler"] = "ancestral"  # the previous model had a discriminator, this one not
        choices = ["ancestral", "confidence", *(["rgas"] if has_disc else [])]
        sampler = st.radio(
            "Sampler",
            choices,
            index=choices.index(own["sampler"]) if own["sampler"] in choices else 0,
            horizontal=True,
            key="gen_sampler",
            format_func=lambda s: {"rgas": "RGAS (reward-guided)", "confidence": "confidence-ordered"}.get(s, s),
            help="ancestral: random reveal order; confidence: the most confident positions first; "
            "RGAS needs a distilled student with a discriminator.",
        )
        if not has_disc:
            st.caption(f"RGAS is off: model '{label}' has no discriminator (only distilled students do).")
        temperature = st.slider("Temperature", 0.1, 2.0, float(own["temperature"]), 0.05, key="gen_temperature")
        order_temperature = st.slider(
            "Order temperature τ (confidence sampler)",
            0.0,
            4.0,
            min(float(own["order_temperature"]), 4.0),
            0.05,
            key="gen_order_temperature",
            disabled=sampler != "confidence",
            help="0 = always reveal the most confident positions first; larger = closer to random order",
        )
        seed = st.number_input("Seed", value=0, step=1, key="gen_seed")
    with c3:
        fix = st.checkbox("Fix residues (prefix / motif)", key="gen_fix")
        prefix = spec = ""
        if fix:
            prefix = st.text_input("Prefix (N-terminus)", key="gen_prefix", placeholder="MKT")
            spec = st.text_input("Motif (1-based POSITION:RESIDUES)", key="gen_motif", placeholder="5:WW,40:C")
        judge = st.checkbox("Score with the judge model (NLL)", value=True, key="gen_judge")
        with st.expander("Advanced"):
            top_p = st.slider("Top-p (nucleus)", 0.05, 1.0, 1.0, 0.05, key="gen_top_p")
            batch_size = st.number_input("Batch size", value=32, step=1, key="gen_batch_size")

    if st.button("Generate", type="primary", key="gen_run"):
        errors: list[str] = []
        fields = dict(
            num=_int(num, "number of sequences", 1, MAX_NUM, errors),
            length=length_from_inputs(mode, a, b, errors),
            nfe=_int(nfe, "NFE", 1, MAX_NFE, errors),
            sampler=sampler if sampler != "rgas" or has_disc else "ancestral",
            temperature=float(temperature),
            top_p=float(top_p),
            seed=_int(seed, "seed", 0, 2**32 - 1, errors),
            batch_size=_int(batch_size, "batch size", 1, MAX_NUM, errors),
            motif=parse_motif(fix, prefix, spec, errors),
            order_temperature=float(order_temperature),
        )
        request = make_request(errors, **fields)
        if request is not None:
            check_budget(request, loaded, errors)
        for error in errors:
            st.error(error)
        if request is not None and not errors:
            try:
                st.session_state["run"] = sample_and_score(loaded, label, label, request, judge)
            except (InvalidSequenceError, ValueError) as err:
                st.error(_one_line(err))
            except RuntimeError as err:  # e.g. out of memory
                st.error(f"sampling failed: {_one_line(err)}")

    run: Run | None = st.session_state.get("run")
    if run is not None:
        results_section(run)


def results_section(run: Run) -> None:
    st.divider()
    s = run.request
    st.subheader(f"Results: {len(run.seqs)} sequences from {run.model}")
    st.caption(
        f"NFE {s.nfe} · {s.sampler}{f' τ={s.order_temperature:g}' if s.sampler == 'confidence' else ''} · "
        f"temperature {s.temperature:g} · top-p {s.top_p:g} · seed {s.seed} · "
        f"{run.seconds:.2f} s total"
    )
    show_summary(run)
    show_notices(run.notices)
    st.dataframe(
        run.table,
        hide_index=True,
        key=f"results_table_{run.run_id}",
        column_config={
            "sequence": st.column_config.TextColumn("sequence", width="large"),
            "judge_nll": st.column_config.NumberColumn("judge NLL", format="%.3f"),
        },
    )
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button(
        "Download FASTA", fasta_text(run), f"{run.prefix}_sequences.fasta", "text/plain", on_click="ignore"
    )
    c2.download_button(
        "Download CSV", run.table.to_csv(index=False), f"{run.prefix}_sequences.csv", "text/csv", on_click="ignore"
    )
    st.code(fasta_text(run), language=None, wrap_lines=True)
