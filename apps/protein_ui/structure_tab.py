"""Structure tab: fold a generated sequence with ESMFold, an antibody chain with IgFold, or view an uploaded PDB.

The IgFold view (optional non-commercial extra ``.[igfold]``) is also what the CDR-redesign tab shows
for the parent and its designs (:func:`redesign_structures`).
"""

from __future__ import annotations

import os
import re
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
PRMSD_IS_CONFIDENCE = (
    "pRMSD is IgFold's confidence in its own prediction, not a measured error: IgFold can be as confident about a "
    "broken design as about a natural chain, so a low pRMSD does not make a design correct or better"
)
ESMFOLD_OPTION = "Fold a generated sequence (ESMFold)"
IGFOLD_OPTION = "Fold an antibody (IgFold)"
UPLOAD_OPTION = "Upload a PDB file"
PASTE = "Paste a sequence"


def render(app: AppState) -> None:
    """Draw the tab (the entry file calls this inside the tab)."""
    structure_tab()


def esmfold_setting() -> str:
    return st.session_state.get("esmfold_path") or os.environ.get(ESMFOLD_ENV) or DEFAULT_ESMFOLD


@st.cache_resource(max_entries=1, show_spinner="Loading ESMFold…")
def get_folder(model: str, device: str) -> Any:
    from protein_didi.fold.esmfold import Folder

    return Folder(model=model, device=device)


def fold_sequence(seq: str) -> dict[str, Any] | None:
    """Fold with ESMFold; on missing weights show how to provide them and return None."""
    weights = esmfold_setting()
    try:
        from protein_didi.fold.result import FoldingUnavailable
    except ImportError as err:
        st.warning(f"Folding is unavailable in this install: protein_didi.fold ({_one_line(err)}).")
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
        [ESMFOLD_OPTION, IGFOLD_OPTION, UPLOAD_OPTION],
        index=None if "fold_source" in st.session_state else 0,  # the sidebar model sets it: IgFold for antibodies
        horizontal=True,
        key="fold_source",
    )
    structure: dict[str, Any] | None = None
    if source == IGFOLD_OPTION:
        antibody_section()
        return
    if source == ESMFOLD_OPTION:
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


# ---------------------------------------------------------------- antibodies (IgFold)


@st.cache_resource(max_entries=1, show_spinner="Loading IgFold…")
def get_igfold(device: str) -> Any:
    """IgFold on the machine's shared fold cache: a chain the report or ``fold.antibody`` folded opens at once."""
    from protein_didi.fold.igfold import IgFold, shared_igfold_cache

    return IgFold(device, shared_igfold_cache()).load()


def fold_antibody_chains(seqs: list[str], names: list[str]) -> list[Any] | None:
    """IgFold ``seqs`` (ANARCI picks heavy or light); None after one warning when IgFold cannot run here.

    Each result is an :class:`~protein_didi.fold.antibody.AntibodyFold`; one that ANARCI cannot number carries its
    one-line ``reason`` instead of a structure.
    """
    from protein_didi.fold.igfold import igfold_missing

    missing = igfold_missing()
    if missing is not None:
        st.warning(
            f"Antibody structures need IgFold: {missing}. It is free for non-commercial use only (JHU academic "
            "licence). The rest of the app works without it."
        )
        return None
    from protein_didi.fold.antibody import fold_antibodies
    from protein_didi.fold.result import FoldingUnavailable
    from protein_didi.protein.numbering import AntibodyError

    try:
        with st.spinner(f"Folding {len(seqs)} chain(s) with IgFold (a few seconds each on a CPU)…"):
            return fold_antibodies(seqs, names, get_igfold(device_name()))
    except (FoldingUnavailable, AntibodyError, ValueError, OSError) as err:
        st.warning(f"IgFold could not run: {_one_line(err)}")
    except Exception as err:  # never a traceback in the app
        st.error(f"folding failed: {_one_line(err)}")
    return None


def antibody_section() -> None:
    """Pick a generated sequence or paste a chain, fold it with IgFold, show it by predicted error with CDRs."""
    run: Run | None = st.session_state.get("run")
    options = [PASTE] + (list(range(len(run.seqs))) if run is not None else [])
    if run is not None and st.session_state.get("ab_pick_run") != run.run_id:  # a new batch: open on its first chain
        st.session_state["ab_pick_run"] = run.run_id
        st.session_state["ab_pick"] = 0
    pick = st.selectbox(
        "Antibody chain",
        options,
        index=None if "ab_pick" in st.session_state else 0,
        format_func=lambda i: i if isinstance(i, str) else run.ids[i],
        key="ab_pick",
    )
    if pick == PASTE:
        seq = "".join(st.text_area("Heavy or light chain V domain", key="ab_paste", height=100).split()).upper()
        name = "pasted chain"
    else:
        seq, name = run.seqs[pick], run.ids[pick]
        st.code(seq, language=None, wrap_lines=True)
    st.caption(
        "IgFold: antibody Fv structures with a per-residue predicted RMSD (pRMSD: IgFold's confidence, not a measured "
        "error); JHU academic licence, non-commercial."
    )
    folded: dict[str, Any] = st.session_state.setdefault("ab_folded", {})
    if st.button("Fold with IgFold", key="ab_run"):
        result = fold_antibody_chains([seq], [name]) if seq else None
        if not seq:
            st.warning("paste an antibody heavy or light chain V domain first")
        if result is not None:
            folded[seq] = result[0]
    fold = folded.get(seq)
    if fold is None:
        return
    if fold.reason is not None:
        st.warning(f"IgFold did not fold {name}: {fold.reason}.")
        return
    show_antibody(fold, name, key="ab_view")


