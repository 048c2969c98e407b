"""The app's IgFold views through AppTest: the missing extra and a non-antibody are one warning each; the CDR-redesign
tab folds the parent and a design with the redesigned loop highlighted."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
from conftest import needs_anarci
from streamlit.testing.v1 import AppTest

APP = Path(__file__).resolve().parents[1] / "apps" / "protein_app.py"
TIMEOUT = 120  # the first script run imports torch
HEAVY = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYW"
    "GQGTLVTVSS"
)


@pytest.fixture
def igfold_env(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """IgFold with one ensemble member and an empty app cache, so the chains really fold (and fast)."""
    pytest.importorskip("igfold")
    from protein_didi.protein.antiberty_weights import AntibertyWeightsMissing, resolve_antiberty_weights

    try:
        weights = resolve_antiberty_weights()
    except AntibertyWeightsMissing as err:
        pytest.skip(str(err))
    monkeypatch.setenv("ANTIBERTY_WEIGHTS_DIR", str(weights.folder))
    monkeypatch.setenv("PROTEIN_DIDI_CACHE", str(tmp_path))
    monkeypatch.setenv("PROTEIN_DIDI_IGFOLD_MODELS", "1")


def _fold_pasted(sequence: str) -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.radio(key="fold_source").set_value("Fold an antibody (IgFold)")
    at.run()
    at.text_area(key="ab_paste").set_value(sequence)
    at.button(key="ab_run").click()
    return at.run()


def test_missing_extra_is_one_warning(monkeypatch: pytest.MonkeyPatch) -> None:
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "igfold" else real(n, *a))
    at = _fold_pasted(HEAVY)
    assert not at.exception and not at.error, [e.value for e in at.error]
    (warning,) = [w.value for w in at.warning]
    assert "pip install -e .[igfold]" in warning and "non-commercial" in warning


@needs_anarci
def test_non_antibody_gets_its_reason(igfold_env: None) -> None:
    at = _fold_pasted("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQ")
    assert not at.exception and not at.error, [e.value for e in at.error]
    (warning,) = [w.value for w in at.warning]
    assert warning == "IgFold did not fold pasted chain: not an antibody V domain (ANARCI cannot number it)."


@needs_anarci
def test_redesign_tab_shows_parent_and_design_structures(igfold_env: None) -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.text_area(key="cdr_parent").set_value(HEAVY)
    at.radio(key="cdr_name").set_value("H3")
    at.selectbox(key="cdr_model").set_value("teacher")
    at.number_input(key="cdr_num").set_value(2)
    at.number_input(key="cdr_nfe").set_value(4)
    at.button(key="cdr_run").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    at.button(key="cdr_fold_run").click()
    at.run()
    assert not at.exception and not at.error, [e.value for e in at.error]
    (folds,) = at.session_state["cdr_folded"].values()
    parent, design = folds
    assert parent.sequence == HEAVY and parent.reason is None and design.reason is None
    assert parent.mean_prmsd < 0.8 and "H3" in design.cdr_spans  # the redesigned loop is there to highlight
    captions = [c.value for c in at.caption if "least certain" in c.value]
    assert len(captions) == 2  # two structures side by side
    # next to every pRMSD: it is IgFold's confidence, not a measured error (and a lower one is not a better loop)
    statements = [c.value for c in at.caption if "pRMSD is IgFold's confidence in its own prediction, not a measured "
                  "error" in c.value]  # fmt: skip
    assert len(statements) == 3 and any("is not thereby a better loop" in s for s in statements), statements
    # the PDBs offered are IMGT-numbered (ANARCI's labels known for both chains), as fold.antibody writes them
    assert parent.imgt and design.imgt
    assert [d.label for d in at.get("download_button")].count("Download PDB (IMGT-numbered)") == 2
