"""CDR redesign: ANARCI-numbered parents, framework kept exactly, CDR lengths as asked, one-line errors."""

from __future__ import annotations

import pytest
import torch

from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.fasta import read_fasta, write_fasta
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.sample import main as sample_main

pytest.importorskip("anarci", reason="needs the antibody extra: pip install -e .[antibody]")

from protein_didi.eval.antibody import load_natural_antibodies
from protein_didi.protein.numbering import number_antibodies
from protein_didi.protein.redesign import parse_cdr_length, parse_cdr_names, plan_redesign, redesign
from protein_didi.protein.request import ProteinRequest


@pytest.fixture(scope="module")
def heavy_parent() -> tuple[str, str]:
    """A real mature human heavy chain from the shipped natural set (UniProt), never one typed from memory."""
    records = [
        (rid, seq) for rid, seq in load_natural_antibodies(("mature",)) if rid.startswith("mature") and "|H|" in rid
    ]
    assert records
    return records[0][0].split("|")[2], records[0][1]


def test_framework_is_kept_and_cdr_lengths_follow_the_range(tiny_model, heavy_parent):
    pid, parent = heavy_parent
    plan = plan_redesign(parent, "H3", (10, 14), pid)
    ((start, end),) = plan.spans
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    designs = redesign(loaded, ProteinRequest(plan=plan, num=12, nfe=4, seed=0, batch_size=5))
    assert len(designs) == 12 and len({s for _, s in designs}) == 12
    lengths = set()
    for rid, seq in designs:
        assert rid.startswith(f"{pid}_design") and f"parent={pid}" in rid
        n = int(rid.rsplit("H3:", 1)[1])
        lengths.add(n)
        assert 10 <= n <= 14 and len(seq) == len(parent) - (end - start) + n
        assert seq[:start] == parent[:start] and seq[start + n :] == parent[end:]  # framework exact
        assert set(seq) <= set("ACDEFGHIKLMNPQRSTVWY")
    assert len(lengths) > 1  # lengths vary across designs
    assert redesign(loaded, ProteinRequest(plan=plan, num=12, nfe=4, seed=0, batch_size=5)) == designs  # seeded
    assert redesign(loaded, ProteinRequest(plan=plan, num=12, nfe=4, seed=1, batch_size=5)) != designs
    # default: the parent's own CDR length
    same = redesign(loaded, ProteinRequest(plan=plan_redesign(parent, "H3", None, pid), num=2, nfe=4))
    assert all(len(s) == len(parent) for _, s in same)


def test_two_cdrs_and_their_spans(heavy_parent):
    pid, parent = heavy_parent
    (numbering,) = number_antibodies([parent])
    plan = plan_redesign(parent, "H3,H1", None, pid)
    assert plan.cdrs == ("H1", "H3")  # in parent order
    assert plan.spans == (numbering.regions["CDR1"], numbering.regions["CDR3"])
    assert plan.framework(parent, [e - s for s, e in plan.spans]) == parent.replace(
        numbering.region("CDR1"), "", 1
    ).replace(numbering.region("CDR3"), "", 1)


def test_bad_requests_are_one_line_errors(heavy_parent):
    pid, parent = heavy_parent
    with pytest.raises(InvalidSequenceError, match="H1, H2, H3, L1, L2 or L3"):
        parse_cdr_names("H4")
    with pytest.raises(InvalidSequenceError, match="mixes heavy and light"):
        parse_cdr_names("H3,L1")
    with pytest.raises(InvalidSequenceError, match="out of range"):
        parse_cdr_length("0-5")
    with pytest.raises(InvalidSequenceError, match="not N or LO-HI"):
        parse_cdr_length("ten")
    with pytest.raises(InvalidSequenceError, match=f"^{pid} is a heavy chain \\(H\\), but --redesign L3 needs a light"):
        plan_redesign(parent, "L3", parent_id=pid)
    with pytest.raises(InvalidSequenceError, match=r"^odd: 'MKTAYIAKQRQISFVKSHFS…' could not be numbered"):
        plan_redesign("MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDGTQDNLSGAEKAVQVKVKALPDAQ", "H3", parent_id="odd")
    with pytest.raises(InvalidSequenceError, match="more than the model's 120"):
        plan_redesign(parent, "H3", (25, 30), pid, max_residues=120)


