"""Antibody judges on real sequences: ANARCI numbering (with hmmer), IgLM scoring/infilling, set metrics.

Every antibody here is read from data shipped offline (the natural set built by
``data_prep/antibodies.py`` from ANARCI's germlines and Debian's mmseqs2-examples),
never typed in. Tests skip only when anarci/hmmer or iglm are genuinely absent.
"""

from __future__ import annotations

import importlib.util
import itertools
import sys
from collections import Counter

import numpy as np
import pytest
from conftest import HAVE_ANARCI, needs_anarci

from protein_didi.eval.antibody import (
    NATURAL_KINDS,
    antibody_metrics,
    bootstrap_mean,
    imgt_identity_matrix,
    length_distribution_distance,
    load_natural_antibodies,
)
from protein_didi.protein.numbering import IMGT_REGIONS, REGION_NAMES, AntibodyError, cdr_span, number_antibodies

HAVE_IGLM = importlib.util.find_spec("iglm") is not None
needs_iglm = pytest.mark.skipif(
    not (HAVE_IGLM and HAVE_ANARCI), reason="iglm (or anarci) missing: pip install -e .[iglm,antibody]"
)


def _pick(kind: str, chain: str, n: int) -> list[tuple[str, str]]:
    field = 4 if kind in ("mature", "v_gene") else 2
    return [r for r in load_natural_antibodies([kind]) if r[0].split("|")[field] == chain][:n]


@pytest.fixture(scope="module")
def naturals() -> list[tuple[str, str]]:
    """Two germline V+J domains per chain type, plus the two mature UniProt V domains."""
    return [*(_pick("germline_vj", c, 2)[i] for c in "HKL" for i in range(2)), *load_natural_antibodies(["mature"])]


@pytest.fixture(scope="module")
def numbered(naturals):
    return number_antibodies([s for _, s in naturals]) if HAVE_ANARCI else None


@pytest.fixture(scope="module")
def judge():
    from protein_didi.eval.iglm_judge import load_iglm

    return load_iglm()


def _shuffled(seq: str, seed: int) -> str:
    return "".join(np.random.default_rng(seed).permutation(list(seq)))


def test_natural_set_is_labelled_real_germline_segments():
    recs = load_natural_antibodies()
    kinds = {rid.split("|")[0] for rid, _ in recs}
    assert kinds == set(NATURAL_KINDS)
    assert len({rid for rid, _ in recs}) == len(recs) > 500
    assert all(set(s) <= set("ACDEFGHIKLMNPQRSTVWY") for _, s in recs)
    assert len(load_natural_antibodies(["mature"])) == 2
    with pytest.raises(AntibodyError, match="unknown natural-set kinds"):
        load_natural_antibodies(["synthetic"])
    if not HAVE_ANARCI:
        return
    from anarci.germlines import all_germlines

    for rid, seq in _pick("germline_vj", "H", 3) + _pick("germline_vj", "L", 3):  # rebuilt from ANARCI's germlines
        _, src, chain, genes = rid.split("|")
        species = src.split(":")[1]
        v, j = genes.split("+")
        v_al, j_al = all_germlines["V"][chain][species][v], all_germlines["J"][chain][species][j]
        assert seq == (v_al.replace("-", "") + j_al.replace("-", ""))


@needs_anarci
def test_numbering_chain_types_germlines_and_imgt_regions(naturals, numbered):
    for (rid, seq), num in zip(naturals, numbered, strict=True):
        f = rid.split("|")
        chain = f[4] if f[0] == "mature" else f[2]
        assert num.numbered and num.chain_type == chain and num.n_domains == 1, rid
        assert num.chain_class == ("H" if chain == "H" else "L")
        if f[0] == "germline_vj":
            assert num.v_identity == 1.0 and num.j_identity == 1.0, rid
            assert num.species == f[1].split(":")[1]
        # regions tile the domain in order, and every residue sits in the region of its IMGT position number
        spans = [num.regions[r] for r in REGION_NAMES]
        assert spans[0][0] == num.domain[0] and spans[-1][1] == num.domain[1]
        assert all(a[1] == b[0] for a, b in itertools.pairwise(spans))
        for label, idx in num.imgt:
            pos = int(label.rstrip("ABCDEFGHIJKLMNOPQRSTUVWXYZ"))
            name = next(n for n, lo, hi in IMGT_REGIONS if lo <= pos <= hi)
            start, end = num.regions[name]
            assert start <= idx < end, (rid, label, name)
        labels = dict(num.imgt)
        assert seq[labels["23"]] == "C" and seq[labels["104"]] == "C"  # the conserved cysteines
        assert num.regions["CDR3"][0] == labels["104"] + 1
        assert seq[labels["118"]] == ("W" if chain == "H" else "F")  # J motif W/F-G-x-G opens FR4
    heavy = numbered[-1]  # mature human heavy chain: a 20-residue CDR3 numbered with 111A…/…112A insertions
    assert heavy.chain_type == "H" and len(heavy.cdr3) == 20
    inserted = [lab for lab, _ in heavy.imgt if not lab.isdigit()]
    assert {"111A", "112A"} <= set(inserted)
    lo, hi = heavy.regions["CDR3"]
    assert all(lo <= i < hi for lab, i in heavy.imgt if lab in inserted)


