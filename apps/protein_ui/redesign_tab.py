"""CDR redesign tab: number a parent antibody chain, keep its framework, regenerate one CDR loop.

UI only: numbering comes from ``protein_didi.protein.numbering``, planning and sampling from
``protein_didi.protein.redesign``.
"""

from __future__ import annotations

import html
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import pandas as pd
import streamlit as st

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.liabilities import DESCRIPTIONS, LIABILITY_CLASSES, Liability
from protein_didi.protein.pretrained import LoadedModel
from protein_ui.common import MAX_NFE, MAX_NUM, MODEL_NOTES, AppState, _int, _one_line
from protein_ui.models import available_models, device_name, get_model

TITLE = "CDR redesign"
CDRS = ("H1", "H2", "H3", "L1", "L2", "L3")
DEFAULT_MODEL = "antibody-student"
REGION_COLOURS = {"FR": "#e8eef6", "CDR1": "#c8e6c9", "CDR2": "#bbdefb", "CDR3": "#ffccbc"}
HIGHLIGHT = "background:#ffd54f;font-weight:600"
LIABILITY_MARK = "color:#b00020;text-decoration-color:#b00020;text-decoration-thickness:2px"
MONO = "font-family:ui-monospace,monospace;font-size:13px;overflow-wrap:anywhere;line-height:1.6"


@dataclass
class RedesignRun:
    """One finished redesign: the parent, its regions, the redesigned CDR and the designs."""

    parent: str
    regions: dict[str, tuple[int, int]]
    chain_type: str
    cdr: str
    span: tuple[int, int]
    model: str
    nfe: int
    records: list[tuple[str, str]]
    liabilities: list[list[Liability]] = field(default_factory=list)  # per design: every liability in its loop
    span_nll: list[float] | None = None  # per design: IgLM NLL of the loop (nats/residue); None: not computed
    notes: list[str] = field(default_factory=list)  # the liability filter's account, why IgLM is missing
    account: Any = None  # the liability filter's FilteredDesigns (drawn = kept + refused + surplus); None: no filter
    parent_liabilities: list[Liability] = field(default_factory=list)  # the baseline: the parent's own loop
    parent_nll: float | None = None  # IgLM NLL of the parent's own loop (nats/residue)
    checks: list[str] = field(default_factory=list)  # engineers' checks of the parent, then of each design


def render(app: AppState) -> None:
    """Draw the tab (the entry file calls this inside the tab)."""
    st.subheader("CDR redesign")
    st.caption(
        "Keeps the parent's framework and regenerates one CDR (IMGT, numbered with ANARCI) by masked-diffusion "
        "infilling. Needs anarci (pip install -e .[antibody]) and hmmer."
    )
    models = available_models()
    default = DEFAULT_MODEL if DEFAULT_MODEL in models else app.model_name
    c1, c2 = st.columns([3, 2])
    with c1:
        parent = st.text_area("Parent sequence (heavy or light chain V domain)", key="cdr_parent", height=110)
        cdr = st.radio("CDR to redesign", CDRS, index=2, horizontal=True, key="cdr_name")
        keep = st.checkbox("Keep the parent's CDR length", key="cdr_keep")
        lo_col, hi_col = st.columns(2)
        lo = lo_col.number_input("CDR length from", value=10, step=1, key="cdr_lo", disabled=keep)
        hi = hi_col.number_input("CDR length to", value=14, step=1, key="cdr_hi", disabled=keep)
    with c2:
        label = st.selectbox(
            "Model",
            models,
            index=models.index(default) if default in models else 0,
            key="cdr_model",
            format_func=lambda n: f"{n} ({MODEL_NOTES[n]})" if n in MODEL_NOTES else n,
            help="Loaded when you press Redesign. antiberty appears where the antiberty package is installed.",
        )
        refuse = st.multiselect(
            "Refuse designs with these liabilities in the loop (resampled)",
            LIABILITY_CLASSES,
            key="cdr_liabilities",
            help="; ".join(f"{k}: {DESCRIPTIONS[k]}" for k in LIABILITY_CLASSES),
        )
        num = st.number_input("Number of designs", value=4, step=1, key="cdr_num")
        nfe = st.number_input("NFE (sampling steps)", value=8, step=1, key="cdr_nfe")
        seed = st.number_input("Seed", value=0, step=1, key="cdr_seed")
    if st.button("Redesign", type="primary", key="cdr_run"):
        run_redesign(label, parent, cdr, None if keep else (lo, hi), num, nfe, seed, tuple(refuse))
    run: RedesignRun | None = st.session_state.get("cdr_result")
    if run is not None:
        show_result(run)


