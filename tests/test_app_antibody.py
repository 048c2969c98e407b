"""The app in antibody mode through AppTest: a model switch resets every sampler widget to the new model's stored
settings; antibody models are scored, compared and measured for diversity as antibodies (not with the UniProt judge
and MMseqs2); the Structure tab opens on IgFold; each design carries the engineers' checks."""

from __future__ import annotations

import importlib.util
import math
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import test_browser
from conftest import needs_anarci
from streamlit.testing.v1 import AppTest
from test_browser import _wait, driver, server  # noqa: F401 (driver and server are fixtures)

from protein_didi.protein.pretrained import CHECKPOINT_DIR, load_model
from protein_didi.protein.request import ProteinRequest

ROOT = Path(__file__).resolve().parents[1]
APP = ROOT / "apps" / "protein_app.py"
sys.path.insert(0, str(ROOT / "apps"))  # protein_ui, as the app itself imports it
TIMEOUT = 300  # seconds per script run: the first imports torch; antibody runs number chains with ANARCI
ANTIBODY = "antibody-student"
needs_models = pytest.mark.skipif(
    not all((CHECKPOINT_DIR / m / "config.json").is_file() for m in ("student", ANTIBODY, "antibody-student-idlm")),
    reason="the embedded student and antibody students are not in this checkout",
)
PROTEIN_ONLY = {"judge NLL (nats/res)", "composition KL", "low complexity"}
ANTIBODY_METRICS = {
    "valid chains", "heavy/light chimeras", "V-gene identity", "IgLM NLL (nats/res)", "liabilities / chain",
    "unique CDR-H3", "IMGT pairwise identity", "engineers' checks passed",
}  # fmt: skip
HEAVY = (  # trastuzumab VH
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYW"
    "GQGTLVTVSS"
)


def _ok(at: AppTest) -> None:
    assert not at.exception, [e.message for e in at.exception]
    assert not at.error, [e.value for e in at.error]


def _widgets(at: AppTest) -> dict[str, object]:
    return {
        "nfe": at.number_input(key="gen_nfe").value,
        "sampler": at.radio(key="gen_sampler").value,
        "temperature": at.slider(key="gen_temperature").value,
        "top_p": at.slider(key="gen_top_p").value,
        "order_temperature": at.slider(key="gen_order_temperature").value,
        "corrector_steps": at.number_input(key="gen_corrector_steps").value,
        "corrector_fraction": at.slider(key="gen_corrector_fraction").value,
        "corrector_temperature": at.slider(key="gen_corrector_temperature").value,
        "corrector_pick": at.radio(key="gen_corrector_pick").value,
    }


def _stored(name: str) -> dict[str, object]:
    loaded = load_model(name, "cpu")
    return ProteinRequest.recommended(loaded.info, loaded.role)


@needs_models
def test_switching_models_resets_every_sampler_widget() -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    _ok(at)
    at.selectbox(key="gen_model").set_value("student")
    at.run()
    assert _widgets(at) == _stored("student")
    # the user moves every sampler widget away from the student's settings …
    at.radio(key="gen_sampler").set_value("confidence")
    at.number_input(key="gen_corrector_steps").set_value(2)
    at.run()  # enables τ and the corrector settings
    at.slider(key="gen_order_temperature").set_value(2.0)
    at.slider(key="gen_temperature").set_value(1.5)
    at.slider(key="gen_top_p").set_value(0.5)
    at.number_input(key="gen_nfe").set_value(3)
    at.slider(key="gen_corrector_fraction").set_value(0.5)
    at.slider(key="gen_corrector_temperature").set_value(0.5)
    at.radio(key="gen_corrector_pick").set_value("confidence")
    at.run()
    assert _widgets(at)["order_temperature"] == 2.0 and _widgets(at)["corrector_pick"] == "confidence"
    # … and a model switch puts the new model's stored settings back in every one of them
    at.selectbox(key="gen_model").set_value(ANTIBODY)
    at.run()
    _ok(at)
    stored = _stored(ANTIBODY)
    assert stored["sampler"] == "confidence" and stored["order_temperature"] == 0.1  # the example
    assert _widgets(at) == stored
    assert at.number_input(key="gen_length").value == 120  # a V domain, not the protein default
    assert at.radio(key="fold_source").value == "Fold an antibody (IgFold)"  # the Structure tab opens on IgFold
    assert any("confidence τ 0.1 · 8 steps" in c.value and "stored with the model" in c.value for c in at.caption)
    at.selectbox(key="gen_model").set_value("student")
    at.run()
    assert _widgets(at) == _stored("student")
    assert at.radio(key="fold_source").value == "Fold a generated sequence (ESMFold)"