@needs_anarci
def test_numbering_finds_the_domain_inside_a_longer_sequence_and_rejects_non_antibodies(naturals):
    _, vh = naturals[0]
    leader, tail = vh[40:52], vh[60:75]  # any flanking residues
    plain, flanked, shuffled = number_antibodies([vh, leader + vh + tail, _shuffled(vh, 0)])
    assert flanked.domain == (len(leader), len(leader) + len(vh))
    for name in REGION_NAMES:
        assert flanked.region(name) == plain.region(name)
        assert flanked.regions[name] == tuple(i + len(leader) for i in plain.regions[name])
    assert not shuffled.numbered and shuffled.cdr3 is None
    with pytest.raises(AntibodyError, match="sequence 1 has 'J' at position 3"):
        number_antibodies([vh, "ACJK"])
    with pytest.raises(AntibodyError, match="sequence 0 is empty"):
        number_antibodies([""])


@needs_anarci
def test_cdr_span_validates_names_and_chain(naturals, numbered):
    heavy, kappa, lam = numbered[0], numbered[2], numbered[4]
    assert cdr_span(heavy, "H3") == heavy.regions["CDR3"]
    assert cdr_span(heavy, "h1") == heavy.regions["CDR1"]
    assert cdr_span(kappa, "L2") == kappa.regions["CDR2"]
    assert cdr_span(lam, "L3") == lam.regions["CDR3"]
    assert cdr_span(naturals[0][1], "H2") == heavy.regions["CDR2"]  # from a raw sequence too
    with pytest.raises(AntibodyError, match=r"light chain \(K\); use L1–L3"):
        cdr_span(kappa, "H3")
    with pytest.raises(AntibodyError, match="heavy chain"):
        cdr_span(heavy, "L1")
    with pytest.raises(AntibodyError, match="not one of H1, H2, H3, L1, L2, L3"):
        cdr_span(heavy, "H4")
    with pytest.raises(AntibodyError, match=r"could not be numbered by ANARCI.*give a heavy or light chain V domain"):
        cdr_span(_shuffled(naturals[0][1], 1), "H3")


def test_missing_tools_give_one_line_fixes(monkeypatch):
    from protein_didi.eval import iglm_judge
    from protein_didi.protein import numbering

    monkeypatch.setitem(sys.modules, "anarci", None)
    with pytest.raises(AntibodyError, match=r"pip install -e \.\[antibody\]"):
        number_antibodies(["QVQL"])
    monkeypatch.delitem(sys.modules, "anarci")
    if HAVE_ANARCI:
        monkeypatch.setattr(numbering.shutil, "which", lambda _: None)
        with pytest.raises(AntibodyError, match="install Debian package hmmer"):
            number_antibodies(["QVQL"])
    monkeypatch.setitem(sys.modules, "iglm.model.IgLM", None)
    with pytest.raises(AntibodyError, match=r"pip install -e \.\[iglm\].*non-commercial") as err:
        iglm_judge.IgLMJudge()
    assert "\n" not in str(err.value)
    assert not iglm_judge.iglm_available()


