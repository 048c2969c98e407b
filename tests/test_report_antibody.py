"""The report's antibody family: detected on antibody sets, absent on proteins unless forced, one-line when missing."""

from __future__ import annotations

import importlib.util
import shutil

import pytest

from protein_didi import report
from protein_didi.protein.fasta import read_fasta
from protein_didi.report.defaults import SHIPPED_REFERENCE
from protein_didi.report.metrics import Options

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
    reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed",
)
COMP = dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05)
OPTIONS = {"judge": False, "cluster": False}


def _antibodies(n: int = 8) -> list[tuple[str, str]]:
    from protein_didi.eval.antibody import load_natural_antibodies

    records = load_natural_antibodies()
    step = max(1, len(records) // n)
    return [(f"ab{i}", s) for i, (_, s) in enumerate(records[::step][:n])]


def _proteins(n: int = 6) -> list[tuple[str, str]]:
    return [(f"p{i}", s) for i, (_, s) in enumerate(read_fasta(SHIPPED_REFERENCE)[:n])]


def _evaluate(records: list[tuple[str, str]], antibody: bool | None) -> report.Evaluation:
    gen = [report.SequenceSet("mine", "generated", records)]
    refs = report.reference_sets(gen, _proteins(20), COMP, seed=0)
    return report.evaluate(gen + refs, COMP, Options(**OPTIONS, antibody=antibody))


def test_antibody_set_gets_antibody_columns(tmp_path) -> None:
    fasta = tmp_path / "abs.fasta"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s in _antibodies()))
    ev = _evaluate(report.load_set(fasta, "abs").records, antibody=None)
    row = ev.summary.iloc[0]
    assert row["ab_numbered_fraction"] == pytest.approx(1.0)
    assert 0 < row["ab_heavy_fraction"] < 1 and 0.5 < row["ab_v_identity"] <= 1
    assert 0 < row["ab_cdrh3_unique"] <= 1 and 0 < row["ab_pairwise_identity"] < 1
    assert ev.summary.loc[ev.summary["kind"] != "generated", "ab_numbered_fraction"].isna().all()  # natural proteins
    mine = ev.metrics[ev.metrics["set"] == "mine"]
    assert mine["ab_numbered"].all() and set(mine["ab_chain"]) <= {"H", "K", "L"}
    assert mine["ab_v_gene"].str.startswith("IG").all() and mine["ab_cdr3"].str.len().gt(0).all()
    page = report.render_html(ev, "t", {})
    assert "Antibody metrics (ANARCI, IMGT)" in page and "unique CDR-H3 (%)" in page and "100 %" in page
    if importlib.util.find_spec("iglm") is None:
        assert any(n.startswith("IgLM NLL not computed") for n in ev.notes)
    else:
        assert 0 < row["ab_iglm_nll"] < 3 and mine["ab_iglm_nll"].notna().all()


def test_protein_set_has_no_antibody_columns_unless_forced() -> None:
    ev = _evaluate(_proteins(), antibody=None)
    assert "ab_numbered_fraction" not in ev.summary and "ab_chain" not in ev.metrics
    assert "Antibody metrics" not in report.render_html(ev, "t", {})
    forced = _evaluate(_proteins(), antibody=True)
    assert forced.summary.loc[0, "ab_numbered_fraction"] == pytest.approx(0.0)
    assert not forced.metrics.loc[forced.metrics["set"] == "mine", "ab_numbered"].any()
    skipped = _evaluate(_antibodies(4), antibody=False)
    assert "ab_numbered_fraction" not in skipped.summary


def test_missing_anarci_is_one_note(monkeypatch) -> None:
    from protein_didi.report.metrics import antibody

    monkeypatch.setattr(antibody, "anarci_missing", lambda: "the anarci package is not installed")
    ev = _evaluate(_antibodies(4), antibody=True)
    assert "ab_numbered_fraction" not in ev.summary
    assert (
        "antibody metrics not computed: the anarci package is not installed; "
        "pip install -e .[antibody] and apt-get install hmmer"
    ) in ev.notes


def test_antibody_flags() -> None:
    parse = report.build_parser().parse_args
    assert parse(["--out", "x"]).antibody is None
    assert parse(["--out", "x", "--antibody"]).antibody is True
    assert parse(["--out", "x", "--no-antibody"]).antibody is False
    with pytest.raises(SystemExit):
        parse(["--out", "x", "--antibody", "--no-antibody"])
