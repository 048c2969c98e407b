"""Sidebar: the model every tab generates with, ESMFold weights, server limits."""

from __future__ import annotations

import os

import streamlit as st

from protein_didi.core.precision import PRECISIONS
from protein_didi.protein.alphabet import MAX_RESIDUES
from protein_ui.common import (
    DEFAULT_ESMFOLD,
    ESMFOLD_ENV,
    MAX_NUM,
    MAX_RESIDUE_STEPS,
    REFERENCE_PARAMS,
    AppState,
)
from protein_ui.model_settings import follow_model
from protein_ui.models import (
    available_models,
    device_name,
    model_picker,
    num_params,
)


def sidebar() -> AppState:
    with st.sidebar:
        st.header("protein_didi")
        st.selectbox(
            "Precision",
            PRECISIONS,
            key="precision",
            help="auto: bf16 where the device has native bf16 (recent GPUs, CPUs with AVX512-BF16/AMX), else fp32. "
            "int8 (CPU only) quantises the linear layers.",
        )
        name, loaded = model_picker("Model", "gen_model", "student" if "student" in available_models() else None)
        follow_model(name, loaded)  # before any tab draws its widgets: they take the new model's settings
        if loaded is not None:
            st.caption(
                f"role: {loaded.role} · {num_params(loaded) / 1e6:.1f}M parameters · device {device_name()} "
                f"· {loaded.precision}"
            )
        st.divider()
        st.text_input(
            "ESMFold weights",
            key="esmfold_path",
            placeholder=os.environ.get(ESMFOLD_ENV) or DEFAULT_ESMFOLD,
            help=f"A local folder with ESMFold weights (or a hub id). Default: ${ESMFOLD_ENV} or {DEFAULT_ESMFOLD}.",
        )
        st.caption(
            f"Limits: ≤ {MAX_NUM} sequences, ≤ {MAX_RESIDUES} residues, and sequences × residues × NFE "
            f"≤ {MAX_RESIDUE_STEPS:,} for a {REFERENCE_PARAMS / 1e6:.0f}M-parameter model (less for bigger ones)."
        )
    return AppState(name, loaded)
