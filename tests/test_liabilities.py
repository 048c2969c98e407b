"""Antibody sequence liabilities: motifs, positions, IMGT regions, the cysteine pair rule, span filtering."""

from __future__ import annotations

import pytest
from conftest import needs_anarci

from protein_didi.protein.liabilities import (
    LIABILITY_CLASSES,
    Liability,
    describe_all,
    find_liabilities,
    parse_liability_classes,
    span_liabilities,
)


def test_motifs_overlap_and_are_placed_at_their_first_residue() -> None:
    found = find_liabilities("AANNGSAPNPTADGQ", kinds=("glycosylation", "deamidation", "isomerisation"))
    got = [(x.kind, x.motif, x.position) for x in found]
    assert got == [
        ("deamidation", "NN", 3),
        ("glycosylation", "NGS", 4),
        ("deamidation", "NG", 4),
        ("isomerisation", "DG", 13),
    ]  # NNG and NPT are no sequons (G; Pro), NP is no deamidation site
    assert all(x.region is None and x.imgt is None for x in found)  # no numbering given
    assert find_liabilities("AAAA") == [] and describe_all([]) == "none"


def test_unnumbered_cysteines_count_only_when_odd() -> None:
    assert find_liabilities("ACAAAC", kinds=("cysteine",)) == []
    assert [x.position for x in find_liabilities("ACAAACAC", kinds=("cysteine",))] == [2, 6, 8]
    assert find_liabilities("MWMW", kinds=("oxidation",)) == []  # no CDRs without a numbering


def test_class_names_parse_with_prefixes_and_fail_in_one_line() -> None:
    assert parse_liability_classes("all") == LIABILITY_CLASSES
    assert parse_liability_classes("glyc, cys,glycosylation") == ("glycosylation", "cysteine")
    assert parse_liability_classes("d") == ("deamidation",)  # a unique prefix
    for bad in ("sulfation", "", "glycosylation,acid"):
        with pytest.raises(ValueError, match=r"e\.g\.") as err:
            parse_liability_classes(bad)
        assert "\n" not in str(err.value)
    with pytest.raises(ValueError, match="unknown liability classes"):
        find_liabilities("A", kinds=("acid",))


def test_span_liabilities_keep_motifs_touching_the_span() -> None:
    seq = "QQNGTACDGSMWAAANG"  # span [5, 12) = "ACDGSMW"
    kinds = LIABILITY_CLASSES
    found = span_liabilities(seq, (5, 12), kinds, region="CDR3")
    got = {(x.kind, x.motif, x.position) for x in found}
    assert got == {
        ("cysteine", "C", 7),
        ("isomerisation", "DG", 8),
        ("oxidation", "M", 11),
        ("oxidation", "W", 12),
    }  # the NG/NGT before the span and the NG after it are not the design's
    assert all(x.region == "CDR3" for x in found)
    assert span_liabilities(seq, (5, 12), ("glycosylation",)) == []
    assert span_liabilities("AANTSA", (3, 5), ("glycosylation",)) == [Liability("glycosylation", "NTS", 2)]


@needs_anarci
def test_regions_and_the_canonical_cysteine_pair() -> None:
    from protein_didi.eval.antibody import load_natural_antibodies
    from protein_didi.protein.numbering import number_antibody

    seq = next(s for rid, s in load_natural_antibodies(("germline_vj",)) if "IGHV3-23*01" in rid)
    num = number_antibody(seq)
    index = dict(num.imgt)
    assert seq[index["23"]] == "C" and seq[index["104"]] == "C"
    assert [x for x in find_liabilities(seq, num) if x.kind == "cysteine"] == []  # the canonical pair is no liability
    # plant an extra cysteine in CDR3 and break Cys104
    cdr3 = num.regions["CDR3"][0] + 1
    planted = seq[:cdr3] + "C" + seq[cdr3 + 1 :]
    planted = planted[: index["104"]] + "S" + planted[index["104"] + 1 :]
    found = [x for x in find_liabilities(planted, number_antibody(planted)) if x.kind == "cysteine"]
    assert {(x.motif, x.region, x.imgt) for x in found} == {("C", "CDR3", "106"), ("S (no Cys104)", "FR3", "104")}
    # oxidation counts only inside CDRs; every motif carries its IMGT region
    found = find_liabilities(seq, num)
    assert all(x.region in {"FR1", "CDR1", "FR2", "CDR2", "FR3", "CDR3", "FR4"} for x in found)
    assert all(x.region.startswith("CDR") for x in found if x.kind == "oxidation")
    ox = [i for i, a in enumerate(seq) if a in "MW"]
    cdrs = [range(*num.regions[c]) for c in ("CDR1", "CDR2", "CDR3")]
    assert sorted(x.start for x in found if x.kind == "oxidation") == [i for i in ox if any(i in r for r in cdrs)]
    assert "IMGT" in describe_all(found)


def test_asp_pro_is_an_acid_cleavage_liability_counted_in_cdrs() -> None:
    assert "cleavage" in LIABILITY_CLASSES and parse_liability_classes("cleav") == ("cleavage",)
    found = find_liabilities("AADPADPPDA", kinds=("cleavage",))
    assert [(x.motif, x.position) for x in found] == [("DP", 3), ("DP", 6)]  # PDA is no site: the order matters
    assert all(x.counts for x in found)  # unplaced (no numbering): counted
    framework = Liability("cleavage", "DP", 0, "70", "FR3")
    assert not framework.counts and Liability("cleavage", "DP", 0, "110", "CDR3").counts
    seq = "QQDPASDPAA"  # span [4, 8) = "ASDP": the DP at 7 is the design's, the one at 3 is not
    assert [(x.motif, x.position) for x in span_liabilities(seq, (4, 8), LIABILITY_CLASSES)] == [("DP", 7)]


@needs_anarci
def test_asp_pro_in_a_numbered_cdr3_is_placed_and_counted() -> None:
    from protein_didi.protein.numbering import number_antibody

    vh = (
        "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDPFYAMDY"
        "WGQGTLVTVSS"
    )  # trastuzumab VH with its CDR-H3 DG → DP
    (dp,) = find_liabilities(vh, number_antibody(vh), kinds=("cleavage",))
    assert (dp.motif, dp.region, dp.counts) == ("DP", "CDR3", True)
