"""IgFold with its real weights: a natural heavy chain folds confidently, its shuffle does not; reasons and pairs.

Needs the optional non-commercial extra (``pip install -e .[igfold]``) and AntiBERTy's weights; skips without them.
One ensemble member keeps the folds at a few seconds each on one CPU thread.
"""

from __future__ import annotations

import io

import numpy as np
import pytest
import torch

pytest.importorskip("igfold")

from biotite.structure.io.pdb import PDBFile

from protein_didi.fold.antibody import NOT_ANTIBODY, fold_antibodies, prmsd_summary, shuffled
from protein_didi.fold.igfold import IgFold, decode_chains, encode_chains
from protein_didi.fold.result import FoldingUnavailable

# trastuzumab (Herceptin) VH and VL, the reference chain
HEAVY = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYW"
    "GQGTLVTVSS"
)
LIGHT = "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"


@pytest.fixture(scope="module")
def igfold(tmp_path_factory: pytest.TempPathFactory) -> IgFold:
    torch.set_num_threads(1)
    try:
        return IgFold("cpu", tmp_path_factory.mktemp("igfold") / "folds.sqlite", num_models=1).load()
    except FoldingUnavailable as err:
        pytest.skip(str(err))


@pytest.fixture(scope="module")
def natural_and_shuffled(igfold: IgFold) -> list:
    return igfold.fold([HEAVY, f"H:{shuffled(HEAVY)}"])


def test_natural_chain_is_predicted_more_confidently_than_its_shuffle(natural_and_shuffled: list) -> None:
    natural, shuffle = natural_and_shuffled
    assert natural.score == shuffle.score == "prmsd"
    assert natural.per_residue.shape == (len(HEAVY),) and np.isfinite(natural.per_residue).all()
    assert natural.mean < 0.6 < 1.5 < shuffle.mean  # measured: 0.34 Å vs 2.3 Å
    assert np.mean(natural.per_residue < 1.0) > 0.8 > np.mean(shuffle.per_residue < 1.0)


def test_pdb_carries_the_backbone_and_the_predicted_error(natural_and_shuffled: list) -> None:
    natural = natural_and_shuffled[0]
    atoms = PDBFile.read(io.StringIO(natural.pdb)).get_structure(model=1, extra_fields=["b_factor"])
    ca = atoms[atoms.atom_name == "CA"]
    assert len(ca) == len(HEAVY) and set(atoms.chain_id) == {"H"}
    assert set(atoms.atom_name) == {"N", "CA", "C", "CB", "O"}
    np.testing.assert_allclose(ca.b_factor, natural.per_residue, atol=0.006)  # two decimals in the PDB
    step = np.linalg.norm(np.diff(ca.coord, axis=0), axis=1)
    assert np.median(step) == pytest.approx(3.8, abs=0.15)  # consecutive CA atoms: a real chain, not noise


def test_cache_answers_the_second_time(igfold: IgFold, natural_and_shuffled: list) -> None:
    calls = igfold.calls
    again = igfold.fold([HEAVY.lower()])[0]
    assert igfold.calls == calls and again.score == "prmsd"
    np.testing.assert_array_equal(again.per_residue, natural_and_shuffled[0].per_residue)


def test_bad_chains_get_one_line_errors(igfold: IgFold) -> None:
    for text, match in (
        (HEAVY[:50] + "X" + HEAVY[51:], r"sequence 1: chain H has 'X' at position 51; IgFold takes the 20 standard"),
        ("H:" + HEAVY * 5, r"longer than IgFold's 510 per chain"),
        (f"K:{LIGHT}", r"chain 'K' is not H or L"),
        (f"H:{HEAVY};L:{LIGHT};H:{HEAVY}", r"one chain or one H/L pair"),
    ):
        with pytest.raises(ValueError, match=match) as info:
            igfold.fold([text])
        assert "\n" not in str(info.value)
    assert decode_chains(encode_chains({"H": "EVQ", "L": "DIQ"})) == {"H": "EVQ", "L": "DIQ"}


