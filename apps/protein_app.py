"""protein_didi web UI: ``streamlit run apps/protein_app.py``.

Generate proteins or antibody chains with an embedded model (or a checkpoint folder), each with
its own stored sampler settings; compare two models; fold a sequence with ESMFold or an antibody
with IgFold (or view an uploaded PDB); measure batch diversity; redesign an antibody's CDR loop.
Antibody models are scored as antibodies (valid chains, V identity, IgLM, liabilities, the
engineers' checks, IMGT-aligned diversity), protein models with the protein judge.
UI only: sampling, statistics, folding and clustering come from ``protein_didi``.

This file only wires the parts together: the sidebar picks the model, and each
tab lives in its own module under ``apps/protein_ui/`` (``TITLE`` + ``render``).
"""

from __future__ import annotations

import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import streamlit as st

HERE = Path(__file__).resolve().parent
sys.path.insert(0, str(HERE))  # protein_ui sits beside this file
sys.path.append(str(HERE.parent))  # a checkout without `pip install -e .`

from protein_ui import compare_tab, diversity_tab, generate_tab, redesign_tab, structure_tab  # noqa: E402
from protein_ui.sidebar import sidebar  # noqa: E402

TABS = (generate_tab, compare_tab, structure_tab, diversity_tab, redesign_tab)  # a new tab: one module + one entry here


def main() -> None:
    st.set_page_config(page_title="protein_didi", page_icon="🧬", layout="wide")
    st.title("protein_didi: few-step protein generation")
    app = sidebar()
    for tab, module in zip(st.tabs([m.TITLE for m in TABS]), TABS, strict=True):
        with tab:
            module.render(app)


main()