def load(label: str | None) -> LoadedModel | None:
    """The chosen model, or None after one ``st.error`` line."""
    if label is None:
        st.error("no model is available; install the embedded models or the antiberty package")
        return None
    try:
        return get_model(label, device_name())
    except CheckpointError as err:
        st.error(_one_line(err))
    except Exception as err:  # never a traceback in the app
        st.error(f"cannot load {label}: {_one_line(err)}")
    return None


def run_redesign(
    label: str | None,
    parent: str,
    cdr: str,
    length: tuple[object, object] | None,
    num: object,
    nfe: object,
    seed: object,
    refuse: tuple[str, ...] = (),
) -> None:
    """Validate, plan, sample; every failure is one ``st.error`` line and leaves the last result in place."""
    from protein_didi.protein.numbering import AntibodyError
    from protein_didi.protein.redesign import (
        design_liabilities,
        parse_cdr_length,
        plan_redesign,
        redesign,
        redesign_free_of,
    )
    from protein_didi.protein.request import ProteinRequest

    errors: list[str] = []
    n = _int(num, "number of designs", 1, MAX_NUM, errors)
    steps = _int(nfe, "NFE", 1, MAX_NFE, errors)
    seed_value = _int(seed, "seed", 0, 2**32 - 1, errors)
    text = "".join(parent.split()).upper()
    if not text:
        errors.append("paste a parent sequence (an antibody heavy or light chain V domain)")
    if errors:
        st.error(errors[0])
        return
    loaded = load(label)
    if loaded is None:
        return
    try:
        cdr_length = None if length is None else parse_cdr_length(f"{int(length[0])}-{int(length[1])}")
        plan = plan_redesign(text, cdr, cdr_length, "parent")
        # the model's own sampler settings (as the CLI), with the steps and seed given here
        request = ProteinRequest(plan=plan, num=n, nfe=steps, seed=seed_value, liabilities=refuse)
        notes: list[str] = []
        account = None
        with st.spinner(f"Redesigning {cdr} with {label}…"):
            if refuse:  # kept with the whole account, so the tab can show that it adds up
                account = redesign_free_of(loaded, request)
                records = account.records
                notes.append(account.summary())
            else:
                records = redesign(loaded, request)
        lengths = [loop_lengths(plan.cdrs, header) for header, _ in records]
        found = [design_liabilities(plan, seq, k) for (_, seq), k in zip(records, lengths, strict=True)]
        own = [end - start for start, end in plan.spans]  # the parent's own loop: the baseline row
        parent_found = design_liabilities(plan, plan.parent, own)
        spans = [(plan.spans[0][0], plan.spans[0][0] + k[0]) for k in [own, *lengths]]
        nlls, why = iglm_span_nlls([plan.parent, *(seq for _, seq in records)], spans, plan.numbering.chain_type or "H")
        parent_nll, span_nll = (nlls[0], nlls[1:]) if nlls is not None else (None, None)
        notes += [why] if why else []
        checks = engineers_checks([plan.parent, *(seq for _, seq in records)])
    except (AntibodyError, InvalidSequenceError, ValueError) as err:
        st.error(_one_line(err))
        return
    except RuntimeError as err:  # e.g. out of memory
        st.error(f"redesign failed: {_one_line(err)}")
        return
    st.session_state["cdr_result"] = RedesignRun(
        plan.parent, dict(plan.numbering.regions), plan.numbering.chain_type or "?", plan.cdrs[0], plan.spans[0],
        label, steps, records, found, span_nll, notes, account, parent_found, parent_nll, checks,
    )  # fmt: skip


def engineers_checks(sequences: list[str]) -> list[str]:
    """ "ok" or the flags of each sequence (canonical residues, CDR lengths against the real repertoire): a new loop
    length the repertoire has rarely or never seen is flagged here, beside the design."""
    from protein_didi.protein.engineer_checks import check_designs, checks_frame
    from protein_didi.protein.numbering import number_antibodies

    return checks_frame(check_designs(number_antibodies(sequences)))["checks"].tolist()