def test_sample_cli_redesigns_every_parent_of_a_fasta(heavy_parent, tmp_path, capsys):
    pid, parent = heavy_parent
    write_fasta(tmp_path / "parents.fasta", [(pid, parent)])
    out = tmp_path / "designs.fasta"
    args = ["--model", "teacher", "--parent", str(tmp_path / "parents.fasta"), "--redesign", "H3"]
    assert sample_main([*args, "--cdr-length", "11-13", "--num", "3", "--nfe", "4", "--out", str(out)]) == 0
    records = read_fasta(out)
    assert len(records) == 3 and all(rid.startswith(f"{pid}_design") for rid, _ in records)
    capsys.readouterr()
    bad = [
        (["--model", "teacher", "--parent", parent, "--redesign", "H9"], "H1, H2, H3"),
        (["--model", "teacher", "--parent", parent], "needs both --parent"),
        (["--model", "teacher", "--parent", parent, "--redesign", "H3", "--cdr-length", "3-99"], "out of range"),
        (["--model", "teacher", "--parent", parent, "--redesign", "H3", "--cdr-length", "30-40"], "lengths are"),
        (["--model", "teacher", "--parent", "MKTAYIAKQRQISFVKSHFSRQ", "--redesign", "H3"], "could not be numbered"),
        (["--model", "teacher", "--parent", "not/a/file.fa", "--redesign", "H3"], "neither a file"),
        (["--model", "teacher", "--parent", parent, "--redesign", "H3", "--motif", "5:W"], "do not combine"),
    ]
    for argv, message in bad:
        assert sample_main([*argv, "--out", str(tmp_path / "never.fasta")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "never.fasta").exists()


def test_liability_filter_catches_a_planted_motif_and_passes_a_clean_design(heavy_parent):
    from protein_didi.protein.redesign import design_liabilities

    pid, parent = heavy_parent
    plan = plan_redesign(parent, "H3", (10, 10), pid)
    ((start, end),) = plan.spans
    for loop, expected in (("ARNGSYAFDY", {"glycosylation", "deamidation"}), ("ARDGAYCFDY", {"isomerisation",
                           "cysteine"}), ("ARMAAYAFDY", {"oxidation"}), ("ARAAAYAFEY", set())):  # fmt: skip
        design = parent[:start] + loop + parent[end:]
        found = design_liabilities(plan, design, [10])
        assert {x.kind for x in found} == expected, loop
        assert all(x.region == "CDR-H3" and start <= x.start < start + 10 for x in found)
    # a motif made across the loop's edge counts (the new residue completes it), one wholly in the framework does not
    edge = parent[:start] + "S" + "A" * 9 + parent[end:]
    planted = edge[: start - 2] + "NA" + edge[start:]  # N A | S …: a sequon N[^P][ST] ending in the loop
    assert [x.kind for x in design_liabilities(plan, planted, [10], ("glycosylation",))] == ["glycosylation"]
    assert design_liabilities(plan, planted[: start - 2] + "QA" + planted[start:], [10], ("glycosylation",)) == []


def test_redesign_resamples_until_the_loops_are_free_of_the_chosen_liabilities(tiny_model, heavy_parent):
    from protein_didi.protein.liabilities import span_liabilities
    from protein_didi.protein.redesign import redesign_free_of

    pid, parent = heavy_parent
    plan = plan_redesign(parent, "H3", (12, 14), pid)
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    classes = ("glycosylation", "deamidation", "isomerisation", "cysteine")
    result = redesign_free_of(loaded, ProteinRequest(plan=plan, num=6, liabilities=classes, nfe=4, seed=0))
    assert len(result.records) == 6 and result.refused_designs > 0  # a random tiny model makes plenty of N, D and C
    assert result.drawn >= 6 + result.refused_designs and sum(result.refused.values()) >= result.refused_designs
    start = plan.spans[0][0]

    def loop(rid: str) -> tuple[int, int]:
        return start, start + int(rid.rsplit("H3:", 1)[1])

    for rid, seq in result.records:
        assert span_liabilities(seq, loop(rid), classes) == []  # checked without the filter's own helper
        assert "C" not in seq[slice(*loop(rid))]
    unfiltered = redesign(loaded, ProteinRequest(plan=plan, num=6, nfe=4, seed=0))
    clean = [s for rid, s in unfiltered if not span_liabilities(s, loop(rid), classes)]
    assert [s for _, s in result.records][: len(clean)] == clean  # round 0 is redesign()'s own draw
    assert "6 of 6 designs free of glycosylation, deamidation, isomerisation, cysteine" in result.summary()
    account = result.account
    assert account["drawn"] == account["kept"] + account["refused"] + account["surplus"]  # every draw accounted for
    assert f"{account['drawn']} drawn = 6 kept + {account['refused']} refused (" in result.summary()
    lines: list[str] = []
    filtered = ProteinRequest(plan=plan, num=6, nfe=4, seed=0, liabilities=classes)
    assert redesign(loaded, filtered, report=lines.append) == result.records
    assert lines == [result.summary()]
    # a request that cannot be met ends with what it found and says how to loosen it
    short = redesign_free_of(
        loaded, ProteinRequest(plan=plan, num=4, liabilities=("oxidation", *classes), nfe=4), max_draws=5
    )
    assert short.drawn == 5 and len(short.records) < 4 and "stopped after 5 draws" in short.summary()


def test_sample_cli_liabilities_flag(heavy_parent, tmp_path, capsys):
    _, parent = heavy_parent
    out = tmp_path / "designs.fasta"
    argv = ["--model", "teacher", "--parent", parent, "--redesign", "H3", "--cdr-length", "10-12", "--nfe", "4"]
    assert sample_main([*argv, "--num", "3", "--liabilities", "glyc,cys", "--out", str(out)]) == 0
    err = capsys.readouterr().err
    assert "3 of 3 designs free of glycosylation, cysteine in the redesigned CDRs" in err
    ((start, end),) = plan_redesign(parent, "H3").spans
    records = read_fasta(out)
    assert len(records) == 3
    for _, seq in records:
        assert "C" not in seq[start : start + len(seq) - len(parent) + end - start]  # the loop, whatever its length
    assert sample_main([*argv, "--liabilities", "sulfation", "--out", str(tmp_path / "never.fasta")]) == 2
    err = capsys.readouterr().err
    assert "liability class 'sulfation'" in err and err.count("\n") == 1
    assert not (tmp_path / "never.fasta").exists()


def test_redesign_honours_the_token_cap_per_forward_pass(tiny_model, heavy_parent):
    """``--max-tokens`` holds for CDR redesign too: one design per pass when two would not fit."""
    pid, parent = heavy_parent
    plan = plan_redesign(parent, "H3", (10, 10), pid)
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    tokens = plan.longest + 2  # <cls> … <eos>
    for cap, batches in ((2 * tokens, 2), (2 * tokens - 1, 4)):
        seen: list[tuple[int, int]] = []
        request = ProteinRequest(plan=plan, num=4, nfe=3, max_tokens=cap)
        assert len(redesign(loaded, request, lambda done, total, seen=seen: seen.append((done, total)))) == 4
        assert {total for _, total in seen} == {3 * batches}, cap


@pytest.fixture(scope="module")
def light_parent() -> tuple[str, str]:
    """A real mature kappa chain from the shipped natural set."""
    records = [(rid, seq) for rid, seq in load_natural_antibodies(("mature",)) if "|K|" in rid]
    assert records
    return records[0][0].split("|")[2], records[0][1]


def test_a_cdr_length_the_repertoire_has_not_seen_is_refused_naming_the_range(heavy_parent):
    from protein_didi.protein.repertoire import observed_cdr_lengths

    pid, parent = heavy_parent
    lo, hi = observed_cdr_lengths("H", "CDR3")
    assert plan_redesign(parent, "H3", (lo, hi), pid).lengths == ((lo, hi),)  # the whole observed range is fine
    for asked, text in (((30, 40), "30-40"), ((hi + 1, hi + 1), str(hi + 1)), ((lo - 1, lo + 2), f"{lo - 1}-{lo + 2}")):
        with pytest.raises(InvalidSequenceError) as err:
            plan_redesign(parent, "H3", asked, pid)
        assert str(err.value) == (
            f"{pid}: --cdr-length {text} for H3: the repertoire's VH CDR-H3 lengths are {lo}–{hi} (IMGT); "
            "choose within it"
        )
    h1_lo, h1_hi = observed_cdr_lengths("H", "CDR1")
    with pytest.raises(InvalidSequenceError, match=f"for H1: the repertoire's VH CDR-H1 lengths are {h1_lo}–{h1_hi}"):
        plan_redesign(parent, "H1,H3", (h1_hi + 1, h1_hi + 1), pid)  # one length for both: H1 cannot take it


def test_a_vh_vl_parent_file_redesigns_the_chain_the_cdr_belongs_to(heavy_parent, light_parent, tmp_path, capsys):
    from protein_didi.protein.cdr_plan import plan_parents

    (hid, vh), (lid, vl) = heavy_parent, light_parent
    parents = plan_parents([(lid, vl), (hid, vh)], "H3")
    assert [p.parent_id for p in parents.plans] == [hid] and parents.plans[0].parent == vh
    assert parents.notes() == [f"{lid} not redesigned: a light chain (K); --redesign H3 needs a heavy chain"]
    assert [p.parent_id for p in plan_parents([(lid, vl), (hid, vh)], "L1").plans] == [lid]
    write_fasta(tmp_path / "pair.fasta", [(lid, vl), (hid, vh)])
    out = tmp_path / "designs.fasta"
    argv = ["--model", "teacher", "--parent", str(tmp_path / "pair.fasta"), "--redesign", "H3", "--nfe", "4"]
    assert sample_main([*argv, "--num", "2", "--out", str(out)]) == 0
    assert [rid.split()[0] for rid, _ in read_fasta(out)] == [f"{hid}_design0001", f"{hid}_design0002"]
    assert f"{lid} not redesigned: a light chain (K); --redesign H3 needs a heavy chain" in capsys.readouterr().err
    # a file with no record of the CDR's chain, or a record that is no antibody: one line naming the record
    write_fasta(tmp_path / "vl.fasta", [(lid, vl)])
    write_fasta(tmp_path / "junk.fasta", [(hid, vh), ("junk", "MKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQAPILSRVGDG")])
    for path, message in (
        ("vl.fasta", f"{lid} is a light chain (K), but --redesign H3 needs a heavy chain"),
        ("junk.fasta", "junk: 'MKTAYIAKQRQISFVKSHFS…' could not be numbered by ANARCI"),
    ):
        argv[3] = str(tmp_path / path)
        assert sample_main([*argv, "--out", str(tmp_path / "never.fasta")]) == 2
        err = capsys.readouterr().err
        assert message in err and err.count("\n") == 1, err
    assert not (tmp_path / "never.fasta").exists()


def test_the_liability_account_adds_up() -> None:
    """The app once said "16 drawn, 6 refused" for 4 kept: the 6 clean extras must be in the line."""
    from protein_didi.protein.redesign import FilteredDesigns

    classes = ("glycosylation", "deamidation")
    records = [(f"p_design{k}", "A") for k in range(4)]
    result = FilteredDesigns("p", records, 4, 16, {"glycosylation": 3, "deamidation": 4}, 6, classes, surplus=6)
    assert result.account == {"drawn": 16, "kept": 4, "refused": 6, "surplus": 6}
    assert result.summary() == (
        "p: 4 of 4 designs free of glycosylation, deamidation in the redesigned CDRs; 16 drawn = 4 kept + 6 refused "
        "(glycosylation 3, deamidation 4; a design may carry several) + 6 clean extras beyond the 4 asked"
    )
    clean = FilteredDesigns("p", records, 4, 4, {"glycosylation": 0, "deamidation": 0}, 0, classes)
    assert clean.summary().endswith("; 4 drawn = 4 kept + 0 refused + 0 clean extras beyond the 4 asked")


TRASTUZUMAB_VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWG"
    "QGTLVTVSS"
)


