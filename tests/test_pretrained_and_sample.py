import pytest
import torch
from transformers import EsmForMaskedLM

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.fasta import read_fasta
from protein_didi.protein.generate import Motif, ProteinRequest, generate
from protein_didi.protein.model import EsmDenoiser, esm_config
from protein_didi.protein.pretrained import ModelNotFoundError, load_model, save_model
from protein_didi.sample import main as sample_main


def test_save_load_round_trip(tiny_model, tmp_path):
    save_model(tmp_path / "m", tiny_model, LogLinearSchedule(), "teacher", {"note": "x"}, dtype=torch.float32)
    loaded = load_model(str(tmp_path / "m"))
    z = ALPHABET.masked_template([9])
    assert torch.allclose(loaded.model(z, torch.ones(1)), tiny_model(z, torch.ones(1)))
    assert loaded.info == {"note": "x"} and loaded.schedule.name == "loglinear"


def test_transformers_esm_folder_loads_like_dplm(tmp_path):
    """DPLM checkpoints are transformers ESM masked LMs; a tiny one saved the same way must load."""
    torch.manual_seed(0)
    EsmForMaskedLM(esm_config("test")).save_pretrained(tmp_path / "dplm_like")
    loaded = load_model(str(tmp_path / "dplm_like"))
    out = loaded.model(ALPHABET.masked_template([5]), torch.ones(1))
    assert out.shape == (1, 7, 33) and torch.allclose(out.exp().sum(-1), torch.ones(1, 7))


def test_dplm_150m_architecture():
    cfg = esm_config("dplm-150m")
    assert (cfg.num_hidden_layers, cfg.hidden_size, cfg.vocab_size) == (30, 640, 33)


def test_missing_and_corrupt_models(tmp_path):
    with pytest.raises(ModelNotFoundError, match="no model 'nonsense'"):
        load_model("nonsense")
    with pytest.raises(ModelNotFoundError, match="huggingface-cli download"):
        load_model("someone/not-here-offline")
    save_model(tmp_path / "bad", EsmDenoiser(esm_config("test")), LogLinearSchedule(), "teacher")
    (tmp_path / "bad" / "model.safetensors").write_bytes(b"\x00" * 20)
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(str(tmp_path / "bad"))
    (tmp_path / "bad" / "config.json").write_text('{"format": "protein_didi/1", "architecture": {}}')
    with pytest.raises(CheckpointError, match="no valid 'architecture'"):
        load_model(str(tmp_path / "bad"))
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="not a model folder"):
        load_model(str(tmp_path / "empty"))


def test_vocabulary_mismatch_is_rejected():
    with pytest.raises(ValueError, match="vocabulary has 50 tokens"):
        EsmDenoiser(esm_config("test", vocab_size=50))


def test_motifs_are_kept(tiny_model):
    from protein_didi.protein.pretrained import LoadedModel

    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    motif = Motif.parse("5:WW,20:C", prefix="MK")
    seqs = generate(loaded, ProteinRequest(num=3, length=24, nfe=4, motif=motif, seed=1))
    assert all(s[:2] == "MK" and s[4:6] == "WW" and s[19] == "C" and len(s) == 24 for s in seqs)
    assert all(set(s) <= set("ACDEFGHIKLMNPQRSTVWY") for s in seqs)
    ranged = ProteinRequest(num=3, length=(10, 20), nfe=4, seed=2)
    assert generate(loaded, ranged) == generate(loaded, ranged)


@pytest.mark.parametrize(
    "spec,message",
    [("5:", "POSITION:RESIDUES"), ("3:WJ", "invalid residue 'J'"), ("", "motif is empty"), ("0:A", "must be ≥ 1")],
)
def test_bad_motifs(spec, message):
    with pytest.raises(ValueError, match=message):
        Motif.parse(spec)


def test_sample_cli_with_embedded_teacher_is_deterministic(tmp_path):
    args = ["--model", "teacher", "--num", "3", "--length", "40", "--nfe", "8", "--seed", "7", "--device", "cpu"]
    assert sample_main([*args, "--out", str(tmp_path / "a.fasta")]) == 0
    assert sample_main([*args, "--out", str(tmp_path / "b.fasta")]) == 0
    a, b = read_fasta(tmp_path / "a.fasta"), read_fasta(tmp_path / "b.fasta")
    assert a == b and len(a) == 3 and all(len(s) == 40 for _, s in a)


def test_sample_cli_errors(capsys):
    assert sample_main(["--model", "teacher", "--length", "2000", "--nfe", "2"]) == 2
    assert "out of range" in capsys.readouterr().err
    assert sample_main(["--model", "teacher", "--motif", "1:ZZJ", "--nfe", "2"]) == 2
    assert capsys.readouterr().err.startswith("error: motif at 1: invalid residue 'J'")
    assert sample_main(["--model", "/no/such/dir", "--nfe", "2"]) == 2
    assert "no model" in capsys.readouterr().err


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (["--nfe", "0"], "NFE (sampling steps) must be ≥ 1, got 0"),
        (["--num", "0"], "number of sequences must be ≥ 1"),
        (["--batch-size", "0"], "batch size must be ≥ 1"),
        (["--temperature", "0"], "temperature must be > 0"),
        (["--top-p", "1.5"], "top-p must be in (0, 1]"),
        (["--length", "1500"], "length 1500 is out of range"),
        (["--length", "20", "--motif", "30:W"], "motif reaches position 30"),
        (["--seed", "-1"], "seed must be ≥ 0"),
        (["--out", "/no/such/folder/s.fasta"], "folder /no/such/folder does not exist"),
    ],
)
def test_sample_validates_everything_before_loading_or_progress(capsys, extra, message):
    """The model folder does not exist: a bad argument must be reported first, on one clean line."""
    assert sample_main(["--model", "/no/such/dir", *extra]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
    assert "NFE:" not in err and "%|" not in err  # no progress bar was started


def test_text_sample_validates_before_loading(capsys):
    for extra, message in (
        # the one request's messages, the same as the protein command's
        (["--nfe", "0"], "NFE (sampling steps) must be ≥ 1, got 0"),
        (["--num", "0"], "number of sequences must be ≥ 1"),
        (["--length", "2"], "text length must be ≥ 3"),
        (["--top-p", "0"], "top-p must be in (0, 1]"),
    ):
        assert sample_main(["--domain", "text", "--model", "/no/such/dir", *extra]) == 2
        err = capsys.readouterr().err
        assert err.startswith("error: ") and message in err and err.count("\n") == 1, err
