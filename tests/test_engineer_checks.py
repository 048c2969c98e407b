"""Engineer's checks per design: canonical residues, J motif, CDR lengths against the real repertoire."""

from __future__ import annotations

import pytest
from conftest import needs_anarci

from protein_didi.protein.engineer_checks import CANONICAL_NAMES, check_designs, checks_frame, checks_summary
from protein_didi.protein.repertoire import (
    CDR_REGIONS,
    cdr_length_histogram,
    cdr_length_share,
    load_repertoire,
    observed_cdr_lengths,
)

VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWG"
    "QGTLVTVSS"
)
VL = "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"
H3 = "SRWGGDGFYAMDY"  # trastuzumab's CDR-H3 (IMGT 105–117)


def _numbered(*seqs: str):
    from protein_didi.protein.numbering import number_antibodies

    return number_antibodies(seqs)


@needs_anarci
def test_trastuzumab_passes_and_planted_residue_changes_are_named() -> None:
    swap = {"W41": VH.replace("WVRQ", "LVRQ"), "C23": VH.replace("LSCAAS", "LSSAAS"), "J": VH.replace("WGQG", "WAQG")}
    vh, vl, no_trp, no_cys, no_j = check_designs(_numbered(VH, VL, swap["W41"], swap["C23"], swap["J"]))
    assert (vh.ok, vh.chain_type, vh.cdr_lengths) == (True, "H", {"CDR1": 8, "CDR2": 8, "CDR3": 13})
    assert (vl.ok, vl.chain_type, vl.cdr_lengths) == (True, "K", {"CDR1": 6, "CDR2": 3, "CDR3": 9})
    assert vh.canonical == dict.fromkeys(CANONICAL_NAMES, True) == vl.canonical
    assert no_trp.flags == ("no Trp41 (L41)",) and not no_trp.canonical["Trp41"]
    assert no_cys.flags == ("no Cys23 (S23)",) and no_cys.canonical == {**vh.canonical, "Cys23": False}
    assert no_j.flags == ("no J motif WGxG at IMGT 118–121 (WAQG)",) and not no_j.canonical["J motif"]


@needs_anarci
def test_light_chains_need_fgxg_and_a_heavy_fr4_on_a_light_v_is_flagged() -> None:
    chimera = VL.replace("FGQGTKVEIK", "WGQGTLVTVSS")  # a light V with a heavy J's motif
    (check,) = check_designs(_numbered(chimera))
    assert check.chain_type == "K" and check.flags[0] == "no J motif FGxG at IMGT 118–121 (WGQG)"
    assert check.flags[1:] == ("FR4 WGQGTLVTVS differs from human IGKJ1*01 (FGQGTKVEIK) at 5 positions",)


@needs_anarci
def test_a_damaged_fr4_is_flagged_and_a_somatic_change_is_not() -> None:
    damaged, somatic = VH.replace("WGQGTLVTVSS", "WGGGGTLTVSS"), VH.replace("WGQGTLVTVSS", "WGQGTLVKVSS")
    bad, fine = check_designs(_numbered(damaged, somatic))
    assert bad.canonical["J motif"] and bad.flags == (
        "FR4 WGGGGTLTVSS differs from human IGHJ6*01 (WGQGTTVTVSS) at 3 positions",
    )  # the design: W-G-x-G is there, the rest of FR4 is not
    assert fine.ok
    (short,) = check_designs(_numbered(VH.replace("WGQGTLVTVSS", "WGQGT")))  # a chain that stops inside FR4
    (flag,) = short.flags  # the 6 missing residues count (several J genes tie)
    assert flag.startswith("FR4 WGQGT differs from human IGHJ") and flag.endswith(" at 6 positions")


@needs_anarci  # the FR4 check reads ANARCI's germline J set
def test_a_v_gene_identity_rarer_than_one_percent_of_real_chains_is_flagged() -> None:
    from protein_didi.protein.engineer_checks import v_identity_floor

    chains = load_repertoire("validation", ("H",), paired=None)
    floor = v_identity_floor("H")
    assert 0.6 < floor < 0.9 and sum(c.numbering.v_identity < floor for c in chains) / len(chains) < 0.02
    low = next(c for c in chains if c.numbering.v_identity < floor)
    high = next(c for c in chains if c.numbering.v_identity > 0.95)
    (flagged,), (plain,) = check_designs([low.numbering]), check_designs([high.numbering])
    expected = f"V-gene identity {100 * low.numbering.v_identity:.0f} % ({low.numbering.v_gene}) is rare"
    assert any(f.startswith(expected) and f.endswith(f"have ≥ {100 * floor:.0f} %)") for f in flagged.flags)
    assert not any(f.startswith("V-gene") for f in plain.flags)