def test_the_cdr_definition_is_stated_with_kabat_and_chothia_boundaries():
    from protein_didi.protein.cdr_plan import cdr_definitions, scheme_cdrs

    h3, h1 = cdr_definitions(plan_redesign(TRASTUZUMAB_VH, "H3")), cdr_definitions(plan_redesign(TRASTUZUMAB_VH, "H1"))
    assert h3 == [
        "CDR-H3 = IMGT 105–117 (SRWGGDGFYAMDY, 13 residues), the loop redesigned; Kabat H95–H102 = WGGDGFYAMDY "
        "(IMGT 105–106 (SR) are Kabat H93–H94, framework in Kabat); Chothia H95–H102 = WGGDGFYAMDY (IMGT 105–106 (SR) "
        "are Chothia H93–H94, framework in Chothia)"
    ]
    (found,) = scheme_cdrs([TRASTUZUMAB_VH], "H1")  # trastuzumab's published H1: Kabat DTYIH, Chothia GFNIKDT
    assert {k: c.residues for k, c in found.items() if c} == {
        "imgt": "GFNIKDTY",
        "kabat": "DTYIH",
        "chothia": "GFNIKDT",
    }
    assert "Kabat H34–H35 (IH) are IMGT 39–40, framework in IMGT" in h1[0]
    light = scheme_cdrs([TRASTUZUMAB_VH, "MKTAYIAKQRQISFVKSHFSRQ"], "L3")
    assert light == [{"imgt": None, "kabat": None, "chothia": None}] * 2  # a heavy chain has no L3; junk has none


