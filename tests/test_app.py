"""The Streamlit app through ``streamlit.testing.v1.AppTest`` (no browser, no server)."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
from streamlit.testing.v1 import AppTest

from protein_didi.protein.alphabet import STANDARD_AA
from protein_didi.protein.pretrained import CHECKPOINT_DIR

APP = Path(__file__).resolve().parents[1] / "apps" / "protein_app.py"
# The embedded student ships later: until protein_didi/checkpoints/student exists these tests use the
# embedded teacher in its place. Once the student is committed, delete the fallback (always "student").
STUDENT = "student" if (CHECKPOINT_DIR / "student" / "config.json").is_file() else "teacher"
TIMEOUT = 120  # seconds per script run; the first one imports torch and transformers


@pytest.fixture()
def app() -> AppTest:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    assert not at.exception, [e.message for e in at.exception]
    return at


def _generate(at: AppTest, model: str, num: int, length: int, nfe: int) -> AppTest:
    at.selectbox(key="gen_model").set_value(model)
    at.run()
    at.number_input(key="gen_num").set_value(num)
    at.number_input(key="gen_length").set_value(length)
    at.number_input(key="gen_nfe").set_value(nfe)
    at.checkbox(key="gen_judge").set_value(False)
    at.button(key="gen_run").click()
    return at.run()


def _errors(at: AppTest) -> list[str]:
    return [e.value for e in at.error]


def test_app_runs_without_exception(app: AppTest) -> None:
    assert not _errors(app)
    assert [t.label for t in app.tabs] == ["Generate", "Compare", "Structure", "Diversity", "CDR redesign"]
    assert "teacher (embedded teacher)" in app.selectbox(key="gen_model").options
    assert app.number_input(key="gen_num").value == 4
    assert app.number_input(key="gen_length").value == 100
    assert app.number_input(key="gen_nfe").value == 8
    if app.selectbox(key="gen_model").value == "teacher":  # no discriminator: RGAS cannot be chosen
        assert app.radio(key="gen_sampler").disabled and app.radio(key="gen_sampler").value == "ancestral"


def test_generate_with_embedded_student(app: AppTest) -> None:
    at = _generate(app, STUDENT, num=3, length=32, nfe=4)
    assert not at.exception and not _errors(at), _errors(at)
    run = at.session_state["run"]
    assert len(run.seqs) == 3
    assert all(len(s) == 32 and set(s) <= set(STANDARD_AA) for s in run.seqs)
    assert run.model == STUDENT
    table = next(df.value for df in at.dataframe if "sequence" in df.value.columns)
    assert list(table["sequence"]) == run.seqs
    fasta = next(c.value for c in at.code if c.value.startswith(">"))
    assert fasta.count(">") == 3
    assert [d.label for d in at.get("download_button")] == ["Download FASTA", "Download CSV"]


def test_generate_is_deterministic_per_seed(app: AppTest) -> None:
    first = _generate(app, "teacher", num=2, length=20, nfe=2).session_state["run"].seqs
    at = app
    at.button(key="gen_run").click()
    assert at.run().session_state["run"].seqs == first


@pytest.mark.parametrize(
    ("prefix", "motif", "expected"),
    [
        ("", "5:W1", "not POSITION:RESIDUES"),
        ("", "5:WJW", "J"),
        ("", "", "motif is empty"),
        ("MK1", "", "invalid residue '1'"),
        ("", "500:W", "motif reaches position 500"),
    ],
)
def test_bad_motif_shows_error(app: AppTest, prefix: str, motif: str, expected: str) -> None:
    at = app
    at.checkbox(key="gen_fix").set_value(True)
    at.run()
    at.text_input(key="gen_prefix").set_value(prefix)
    at.text_input(key="gen_motif").set_value(motif)
    at.button(key="gen_run").click()
    at.run()
    assert not at.exception
    errors = _errors(at)
    assert errors and any(expected.lower() in e.lower() for e in errors), errors
    assert "run" not in at.session_state


def test_good_motif_is_kept(app: AppTest) -> None:
    at = app
    at.checkbox(key="gen_fix").set_value(True)
    at.run()
    at.text_input(key="gen_prefix").set_value("MKT")
    at.text_input(key="gen_motif").set_value("10:WW")
    at = _generate(at, "teacher", num=2, length=24, nfe=2)
    assert not _errors(at), _errors(at)
    assert all(s.startswith("MKT") and s[9:11] == "WW" for s in at.session_state["run"].seqs)


@pytest.mark.parametrize(
    ("key", "value", "expected"),
    [
        ("gen_length", 1025, "length must be a whole number from 1 to 1022"),
        ("gen_length", 0, "length must be"),
        ("gen_num", 0, "number of sequences"),
        ("gen_num", 10_000, "number of sequences"),
        ("gen_nfe", 0, "NFE"),
    ],
)
def test_bad_settings_show_error(app: AppTest, key: str, value: int, expected: str) -> None:
    at = app
    at.number_input(key=key).set_value(value)
    at.button(key="gen_run").click()
    at.run()
    assert not at.exception
    assert any(expected in e for e in _errors(at)), _errors(at)


def test_batch_too_large_for_the_server(app: AppTest) -> None:
    at = app
    at.number_input(key="gen_num").set_value(200)
    at.number_input(key="gen_length").set_value(1000)
    at.number_input(key="gen_nfe").set_value(64)
    at.button(key="gen_run").click()
    at.run()
    assert not at.exception
    assert any("batch too large" in e for e in _errors(at)), _errors(at)
    assert "run" not in at.session_state


def test_path_that_is_not_a_checkpoint(app: AppTest, tmp_path: Path) -> None:
    at = app
    at.selectbox(key="gen_model").set_value("Checkpoint folder…")
    at.run()
    at.text_input(key="gen_model_path").set_value(str(tmp_path))
    at.run()
    assert not at.exception
    assert any("not a model folder" in e for e in _errors(at)), _errors(at)
    (tmp_path / "file.txt").write_text("x")
    at.text_input(key="gen_model_path").set_value(str(tmp_path / "file.txt"))
    at.run()
    assert any("is not a folder" in e for e in _errors(at)), _errors(at)
    assert any("Choose a model that loads" in w.value for w in at.warning)


def test_checkpoint_folder_loads(app: AppTest, tmp_path: Path) -> None:
    shutil.copytree(CHECKPOINT_DIR / "teacher", tmp_path / "my_model")
    at = app
    at.selectbox(key="gen_model").set_value("Checkpoint folder…")
    at.run()
    at.text_input(key="gen_model_path").set_value(str(tmp_path / "my_model"))
    at.run()
    at = _generate(at, "Checkpoint folder…", num=2, length=16, nfe=2)
    assert not at.exception and not _errors(at), _errors(at)
    assert at.session_state["run"].ids == ["my_model_0001", "my_model_0002"]


def test_comparison_shows_both_models(app: AppTest) -> None:
    at = app
    at.selectbox(key="cmp_a").set_value("teacher")
    at.selectbox(key="cmp_b").set_value(STUDENT)
    at.radio(key="cmp_settings").set_value("same")  # the same NFE for both (the default: each model's own)
    at.run()
    at.number_input(key="cmp_num").set_value(2)
    at.number_input(key="cmp_length").set_value(24)
    at.number_input(key="cmp_nfe").set_value(4)
    at.checkbox(key="cmp_judge").set_value(False)
    at.button(key="cmp_run").click()
    at.run()
    assert not at.exception and not _errors(at), _errors(at)
    runs = at.session_state["compare"]
    assert [r.model for r in runs] == ["A: teacher", f"B: {STUDENT}"]
    assert all(len(r.seqs) == 2 and r.request.nfe == 4 and r.request.seed == 0 for r in runs)
    assert all(r.request.sampler == "ancestral" and not r.antibody for r in runs)
    headings = [m.value for m in at.markdown]
    assert "#### A: teacher" in headings and f"#### B: {STUDENT}" in headings
    summary = next(df.value for df in at.dataframe if "ms / sequence" in df.value.columns)
    assert list(summary["model"]) == ["A: teacher", f"B: {STUDENT}"]
    assert (summary["ms / sequence"] > 0).all()
    assert [m.label for m in at.metric].count("time / sequence") == 2


def test_fold_without_weights_shows_how_to_provide_them(app: AppTest, tmp_path: Path) -> None:
    at = _generate(app, "teacher", num=2, length=20, nfe=2)
    at.text_input(key="esmfold_path").set_value(str(tmp_path))  # a folder without ESMFold weights
    at.run()
    at.button(key="fold_run").click()
    at.run()
    assert not at.exception
    warnings = [w.value for w in at.warning]
    assert any("ESMFold weights are not available" in w and "sidebar" in w for w in warnings), warnings
    assert at.session_state["run"] is not None  # the rest of the app keeps working
    assert [t.label for t in at.tabs] == ["Generate", "Compare", "Structure", "Diversity", "CDR redesign"]


def test_fold_view_with_local_weights(app: AppTest, tmp_path: Path) -> None:
    """A local ESMFold folder (here: the random-weight tiny test model) folds and shows the viewer and plot."""
    from protein_didi.fold.testing import tiny_esmfold

    tiny_esmfold(seed=0).save_pretrained(tmp_path / "esmfold")
    at = _generate(app, "teacher", num=2, length=20, nfe=2)
    at.text_input(key="esmfold_path").set_value(str(tmp_path / "esmfold"))
    at.run()
    at.button(key="fold_run").click()
    at.run()
    assert not at.exception and not _errors(at), _errors(at)
    structure = next(iter(at.session_state["folded"].values()))
    assert len(structure["plddt"]) == 20 and 0 <= structure["mean_plddt"] <= 100
    assert any("20 residues" in c.value for c in at.caption)
    assert len(at.image) == 1, "no pLDDT plot"
    assert "Download PDB" in [d.label for d in at.get("download_button")]


def test_uploaded_pdb(app: AppTest) -> None:
    pdb = "\n".join(
        f"ATOM  {i + 1:5d}  CA  ALA A{i + 1:4d}    {3.8 * i:8.3f}   0.000   0.000  1.00{40 + 5 * i:6.2f}           C"
        for i in range(10)
    )
    at = app
    at.radio(key="fold_source").set_value("Upload a PDB file")
    at.run()
    at.get("file_uploader")[0].set_value(("tiny.pdb", pdb.encode(), "chemical/x-pdb"))
    at.run()
    assert not at.exception and not _errors(at), _errors(at)
    assert any("10 residues · 10 atoms" in c.value for c in at.caption)
    at.get("file_uploader")[0].set_value(("bad.pdb", b"\x89PNG\x00\x01", "chemical/x-pdb"))
    at.run()
    assert not at.exception
    assert any("cannot show this structure" in e for e in _errors(at)), _errors(at)


def test_diversity(app: AppTest) -> None:
    at = _generate(app, "teacher", num=4, length=30, nfe=2)
    at.button(key="div_run").click()
    at.run()
    assert not at.exception and not _errors(at), _errors(at)
    labels = {m.label: m.value for m in at.metric}
    assert {"clusters", "cluster entropy", "mean cluster size"} <= set(labels)
    assert 1 <= int(labels["clusters"]) <= 4
