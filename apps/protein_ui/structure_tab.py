"""Structure tab: fold a generated sequence with ESMFold or view an uploaded PDB."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import matplotlib.pyplot as plt
import numpy as np
import streamlit as st

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.viz import PLDDT_BANDS, InvalidStructureError, parse_pdb, structure_html
from protein_ui.common import (
    DEFAULT_ESMFOLD,
    ESMFOLD_ENV,
    MAX_UPLOAD_MB,
    VIEWER_HEIGHT,
    VIEWER_WIDTH,
    AppState,
    _one_line,
)
from protein_ui.models import (
    device_name,
)
from protein_ui.runs import (
    Run,
)

TITLE = "Structure"


def render(app: AppState) -> None:
    """Draw the tab (the entry file calls this inside the tab)."""
    structure_tab()


def esmfold_setting() -> str:
    return st.session_state.get("esmfold_path") or os.environ.get(ESMFOLD_ENV) or DEFAULT_ESMFOLD


@st.cache_resource(max_entries=1, show_spinner="Loading ESMFold…")
def get_folder(model: str, device: str) -> Any:
    from protein_didi.eval.fold import Folder

    return Folder(model=model, device=device)


def fold_sequence(seq: str) -> dict[str, Any] | None:
    """Fold with ESMFold; on missing weights show how to provide them and return None."""
    weights = esmfold_setting()
    try:
        from protein_didi.eval.fold import FoldingUnavailable
    except ImportError as err:
        st.warning(f"Folding is unavailable in this install: protein_didi.eval.fold ({_one_line(err)}).")
        return None
    try:
        with st.spinner("Folding with ESMFold (minutes on a CPU)…"):
            result = get_folder(weights, device_name()).fold([seq])[0]
    except (FoldingUnavailable, CheckpointError, OSError) as err:
        st.warning(
            f"ESMFold weights are not available: {_one_line(err)}\n\n"
            f"In this app: download them where the hub is reachable (`huggingface-cli download {DEFAULT_ESMFOLD} "
            "--local-dir DIR`, about 8 GB), copy DIR to this machine and put its path in **ESMFold weights** in "
            f"the sidebar (or start the app with `{ESMFOLD_ENV}=DIR`). Meanwhile *Upload a PDB file* shows any "
            "structure, and the rest of the app works as usual."
        )
        return None
    except Exception as err:
        st.error(f"folding failed: {_one_line(err)}")
        return None
    return {
        "pdb": result.pdb,
        "plddt": np.asarray(result.plddt, dtype=float),
        "mean_plddt": float(result.mean_plddt),
        "name": "",
        "source": f"ESMFold ({weights})",
    }


def plddt_figure(values: np.ndarray, ylabel: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(10, 2.4), dpi=100)
    for band in PLDDT_BANDS:
        ax.axhspan(band.low, band.high, color=band.color, alpha=0.18, lw=0)
    ax.plot(np.arange(1, len(values) + 1), values, color="#262730", lw=1.2)
    ax.set(xlim=(1, max(len(values), 2)), ylim=(0, 100), xlabel="residue", ylabel=ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def structure_tab() -> None:
    st.subheader("Structure")
    source = st.radio(
        "Structure source",
        ["Fold a generated sequence (ESMFold)", "Upload a PDB file"],
        horizontal=True,
        key="fold_source",
    )
    structure: dict[str, Any] | None = None
    if source.startswith("Fold"):
        run: Run | None = st.session_state.get("run")
        if run is None:
            st.info("Generate sequences first (Generate tab), or upload a PDB file.")
            return
        pick = st.selectbox("Sequence", range(len(run.seqs)), format_func=lambda i: run.ids[i], key="fold_pick")
        seq = run.seqs[pick]
        st.code(seq, language=None, wrap_lines=True)
        st.caption(f"ESMFold weights: `{esmfold_setting()}` (change in the sidebar)")
        folded: dict[str, dict[str, Any]] = st.session_state.setdefault("folded", {})
        if st.button("Fold with ESMFold", key="fold_run"):
            result = fold_sequence(seq)
            if result is not None:
                folded[seq] = result | {"name": run.ids[pick]}
        structure = folded.get(seq)
    else:
        upload = st.file_uploader("PDB file", type=["pdb", "ent"], key="fold_upload", max_upload_size=MAX_UPLOAD_MB)
        if upload is None:
            st.info("Upload a .pdb file (e.g. from ESMFold, AlphaFold DB or the PDB) to view it.")
            return
        structure = {"pdb": upload.getvalue(), "plddt": None, "mean_plddt": None, "name": upload.name}
        structure["source"] = "uploaded file"
    if structure is not None:
        show_structure(structure)


def show_structure(structure: dict[str, Any]) -> None:
    try:
        parsed = parse_pdb(structure["pdb"])
    except InvalidStructureError as err:
        st.error(f"cannot show this structure: {err}")
        return
    plddt = structure["plddt"]
    if plddt is not None and len(plddt) != len(parsed.residues):
        plddt = None  # fall back to the PDB's B-factor column, which ESMFold fills with pLDDT
    uploaded = structure["source"] == "uploaded file"
    values = parsed.bfactors if plddt is None else np.asarray(plddt, dtype=float)
    values = values * 100 if values.size and values.max() <= 1 and values.min() >= 0 else values
    plausible = bool(values.size) and values.min() >= 0 and values.max() <= 100
    c1, c2 = st.columns(2)
    color_options = ["plddt", "spectrum", "chain"]
    color_by = c1.radio(
        "Colour by",
        color_options,
        index=0 if plausible else 1,
        horizontal=True,
        key="fold_color",
        format_func={"plddt": "pLDDT (B-factor)", "spectrum": "rainbow N→C", "chain": "chain"}.get,
    )
    style = c2.radio("Style", ["cartoon", "stick", "sphere", "line"], horizontal=True, key="fold_style")
    if uploaded and color_by == "plddt":
        st.caption(
            "The B-factor column holds pLDDT only for predicted structures (ESMFold, AlphaFold); "
            "for experimental structures it is a temperature factor."
        )
    mean = structure["mean_plddt"]
    title = structure["name"] + (f" · mean pLDDT {mean:.1f}" if mean is not None else "")
    note = "B-factor column of the uploaded file" if uploaded else "ESMFold pLDDT"
    html = structure_html(parsed, color_by, plddt, style, VIEWER_WIDTH, VIEWER_HEIGHT, title=title, plddt_source=note)
    st.iframe(html, height=VIEWER_HEIGHT + 90, alt=f"3D structure of {structure['name']}")
    st.caption(f"{len(parsed.residues)} residues · {parsed.num_atoms} atoms · source: {structure['source']}")
    if plausible:
        fig = plddt_figure(values, "B-factor (as pLDDT)" if uploaded else "pLDDT")
        st.pyplot(fig, width="stretch")
        plt.close(fig)
    elif color_by == "plddt":
        st.caption("B-factors lie outside 0–100, so they are not pLDDT; pick rainbow or chain colouring.")
    pdb_bytes = structure["pdb"] if isinstance(structure["pdb"], bytes) else structure["pdb"].encode()
    name = Path(structure["name"] or "structure").stem + ".pdb"
    st.download_button("Download PDB", pdb_bytes, name, "chemical/x-pdb", on_click="ignore", key="fold_download")