def test_fold_antibodies_numbers_pairs_and_explains(igfold: IgFold) -> None:
    pytest.importorskip("anarci")
    seqs = [HEAVY, LIGHT, "MKTAYIAKQRQISFVKSHFSRQLEERLG", HEAVY + "KSTKGPSVFPLAP" * 40, HEAVY[:30] + "B" + HEAVY[31:]]
    folds = fold_antibodies(seqs, ["tz|H", "tz|L", "other", "long", "odd"], igfold)
    heavy, light, other, long, odd = folds
    assert odd.reason == "has 'B' at position 31; IgFold takes the 20 standard amino acids only"
    assert (heavy.chain, light.chain) == ("H", "L") and heavy.paired_with == 1 and light.paired_with == 0
    assert heavy.pdb == light.pdb
    atoms = PDBFile.read(io.StringIO(heavy.pdb)).get_structure(model=1)
    assert set(atoms.chain_id) == {"H", "L"} and (atoms.atom_name == "CA").sum() == len(HEAVY) + len(LIGHT)
    assert heavy.prmsd.shape == (len(HEAVY),) and light.prmsd.shape == (len(LIGHT),)
    ca = PDBFile.read(io.StringIO(heavy.pdb)).get_structure(model=1, extra_fields=["b_factor"])
    ca = ca[ca.atom_name == "CA"]
    np.testing.assert_allclose(light.prmsd, ca[ca.chain_id == "L"].b_factor, atol=0.006)  # each record: its chain
    assert heavy.mean_prmsd < 0.6 and light.mean_prmsd < 0.6
    assert set(heavy.cdr_prmsd) == {"H1", "H2", "H3"} and set(light.cdr_prmsd) == {"L1", "L2", "L3"}
    assert heavy.worst_cdr == "H3"  # the long, variable loop is the least certain
    start, end = heavy.cdr_spans["H3"]
    assert heavy.cdr_prmsd["H3"] == pytest.approx(heavy.prmsd[start:end].mean())
    assert other.reason == NOT_ANTIBODY and other.pdb is None and np.isnan(other.mean_prmsd)
    assert long.reason is not None and "longer than IgFold's 510" in long.reason
    summary = prmsd_summary([f.mean_prmsd for f in folds], n_boot=200)
    assert summary["n"] == 2 and summary["share_below_1A"] == 1.0
    assert summary["ci95"][0] <= summary["mean"] <= summary["ci95"][1]


def test_command_line_writes_a_pdb_per_design_and_reasons(igfold: IgFold, tmp_path, capsys) -> None:
    import shutil

    import pandas as pd

    from protein_didi.fold.antibody import main, mean_prmsd

    out = tmp_path / "out"
    out.mkdir()
    cache = tmp_path / "fold_cache.sqlite"
    shutil.copy(igfold.cache.path, cache)  # the heavy chain is folded already: no refolding
    fasta = tmp_path / "d.fasta"
    fasta.write_text(f">ab/1 heavy chain\n{HEAVY}\n>not_ab\nMKTAYIAKQRQISFVKSHFSRQLEERLGLIEVQ\n")
    argv = ["--fasta", str(fasta), "--out", str(out), "--models", "1", "--device", "cpu", "--workers", "1"]
    assert main([*argv, "--fold-cache", str(cache)]) == 0
    table = pd.read_csv(out / "prmsd.csv").set_index("id")
    assert table.at["ab/1", "pdb"] == "ab_1.pdb" and "B-FACTOR = PRMSD" in (out / "ab_1.pdb").read_text()
    assert table.at["ab/1", "mean_prmsd"] < 0.6 and table.at["ab/1", "worst_cdr"] == "H3"
    assert table.at["not_ab", "reason"] == NOT_ANTIBODY and not (out / "not_ab.pdb").exists()
    captured = capsys.readouterr()
    printed = captured.out
    assert "1 of 2 chains folded" in printed and f"not_ab: {NOT_ANTIBODY}" in printed
    assert "pRMSD is IgFold's confidence (its predicted error, Å), not a measured error" in printed
    assert "IgFold: 100%" in captured.err and "1/1" in captured.err  # the bar, per chain
    (tmp_path / "empty.fasta").write_text("")
    assert main(["--fasta", str(tmp_path / "empty.fasta"), "--out", str(out)]) == 2
    assert capsys.readouterr().err.count("\n") == 1
    values = mean_prmsd([HEAVY, "MKT"], cache_path=cache, num_models=1, device="cpu")
    assert values[0] == pytest.approx(table.at["ab/1", "mean_prmsd"]) and np.isnan(values[1])


