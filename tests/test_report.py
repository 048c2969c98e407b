"""``python -m protein_didi.report`` end to end on tiny FASTAs, plus its one-line errors."""

from __future__ import annotations

import itertools
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from protein_didi import report
from protein_didi.fold.esmfold import Folder
from protein_didi.fold.testing import tiny_esmfold
from protein_didi.protein.fasta import iter_fasta, read_fasta, write_fasta

DB = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
needs_mmseqs = pytest.mark.skipif(
    shutil.which("mmseqs") is None or not DB.is_file(), reason="mmseqs2 and its example data are not installed"
)


@pytest.fixture(scope="module")
def files(tmp_path_factory) -> dict[str, Path]:
    """Two 4-sequence 'generated' sets, a 30-protein reference and a 30-protein training split."""
    root = tmp_path_factory.mktemp("report")
    records = [r for r in itertools.islice(iter_fasta(DB), 200) if 40 <= len(r[1]) <= 300][:64]
    out = {
        "a": write_fasta(root / "a.fasta", [(f"a{i}", s[:40]) for i, (_, s) in enumerate(records[:4])]),
        "b": write_fasta(
            root / "b.fasta", [(f"b{i}", s[:36]) for i, (_, s) in enumerate(records[4:7])] + [("b3", "Q" * 36)]
        ),
        "reference": write_fasta(root / "ref" / "test.fasta", records[34:64]),
        "train": write_fasta(root / "train.fasta", records[:30]),
    }
    return out


def test_parse_label_and_reference_lengths() -> None:
    assert report.parse_label("teacher-32") == ("teacher", 32, None)
    assert report.parse_label("student-idlm-8-L200") == ("student-idlm", 8, 200)
    assert report.parse_label("my_samples") is None
    sets = [
        report.SequenceSet("x", "generated", [("1", "A" * 10), ("2", "A" * 10), ("3", "A" * 20)]),
        report.SequenceSet("y", "generated", [("1", "A" * 10), ("2", "A" * 30), ("3", "A" * 30)]),
    ]
    assert report.reference_lengths(sets) == [10, 10, 20, 30, 30]


def test_reference_sets_per_length_for_sweep_labels() -> None:
    reference = [(f"n{i}", "M" + "KLVAE"[i % 5] * (n - 1)) for i, n in enumerate([30, 31, 40, 41, 60])]
    comp = dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05)
    sweep = [
        report.SequenceSet("teacher-8-L30", "generated", [("1", "A" * 30), ("2", "C" * 30)]),
        report.SequenceSet("teacher-8-L40", "generated", [("1", "A" * 40), ("2", "C" * 40)]),
    ]
    refs = report.reference_sets(sweep, reference, comp, seed=0)
    assert [s.label for s in refs] == ["natural-L30", "natural-L40", "random-L30", "random-L40"]
    assert sorted(s for _, s in refs[0].records) == sorted(s for _, s in reference[:2])
    assert [len(s) for s in refs[3].sequences] == [40, 40] and refs[3].length == 40
    plain = [
        report.SequenceSet("a", "generated", [("1", "A" * 30)]),
        report.SequenceSet("b", "generated", [("1", "A" * 40)]),
    ]
    assert [s.label for s in report.reference_sets(plain, reference, comp, seed=0)] == ["natural", "random"]


@needs_mmseqs
def test_report_end_to_end_with_tiny_folder(files, tmp_path, capsys) -> None:
    torch.set_num_threads(1)
    folder = Folder.from_model(tiny_esmfold(), cache_path=tmp_path / "folds.sqlite")
    argv = ["--fasta", str(files["a"]), str(files["b"]), "--labels", "teacher-8,student-8"]
    argv += ["--reference", str(files["reference"]), "--train", str(files["train"])]
    argv += ["--out", str(tmp_path / "out"), "--threads", "1", "--seed", "1"]
    assert report.main(argv, folder=folder) == 0
    metrics = pd.read_csv(tmp_path / "out" / "metrics.csv")
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert summary["set"].tolist() == ["teacher-8", "student-8", "natural", "random"]
    assert summary["n"].tolist() == [4, 4, 8, 8]  # reference rows cover both sets' lengths
    assert len(metrics) == 24
    random_rows = metrics[metrics["kind"] == "random"]
    assert sorted(random_rows["length"]) == [36] * 4 + [40] * 4
    assert metrics["plddt"].between(0, 100).all()
    assert folder.calls > 0
    gen = metrics[metrics["kind"] == "generated"]
    assert (gen[gen["set"] == "teacher-8"]["novelty"] == 1.0).all()  # copied from the training split
    assert metrics.loc[metrics["id"] == "b3", "low_complexity"].item() == 1.0
    assert not metrics.loc[metrics["id"] == "b3", "novelty"].item() >= 0.5  # a homopolymer: weak or no hit
    assert (summary["cluster_entropy"] <= np.log(summary["n"]) + 1e-9).all()
    assert summary.loc[0, "cluster_entropy"] == pytest.approx(np.log(4))
    judge = metrics["judge_nll"]
    out = capsys.readouterr().out
    assert judge.notna().all() or (judge.isna().all() and "judge NLL not computed" in out)
    page = (tmp_path / "out" / "report.html").read_text()
    assert page.count("data:image/png;base64,") >= 3  # pLDDT, pLDDT vs NFE, composition
    assert "<script src=" not in page and "Table 13" in page
    for raw in (">None<", ">nan<", ">NaN<", "&lt;NA&gt;"):
        assert raw not in page