class _PositionModel(torch.nn.Module):
    """Log-probability −(position index) for every token: a loop NLL is then the mean of the scored positions."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.zeros(1))

    def forward(self, tokens, t=None):
        positions = torch.arange(tokens.shape[1], dtype=torch.float32)
        return -positions[None, :, None].expand(*tokens.shape, 33)


def test_the_parent_is_the_baseline_row_scored_like_its_designs(tiny_model, heavy_parent):
    from protein_didi.protein.redesign import design_liabilities, loop_nll, loop_table

    pid, parent = heavy_parent
    plan = plan_redesign(parent, "H3", (10, 12), pid)
    ((start, end),) = plan.spans
    # the NLL is the mean over exactly the loop's positions (token index = residue index + 1 for <cls>)
    fake = LoadedModel(_PositionModel(), LogLinearSchedule(), "fake")  # type: ignore[arg-type]
    assert loop_nll(fake, plan, [(parent, (end - start,))]) == [pytest.approx((start + end + 1) / 2)]
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    records = redesign(loaded, ProteinRequest(plan=plan, num=3, nfe=4, seed=0))
    table = loop_table(plan, records, scorer=lambda d: loop_nll(loaded, plan, d), score="tiny loop NLL")
    base, *designs = table.rows
    assert base.baseline and base.id == pid and base.loops == (parent[start:end],)
    assert [r.id for r in designs] == [rid.split()[0] for rid, _ in records] and not any(r.baseline for r in designs)
    assert base.nll == pytest.approx(loop_nll(loaded, plan, [(parent, (end - start,))])[0])
    assert list(base.liabilities) == design_liabilities(plan, parent, [end - start])
    for row, (rid, seq) in zip(designs, records, strict=True):
        n = int(rid.rsplit("H3:", 1)[1])
        assert row.loops == (seq[start : start + n],) and row.nll == pytest.approx(
            loop_nll(loaded, plan, [(seq, (n,))])[0]
        )
    frame = table.frame()
    assert frame["id"].tolist()[0] == f"{pid} (parent, baseline)" and "tiny loop NLL" in frame.columns
    assert {"H3 (IMGT)", "H3 length", "H3 Kabat", "H3 Chothia", "liabilities", "checks"} <= set(frame.columns)
    assert table.text().splitlines()[0].startswith("CDR-H3 = IMGT 105–117 (")


def test_sample_cli_prints_the_baseline_before_the_designs(heavy_parent, tmp_path, capsys):
    _, parent = heavy_parent
    argv = ["--model", "teacher", "--parent", parent, "--redesign", "H3", "--nfe", "4", "--num", "2"]
    assert sample_main([*argv, "--out", str(tmp_path / "d.fasta")]) == 0
    lines = capsys.readouterr().err.splitlines()
    head = next(k for k, line in enumerate(lines) if line.startswith("CDR-H3 = IMGT 105–117"))
    assert "teacher loop NLL (nats/res.)" in lines[head + 1] and "H3 Kabat" in lines[head + 1]
    assert lines[head + 2].split()[:3] == ["parent", "(parent,", "baseline)"]
    assert [line.split()[0] for line in lines[head + 3 : head + 5]] == ["parent_design0001", "parent_design0002"]


def test_a_kabat_or_chothia_redesign_keeps_imgt_105_106(tiny_model):
    from protein_didi.protein.cdr_plan import cdr_definitions
    from protein_didi.protein.repertoire import observed_cdr_lengths

    imgt, kabat = plan_redesign(TRASTUZUMAB_VH, "H3"), plan_redesign(TRASTUZUMAB_VH, "H3", scheme="kabat")
    ((a, b),), ((c, d),) = imgt.spans, kabat.spans
    assert TRASTUZUMAB_VH[a:b] == "SRWGGDGFYAMDY" and TRASTUZUMAB_VH[c:d] == "WGGDGFYAMDY" and (c, d) == (a + 2, b)
    assert plan_redesign(TRASTUZUMAB_VH, "H3", scheme="chothia").spans == kabat.spans
    assert cdr_definitions(kabat)[0].startswith(
        "CDR-H3 = Kabat H95–H102 (WGGDGFYAMDY, 11 residues), the loop redesigned (IMGT 105–106 (SR) are Kabat H93–H94"
    )
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    for _, seq in redesign(loaded, ProteinRequest(plan=kabat, num=3, nfe=4, seed=0)):
        assert seq[:c] == TRASTUZUMAB_VH[:c] and seq[a:c] == "SR"  # the two residues IMGT would redesign are kept
    lo, hi = observed_cdr_lengths("H", "CDR3")
    plan_redesign(TRASTUZUMAB_VH, "H3", (hi - 2, hi - 2), scheme="kabat")  # IMGT length hi: allowed
    with pytest.raises(InvalidSequenceError) as err:
        plan_redesign(TRASTUZUMAB_VH, "H3", (hi - 1, hi - 1), "t", scheme="kabat")
    assert str(err.value) == (
        f"t: --cdr-length {hi - 1} for H3 (Kabat): the repertoire's VH CDR-H3 lengths are {lo}–{hi} (IMGT), "
        f"{lo - 2}–{hi - 2} as Kabat loops of this parent; choose within it"
    )
    with pytest.raises(InvalidSequenceError, match="--cdr-scheme 'aho'"):
        plan_redesign(TRASTUZUMAB_VH, "H3", scheme="aho")