def show_antibody(fold: Any, name: str, highlight: str | None = None, key: str = "ab") -> None:
    """One folded chain: 3D view by predicted RMSD with CDRs marked, per-CDR numbers, a per-residue plot, the PDB."""
    from protein_didi.viz.antibody import antibody_html

    mean = fold.mean_prmsd
    kind = "heavy" if fold.chain == "H" else "light"
    title = f"{name} · {kind} chain · mean pRMSD {mean:.2f} Å (IgFold's confidence, not an error)"
    page = antibody_html(fold.pdb, fold.prmsd, fold.cdr_spans, highlight, VIEWER_WIDTH, VIEWER_HEIGHT, title=title)
    st.iframe(page, height=VIEWER_HEIGHT + 110, alt=f"3D structure of {name}")
    cdrs = " · ".join(f"{c} {v:.2f} Å" for c, v in fold.cdr_prmsd.items())
    st.caption(
        f"{len(fold.sequence)} residues · {100 * float((fold.prmsd < 1.0).mean()):.0f} % under 1 Å · CDR mean pRMSD: "
        f"{cdrs} · least certain: {fold.worst_cdr} · natural V domains ≈ 0.3 Å, shuffled chains > 2 Å"
    )
    st.caption(PRMSD_IS_CONFIDENCE + ".")
    fig = prmsd_figure(fold.prmsd, fold.cdr_spans, highlight)
    st.pyplot(fig, width="stretch")
    plt.close(fig)
    from protein_didi.fold.antibody import imgt_numbered_pdb

    file = re.sub(r"[^A-Za-z0-9_.-]+", "_", name).strip("_") or "antibody"
    pdb = imgt_numbered_pdb(fold, title=name) if fold.imgt else fold.pdb  # IMGT numbers, pRMSD in the B-factors
    st.download_button("Download PDB (IMGT-numbered)", pdb.encode(), f"{file}_igfold_imgt.pdb", "chemical/x-pdb",
                       on_click="ignore", key=f"{key}_download")  # fmt: skip


def prmsd_figure(values: np.ndarray, cdrs: dict[str, tuple[int, int]], highlight: str | None = None) -> plt.Figure:
    """Predicted RMSD along the chain, CDRs shaded (the redesigned one darker), the 1 Å line dashed."""
    fig, ax = plt.subplots(figsize=(10, 2.4), dpi=100)
    for name, (start, end) in cdrs.items():
        if end > start:
            ax.axvspan(start + 0.5, end + 0.5, color="#D6008F", alpha=0.35 if name == highlight else 0.12, lw=0)
            ax.text((start + end + 1) / 2, 0.98, name, transform=ax.get_xaxis_transform(), ha="center", va="top")
    ax.plot(np.arange(1, len(values) + 1), values, color="#262730", lw=1.2)
    ax.axhline(1.0, color="grey", ls="--", lw=1)
    ax.set(xlim=(1, max(len(values), 2)), ylim=(0, max(2.5, float(np.max(values)) * 1.1)), xlabel="residue")
    ax.set_ylabel("pRMSD (Å)\nIgFold's confidence")
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def redesign_structures(parent: str, records: list[tuple[str, str]], cdr: str) -> None:
    """The CDR-redesign tab's structures: the parent's and one design's IgFold fold side by side, loop highlighted."""
    st.markdown(f"**Structures** (IgFold; {cdr} highlighted)")
    st.caption(
        f"{PRMSD_IS_CONFIDENCE}: a redesigned loop with a lower pRMSD than its parent's is not thereby a better loop."
    )
    names = [header.split()[0] for header, _ in records]
    pick = st.selectbox("Design to fold", range(len(records)), format_func=names.__getitem__, key="cdr_fold_pick")
    folded: dict[tuple[str, str], Any] = st.session_state.setdefault("cdr_folded", {})
    pair = (parent, records[pick][1])
    if st.button("Fold parent and design with IgFold", key="cdr_fold_run"):
        result = fold_antibody_chains(list(pair), ["parent", names[pick]])
        if result is not None:
            folded[pair] = result
    if pair not in folded:
        return
    for column, fold, name in zip(st.columns(2), folded[pair], ["parent", names[pick]], strict=True):
        with column:
            if fold.reason is not None:
                st.warning(f"IgFold did not fold {name}: {fold.reason}.")
            else:
                show_antibody(fold, name, highlight=cdr if cdr in fold.cdr_spans else None, key=f"cdr_{name}")