def _generate_antibodies(num: int) -> AppTest:
    """The app after Generate with the antibody student at its own settings (the sidebar switch applies them)."""
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="gen_model").set_value(ANTIBODY)
    at.run()
    at.number_input(key="gen_num").set_value(num)
    at.button(key="gen_run").click()
    at.run()
    return at


@pytest.fixture(scope="module")
def antibody_app() -> AppTest:
    """Three valid chains from the antibody student with its own settings (generated once for the read-only tests)."""
    return _generate_antibodies(3)


@needs_models
@needs_anarci
def test_generate_scores_antibodies_as_antibodies(antibody_app: AppTest) -> None:
    from protein_didi.eval.antibody import antibody_table
    from protein_didi.protein.engineer_checks import check_designs, checks_frame
    from protein_didi.protein.numbering import number_antibodies

    at = antibody_app
    _ok(at)
    run = at.session_state["run"]
    assert run.antibody and run.request.sampler == "confidence" and run.request.order_temperature == 0.1
    assert len(run.seqs) == 3
    labels = {m.label for m in at.metric}
    assert labels >= ANTIBODY_METRICS and not labels & PROTEIN_ONLY
    # valid chains only (as sample gives them), and the account of what was drawn adds up to the metric
    assert any(c.value.startswith("Valid-chain filter: 3 of 3 sequences are valid antibody chains") for c in at.caption)
    reference = antibody_table(run.seqs, iglm=False)
    assert reference["valid"].all()
    # every design carries the engineers' checks, as protein_didi.protein.engineer_checks computes them
    table = next(df.value for df in at.dataframe if "checks" in df.value.columns)
    expected = checks_frame(check_designs(number_antibodies(run.seqs)))
    for column in ("canonical", "CDR lengths", "checks"):
        assert list(table[column]) == list(expected[column])
    assert list(table["V gene"]) == list(reference["v_gene"]) and list(table["sequence"]) == run.seqs
    assert any(c.value.startswith("Engineer's checks:") and "J motif" in c.value for c in at.caption)
    if importlib.util.find_spec("iglm") is not None:
        assert all(0 < v < 10 and math.isfinite(v) for v in table["IgLM NLL"])


@needs_models
@needs_anarci
def test_diversity_is_imgt_aligned_for_antibodies(antibody_app: AppTest) -> None:
    from protein_didi.eval.antibody import imgt_identity_matrix, mean_pairwise_identity
    from protein_didi.protein.numbering import number_antibodies

    at = antibody_app
    run = at.session_state["run"]
    assert not [b for b in at.button if b.key == "div_run"]  # no MMseqs2 at 30 % for antibodies
    nums = number_antibodies(run.seqs)
    labels = {m.label: m.value for m in at.metric}
    assert labels["mean identity, heavy"] == f"{mean_pairwise_identity(nums)['H']:.1%}"
    table = next(df.value for df in at.dataframe if "nearest" in df.value.columns)
    heavy = [k for k, n in enumerate(nums) if n.chain_class == "H"]
    ident = imgt_identity_matrix([nums[k] for k in heavy])
    for row, k in enumerate(heavy):
        others = [j for j in range(len(heavy)) if j != row]
        best = max(others, key=lambda j: ident[row, j])
        line = table[table["id"] == run.ids[k]].iloc[0]
        assert line["nearest"] == run.ids[heavy[best]] and np.isclose(line["identity"], ident[row, best])