@needs_mmseqs
def test_report_without_esmfold_weights_says_not_computed(files, tmp_path, capsys) -> None:
    argv = ["--fasta", str(files["a"]), "--reference", str(files["reference"]), "--out", str(tmp_path / "out")]
    argv += ["--esmfold", str(tmp_path / "no-esmfold-here"), "--offline", "--threads", "1", "--no-judge"]
    argv += ["--no-diversity"]  # clustering is covered above; this test is about the missing weights
    assert report.main(argv) == 0
    out = capsys.readouterr().out
    lines = [line for line in out.splitlines() if line.startswith("pLDDT not computed: ")]
    assert len(lines) == 1 and "--esmfold" in lines[0]
    summary = pd.read_csv(tmp_path / "out" / "summary.csv")
    assert (summary["plddt_mean"] == "not computed").all()
    # no --train and no train.fasta next to the reference: novelty against the embedded teacher's training split
    assert "novelty target: the embedded teacher's training split: 19,638 sequences" in out
    assert summary.loc[0, "novelty_hits"] == 4  # the test set's proteins are copied from that corpus
    assert summary["cluster_entropy"].isna().all() and "diversity not computed" in out
    assert "pLDDT not computed" in (tmp_path / "out" / "report.html").read_text()


def test_bad_fasta_is_a_one_line_error(files, tmp_path, capsys) -> None:
    bad = tmp_path / "bad.fasta"
    bad.write_text("MKT\n")
    argv = ["--fasta", str(bad), "--reference", str(files["reference"]), "--out", str(tmp_path / "o"), "--no-fold"]
    assert report.main(argv) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: ") and "does not look like FASTA" in err[-1]
    invalid = write_fasta(tmp_path / "invalid.fasta", [("x1", "MKTJ")])
    assert report.main(["--fasta", str(invalid), *argv[2:]]) == 2
    assert "invalid residue 'J'" in capsys.readouterr().err
    assert report.main(["--fasta", str(files["a"]), "--labels", "x,y", *argv[2:]]) == 2
    assert "2 labels for 1 FASTA" in capsys.readouterr().err


