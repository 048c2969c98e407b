"""The report's antibody family: detected on antibody sets, absent on proteins unless forced, one-line when missing."""

from __future__ import annotations

import importlib.util
import shutil

import pandas as pd
import pytest

from protein_didi import report
from protein_didi.protein.fasta import read_fasta
from protein_didi.report.defaults import SHIPPED_REFERENCE
from protein_didi.report.metrics import Options
from protein_didi.report.metrics.antibody import AntibodyMetrics

pytestmark = pytest.mark.skipif(
    importlib.util.find_spec("anarci") is None or shutil.which("hmmscan") is None,
    reason="anarci (pip install -e .[antibody]) or hmmscan (apt-get install hmmer) is not installed",
)
COMP = dict.fromkeys("ACDEFGHIKLMNPQRSTVWY", 0.05)
OPTIONS = {"judge": False, "cluster": False}


def _antibodies(n: int = 8) -> list[tuple[str, str]]:
    """``n`` real chains of the shipped repertoire (test split), heavy and light alternating, with no cysteine but
    the disulfide's two (so a planted one is the only cysteine liability)."""
    from protein_didi.protein.repertoire import load_repertoire

    def pool(chain_types: tuple[str, ...]) -> list:
        return [c for c in load_repertoire("test", chain_types) if c.sequence.count("C") == 2]

    heavy, light = pool(("H",)), pool(("K", "L"))
    return [(f"ab{i}", (heavy if i % 2 == 0 else light)[i // 2].sequence) for i in range(n)]


def _chimera() -> str:
    """A real λ chain up to its CDR3 spliced to a real heavy chain's CDR3 and FR4."""
    from protein_didi.protein.repertoire import load_repertoire

    light, heavy = load_repertoire("test", ("L",))[0], load_repertoire("test", ("H",))[0]
    return light.sequence[: light.numbering.regions["CDR3"][0]] + heavy.sequence[heavy.numbering.regions["CDR3"][0] :]


def _proteins(n: int = 6) -> list[tuple[str, str]]:
    return [(f"p{i}", s) for i, (_, s) in enumerate(read_fasta(SHIPPED_REFERENCE)[:n])]


def _evaluate(records: list[tuple[str, str]], antibody: bool | None, **options: object) -> report.Evaluation:
    gen = [report.SequenceSet("mine", "generated", records)]
    refs = report.reference_sets(gen, _proteins(20), COMP, seed=0)
    return report.evaluate(gen + refs, COMP, Options(**({"iglm_rival": False} | OPTIONS | options), antibody=antibody))


def _planted(records: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The first heavy chain with an N-glycosylation sequon and an extra cysteine planted in CDR-H3."""
    from protein_didi.protein.numbering import number_antibodies

    nums = number_antibodies([s for _, s in records])
    k = next(k for k, n in enumerate(nums) if n.chain_type == "H")
    start = nums[k].regions["CDR3"][0]
    seq = records[k][1]
    planted = seq[: start + 2] + "NGSC" + seq[start + 2 :]  # CDR3 grows by 4: still numbered, the rest untouched
    return [*records[:k], ("planted", planted), *records[k + 1 :]]


def test_antibody_set_gets_antibody_columns(tmp_path) -> None:
    fasta = tmp_path / "abs.fasta"
    fasta.write_text("".join(f">{i}\n{s}\n" for i, s in _antibodies()))
    ev = _evaluate(report.load_set(fasta, "abs").records, antibody=None)
    row = ev.summary.iloc[0]
    assert row["ab_valid_fraction"] == pytest.approx(1.0) and row["ab_chimera_fraction"] == 0
    assert 0 < row["ab_heavy_fraction"] < 1 and 0.5 < row["ab_v_identity"] <= 1
    assert 0 < row["ab_cdrh3_unique"] <= 1 and 0 < row["ab_pairwise_identity"] < 1
    proteins = ev.summary["kind"].isin(["natural", "random"])
    assert ev.summary.loc[proteins, "ab_valid_fraction"].isna().all()  # UniProt rows are not antibodies
    mine = ev.metrics[ev.metrics["set"] == "mine"]
    assert mine["ab_numbered"].all() and set(mine["ab_chain"]) <= {"H", "K", "L"}
    assert mine["ab_v_gene"].str.startswith("IG").all() and mine["ab_cdr3"].str.len().gt(0).all()
    page = report.render_html(ev, "t", {})
    assert "Antibody metrics (ANARCI, IMGT)" in page and "unique CDR-H3 (%)" in page and "100 %" in page
    if importlib.util.find_spec("iglm") is None:
        assert any(n.startswith("IgLM NLL not computed") for n in ev.notes)
    else:
        assert 0 < row["ab_iglm_nll"] < 3 and mine["ab_iglm_nll"].notna().all()


def test_a_planted_chimera_is_its_own_column_and_enters_no_average() -> None:
    records = [*_antibodies(3), ("chimera", _chimera())]
    ev = _evaluate(records, antibody=None)
    row = ev.summary.set_index("set").loc["mine"]
    assert row["ab_chimera_fraction"] == pytest.approx(0.25) and row["ab_valid_fraction"] == pytest.approx(0.75)
    m = ev.metrics.set_index("id")
    assert m.at["chimera", "ab_numbered"] and m.at["chimera", "ab_chain"] == "L"  # ANARCI alone is fooled
    assert m.at["chimera", "ab_status"].startswith("chimera: light V, heavy J") and not m.at["chimera", "ab_valid"]
    valid = m.loc[[rid for rid, _ in records[:3]], "ab_v_identity"]
    assert row["ab_v_identity"] == pytest.approx(valid.mean())
    page = report.render_html(ev, "t", {})
    assert "heavy/light chimeras (%)" in page and "chimera: light V, heavy J" in page


def test_antibody_inputs_read_against_real_repertoire_chains(tmp_path) -> None:
    """Real VH, Vκ and Vλ rows; composition against real chains; clusters and novelty left out."""
    from protein_didi.eval.stats import composition, composition_kl
    from protein_didi.protein.fasta import write_fasta
    from protein_didi.protein.repertoire import load_repertoire

    train = write_fasta(tmp_path / "train.fasta", _proteins(30))
    only = _evaluate(_antibodies(4), antibody=None)
    assert set(only.summary["kind"]) == {"generated", "natural antibody"}  # nothing is compared with UniProt rows
    assert any(n.startswith("natural and random protein reference rows left out") for n in only.notes)
    page = report.render_html(only, "t", {})
    left_out = page.split("<h2>Not in this report</h2>", 1)[1].split("<h2>", 1)[0]
    assert "<h3>Diversity" not in page and "diversity not computed" in left_out  # said once, no table
    gen = [
        report.SequenceSet("mine", "generated", _antibodies(6)),
        report.SequenceSet("prot", "generated", _proteins(4)),
    ]
    sets = gen + report.reference_sets(gen, _proteins(20), COMP, seed=0)
    options = Options(**OPTIONS | {"cluster": True, "train_fasta": str(train), "judge": True}, iglm_rival=False)
    ev = report.evaluate(sets, COMP, options)
    refs = ev.summary[ev.summary["kind"] == "natural antibody"].set_index("set")
    assert list(refs.index) == [f"real {c} (OAS, test split)" for c in ("VH", "Vκ", "Vλ")] and (refs["n"] == 6).all()
    assert refs.at["real VH (OAS, test split)", "ab_heavy_fraction"] == 1
    assert refs.at["real Vλ (OAS, test split)", "ab_heavy_fraction"] == 0
    assert refs["ab_valid_fraction"].eq(1).all() and refs["ab_chimera_fraction"].eq(0).all()
    assert refs["ab_cdrh3_w1"].notna().sum() == 1  # the CDR-H3 length reference: only the VH row has CDR-H3s
    antibody_comp = composition(c.sequence for c in load_repertoire("test"))
    mine = ev.summary.set_index("set").loc["mine"]
    seqs = [s for _, s in _antibodies(6)]
    assert mine["composition_kl"] == pytest.approx(composition_kl(seqs, antibody_comp))
    assert mine["composition_kl"] != pytest.approx(composition_kl(seqs, COMP))
    antibody_rows = ev.metrics.index[ev.metrics["set"].isin(ev.antibody_sets)]
    for column in ("cluster", "novelty", "judge_nll"):  # UniProt-based: left out for antibodies, with the reason
        assert set(ev.skipped[column]) == set(antibody_rows), column
    assert ev.metrics.loc[antibody_rows, "judge_nll"].isna().all()
    assert ev.summary.set_index("set").loc[["natural", "random"], "judge_nll"].notna().all()
    assert any(n.startswith("judge NLL not computed for antibody sets") for n in ev.notes)
    assert pd.isna(mine["num_clusters"]) and pd.isna(mine["novelty_hits"])
    assert ev.summary.set_index("set").loc[["natural", "prot"], "num_clusters"].ge(1).all()  # proteins still are
    assert any(n.startswith("clusters not computed for antibody sets") for n in ev.notes)
    assert any(n.startswith("novelty not computed for antibody sets") for n in ev.notes)
    page = report.render_html(ev, "t", {})
    assert page.count("natural antibody ref.") >= 12  # quality, antibody, liability and region tables (3 rows each)
    diversity = page.split("<h3>Diversity", 1)[1].split('<p class="hint">', 1)[0]
    assert ">prot<" in diversity and ">mine<" not in diversity  # blank antibody rows would read as "no hit"
    assert "Amino-acid composition of antibody sets vs natural antibodies" in page


@pytest.fixture(scope="module")
def planted() -> report.Evaluation:
    return _evaluate(_planted(_antibodies(6)), antibody=None)


def test_liabilities_are_listed_per_design_and_summarised_per_set(planted, tmp_path) -> None:
    ev = planted
    m = ev.metrics.set_index("id")
    text = m.at["planted", "liabilities"]
    assert "glycosylation NGS" in text and "(CDR3, IMGT" in text and "cysteine C" in text
    assert m.at["planted", "lb_glycosylation"] >= 1 and m.at["planted", "lb_cysteine"] == 1
    s = ev.summary.set_index("set")
    assert s.at["mine", "lb_free_glycosylation"] < 1 and s.at["mine", "lb_free_all"] < 1
    assert s.at["mine", "lb_scored"] == 6
    refs = s[s["kind"] == "natural antibody"]
    assert refs["lb_free_cysteine"].between(0, 1).all() and refs["lb_free_all"].notna().all()
    page = report.render_html(ev, "t", {})
    assert "Sequence liabilities (antibody sets)" in page and "<b>glycosylation NGS" in page
    report.write_outputs(ev, tmp_path, {})
    rows = pd.read_csv(tmp_path / "liabilities.csv")
    planted = rows[(rows["set"] == "mine") & (rows["id"] == "planted")]
    assert {"glycosylation", "cysteine"} <= set(planted["class"]) and "CDR3" in set(planted["region"])


def test_regions_germline_identity_and_cdr_lengths(planted) -> None:
    ev = planted
    s = ev.summary.set_index("set")
    real = s[s["kind"] == "natural antibody"]
    assert (real["rg_identity_FR2"] > 0.8).all()  # real chains stay close to their germlines in the frameworks
    m = ev.metrics.set_index("id")
    lengths = [int(x) for x in m.at["planted", "rg_cdr_lengths"].split("/")]
    from protein_didi.protein.numbering import number_antibodies

    originals = number_antibodies([seq for _, seq in _antibodies(6)])
    parent = next(n for n in originals if n.chain_type == "H")  # the chain _planted grew by four CDR3 residues
    assert lengths == [
        parent.regions[c][1] - parent.regions[c][0] + 4 * (c == "CDR3") for c in ("CDR1", "CDR2", "CDR3")
    ]
    heavy = m[(m["set"] == "mine") & (m["rg_chain_class"] == "H")]
    assert s.at["mine", "rg_cdrh3_length"] == pytest.approx(heavy["rg_CDR3_length"].mean())
    page = report.render_html(ev, "t", {})
    assert "Antibody regions: CDR lengths and germline identity (IMGT)" in page
    assert page.count('<img class="fig"') >= 2  # composition vs natural antibodies and the region figure


def test_protein_set_has_no_antibody_columns_unless_forced() -> None:
    ev = _evaluate(_proteins(), antibody=None)
    assert "ab_valid_fraction" not in ev.summary and "ab_chain" not in ev.metrics
    assert "Antibody metrics" not in report.render_html(ev, "t", {})
    forced = _evaluate(_proteins(), antibody=True)
    assert forced.summary.loc[0, "ab_valid_fraction"] == pytest.approx(0.0)
    assert not forced.metrics.loc[forced.metrics["set"] == "mine", "ab_numbered"].any()
    skipped = _evaluate(_antibodies(4), antibody=False)
    assert "ab_valid_fraction" not in skipped.summary


def test_missing_anarci_is_one_note(monkeypatch) -> None:
    from protein_didi.report.metrics import antibody

    monkeypatch.setattr(antibody, "anarci_missing", lambda: "the anarci package is not installed")
    ev = _evaluate(_antibodies(4), antibody=True)
    assert "ab_valid_fraction" not in ev.summary
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


def test_iglm_rival_row_or_the_reason_it_is_missing(monkeypatch) -> None:
    from protein_didi.eval import iglm_judge
    from protein_didi.eval.iglm_sampler import IgLMSamples
    from protein_didi.report import sets

    monkeypatch.setattr(iglm_judge, "iglm_available", lambda: False)
    ev = _evaluate(_antibodies(4), antibody=None, iglm_rival=True)
    assert "rival" not in set(ev.summary["kind"])
    assert any(n.startswith("no IgLM rival row: the iglm package is not installed") for n in ev.notes)
    # with IgLM present the row is IgLM's own samples, scored like every antibody row (a stand-in sampler here)
    monkeypatch.setattr(iglm_judge, "iglm_available", lambda: True)
    samples = [s for _, s in _antibodies(8)[4:]]
    monkeypatch.setattr(
        iglm_judge, "iglm_generate", lambda n, **kw: IgLMSamples(samples[:n], 0.0, "[HEAVY]", "[HUMAN]")
    )
    no_nll = lambda self, sc: sc.metrics.__setitem__("ab_iglm_nll", float("nan"))  # noqa: E731 (no IgLM to score)
    monkeypatch.setattr(AntibodyMetrics, "_score_iglm", no_nll)
    ev = _evaluate(_antibodies(4), antibody=None, iglm_rival=True)
    rival = ev.summary[ev.summary["kind"] == "rival"]
    assert list(rival["set"]) == ["IgLM (heavy, human, prompt EVQ)"] and rival["ab_valid_fraction"].iloc[0] == 1
    assert rival["lb_free_all"].notna().all() and rival["rg_identity_FR2"].notna().all()
    assert sets.RIVAL_KIND == "rival" and "rival (IgLM)" in report.render_html(ev, "t", {})


def _no_trp41(records: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The first heavy chain with its Trp41 (IMGT, start of FR2) changed to Leu: still a valid-looking chain."""
    from protein_didi.protein.numbering import number_antibodies

    nums = number_antibodies([s for _, s in records])
    k = next(k for k, n in enumerate(nums) if n.chain_type == "H")
    at = dict(nums[k].imgt)["41"]
    seq = records[k][1]
    assert seq[at] == "W"
    return [*records[:k], ("no_trp41", seq[:at] + "L" + seq[at + 1 :]), *records[k + 1 :]]


@pytest.fixture(scope="module")
def engineer() -> report.Evaluation:
    return _evaluate(_no_trp41(_antibodies(4)), antibody=None)


def test_engineers_checks_flag_a_design_per_row_and_per_set(engineer) -> None:
    ev = engineer
    m = ev.metrics.set_index("id")
    assert m.at["no_trp41", "ck_flags"] == "no Trp41 (L41)" and m.at["no_trp41", "ck_canonical"] == "Trp41 missing"
    mine = ev.metrics[ev.metrics["set"] == "mine"]
    assert (mine.loc[mine["id"] != "no_trp41", "ck_flags"] == "ok").all()
    s = ev.summary.set_index("set")
    assert s.at["mine", "ck_pass"] == pytest.approx(0.75) and s.at["mine", "ck_canonical"] == pytest.approx(0.75)
    assert s.loc[s["kind"] == "natural antibody", "ck_pass"].between(0, 1).all()  # the bar real chains set
    page = report.render_html(ev, "t", {})
    assert "pass engineers&#x27; checks (%)" in page and "75 %" in page.split("Antibody metrics")[1]
    checks = page.split("<h2>Engineers&#x27; checks")[1].split("<h2>")[0]
    assert "3 of 4" in checks and "no Trp41 ×1" in checks
    designs = page.split("<h2>Designs (4)</h2>")[1].split("<h2>")[0]
    assert '<td class="txt">no Trp41 (L41)</td>' in designs


def test_antibody_inputs_get_the_antibody_first_page(engineer, capsys) -> None:
    """Antibody sections first, the designs' table next, no empty section, no all-blank column, no reason repeated
    in every row; what is missing is said once under "Not in this report"."""
    ev = engineer
    page = report.render_html(ev, "t", {})
    headings = [h.split("</h2>")[0] for h in page.split("<h2>")[1:]]
    assert headings[:3] == ["Not in this report", "Antibody metrics (ANARCI, IMGT)", "Designs (4)"]
    assert headings.index("Sequence statistics") > headings.index("Sequence liabilities (antibody sets)")
    assert "Foldability: ESMFold pLDDT" not in headings  # no ESMFold ran: no section …
    left_out = page.split("<h2>Not in this report</h2>")[1].split("<h2>")[0]
    assert "<b>Foldability: ESMFold pLDDT</b>: pLDDT not computed: disabled with --no-fold" in left_out  # … said once
    assert page.count("pLDDT not computed") == 1
    assert ">not computed<" not in page and "antibody (see notes)" not in page
    assert "no row has a value, so left out: mean pLDDT (0–100), pLDDT &gt; 70 (% seqs)" in page
    designs = page.split("<h2>Designs (4)</h2>")[1].split("<h2>")[0]
    head = designs.split("</thead>")[0]
    assert '<th class="txt">sequence</th>' in head and ">V gene</th>" in head and ">checks</th>" in head
    assert ">cluster<" not in head and "KL (nats)" not in head  # protein-model columns stay in metrics.csv
    cdr3 = ev.metrics.loc[ev.metrics["set"] == "mine", "ab_cdr3"].iloc[0]
    assert f'<b class="cdr">{cdr3}</b>' in designs  # the sequence, CDRs marked (IMGT)
    from protein_didi.report.render import print_summary

    print_summary(ev)  # the terminal table: no wall of "not computed" either
    head = capsys.readouterr().out.splitlines()[0].split()
    assert "ab_valid_fraction" in head and "ck_pass" in head
    assert not {"plddt_mean", "judge_nll", "num_clusters", "max_entropy", "novelty"} & set(head)