@needs_models
@needs_anarci
def test_structure_tab_opens_on_igfold_with_the_batch(antibody_app: AppTest) -> None:
    at = antibody_app
    assert at.radio(key="fold_source").value == "Fold an antibody (IgFold)"
    run = at.session_state["run"]
    assert at.selectbox(key="ab_pick").value == 0  # the first generated chain, ready to fold
    assert any(c.value == run.seqs[0] for c in at.code)


@needs_models
@needs_anarci
def test_compare_uses_each_models_settings_and_the_antibody_judge() -> None:
    at = AppTest.from_file(str(APP), default_timeout=TIMEOUT)
    at.run()
    at.selectbox(key="cmp_a").set_value(ANTIBODY)
    at.selectbox(key="cmp_b").set_value("antibody-student-idlm")
    at.run()
    assert at.number_input(key="cmp_length").value == 120
    at.number_input(key="cmp_num").set_value(2)
    at.button(key="cmp_run").click()
    at.run()
    _ok(at)
    a, b = at.session_state["compare"]
    for run, name in ((a, ANTIBODY), (b, "antibody-student-idlm")):
        stored = _stored(name)
        assert {k: getattr(run.request, k) for k in stored} == stored
        assert run.antibody and len(run.seqs) == 2
    assert a.request.sampler == "confidence" and a.request.order_temperature == 0.1
    summary = next(df.value for df in at.dataframe if "ms / sequence" in df.value.columns)
    assert {"valid chains", "V-gene identity", "unique CDR-H3", "settings"} <= set(summary.columns)
    assert not {"judge NLL", "composition KL"} & set(summary.columns)
    settings = ["confidence τ 0.1 · 8 steps · T 1 · top-p 1", "ancestral · 8 steps · T 1 · top-p 1"]
    assert list(summary["settings"]) == settings
    assert any("per valid chain" in c.value for c in at.caption)


def _timed(model: str, seconds: float) -> object:
    from protein_ui.runs import Run

    request = ProteinRequest(num=4, nfe=8)
    return Run(1, model, "student", "x", ["A"] * 4, seconds, request, None, {}, None, None)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("a", "b", "expected"),
    [
        (1.00, 0.98, "B and A take about the same time (245 vs 250 ms per sequence; within timing noise)."),
        (4.00, 1.00, "B is 4.0× faster than A (250 vs 1000 ms per sequence; it takes 0.25× the time)."),
        (1.00, 3.00, "A is 3.0× faster than B (250 vs 750 ms per sequence; it takes 0.33× the time)."),
    ],
)
def test_speed_line_says_one_thing(a: float, b: float, expected: str) -> None:
    from protein_ui.compare_tab import speed_line

    assert speed_line([_timed("A", a), _timed("B", b)]) == expected  # type: ignore[list-item]


@needs_anarci
def test_engineers_checks_flag_a_damaged_design() -> None:
    """A design with its Trp41 and J motif broken is flagged beside an intact one, and counted in the summary."""
    from protein_ui.runs import score_antibodies

    from protein_didi.protein.numbering import number_antibody

    n = number_antibody(HEAVY)
    index = dict(n.imgt)
    damaged = list(HEAVY)
    damaged[index["41"]] = "L"  # no Trp41
    damaged[index["118"]] = "A"  # WGQG → AGQG: no J motif
    table, summary, nums, notices = score_antibodies([HEAVY, "".join(damaged)], ["intact", "damaged"], iglm=False)
    assert nums is not None and not notices
    (intact, damaged_checks), (all_there, missing) = list(table["checks"]), list(table["canonical"])
    assert intact == "ok" and all_there == "all"
    assert "Trp41" in damaged_checks and "J motif" in damaged_checks and "Trp41" in missing and "J motif" in missing
    assert summary["checks_ok"] == 0.5
    assert "IgLM NLL" not in table.columns and summary["iglm_nll"] is None