def test_missing_mmseqs_is_a_one_line_error(files, tmp_path, capsys, monkeypatch) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))
    argv = ["--fasta", str(files["a"]), "--reference", str(files["reference"]), "--out", str(tmp_path / "o")]
    assert report.main([*argv, "--no-fold"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: mmseqs not found") and "mmseqs2" in err and "\n" not in err


def test_sweep_generates_once_and_resumes(tmp_path) -> None:
    torch.set_num_threads(1)
    grid = ["--sweep", "--models", "teacher", "--lengths", "20", "--nfe", "2,4", "--num", "2"]
    args = report.build_parser().parse_args([*grid, "--reference", "unused.fasta", "--out", str(tmp_path)])
    files = report.run_sweep(args)
    assert [label for _, label in files] == ["teacher-2-L20", "teacher-4-L20"]
    stamps = [p.stat().st_mtime_ns for p, _ in files]
    records = read_fasta(files[0][0])
    assert len(records) == 2 and all(len(s) == 20 for _, s in records)
    assert report.run_sweep(args) == files  # resumed: nothing regenerated
    assert [p.stat().st_mtime_ns for p, _ in files] == stamps


@needs_mmseqs
def test_report_with_no_reference_uses_the_shipped_defaults(files, tmp_path, capsys) -> None:
    """README's first command, then report: natural + random rows and novelty with no prepared corpus."""
    from protein_didi.report.defaults import SHIPPED_REFERENCE

    out = tmp_path / "out"
    argv = ["--fasta", str(files["a"]), "--out", str(out), "--no-fold", "--no-judge", "--threads", "1"]
    assert report.main(argv) == 0
    printed = capsys.readouterr().out
    assert "reference: shipped sample of 400 of the 1060 held-out test proteins" in printed
    summary = pd.read_csv(out / "summary.csv")
    assert summary["set"].tolist() == ["a", "natural", "random"]
    assert summary["novelty_hits"].notna().all()
    metrics = pd.read_csv(out / "metrics.csv")
    shipped = {rid for rid, _ in read_fasta(SHIPPED_REFERENCE)}
    natural = metrics[metrics["kind"] == "natural"]
    assert {rid.split("/")[0] for rid in natural["id"]} <= shipped | {rid.rsplit("/", 1)[0] for rid in shipped}
    assert not (natural["novelty"] >= 0.95).any()  # held-out proteins are not in the novelty target
    page = (out / "report.html").read_text()
    assert "shipped sample of 400" in page and "embedded teacher&#x27;s training split: 19,638 sequences" in page


@needs_mmseqs
def test_long_proteins_are_reported_with_reasons(files, tmp_path) -> None:
    """> 1022 residues: composition, complexity, clusters and novelty score it; judge and ESMFold say why not."""
    torch.set_num_threads(1)
    long = next(s for _, s in iter_fasta(DB) if len(s) > 1100)
    fasta = write_fasta(tmp_path / "long.fasta", [("short1", long[:60]), ("long1", long), ("short2", long[100:170])])
    folder = Folder.from_model(tiny_esmfold(), cache_path=tmp_path / "folds.sqlite")
    # short natural references only: the shipped sample holds ~1,000-residue proteins, which the reference row would
    # match to the long protein, and folding one with ESMFold on one CPU thread takes many minutes
    short_refs = write_fasta(tmp_path / "refs.fasta", [r for r in iter_fasta(DB) if len(r[1]) < 150][:20])
    argv = ["--fasta", str(fasta), "--labels", "natural", "--train", str(files["train"]), "--out", str(tmp_path / "o"),
            "--reference", str(short_refs)]  # fmt: skip
    assert report.main([*argv, "--threads", "1"], folder=folder) == 0
    metrics = pd.read_csv(tmp_path / "o" / "metrics.csv")
    row = metrics[metrics["id"] == "long1"].iloc[0]
    assert np.isnan(row["plddt"]) and "plddt: longer than 1022 residues" in row["not_scored"]
    assert row["length"] == len(long) and row["low_complexity"] >= 0 and row["cluster"] >= 0
    judge_ran = metrics.loc[metrics["id"] == "short1", "judge_nll"].notna().item()
    if judge_ran:
        assert np.isnan(row["judge_nll"]) and "judge_nll: longer than 1022 residues" in row["not_scored"]
    summary = pd.read_csv(tmp_path / "o" / "summary.csv")
    # the user's set keeps its label "natural"; the reference row moves aside
    assert summary["set"].tolist() == ["natural", "natural (reference)", "random"]
    assert summary["n"].tolist() == [3, 3, 3] and summary.loc[0, "plddt_scored"] == 2
    assert (metrics[metrics["kind"] == "random"]["length"] == len(long)).sum() == 1  # references match lengths
    page = (tmp_path / "o" / "report.html").read_text()
    assert "(2/3 scored)" in page and "longer than 1022 residues" in page
    assert "reference row is labelled &#x27;natural (reference)&#x27;" in page


def test_label_clash_moves_the_reference_row() -> None:
    gen = [report.SequenceSet("natural", "generated", [("1", "A" * 30)]),
           report.SequenceSet("natural (reference)", "generated", [("1", "A" * 30)])]  # fmt: skip
    refs = report.reference_sets(gen, [("n", "M" * 30)], dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05), seed=0)
    from protein_didi.report.sets import distinct_reference_labels

    notes = distinct_reference_labels(gen, refs)
    assert [r.label for r in refs] == ["natural (reference 2)", "random"] and len(notes) == 1


def test_shipped_reference_is_reproducible(synthetic_data, tmp_path) -> None:
    from data_prep.reference import HELDOUT_FILE, SAMPLE_FILE, main

    for out in ("one", "two"):
        args = ["--data", str(synthetic_data), "--num", "5", "--out", str(tmp_path / out), "--fasta", str(DB)]
        assert main(args) == 0
    for name in (SAMPLE_FILE, HELDOUT_FILE):
        assert (tmp_path / "one" / name).read_bytes() == (tmp_path / "two" / name).read_bytes()
    sample = read_fasta(tmp_path / "one" / SAMPLE_FILE)
    test_ids = {rid for rid, _ in read_fasta(synthetic_data / "test.fasta")}
    assert len(sample) == 5 and {rid for rid, _ in sample} <= test_ids


@pytest.mark.skipif(not DB.is_file(), reason="mmseqs2-examples is not installed")
def test_rebuilt_training_split_excludes_the_shipped_reference(tmp_path) -> None:
    from protein_didi.report.defaults import SHIPPED_REFERENCE, rebuild_train_split

    assert rebuild_train_split(DB, tmp_path / "train.fasta") == 19_638  # data_prep.fasta's train split
    train = {rid for rid, _ in iter_fasta(tmp_path / "train.fasta")}
    assert not train & {rid for rid, _ in read_fasta(SHIPPED_REFERENCE)}


def test_a_metric_family_is_one_class_plus_one_entry() -> None:
    """A new family (here: share of hydrophobic residues) shows up in metrics, summary and the page."""
    from protein_didi.report.metrics import FAMILIES, Column, MetricFamily, Options
    from protein_didi.report.metrics.base import fmt_percent

    class Hydrophobic(MetricFamily):
        name = "hydrophobic"
        summary_columns = (Column("hydrophobic", "hydrophobic (% residues)", fmt_percent(0)),)
        sequence_columns = summary_columns

        def score(self, sc):
            sc.metrics["hydrophobic"] = [sum(c in "AILMFVW" for c in s) / len(s) for s in sc.metrics["sequence"]]
            sc.computed[self.name] = True

        def summarize(self, sc, s, rows):
            return {"hydrophobic": float(rows["hydrophobic"].mean())}

    gen = [report.SequenceSet("mine", "generated", [("x1", "AILMKKKK"), ("x2", "KKKKKKKK")])]
    comp = dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05)
    sets = gen + report.reference_sets(gen, [("n1", "MKVLAAGE"), ("n2", "MKVLAAGEQ")], comp, seed=0)
    ev = report.evaluate(sets, comp, Options(judge=False, cluster=False), families=(*FAMILIES, Hydrophobic()))
    assert ev.summary.loc[0, "hydrophobic"] == pytest.approx(0.25)
    page = report.render_html(ev, "t", {})
    assert "hydrophobic (% residues)" in page and "25 %" in page
    assert "pLDDT not computed: disabled with --no-fold" in ev.notes


