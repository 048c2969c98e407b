"""Generate tab: sample a batch with the sidebar model, show metrics, table and FASTA."""

from __future__ import annotations

import streamlit as st

from protein_didi.core.request import CORRECTOR_PICKS
from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.pretrained import LoadedModel, is_antibody_model
from protein_ui.common import (
    DEFAULT_NUM,
    MAX_NFE,
    MAX_NUM,
    AppState,
    _int,
    _one_line,
    show_notices,
)
from protein_ui.model_settings import (
    FRACTION_RANGE,
    ORDER_TEMPERATURE_RANGE,
    TEMPERATURE_RANGE,
    TOP_P_RANGE,
    describe,
    initial,
    stored_settings,
    widget_values,
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
    antibody = is_antibody_model(loaded.info)
    # the model's stored settings as defaults; the widgets hold them since the model was chosen (see model_settings)
    own = {key: initial(key, value) for key, value in widget_values(loaded).items()}
    with c2:
        nfe = st.number_input("NFE (sampling steps)", value=own["gen_nfe"], step=1, key="gen_nfe")
        has_disc = loaded.has_discriminator
        if not has_disc and st.session_state.get("gen_sampler") == "rgas":
            st.session_state["gen_sampler"] = "ancestral"  # a folder replaced in place lost its discriminator
        choices = ["ancestral", "confidence", *(["rgas"] if has_disc else [])]
        sampler = st.radio(
            "Sampler",
            choices,
            index=choices.index(own["gen_sampler"]) if own["gen_sampler"] in choices else None,
            horizontal=True,
            key="gen_sampler",
            format_func=lambda s: {"rgas": "RGAS (reward-guided)", "confidence": "confidence-ordered"}.get(s, s),
            help="ancestral: random reveal order; confidence: the most confident positions first; "
            "RGAS needs a distilled student with a discriminator.",
        )
        if not has_disc:
            st.caption(f"RGAS is off: model '{label}' has no discriminator (only distilled students do).")
        temperature = st.slider("Temperature", *TEMPERATURE_RANGE, own["gen_temperature"], 0.05, key="gen_temperature")
        order_temperature = st.slider(
            "Order temperature τ (confidence sampler)",
            *ORDER_TEMPERATURE_RANGE,
            own["gen_order_temperature"],
            0.05,
            key="gen_order_temperature",
            disabled=sampler != "confidence",
            help="0 = always reveal the most confident positions first; larger = closer to random order",
        )
        seed = st.number_input("Seed", value=0, step=1, key="gen_seed")
        stored = loaded.info.get("sampling")
        st.caption(
            f"'{label}' defaults: {stored_settings(loaded)}"
            + (" (stored with the model)" if stored else " (its role's defaults)")
            + "; choosing a model resets these to its own."
        )
    with c3:
        fix = st.checkbox("Fix residues (prefix / motif)", key="gen_fix")
        prefix = spec = ""
        if fix:
            prefix = st.text_input("Prefix (N-terminus)", key="gen_prefix", placeholder="MKT")
            spec = st.text_input("Motif (1-based POSITION:RESIDUES)", key="gen_motif", placeholder="5:WW,40:C")
        valid_only = False
        if antibody:
            judge = st.checkbox(
                "Score with IgLM (NLL)", value=True, key="gen_judge",
                help="antibody models are scored with ANARCI (validity, V gene, liabilities, engineers' checks) and, "
                "when the optional iglm package is installed, IgLM",
            )  # fmt: skip
            valid_only = st.checkbox(
                "Valid chains only (resample chimeras and frame errors, as sample does)",
                value=bool(own["gen_valid_only"]),
                key="gen_valid_only",
            )  # fmt: skip
        else:
            judge = st.checkbox("Score with the judge model (NLL)", value=True, key="gen_judge")
        pick = None if own["gen_corrector_pick"] is None else CORRECTOR_PICKS.index(own["gen_corrector_pick"])
        with st.expander("Advanced"):
            top_p = st.slider("Top-p (nucleus)", *TOP_P_RANGE, own["gen_top_p"], 0.05, key="gen_top_p")
            batch_size = st.number_input("Batch size", value=32, step=1, key="gen_batch_size")
            corrector_steps = st.number_input(
                "Corrector rounds", value=own["gen_corrector_steps"], step=1, key="gen_corrector_steps",
                help="remask-and-redraw rounds after the sampler, by this model (0 = none)",
            )  # fmt: skip
            corrector_fraction = st.slider(
                "Corrector fraction ρ", *FRACTION_RANGE, own["gen_corrector_fraction"], 0.05,
                key="gen_corrector_fraction", disabled=not corrector_steps,
                help="share of the generated positions each round remasks",
            )  # fmt: skip
            corrector_temperature = st.slider(
                "Corrector temperature", *TEMPERATURE_RANGE, own["gen_corrector_temperature"], 0.05,
                key="gen_corrector_temperature", disabled=not corrector_steps,
            )  # fmt: skip
            corrector_pick = st.radio(
                "Corrector remasks", CORRECTOR_PICKS, index=pick,
                horizontal=True, key="gen_corrector_pick", disabled=not corrector_steps,
            )  # fmt: skip

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
            corrector_steps=_int(corrector_steps, "corrector rounds", 0, MAX_NFE, errors),
            corrector_fraction=float(corrector_fraction),
            corrector_temperature=float(corrector_temperature),
            corrector_pick=str(corrector_pick),
        )
        request = make_request(errors, **fields)
        if request is not None:
            check_budget(request, loaded, errors)
        for error in errors:
            st.error(error)
        if request is not None and not errors:
            try:
                st.session_state["run"] = sample_and_score(loaded, label, label, request, judge, valid_only)
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
    st.caption(f"{describe(s)} · seed {s.seed} · {run.seconds:.2f} s total")
    if run.account:
        st.caption(f"Valid-chain filter: {run.account}.")
    show_summary(run)
    show_notices(run.notices)
    if run.checks_line:
        st.caption(
            f"{run.checks_line[0].upper()}{run.checks_line[1:]}. J motif: W-G-x-G heavy, F-G-x-G light at IMGT 118–121."
        )
    st.dataframe(
        run.table,
        hide_index=True,
        key=f"results_table_{run.run_id}",
        column_config={
            "sequence": st.column_config.TextColumn("sequence", width="large"),
            "judge_nll": st.column_config.NumberColumn("judge NLL", format="%.3f"),
            "V identity": st.column_config.NumberColumn("V identity", format="percent"),
            "IgLM NLL": st.column_config.NumberColumn("IgLM NLL", format="%.3f"),
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