def test_the_fan_out_serves_igfold_too(igfold: IgFold, natural_and_shuffled: list, monkeypatch) -> None:
    """A worker pool for IgFold keys the cache like IgFold itself, validates chains its way and reuses the folds."""
    from protein_didi.fold.fanout import FoldPool, FoldSpec, shard_sequences

    monkeypatch.setenv("PROTEIN_DIDI_IGFOLD_MODELS", "1")
    pool = FoldPool(FoldSpec(backend="igfold"), ["cpu", "cpu"], igfold.cache.path, threads=1)
    assert pool.model_id == igfold.model_id and pool.max_batch_residues == 1
    (again,) = pool.fold([f"h:{HEAVY.lower()}"])  # cached: no worker is spawned
    assert pool.calls == 0 and again.score == "prmsd"
    np.testing.assert_array_equal(again.per_residue, natural_and_shuffled[0].per_residue)
    with pytest.raises(ValueError, match="chain 'K' is not H or L"):
        pool.fold([f"K:{HEAVY}"])
    units = [f"H:{HEAVY}", f"L:{LIGHT}", f"H:{HEAVY};L:{LIGHT}"]
    parts = [shard_sequences(units, i, 2, igfold.validate) for i in range(2)]
    assert sorted(parts[0] + parts[1]) == sorted(units)


