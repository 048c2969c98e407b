"""The report's antibody structure family: IgFold pRMSD per design and per set, reference rows, one-line reasons."""

from __future__ import annotations

import dataclasses
import importlib.util
import shutil

import numpy as np
import pytest
import torch

from protein_didi import report
from protein_didi.fold.esmfold import Folder
from protein_didi.fold.testing import tiny_esmfold
from protein_didi.report.metrics import Options
from protein_didi.report.metrics import fold as fold_family

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
    reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed",
)
HEAVY = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYW"
    "GQGTLVTVSS"
)
PROTEIN = "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ"
COMP = dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05)


def _evaluate(tmp_path, folder: object | None, designs: list[tuple[str, str]] | None = None) -> report.Evaluation:
    gen = [report.SequenceSet("designs", "generated", designs or [("tz|H", HEAVY), ("p1", PROTEIN)])]
    refs = report.reference_sets(gen, [("n1", HEAVY[:40] + "MKT"), ("n2", PROTEIN[:60])], COMP, seed=0)
    fields = {f.name for f in dataclasses.fields(Options)}
    extra = {"iglm_rival": False} if "iglm_rival" in fields else {}  # IgLM's rival row is another family's
    options = Options(folder=folder, judge=False, cluster=False, antibody=True, **extra)
    return report.evaluate(gen + refs, COMP, options)


def test_no_folder_or_extra_costs_one_note_only(tmp_path, monkeypatch) -> None:
    ev = _evaluate(tmp_path, None)
    notes = [n for n in ev.notes if n.startswith("antibody structures")]
    assert notes == ["antibody structures (IgFold pRMSD) not computed: disabled with --no-fold"]
    assert ev.summary.loc[0, "ab_numbered_fraction"] == pytest.approx(0.5)  # the rest of the report is there
    real = importlib.util.find_spec
    monkeypatch.setattr(importlib.util, "find_spec", lambda n, *a: None if n == "igfold" else real(n, *a))
    folder = Folder.from_model(tiny_esmfold(), cache_path=tmp_path / "folds.sqlite")
    ev = _evaluate(tmp_path, folder)
    (note,) = [n for n in ev.notes if n.startswith("antibody structures")]
    assert "pip install -e .[igfold]" in note and "non-commercial" in note and "\n" not in note
    assert ev.metrics["plddt"].notna().all()  # ESMFold still folded everything
    page = report.render_html(ev, "t", {})
    assert "Antibody structure: IgFold predicted RMSD" in page and "pip install -e .[igfold]" in page


def test_antibody_designs_get_prmsd_with_natural_and_shuffled_scale(tmp_path, monkeypatch) -> None:
    pytest.importorskip("igfold")
    from protein_didi.fold import igfold

    monkeypatch.setenv("PROTEIN_DIDI_IGFOLD_MODELS", "1")  # one ensemble member: a few seconds per chain on CPU
    monkeypatch.setenv("PROTEIN_DIDI_IGFOLD_WORKERS", "1")  # in this process
    monkeypatch.setenv("PROTEIN_DIDI_FOLD_CACHE", str(tmp_path / "shared"))
    monkeypatch.setattr(fold_family, "SHUFFLED_MAX", 1)
    torch.set_num_threads(1)
    folder = Folder.from_model(tiny_esmfold(), cache_path=tmp_path / "folds.sqlite")
    ev = _evaluate(tmp_path, folder)
    shared = igfold.shared_igfold_cache()
    assert shared.parent == tmp_path / "shared" / f"igfold-{igfold.igfold_version()}" and shared.is_file()
    assert not [n for n in ev.notes if n.startswith("antibody structures")], ev.notes
    m = ev.metrics.set_index("id")
    assert 0.1 < m.at["tz|H", "ab_prmsd"] < 0.6 and m.at["tz|H", "ab_worst_cdr_text"].startswith("H3 (")
    assert np.isnan(m.at["p1", "ab_prmsd"])
    (reason,) = [r for r in ev.metrics["not_scored"] if "ab_prmsd" in r]
    assert "ab_prmsd: not an antibody V domain (ANARCI cannot number it)" in reason
    row = ev.summary.set_index("set").loc["designs"]
    assert row["ab_prmsd_scored"] == 1 and row["ab_prmsd_mean"] == pytest.approx(m.at["tz|H", "ab_prmsd"])
    assert row["ab_prmsd_share_below_1"] == 1.0 and row["ab_worst_cdr"] == "H3"
    refs = ev.results["antibody structure"]["references"]
    shuffled = refs[refs["kind"] == fold_family.SHUFFLED_KIND]
    natural = ev.metrics[ev.metrics["kind"].str.startswith("natural antibod")]["ab_prmsd"].dropna()
    if natural.empty:  # this report has no natural-antibody rows: the family brought its own sample
        natural = refs.loc[refs["kind"] == fold_family.NATURAL_KIND, "ab_prmsd"]
    assert len(shuffled) >= 1 and len(natural) >= 1
    assert shuffled["ab_prmsd"].min() > 1.5 > 0.8 > natural.mean()  # the scale: natural ≪ shuffled
    page = report.render_html(ev, "t", {})
    section = page[page.index("Antibody structure: IgFold predicted RMSD") :]
    assert "mean pRMSD (Å) [95 % CI]" in section and "shuffled real V" in section
    assert "worst CDR (mean pRMSD)" in section and "<img" in section
    assert "(1/2 scored)" in section  # the protein in the design set is counted, not hidden


def test_a_second_report_folds_only_its_new_designs(tmp_path, monkeypatch) -> None:
    """The reference rows and shuffled controls fold once per machine, into the shared cache outside --out."""
    pytest.importorskip("igfold")
    from protein_didi.fold import igfold

    monkeypatch.setenv("PROTEIN_DIDI_IGFOLD_MODELS", "1")
    monkeypatch.setenv("PROTEIN_DIDI_IGFOLD_WORKERS", "1")
    monkeypatch.setenv("PROTEIN_DIDI_FOLD_CACHE", str(tmp_path / "shared"))
    monkeypatch.setattr(fold_family, "SHUFFLED_MAX", 1)
    torch.set_num_threads(1)
    folded: list[str] = []
    real = igfold.IgFold._fold_batch
    monkeypatch.setattr(igfold.IgFold, "_fold_batch", lambda self, seqs: folded.extend(seqs) or real(self, seqs))
    first = _evaluate(tmp_path, Folder.from_model(tiny_esmfold(), cache_path=tmp_path / "a" / "folds.sqlite"))
    assert len(folded) >= 3  # the design, the natural-antibody rows' chains and their shuffles
    folded.clear()
    other = HEAVY.replace("SRWGGDGFYAMDY", "ARDYGGSFDY")  # another design: a shorter H3
    second = _evaluate(
        tmp_path,
        Folder.from_model(tiny_esmfold(), cache_path=tmp_path / "b" / "folds.sqlite"),
        [("d2", other), ("p1", PROTEIN)],  # as many records: the same natural-antibody rows
    )
    assert folded == [f"H:{other}"]  # the new design only; every reference came from the shared cache
    refs = [ev.results["antibody structure"]["references"]["ab_prmsd"].to_numpy() for ev in (first, second)]
    np.testing.assert_array_equal(*refs)