@needs_anarci
def test_cdr3_lengths_outside_or_rare_in_the_repertoire_are_flagged() -> None:
    lo, hi = observed_cdr_lengths("H", "CDR3")
    rare = next(n for n in range(lo, hi + 1) if cdr_length_share("H", "CDR3", n) < 0.01)
    common = max(cdr_length_histogram("H", "CDR3"), key=cdr_length_histogram("H", "CDR3").get)
    loops = {n: "AR" + ("GY" * 20)[: n - 4] + "DY" for n in (hi + 1, rare, common)}
    long_, rare_, common_ = check_designs(_numbered(*(VH.replace(H3, loop) for loop in loops.values())))
    assert long_.cdr_lengths["CDR3"] == hi + 1 and long_.flags == (
        f"CDR3 length {hi + 1}: the repertoire's VH range is {lo}–{hi}",
    )
    assert rare_.cdr_lengths["CDR3"] == rare and len(rare_.flags) == 1
    assert rare_.flags[0].startswith(f"CDR3 length {rare} is rare (") and rare_.flags[0].endswith(" % of VH)")
    assert common_.ok and common_.cdr_lengths["CDR3"] == common


def test_the_length_reference_is_the_shipped_repertoire() -> None:
    for chain_type in ("H", "K", "L"):
        chains = load_repertoire("test", (chain_type,), paired=None)
        for cdr in CDR_REGIONS:
            lo, hi = observed_cdr_lengths(chain_type, cdr)
            assert all(lo <= len(c.numbering.region(cdr)) <= hi for c in chains)
            shares = [cdr_length_share(chain_type, cdr, n) for n in range(lo, hi + 1)]
            assert sum(shares) == pytest.approx(1.0) and cdr_length_share(chain_type, cdr, hi + 1) == 0
    assert observed_cdr_lengths("H", "CDR3")[1] >= 30  # the train split's long H3s are in (the sample's end at 29)


@needs_anarci  # the FR4 check reads ANARCI's germline J set
def test_real_chains_mostly_pass_and_shuffled_ones_do_not() -> None:
    import numpy as np

    from protein_didi.protein.numbering import AntibodyNumbering

    chains = load_repertoire("test", ("H", "K", "L"), paired=None)
    checks = check_designs([c.numbering for c in chains])
    assert sum(c.ok for c in checks) / len(checks) > 0.85  # measured 0.92 (J-motif point changes, rare CDR3s)
    rng = np.random.default_rng(0)
    shuffled = ["".join(rng.permutation(list(c.sequence))) for c in chains[:5]]
    flagged = check_designs([AntibodyNumbering(s, numbered=False) for s in shuffled])
    assert all(c.flags == ("not numbered by ANARCI",) and c.chain_type is None for c in flagged)
    assert not any(flagged[0].canonical.values()) and flagged[0].cdr_lengths == {}


def test_frame_and_summary_read_as_the_flags_say() -> None:
    from protein_didi.protein.engineer_checks import DesignChecks

    good = DesignChecks("A", "H", dict.fromkeys(CANONICAL_NAMES, True), {"CDR1": 8, "CDR2": 8, "CDR3": 13}, ())
    bad = DesignChecks(
        "B",
        "K",
        {**dict.fromkeys(CANONICAL_NAMES, True), "Trp41": False, "J motif": False},
        {"CDR1": 6, "CDR2": 3, "CDR3": 4},
        ("no Trp41 (L41)", "no J motif FGxG at IMGT 118–121 (WGQG)", "CDR3 length 4 is rare (0.08 % of Vκ)"),
    )
    none = DesignChecks("C", None, dict.fromkeys(CANONICAL_NAMES, False), {}, ("not numbered by ANARCI",))
    frame = checks_frame([good, bad, none])
    assert list(frame.columns) == ["chain", "canonical", "CDR lengths", "checks"]
    assert frame.iloc[0].tolist() == ["VH", "all", "8/8/13", "ok"]
    assert frame.iloc[1].tolist() == ["Vκ", "Trp41, J motif missing", "6/3/4", "; ".join(bad.flags)]
    assert frame.iloc[2, 0] == "not numbered" and frame.iloc[2, 2] == "—"
    line = checks_summary([good, bad, bad, none])
    assert line.startswith("engineer's checks: 1 of 4 designs pass")
    assert "no Trp41 ×2, no J motif FGxG ×2, rare CDR3 length ×2" in line and "\n" not in line
    assert line.endswith("; CDR lengths 6/3/4 in 2 of 4")  # the unnumbered one has none
    assert checks_summary([good, good]).endswith("; CDR lengths 8/8/13 in 2 of 2 (no length diversity)")