def test_members_refined_together_equal_igfolds_own_refinement(igfold: IgFold) -> None:
    """Two members' frames in one batch end where IgFold's gradient_refine takes each alone (per-member losses)."""
    from igfold.model.interface import IgFoldInput
    from igfold.training.utils import EPS, cis_peptide_loss, vdw_clash_loss

    from protein_didi.fold.igfold import _cis_loss, _clash_loss, refine_together

    model = igfold._models[0]
    embs, atts = igfold._antiberty.embed([HEAVY[:60]], return_attention=True)
    inputs = IgFoldInput(
        embeddings=[embs[0][1:-1].unsqueeze(0)], attentions=[atts[0][:, :, 1:-1, 1:-1].unsqueeze(0)],
        return_embeddings=True,
    )  # fmt: skip
    with torch.no_grad():
        out = model(inputs)
    g = torch.Generator().manual_seed(0)
    t0, r0 = out.translations.clone(), out.rotations.clone()
    t1 = t0 + 0.5 * torch.randn(t0.shape, generator=g)  # a second, clashing member with twisted peptides
    r1 = torch.linalg.qr(torch.randn(r0.shape, generator=g))[0]
    r1 = r1 * torch.linalg.det(r1)[..., None, None]  # proper rotations
    coords = model.transform_ideal_coords(torch.cat([t0, t1]), torch.cat([r0, r1]))
    mask = torch.ones(coords.shape[:2], dtype=torch.bool)
    for k in range(2):  # the per-member losses equal IgFold's own on that member alone
        one = coords[k : k + 1]
        torch.testing.assert_close(_cis_loss(coords, [60], mask, EPS)[k], cis_peptide_loss(one, [60], mask[:1]))
        torch.testing.assert_close(_clash_loss(coords, mask, EPS)[k : k + 1], vdw_clash_loss(one, mask[:1]))
    t, r = refine_together(model, inputs, torch.cat([t0, t1]), torch.cat([r0, r1]), steps=20)
    for k, (start, turn) in enumerate(((t0, r0), (t1, r1))):
        alone = type(out)(**{**out.__dict__, "translations": start.clone(), "rotations": turn.clone()})
        with torch.no_grad():
            alone = model.gradient_refine(inputs, alone, num_steps=20)
        torch.testing.assert_close(t[k : k + 1], alone.translations, atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(r[k : k + 1], alone.rotations, atol=1e-4, rtol=1e-4)


def test_imgt_numbers_keep_insertion_codes_and_flanks() -> None:
    from protein_didi.fold.antibody import imgt_residue_numbers

    labels = [("1", 1), ("2", 2), ("111", 3), ("111A", 4), ("112A", 5), ("112", 6), ("128", 7)]
    numbers, codes = imgt_residue_numbers(10, labels)
    assert numbers.tolist() == [0, 1, 2, 111, 111, 112, 112, 128, 129, 130]
    assert codes.tolist() == ["", "", "", "", "A", "A", "", "", "", ""]
    numbers, codes = imgt_residue_numbers(3, [])
    assert numbers.tolist() == [1, 2, 3] and codes.tolist() == ["", "", ""]


def test_a_vh_and_vl_given_as_a_pair_fold_as_one_imgt_numbered_pdb(igfold: IgFold, tmp_path, capsys) -> None:
    pytest.importorskip("anarci")
    import pandas as pd

    from protein_didi.fold.antibody import main

    fasta = tmp_path / "pair.fasta"
    fasta.write_text(f">tz_vh\n{HEAVY}\n>tz_vl\n{LIGHT}\n")  # names that do not say H/L: --pair does
    argv = ["--fasta", str(fasta), "--out", str(tmp_path / "out"), "--models", "1", "--device", "cpu"]
    assert main([*argv, "--workers", "1", "--pair", "--fold-cache", str(igfold.cache.path)]) == 0
    table = pd.read_csv(tmp_path / "out" / "prmsd.csv").set_index("id")
    assert table.at["tz_vh", "pdb"] == table.at["tz_vl", "pdb"] == "tz_vh+tz_vl.pdb"
    assert table.at["tz_vh", "paired_with"] == "tz_vl"
    text = (tmp_path / "out" / "tz_vh+tz_vl.pdb").read_text()
    assert "REMARK   1 RESIDUE NUMBERS AND INSERTION CODES: IMGT (ANARCI)" in text
    assert "ITS CONFIDENCE (PREDICTED ERROR), NOT A MEASURED ERROR" in text
    atoms = PDBFile.read(io.StringIO(text)).get_structure(model=1, extra_fields=["b_factor"])
    ca = atoms[atoms.atom_name == "CA"]
    heavy, light = ca[ca.chain_id == "H"], ca[ca.chain_id == "L"]
    assert len(heavy) == len(HEAVY) and len(light) == len(LIGHT)
    residue = {(c, int(n)): name for c, n, name in zip(ca.chain_id, ca.res_id, ca.res_name, strict=True)}
    for chain in "HL":  # IMGT's conserved residues sit at their IMGT numbers
        assert residue[chain, 23] == residue[chain, 104] == "CYS" and residue[chain, 41] == "TRP"
    assert residue["H", 118] == "TRP" and residue["L", 118] == "PHE"  # the J motif W/F-G-x-G
    assert heavy.res_id.max() <= 128 and heavy.res_id[0] == 1
    pair_plain = igfold.fold([f"H:{HEAVY};L:{LIGHT}"])[0]
    np.testing.assert_allclose(ca.b_factor, pair_plain.per_residue, atol=0.006)  # B-factor = pRMSD
    assert table.at["tz_vl", "mean_prmsd"] == pytest.approx(pair_plain.per_residue[len(HEAVY) :].mean())