@needs_models
def test_without_anarci_each_antibody_step_says_so_in_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    real = shutil.which
    monkeypatch.setattr(shutil, "which", lambda name, *a, **k: None if name == "hmmscan" else real(name, *a, **k))
    at = _generate_antibodies(2)
    assert not at.exception
    (error,) = [e.value for e in at.error]
    assert "hmmscan" in error and "untick 'Valid chains only'" in error and "--allow-invalid" not in error
    assert "run" not in at.session_state
    at.checkbox(key="gen_valid_only").set_value(False)
    at.button(key="gen_run").click()
    at.run()
    _ok(at)
    run = at.session_state["run"]
    assert len(run.seqs) == 2 and run.numberings is None and run.account is None
    assert any("antibody metrics unavailable" in n and "hmmscan" in n for n in run.notices)


@needs_models
@pytest.mark.slow
def test_browser_model_switch_shows_the_new_models_settings(server: str, driver: object) -> None:  # noqa: F811
    """In headless Chromium (a real server and frontend): choose antibody-student in the sidebar and see its stored
    confidence-ordered τ 0.1 in the Generate tab's widgets, and IgFold chosen in the Structure tab."""
    if test_browser.CHROMIUM is None or test_browser.CHROMEDRIVER is None:
        pytest.skip("needs chromium and chromedriver (Debian: apt-get install chromium chromium-driver)")
    from selenium.webdriver.common.by import By

    drv = driver
    drv.get(server)
    sampler = "//div[@data-testid='stRadio'][.//p[normalize-space(.)='Sampler']]"
    tau = "//div[@data-testid='stSlider'][.//p[starts-with(normalize-space(.), 'Order temperature')]]"

    def checked(d: object, group: str, choice: str) -> bool:
        inputs = d.find_elements(By.XPATH, f"{group}//label[.//p[normalize-space(.)='{choice}']]//input")
        return bool(inputs) and inputs[0].is_selected()

    _wait(drv, lambda d: checked(d, sampler, "ancestral"), "the student's ancestral sampler")
    model = "//section[@data-testid='stSidebar']//div[@data-testid='stSelectbox'][.//p[normalize-space(.)='Model']]"
    _wait(drv, lambda d: d.find_elements(By.XPATH, f"{model}//input"), "model box")[0].click()
    option = "//*[@role='option'][starts-with(normalize-space(.), 'antibody-student (antibody student (DiDi')]"
    _wait(drv, lambda d: d.find_elements(By.XPATH, option), "antibody-student option")[0].click()
    _wait(drv, lambda d: checked(d, sampler, "confidence-ordered"), "confidence-ordered after the switch")
    _wait(drv, lambda d: d.find_element(By.XPATH, tau).text.split()[-1] == "0.10", "τ 0.10 on the slider")
    fold = "//div[@data-testid='stRadio'][.//p[normalize-space(.)='Structure source']]"
    _wait(drv, lambda d: checked(d, fold, "Fold an antibody (IgFold)"), "IgFold as the structure source")


@pytest.mark.parametrize(("a", "b"), [(1.00, 0.98), (4.00, 1.00)])
def test_speed_line_names_its_unit_for_antibody_runs_whatever_the_ratio(a: float, b: float) -> None:
    import dataclasses

    from protein_ui.compare_tab import speed_line

    runs = [dataclasses.replace(_timed(m, s), account="4 drawn = 4 kept") for m, s in (("A", a), ("B", b))]  # type: ignore[call-overload]
    assert speed_line(runs).endswith("An antibody model's time is per valid chain: its ANARCI checks and resampling "
                                     "are included.")  # fmt: skip