@needs_iglm
def test_iglm_matches_its_own_log_likelihood_and_separates_naturals_from_shuffles(judge, naturals, numbered):
    import torch

    from protein_didi.eval.iglm_tokens import species_tag

    seqs = [s for _, s in naturals]
    scores = judge.score(seqs, numbering=numbered)
    runner = judge._iglm()  # IgLM's own code, with the vocab.txt tokenizer
    with torch.no_grad():
        for sc in scores[:3]:
            want = -runner.log_likelihood(sc.sequence, sc.chain_tag, sc.species_tag)
            assert sc.nll_iglm == pytest.approx(want, abs=1e-4)
    assert [sc.chain_tag for sc in scores] == ["[HEAVY]" if n.chain_type == "H" else "[LIGHT]" for n in numbered]
    assert [sc.species_tag for sc in scores] == [species_tag(n.species) for n in numbered]
    assert {sc.species_tag for sc in scores} == {"[HUMAN]", "[MOUSE]"}  # germline species reach the tag
    # the ANARCI chain tag fits better than the wrong one
    swapped = judge.residue_log_probs(
        seqs,
        ["[LIGHT]" if sc.chain_tag == "[HEAVY]" else "[HEAVY]" for sc in scores],
        [sc.species_tag for sc in scores],
    )
    assert all(sc.nll < -lp[:-1].mean() for sc, lp in zip(scores, swapped, strict=True))
    shuffled = judge.score([_shuffled(s, k) for k, s in enumerate(seqs)])
    nat, shu = np.array([s.nll for s in scores]), np.array([s.nll for s in shuffled])
    assert nat.mean() < 1.0 and shu.mean() > 2.5 and (shu - nat > 1.5).all(), (nat, shu)
    # unnumbered sequences keep the lower of the two chain tags' NLLs, and say so
    assert not any(s.numbered for s in shuffled)
    both = judge.residue_log_probs([shuffled[0].sequence] * 2, ["[HEAVY]", "[LIGHT]"], [shuffled[0].species_tag] * 2)
    assert shuffled[0].nll == pytest.approx(min(-lp[:-1].mean() for lp in both), abs=1e-6)
    # batching and padding do not change scores
    alone = [judge.score([s], numbering=[n])[0].nll for s, n in zip(seqs[:2], numbered[:2], strict=True)]
    assert alone == pytest.approx(nat[:2], abs=1e-5)


@needs_iglm
def test_span_nll_left_and_infill_agree_with_iglm(judge, naturals, numbered):
    import torch

    seq, num = naturals[0][1], numbered[0]
    start, end = num.regions["CDR3"]
    full = judge.residue_log_probs([seq], ["[HEAVY]"], ["[HUMAN]"])[0]
    left = judge.span_nll(seq, "H3")
    assert left.span == (start, end) and left.mode == "left" and left.closing is None
    assert left.total == pytest.approx(-full[start:end].sum(), abs=1e-4)
    parts = [judge.span_nll(seq, num.regions[r]).total for r in REGION_NAMES]
    assert sum(parts) == pytest.approx(-full[:-1].sum(), abs=1e-3)
    infill = judge.span_nll(seq, "H3", mode="infill")
    with torch.no_grad():
        want = -judge._iglm().log_likelihood(seq, "[HEAVY]", "[HUMAN]", infill_range=(start, end))
    assert (infill.total + infill.closing) / (end - start + 1) == pytest.approx(want, abs=1e-4)
    with pytest.raises(AntibodyError, match="use 'left' or 'infill'"):
        judge.span_nll(seq, "H3", mode="right")
    with pytest.raises(AntibodyError, match="not a non-empty range"):
        judge.span_nll(seq, (5, 5))


@needs_iglm
def test_iglm_infill_and_generation_are_seeded_and_keep_flanks(judge, naturals):
    seq = naturals[0][1]
    a = judge.infill(seq, "H3", 2, seed=3)
    b = judge.infill(seq, "H3", 2, seed=3)
    assert a.sequences == b.sequences and len(set(a.sequences)) == 2 and a.seconds_per_sequence > 0
    start, end = cdr_span(seq, "H3")
    for design in a.sequences:
        assert design.startswith(seq[:start]) and design.endswith(seq[end:])
        assert set(design) <= set("ACDEFGHIKLMNPQRSTVWY")
    gen = judge.generate(1, chain="L", species="human", seed=0)
    assert gen.chain_tag == "[LIGHT]" and len(gen.sequences) == 1 and len(gen.sequences[0]) > 80
    with pytest.raises(AntibodyError, match="unknown chain"):
        judge.generate(1, chain="X")
    batched = judge.generate(5, chain="H", seed=1, batch_size=3)  # batches of 3: the count and seed still hold
    assert batched.sequences == judge.generate(5, chain="H", seed=1, batch_size=3).sequences
    prompted = judge.generate(3, chain="H", seed=2, prompt="EVQ")  # as IgLM's CLI --prompt_sequence
    assert len(prompted.sequences) == 3 and all(s.startswith("EVQ") for s in prompted.sequences)
    with pytest.raises(AntibodyError, match="IgLM scores only the 20 amino acids"):
        judge.generate(1, chain="H", prompt="EV1")
    assert len(set(batched.sequences)) == 5 and all(set(x) <= set("ACDEFGHIKLMNPQRSTVWY") for x in batched.sequences)
    assert all(len(x) > 80 for x in batched.sequences)