def _prmsd_evaluation() -> tuple[object, pd.DataFrame]:
    """A finished evaluation's pRMSD parts: two design sets and three natural rows with per-CDR values, and the
    shuffled reference rows whose labels differ only after 14 characters (as the real ones do)."""
    from types import SimpleNamespace

    rng = np.random.default_rng(0)
    sets = ["antibody-student-8", "real VH (OAS, test split)", "real Vκ (OAS, test split)",
            "real Vλ (OAS, test split)", "IgLM (heavy, human, prompt EVQ)"]  # fmt: skip
    rows = [{"set": s, "ab_prmsd": v} for s in sets for v in rng.uniform(0.2, 0.6, 6)]
    metrics = pd.DataFrame(rows)
    cdrs = {"H": ("H1", "H2", "H3"), "L": ("L1", "L2", "L3")}
    folds = {
        i: SimpleNamespace(cdr_prmsd={c: 0.5 for c in cdrs["H" if "VH" in r["set"] or "student" in r["set"] else "L"]})
        for i, r in enumerate(rows)
    }
    ev = SimpleNamespace(metrics=metrics, summary=pd.DataFrame({"set": sets}),
                         results={"antibody structure": {"folds": folds}})  # fmt: skip
    refs = pd.DataFrame([{"set": f"shuffled {s}", "ab_prmsd": v} for s in sets[1:] for v in rng.uniform(2, 4, 4)])
    return ev, refs