@needs_anarci  # the FR4 check reads ANARCI's germline J set
def test_sample_prints_each_designs_checks_under_one_summary_line(capsys: pytest.CaptureFixture[str]) -> None:
    from protein_didi.protein.sample import design_checks_text, print_design_checks

    chains = load_repertoire("test", ("H",), paired=None)
    flagged = next(c for c in chains if "no J motif" in " ".join(check_designs([c.numbering])[0].flags))
    picked = [chains[0], flagged]
    records = [(f"d_{k + 1:04d} length={len(c.sequence)}", c.sequence) for k, c in enumerate(picked)]
    text = design_checks_text(records, [c.numbering for c in picked])
    head, columns, first, second = text.splitlines()
    assert head.startswith("engineer's checks: 1 of 2 designs pass") and "no J motif WGxG ×1" in head
    assert columns.split()[:2] == ["id", "chain"] and "CDR lengths" in columns
    assert first.split()[:4] == [
        "d_0001",
        "VH",
        "all",
        "/".join(str(len(chains[0].numbering.region(r))) for r in CDR_REGIONS),
    ]
    assert second.split()[0] == "d_0002" and "J motif missing" in second and "no J motif WGxG at IMGT 118–121" in second
    print_design_checks(records, [c.numbering for c in picked])
    assert capsys.readouterr().err.strip() == text


def test_sample_without_anarci_says_why_the_checks_are_skipped(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    from protein_didi.protein import numbering
    from protein_didi.protein.sample import print_design_checks

    monkeypatch.setattr(numbering.shutil, "which", lambda name: None)
    print_design_checks([("d_0001", "EVQLVESGG")])
    err = capsys.readouterr().err
    assert err.startswith("engineer's checks skipped: ") and "hmmer" in err and err.count("\n") == 1


@needs_anarci
def test_valid_chains_keep_the_numbering_of_each_kept_chain(monkeypatch: pytest.MonkeyPatch) -> None:
    from protein_didi.protein import valid_chains
    from protein_didi.protein.request import ProteinRequest

    broken = VH.replace("WGQG", "")  # no J: refused

    def fake_generate(loaded, request, progress=None):  # round 0: one broken chain; later rounds: a Vκ without Trp41
        return [broken, VH, VL] if request.seed == 3 else [VL.replace("WYQQ", "LYQQ")] * request.num

    monkeypatch.setattr(valid_chains, "generate", fake_generate)
    result = valid_chains.generate_valid_chains(None, ProteinRequest(num=3, seed=3))  # type: ignore[arg-type]
    assert [n.sequence for n in result.numberings] == result.sequences
    assert result.sequences[:2] == [VH, VL] and [c.ok for c in result.checks()] == [True, True, False]
    assert result.checks()[2].flags == ("no Trp41 (L41)",)


def test_plain_tables_are_left_aligned_with_blank_missing_values() -> None:
    import pandas as pd

    from protein_didi.protein.engineer_checks import plain_table

    text = plain_table(pd.DataFrame({"id": ["a", "bbb"], "NLL": [1.5, None], "checks": ["ok", "no Trp41 (L41)"]}))
    assert text.splitlines() == ["id   NLL  checks", "a    1.5  ok", "bbb       no Trp41 (L41)"]


@needs_anarci
def test_antibody_models_default_to_v_domain_length_and_print_their_checks(
    monkeypatch: pytest.MonkeyPatch, tmp_path, tiny_model, capsys: pytest.CaptureFixture[str]
) -> None:
    """At the protein default (100) an antibody model squeezes its CDRs out (CDR-H2 of 0–4 residues)."""
    from protein_didi.core.schedule import LogLinearSchedule
    from protein_didi.protein import sample as sample_cli
    from protein_didi.protein.pretrained import save_model

    lengths: list[object] = []

    def fake_generate(loaded, request, *args, **kwargs):
        lengths.append(request.fitted(loaded).length)
        return [VH] * request.num

    monkeypatch.setattr(sample_cli, "generate", fake_generate)
    antibody = save_model(tmp_path / "ab", tiny_model, LogLinearSchedule(), "student-didi", {"antibody": True})
    protein = save_model(tmp_path / "p", tiny_model, LogLinearSchedule(), "student-didi", {})
    for model, extra in ((antibody, []), (protein, []), (antibody, ["--length", "118"])):
        assert sample_cli.main(["--model", str(model), "--num", "2", "--allow-invalid", *extra]) == 0
    assert lengths == [sample_cli.ANTIBODY_LENGTH, sample_cli.DEFAULT_LENGTH, 118]
    err = capsys.readouterr().err
    assert err.count("engineer's checks: 2 of 2 designs pass") == 2  # the antibody runs only
