"""The app's CDR redesign tab through AppTest: framework kept, span highlighted, one-line errors."""

from __future__ import annotations

import importlib.util
import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from protein_didi.protein.pretrained import CHECKPOINT_DIR

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
    reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed",
)
APP = Path(__file__).resolve().parents[1] / "apps" / "protein_app.py"
TIMEOUT = 120  # the first script run imports torch


@pytest.fixture(scope="module")
def heavy() -> tuple[str, tuple[int, int]]:
    """A natural heavy chain from the shipped set and its CDR-H3 span."""
    from protein_didi.eval.antibody import load_natural_antibodies
    from protein_didi.eval.numbering import number_antibodies

    seqs = [s for _, s in load_natural_antibodies(("mature", "germline_vj"))]
    for n in number_antibodies(seqs[:40]):
        if n.numbered and n.chain_type == "H" and n.regions["CDR3"][1] > n.regions["CDR3"][0]:
            return n.sequence, n.regions["CDR3"]
    pytest.fail("no heavy chain among the shipped natural antibodies")


def _redesign(parent: str, cdr: str = "H3") -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    at.text_area(key="cdr_parent").set_value(parent)
    at.radio(key="cdr_name").set_value(cdr)
    at.number_input(key="cdr_lo").set_value(8)
    at.number_input(key="cdr_hi").set_value(10)
    at.selectbox(key="cdr_model").set_value("teacher")
    at.number_input(key="cdr_num").set_value(2)
    at.number_input(key="cdr_nfe").set_value(4)
    at.button(key="cdr_run").click()
    return at.run()


def test_redesign_tab_keeps_the_framework_and_highlights_the_span(heavy) -> None:
    parent, (start, end) = heavy
    at = _redesign(parent)
    assert not at.exception and not at.error, [e.value for e in at.error]
    assert "CDR redesign" in [t.label for t in at.tabs]
    options = at.selectbox(key="cdr_model").options
    if (CHECKPOINT_DIR / "antibody-student" / "config.json").is_file():
        assert "antibody-student (antibody student (DiDi-Instruct), 8 steps)" in options
    if importlib.util.find_spec("antiberty") is not None:
        assert "antiberty (AntiBERTy antibody teacher)" in options
    run = at.session_state["cdr_result"]
    assert len(run.records) == 2
    html = "".join(m.value for m in at.markdown)
    assert 'class="region"' in html and "CDR3" in html
    for _, design in run.records:
        n = len(design) - (len(parent) - (end - start))
        assert 8 <= n <= 10
        assert design[:start] == parent[:start] and design[start + n :] == parent[end:]
        assert (
            f'<span class="redesigned" style="background:#ffd54f;font-weight:600">{design[start : start + n]}</span>'
            in html
        )
    assert any(b.label == "Download FASTA" for b in at.get("download_button"))


@pytest.mark.parametrize(
    ("parent", "cdr", "expected"),
    [
        ("MKVLAAGEQKKLLEEAGTTLSAAQWRRLLEEV", "H3", "could not be numbered"),
        (None, "L3", "parent is a heavy chain"),
    ],
)
def test_bad_parent_shows_one_error(heavy, parent: str | None, cdr: str, expected: str) -> None:
    at = _redesign(parent or heavy[0], cdr)
    assert not at.exception
    assert len(at.error) == 1 and expected in at.error[0].value, [e.value for e in at.error]
    assert "cdr_result" not in at.session_state