def loop_lengths(cdrs: tuple[str, ...], header: str) -> list[int]:
    """CDR lengths of a design from its FASTA header (``… H3:12``)."""
    return [int(re.search(rf"\b{name}:(\d+)", header).group(1)) for name in cdrs]  # type: ignore[union-attr]


def iglm_span_nlls(
    designs: list[str], spans: list[tuple[int, int]], chain: str
) -> tuple[list[float] | None, str | None]:
    """IgLM NLL (nats/residue) of each design's loop given the residues before it, or None and why not.

    IgLM is optional (non-commercial licence): without it the tab says how to add it and shows the rest.
    """
    from protein_didi.eval.iglm_judge import iglm_available, load_iglm

    if not iglm_available():
        return (
            None,
            "IgLM span NLL not shown: the iglm package is not installed (pip install -e .[iglm]; non-commercial)",
        )
    try:
        judge = load_iglm()
        return [
            judge.span_nll(seq, span, chain=chain).per_residue for seq, span in zip(designs, spans, strict=True)
        ], None
    except Exception as err:  # optional judge: its failure costs its column only
        return None, f"IgLM span NLL not computed: {_one_line(err)}"


def region_strip(sequence: str, regions: dict[str, tuple[int, int]]) -> str:
    """The parent as a residue strip, each IMGT region in its colour (title = region name)."""
    parts = []
    for name, (start, end) in sorted(regions.items(), key=lambda kv: kv[1]):
        if end <= start:
            continue
        colour = REGION_COLOURS.get(name, REGION_COLOURS["FR"])
        parts.append(
            f'<span class="region" title="{name} {start + 1}–{end}" style="background:{colour}">'
            f"{html.escape(sequence[start:end])}</span>"
        )
    return f'<div style="{MONO}">' + "".join(parts) + "</div>"


def region_table(sequence: str, regions: dict[str, tuple[int, int]]) -> pd.DataFrame:
    rows = [
        {"region": name, "from": start + 1, "to": end, "length": end - start, "residues": sequence[start:end]}
        for name, (start, end) in sorted(regions.items(), key=lambda kv: kv[1])
    ]
    return pd.DataFrame(rows)


def design_span(run: RedesignRun, header: str) -> tuple[int, int]:
    """Index span of the redesigned CDR in a design, from the ``H3:12`` length in its FASTA header."""
    match = re.search(rf"\b{run.cdr}:(\d+)", header)
    start, end = run.span
    return start, start + (int(match.group(1)) if match else end - start)


def highlighted(sequence: str, span: tuple[int, int], marks: Sequence[Liability] = ()) -> str:
    """The design with its redesigned span in a highlighted ``<span>``, liability residues underlined in red."""
    start, end = span
    flagged = {i for x in marks for i in range(x.start, x.end) if start <= i < end}
    loop = "".join(
        f'<u class="liability" style="{LIABILITY_MARK}">{html.escape(a)}</u>'
        if start + k in flagged
        else html.escape(a)
        for k, a in enumerate(sequence[start:end])
    )
    return (
        html.escape(sequence[:start])
        + f'<span class="redesigned" style="{HIGHLIGHT}">{loop}</span>'
        + html.escape(sequence[end:])
    )


def design_label(run: RedesignRun, k: int) -> str:
    """What sits beside each design: IgLM span NLL and its loop liabilities (or none)."""
    parts = []
    if run.span_nll is not None:
        parts.append(f"IgLM {run.cdr} NLL {run.span_nll[k]:.2f} nats/res.")
    found = run.liabilities[k] if k < len(run.liabilities) else []
    text = "; ".join(f"{x.kind} {x.motif} {x.position}" for x in found) or "none"
    parts.append(f"liabilities in {run.cdr}: {text}")
    return " · ".join(html.escape(p) for p in parts)