@needs_anarci
def test_antibody_metrics_table_summary_and_diversity(naturals, numbered):
    seqs = [s for _, s in naturals[:4]] + [naturals[0][1], _shuffled(naturals[0][1], 7)]  # 3 H (2 distinct), 2 K
    table, summary = antibody_metrics(seqs, reference=[s for _, s in naturals], iglm="auto", n_boot=200)
    assert list(table["numbered"]) == [True] * 5 + [False]
    assert summary["numbered_fraction"] == pytest.approx(5 / 6)
    assert summary["chain_fraction"] == pytest.approx({"H": 3 / 6, "K": 2 / 6, "L": 0.0})
    assert summary["cdrh3_unique_fraction"] == pytest.approx(2 / 3)
    assert summary["cdrl3_unique_fraction"] == pytest.approx(1.0)
    assert summary["v_identity"] == pytest.approx(1.0) and summary["v_identity_ci95"] == pytest.approx((1.0, 1.0))
    assert list(table["cdr3"][:4]) == [n.cdr3 for n in numbered[:4]]
    assert summary["cdr3_length_hist_H"] == dict(Counter(len(n.cdr3) for n in (numbered[0], numbered[1], numbered[0])))
    assert summary["cdr3_length_distance_H"]["tv"] >= 0 and summary["reference_n"] == len(naturals)
    if HAVE_IGLM:
        assert table["iglm_nll"].notna().all() and summary["iglm_nll"] < summary["iglm_nll_all"]
    heavy = [numbered[0], numbered[1], numbered[0], numbered[-1]]  # the last has a 20-residue CDR3
    ident = imgt_identity_matrix(heavy)
    assert ident[0, 2] == pytest.approx(1.0) and np.allclose(ident, ident.T) and np.allclose(np.diag(ident), 1.0)
    for j in (1, 3):  # against a plain loop over IMGT labels; gaps (unequal CDR lengths) count as mismatches
        ra = {lab: heavy[0].sequence[i] for lab, i in heavy[0].imgt}
        rb = {lab: heavy[j].sequence[i] for lab, i in heavy[j].imgt}
        cols = set(ra) | set(rb)
        assert ident[0, j] == pytest.approx(sum(ra.get(c) == rb.get(c) for c in cols) / len(cols))
    pair = summary["pairwise_identity"]
    assert pair["H"] == pytest.approx((ident[0, 1] + 1.0 + ident[0, 1]) / 3)
    assert 0 < pair["L"] < 1 and min(pair["H"], pair["L"]) <= pair["all"] <= max(pair["H"], pair["L"])


def test_distribution_distance_and_bootstrap():
    assert length_distribution_distance([1, 1], [3, 3]) == {"w1": 2.0, "tv": 1.0}
    assert length_distribution_distance([1, 3], [1, 3]) == {"w1": 0.0, "tv": 0.0}
    assert length_distribution_distance([10, 12], [10, 10, 12, 14]) == pytest.approx({"w1": 0.5, "tv": 0.25})
    assert np.isnan(length_distribution_distance([], [3])["w1"])
    mean, lo, hi = bootstrap_mean(np.random.default_rng(0).normal(2.0, 1.0, 400), n_boot=500)
    assert lo < mean < hi and lo > 1.8 and hi < 2.2 and hi - lo < 0.3
    assert bootstrap_mean([5.0, np.nan]) == (5.0, 5.0, 5.0)
    assert all(np.isnan(bootstrap_mean([])))