def test_prmsd_figure_labels_are_whole_apart_and_uncovered() -> None:
    """Every set label is drawn whole (wrapped, not cut), no two overlap, all lie inside the figure, and the
    legend covers neither the bars nor their labels."""
    import matplotlib

    matplotlib.use("Agg")
    from protein_didi.report.figures import prmsd_plot

    ev, refs = _prmsd_evaluation()
    fig = prmsd_plot(ev, refs)
    fig.canvas.draw()
    renderer = fig.canvas.get_renderer()
    boxes, bars = fig.axes
    ticks = boxes.get_xticklabels()
    labels = [*ev.summary["set"], *refs["set"].unique()]
    shown = [t.get_text().replace("-\n", "-").replace("\n", " ") for t in ticks]
    assert shown == labels  # whole: "shuffled real Vκ …" ≠ "… Vλ …"
    extents = [t.get_window_extent(renderer) for t in ticks]
    page = fig.bbox
    for box in extents:
        assert page.x0 <= box.x0 and box.x1 <= page.x1 and page.y0 <= box.y0
    for a, b in itertools.combinations(extents, 2):
        assert not a.overlaps(b)
    legend = bars.get_legend().get_window_extent(renderer)
    assert not legend.overlaps(bars.get_window_extent(renderer))
    assert not any(legend.overlaps(t.get_window_extent(renderer)) for t in bars.get_xticklabels())
    assert page.x0 <= legend.x0 and legend.x1 <= page.x1 and page.y0 <= legend.y0
    assert "not a measured error" in boxes.get_title()


def test_per_sequence_table_drops_empty_columns_and_footnotes_reasons_once() -> None:
    """A column no shown row has a value for is left out and named; a reason shared by many cells is one
    footnote; headers are the short names with the full ones in a tooltip; the sequence is a column."""
    from protein_didi.report.metrics import Options
    from protein_didi.report.per_sequence import sequence_table

    comp = dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05)
    gen = [report.SequenceSet("mine", "generated", [("x_1", "MKVLAAGEQ" * 4), ("x_2", "MKKLLAGEQ" * 4)])]
    sets = gen + report.reference_sets(gen, [("n1", "MKVLAAGEQ" * 4), ("n2", "MKVLAAGEE" * 4)], comp, seed=0)
    ev = report.evaluate(sets, comp, Options(judge=False, cluster=False))
    rows = ev.metrics.index
    ev.skipped["low_complexity"] = {int(i): "skipped everywhere" for i in rows}
    ev.skipped["composition_kl"] = {int(i): "a reason shared by every row" for i in rows[:-1]}
    html = sequence_table(ev, ev.metrics, ev.families)
    assert "low cx." not in html.split("</thead>")[0]  # no shown row has a value: no column, and it is named
    assert "no row has a value, so left out: low complexity (% residues)" in html
    assert html.count("a reason shared by every row</li>") == 1 and html.count("–<sup>1</sup>") == len(rows) - 1
    assert '<th class="" title="composition KL (nats); KL(sequence ‖ reference composition)' in html
    assert ">KL (nats)</th>" in html and '<th class="txt">sequence</th>' in html
    assert '<div class="seq">MKVLAAGEQMKVLAAGEQ' in html and "x_<wbr>1" in html
    assert html.count('<tr class="group">') == len(ev.summary)  # the set is a group row, not a repeated column


def test_every_prmsd_says_it_is_igfolds_confidence() -> None:
    """The structure table's header tooltip, a line right under that table and the per-sequence legend all say that
    pRMSD is IgFold's own predicted error, not a measured one (the figure's title is checked above)."""
    import html

    from protein_didi.report.figures import PRMSD_IS_CONFIDENCE
    from protein_didi.report.metrics.fold import SHUFFLED_KIND, AntibodyStructure
    from protein_didi.report.per_sequence import sequence_table

    ev, refs = _prmsd_evaluation()
    family = AntibodyStructure()
    ev.summary = ev.summary.assign(kind="generated", n=6, ab_prmsd_text="0.40 [0.30, 0.50]", ab_prmsd_scored=6,
                                   ab_prmsd_share_below_1=1.0, ab_worst_cdr_text="H3 (0.50 Å)")  # fmt: skip
    ev.results["antibody structure"]["references"] = refs.assign(kind=SHUFFLED_KIND, worst_cdr=None)
    ev.metrics = ev.metrics.assign(id=[f"d{i}" for i in range(len(ev.metrics))], length=120, sequence="EVQLVESGG",
                                   kind="generated", ab_worst_cdr_text="H3 (0.50 Å)")  # fmt: skip
    ev = report.Evaluation(ev.metrics, ev.summary, [], {}, [], {family.name: True}, {}, (family,), results=ev.results)
    ((_, body),) = family.figures(ev)
    table, after = body.split("</table>", 1)
    said = html.escape(PRMSD_IS_CONFIDENCE)
    assert said in table.split("</thead>")[0]  # the mean pRMSD header's tooltip
    assert f"pRMSD is {PRMSD_IS_CONFIDENCE}" in after.split("<img")[0]  # right under the table, before the figure
    legend = sequence_table(ev, ev.metrics, ev.families).split('<ul class="legend">')[1]
    assert f"pRMSD (Å) = mean pRMSD (Å); {said}" in legend