def show_result(run: RedesignRun) -> None:
    st.divider()
    kind = "heavy" if run.chain_type == "H" else "light"
    st.markdown(f"**Parent** ({kind} chain, {run.chain_type}; IMGT regions)")
    st.markdown(region_strip(run.parent, run.regions), unsafe_allow_html=True)
    st.dataframe(region_table(run.parent, run.regions), hide_index=True, key="cdr_regions")
    st.markdown(
        f"**{len(run.records)} designs** of {run.cdr} from {run.model} at NFE {run.nfe} (redesigned span highlighted)"
    )
    for note in run.notes:
        st.caption(note)
    if run.account is not None:
        show_account(run.account)
    rows = "".join(
        f'<div><b>{html.escape(header.split()[0])}</b> <span class="design-info">{design_label(run, k)}</span><br>'
        f"{highlighted(seq, design_span(run, header), run.liabilities[k] if run.liabilities else [])}</div>"
        for k, (header, seq) in enumerate(run.records)
    )
    st.markdown(f'<div style="{MONO}">{rows}</div>', unsafe_allow_html=True)
    st.dataframe(design_table(run), hide_index=True, key="cdr_designs")
    fasta = "".join(f">{header}\n{seq}\n" for header, seq in run.records)
    st.download_button("Download FASTA", fasta, f"redesign_{run.cdr}.fasta", "text/plain", on_click="ignore")
    from protein_ui.structure_tab import redesign_structures  # IgFold (optional extra): parent and a design in 3D

    redesign_structures(run.parent, run.records, run.cdr)


def account_rows(account: Any) -> pd.DataFrame:
    """The liability filter's account as rows that add up: drawn = kept + refused + clean extras not kept."""
    kept, refused, surplus = len(account.records), account.refused_designs, account.surplus
    by_class = ", ".join(f"{k} {n}" for k, n in account.refused.items() if n) or "none"
    return pd.DataFrame(
        [
            {"designs": "drawn", "count": account.drawn, "what": f"sampled to find {account.asked} clean designs"},
            {"designs": "kept", "count": kept, "what": f"free of {', '.join(account.classes)} in the loop"},
            {"designs": "refused", "count": refused, "what": f"carried a liability ({by_class}; a design may carry "
             "several)"},
            {"designs": "clean extras not kept", "count": surplus, "what": f"clean, beyond the {account.asked} asked "
             "(a resampling round overshoots)"},
        ]
    )  # fmt: skip


def show_account(account: Any) -> None:
    """One line that adds up, and the rows behind it."""
    kept, refused, surplus = len(account.records), account.refused_designs, account.surplus
    line = (
        f"Liability account: {account.drawn} drawn = {kept} kept + {refused} refused + {surplus} clean "
        f"extra{'s' if surplus != 1 else ''} not kept"
    )
    if kept + refused + surplus != account.drawn:  # never expected: say so rather than show an account that is off
        line += f" (does not add up: {kept + refused + surplus} accounted for)"
    st.caption(line)
    st.dataframe(account_rows(account), hide_index=True, key="cdr_account")


def design_table(run: RedesignRun) -> pd.DataFrame:
    """The parent's own loop as a baseline row, then one row per design: loop, its length, liabilities with
    positions, IgLM span NLL (when IgLM is installed), the engineers' checks."""
    start, end = run.span
    parent = run.parent[start:end]
    rows = [
        {
            "design": "parent (baseline)",
            run.cdr: parent,
            "length": len(parent),
            "liabilities": "; ".join(f"{x.kind} {x.motif} {x.position}" for x in run.parent_liabilities) or "none",
        }
    ]
    if run.span_nll is not None and run.parent_nll is not None:
        rows[0][f"IgLM {run.cdr} NLL (nats/res.)"] = round(run.parent_nll, 3)
    if run.checks:
        rows[0]["engineers' checks"] = run.checks[0]
    for k, (header, seq) in enumerate(run.records):
        start, end = design_span(run, header)
        found = run.liabilities[k] if k < len(run.liabilities) else []
        row = {
            "design": header.split()[0],
            run.cdr: seq[start:end],
            "length": end - start,
            "liabilities": "; ".join(f"{x.kind} {x.motif} {x.position}" for x in found) or "none",
        }
        if run.span_nll is not None:
            row[f"IgLM {run.cdr} NLL (nats/res.)"] = round(run.span_nll[k], 3)
        if run.checks:
            row["engineers' checks"] = run.checks[k + 1]
        rows.append(row)
    return pd.DataFrame(rows)
