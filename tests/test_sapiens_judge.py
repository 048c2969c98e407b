"""Sapiens humanness without fairseq: the checkpoint reader, the RoBERTa port, the two scores and their errors.

The port is checked two independent ways: a tiny random checkpoint in the exact fairseq key layout must give the
same logits as ``transformers``' ``RobertaForMaskedLM`` loaded through the well-known fairseq→HF mapping (written
out here, not shared with the module), and the real Sapiens checkpoints (fetched from PyPI once, skipped when that
is impossible) must do what only a correct port can: recover the framework residues of a human V domain, score it
far above its shuffles, and prefer the model of its own chain.
"""

from __future__ import annotations

import argparse
import os
import zipfile
from collections import OrderedDict
from pathlib import Path

import numpy as np
import pytest
import torch

from protein_didi.core.wheel_files import CACHE_ENV
from protein_didi.eval import sapiens_judge as sj
from protein_didi.protein.numbering import AntibodyError

TRASTUZUMAB_VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWG"
    "QGTLVTVSS"
)
TRASTUZUMAB_VL = (
    "DIQMTQSPSSLSASVGDRVTITCRASQDVNTAVAWYQQKPGKAPKLLIYSASFLYSGVPSRFSGSRSGTDFTLTISSLQPEDFATYYCQQHYTTPPTFGQGTKVEIK"
)
VH_CDRS = ("GFNIKDTYIH", "RIYPTNGYTRYADSVKG", "WGGDGFYAMDY")
VL_CDRS = ("RASQDVNTAVA", "SASFLYS", "QQHYTTPPT")
TINY = {"layers": 2, "dim": 16, "heads": 2, "ffn": 32, "max_positions": 24}


# ----------------------------------------------------------------------------------------------------------------
# a tiny random checkpoint in Sapiens' fairseq layout


def write_tiny_checkpoint(folder: Path, name: str = "checkpoint_vh.pt", seed: int = 0, extra: object = None) -> Path:
    """A random fairseq 0.9 RoBERTa checkpoint (``decoder.sentence_encoder.*`` keys, argparse args), legacy format."""
    g = torch.Generator().manual_seed(seed)
    d, f, vocab = TINY["dim"], TINY["ffn"], 25

    def rnd(*shape: int, scale: float = 0.5) -> torch.Tensor:
        return torch.randn(*shape, generator=g) * scale

    def norm() -> tuple[torch.Tensor, torch.Tensor]:
        return 1.0 + rnd(d, scale=0.2), rnd(d, scale=0.2)

    enc = "decoder.sentence_encoder."
    sd: OrderedDict[str, torch.Tensor] = OrderedDict()
    sd[enc + "embed_tokens.weight"] = rnd(vocab, d)
    sd[enc + "embed_tokens.weight"][1] = 0.0
    sd[enc + "embed_positions.weight"] = rnd(TINY["max_positions"] + 2, d)
    sd[enc + "embed_positions.weight"][1] = 0.0
    for i in range(TINY["layers"]):
        lay = f"{enc}layers.{i}."
        for proj in ("k_proj", "v_proj", "q_proj", "out_proj"):
            sd[f"{lay}self_attn.{proj}.weight"], sd[f"{lay}self_attn.{proj}.bias"] = rnd(d, d), rnd(d, scale=0.1)
        sd[f"{lay}self_attn_layer_norm.weight"], sd[f"{lay}self_attn_layer_norm.bias"] = norm()
        sd[f"{lay}fc1.weight"], sd[f"{lay}fc1.bias"] = rnd(f, d), rnd(f, scale=0.1)
        sd[f"{lay}fc2.weight"], sd[f"{lay}fc2.bias"] = rnd(d, f, scale=0.3), rnd(d, scale=0.1)
        sd[f"{lay}final_layer_norm.weight"], sd[f"{lay}final_layer_norm.bias"] = norm()
    sd[enc + "emb_layer_norm.weight"], sd[enc + "emb_layer_norm.bias"] = norm()
    sd["decoder.lm_head.weight"] = sd[enc + "embed_tokens.weight"]  # fairseq ties and saves both
    sd["decoder.lm_head.bias"] = rnd(vocab, scale=0.1)
    sd["decoder.lm_head.dense.weight"], sd["decoder.lm_head.dense.bias"] = rnd(d, d), rnd(d, scale=0.1)
    sd["decoder.lm_head.layer_norm.weight"], sd["decoder.lm_head.layer_norm.bias"] = norm()
    args = argparse.Namespace(
        arch="roberta_small",
        task="masked_lm",
        activation_fn="gelu",
        encoder_layers=TINY["layers"],
        encoder_embed_dim=d,
        encoder_ffn_embed_dim=f,
        encoder_attention_heads=TINY["heads"],
        max_positions=TINY["max_positions"],
    )
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    ckpt = {"args": args, "model": sd, "extra_state": {"opaque": extra}, "optimizer_history": []}
    torch.save(ckpt, path, _use_new_zipfile_serialization=False)  # Sapiens' files are legacy (non-zip) pickles
    (folder / "dict.txt").write_text("".join(f"{aa} 1\n" for aa in sj.RESIDUES))
    return path


def hf_reference(path: Path):
    """``transformers.RobertaForMaskedLM`` holding the tiny checkpoint, mapped key by key (fairseq → HF)."""
    from transformers import RobertaConfig, RobertaForMaskedLM

    state = torch.load(path, map_location="cpu", weights_only=False)["model"]  # our own test file: trusted
    cfg = RobertaConfig(
        vocab_size=25,
        hidden_size=TINY["dim"],
        num_hidden_layers=TINY["layers"],
        num_attention_heads=TINY["heads"],
        intermediate_size=TINY["ffn"],
        max_position_embeddings=TINY["max_positions"] + 2,
        type_vocab_size=1,
        pad_token_id=1,
        bos_token_id=0,
        eos_token_id=2,
        layer_norm_eps=1e-5,
        hidden_act="gelu",
        hidden_dropout_prob=0.0,
        attention_probs_dropout_prob=0.0,
    )
    hf = RobertaForMaskedLM(cfg).eval()
    enc = "decoder.sentence_encoder."
    mapped = {
        "roberta.embeddings.word_embeddings.weight": state[enc + "embed_tokens.weight"],
        "roberta.embeddings.position_embeddings.weight": state[enc + "embed_positions.weight"],
        "roberta.embeddings.token_type_embeddings.weight": torch.zeros(1, TINY["dim"]),
        "roberta.embeddings.LayerNorm.weight": state[enc + "emb_layer_norm.weight"],
        "roberta.embeddings.LayerNorm.bias": state[enc + "emb_layer_norm.bias"],
        "lm_head.dense.weight": state["decoder.lm_head.dense.weight"],
        "lm_head.dense.bias": state["decoder.lm_head.dense.bias"],
        "lm_head.layer_norm.weight": state["decoder.lm_head.layer_norm.weight"],
        "lm_head.layer_norm.bias": state["decoder.lm_head.layer_norm.bias"],
        "lm_head.decoder.weight": state["decoder.lm_head.weight"],
        "lm_head.decoder.bias": state["decoder.lm_head.bias"],
        "lm_head.bias": state["decoder.lm_head.bias"],
    }
    pairs = {
        "attention.self.query": "self_attn.q_proj",
        "attention.self.key": "self_attn.k_proj",
        "attention.self.value": "self_attn.v_proj",
        "attention.output.dense": "self_attn.out_proj",
        "attention.output.LayerNorm": "self_attn_layer_norm",
        "intermediate.dense": "fc1",
        "output.dense": "fc2",
        "output.LayerNorm": "final_layer_norm",
    }
    for i in range(TINY["layers"]):
        for hf_name, fs_name in pairs.items():
            for kind in ("weight", "bias"):
                mapped[f"roberta.encoder.layer.{i}.{hf_name}.{kind}"] = state[f"{enc}layers.{i}.{fs_name}.{kind}"]
    missing, unexpected = hf.load_state_dict(mapped, strict=False)
    assert not unexpected and not [k for k in missing if "position_ids" not in k]
    return hf


def ids(seq: str) -> list[int]:
    """Sapiens' tokens written out: ``<s>``=0, A…Y = 4…23 (dict.txt order), ``</s>``=2."""
    return [0, *(4 + sj.RESIDUES.index(aa) for aa in seq), 2]


def padded(seqs: list[str]) -> torch.Tensor:
    width = max(len(s) for s in seqs) + 2
    return torch.tensor([ids(s) + [1] * (width - len(s) - 2) for s in seqs])


@pytest.fixture
def tiny(tmp_path: Path) -> tuple[sj.SapiensRoberta, Path]:
    path = write_tiny_checkpoint(tmp_path / "tiny")
    return sj.load_checkpoint(path), path


# ----------------------------------------------------------------------------------------------------------------
# the port, on the tiny checkpoint


def test_tokens_are_sapiens_seq2tokens(tiny: tuple[sj.SapiensRoberta, Path]) -> None:
    """``<s> A C Y </s>`` with the fairseq dictionary: specials first, dict.txt's letters, ``<mask>`` last."""
    model, _ = tiny
    assert model.encode("ACY").tolist() == [0, 4, 5, 23, 2]
    assert model.encode(TRASTUZUMAB_VL[:20]).tolist() == ids(TRASTUZUMAB_VL[:20])
    assert model.mask_id == 24 and model.pad_id == 1 and model.vocab[:4] == sj.SPECIALS


def test_port_matches_transformers_roberta_on_a_padded_batch(tiny: tuple[sj.SapiensRoberta, Path]) -> None:
    """Same logits as HF RoBERTa: catches swapped layers or projections, a wrong position offset, pre-LN, a missing
    embedding LayerNorm, and padding leaking into real positions."""
    model, path = tiny
    hf = hf_reference(path)
    seqs = ["EVQLVESGGGLVQPGGSLRLS", "DIQMTQSP", "QVQLQESGPGLVKPSE"]
    tokens = padded(seqs)
    with torch.no_grad():
        ours = model(tokens)
        ref = hf(input_ids=tokens, attention_mask=tokens.ne(1).long()).logits
    real = tokens.ne(1)
    assert torch.allclose(ours[real], ref[real], atol=1e-5), (ours[real] - ref[real]).abs().max()


def test_both_scores_match_the_reference_and_ignore_batching(tiny: tuple[sj.SapiensRoberta, Path]) -> None:
    """Unmasked: log-softmax at each residue of one pass. PLL: the residue's log-prob with only it masked, computed
    here one masked copy at a time with HF. Order and batch size never change a score."""
    model, path = tiny
    hf = hf_reference(path)
    seqs = ["EVQLVESGGGLVQPGG", "DIQMTQSPSSLSASVGDRVTI", "QVQLQ", "EVKLLE"]
    for seq, got_u, got_p in zip(
        seqs,
        sj.model_residue_log_probs(model, seqs, "unmasked", batch_size=3),
        sj.model_residue_log_probs(model, seqs, "pll"),
        strict=True,
    ):
        tok = torch.tensor([ids(seq)])
        with torch.no_grad():
            lp = torch.log_softmax(hf(input_ids=tok).logits[0], -1)
        want_u = [lp[i + 1, tok[0, i + 1]].item() for i in range(len(seq))]
        want_p = []
        for i in range(len(seq)):
            masked = tok.clone()
            masked[0, i + 1] = 24
            with torch.no_grad():
                want_p.append(torch.log_softmax(hf(input_ids=masked).logits[0, i + 1], -1)[tok[0, i + 1]].item())
        np.testing.assert_allclose(got_u, want_u, atol=1e-5)
        np.testing.assert_allclose(got_p, want_p, atol=1e-5)
    alone = [sj.model_residue_log_probs(model, [s], "unmasked")[0] for s in seqs]
    for a, b in zip(alone, sj.model_residue_log_probs(model, seqs[::-1], "unmasked", batch_size=2)[::-1], strict=True):
        np.testing.assert_allclose(a, b, atol=1e-5)


def test_unpickling_runs_no_code_from_the_checkpoint(tmp_path: Path) -> None:
    """Unknown globals (fairseq meters, or worse) become inert stand-ins: a pickled os.system call never runs."""
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    path = write_tiny_checkpoint(tmp_path / "evil", extra=Payload())
    model = sj.load_checkpoint(path)
    assert not marker.exists() and model.cfg.layers == TINY["layers"]


def test_unreadable_or_foreign_checkpoints_are_one_line_errors(tmp_path: Path) -> None:
    path = write_tiny_checkpoint(tmp_path / "t")
    ckpt = torch.load(path, map_location="cpu", weights_only=False)
    del ckpt["model"]["decoder.sentence_encoder.layers.1.fc2.bias"]
    torch.save(ckpt, tmp_path / "t" / "missing.pt")
    with pytest.raises(sj.SapiensCheckpointError, match=r"missing\.pt does not match the Sapiens RoBERTa layout"):
        sj.load_checkpoint(tmp_path / "t" / "missing.pt")
    (tmp_path / "t" / "junk.pt").write_bytes(b"not a checkpoint at all")
    with pytest.raises(sj.SapiensCheckpointError, match="not a readable fairseq checkpoint") as info:
        sj.load_checkpoint(tmp_path / "t" / "junk.pt")
    assert "\n" not in str(info.value)
    with pytest.raises(sj.SapiensCheckpointsMissing, match=r"python -m protein_didi\.eval\.sapiens_judge"):
        sj.load_checkpoint(tmp_path / "t" / "absent.pt")


def test_too_long_and_unknown_method_are_one_line_errors(tiny: tuple[sj.SapiensRoberta, Path]) -> None:
    model, _ = tiny
    with pytest.raises(AntibodyError, match=r"sequence 1 has 23 residues, more than Sapiens' 22"):
        sj.model_residue_log_probs(model, ["ACD", "A" * 23])
    with pytest.raises(AntibodyError, match=r"unknown Sapiens score 'nll'; use one of unmasked, pll"):
        sj.model_residue_log_probs(model, ["ACD"], "nll")


# ----------------------------------------------------------------------------------------------------------------
# files and inputs (no checkpoints needed: all checked before anything is loaded)


@pytest.fixture
def empty_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Path:
    monkeypatch.setenv(CACHE_ENV, str(tmp_path / "cache"))
    return tmp_path / "cache"


def test_missing_checkpoints_name_the_fetch_command(empty_cache: Path, capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(sj.SapiensCheckpointsMissing, match=r"not found in .*; run python -m protein_didi\.eval\.sap"):
        sj.humanness([TRASTUZUMAB_VH], "H")
    assert sj.main(["--check"]) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "python -m protein_didi.eval.sapiens_judge" in err


def test_altered_files_fail_the_checksum(empty_cache: Path) -> None:
    """A file of the right name but other content (here a random checkpoint) is refused, naming the file."""
    folder = sj.cache_dir()
    write_tiny_checkpoint(folder, "checkpoint_vh.pt")
    write_tiny_checkpoint(folder, "checkpoint_vl.pt")
    with pytest.raises(sj.SapiensCheckpointsMissing, match=r"checkpoint_vh\.pt, checkpoint_vl\.pt in .* SHA-256"):
        sj.resolve_checkpoints()
    wheel = empty_cache / "sapiens-1.0.5-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as zf:
        for name in sj.SHA256:
            zf.writestr(sj.WHEEL_PREFIX + name, b"not sapiens")
    with pytest.raises(sj.SapiensCheckpointsMissing, match="checksum mismatch"):
        sj.fetch(empty_cache / "other", wheel=wheel)
    assert not (empty_cache / "other").exists()  # nothing half-written


@pytest.mark.parametrize(
    ("seqs", "chains", "message"),
    [
        (["EVQL", "EVQLXES"], "H", r"sequence 1 has invalid residue 'X' at position 5"),
        (["evql"], "H", r"sequence 0 has invalid residue 'e' at position 1"),
        (["EVQL", "DIQM"], ["H", "kappa"], r"unknown chain 'kappa' for sequence 1; use H \(heavy\) or K / L"),
        (["EVQL", "DIQM"], ["H"], r"1 chains given for 2 sequences"),
        (["EVQL", ""], "H", r"sequence 1 is empty"),
        ("EVQL", "H", r"pass a list of sequences"),
    ],
)
def test_bad_input_is_a_one_line_error_before_any_loading(
    empty_cache: Path, seqs: list[str], chains: str | list[str], message: str
) -> None:
    with pytest.raises(AntibodyError, match=message) as info:
        sj.sapiens_scores(seqs, chains)
    assert "\n" not in str(info.value)


# ----------------------------------------------------------------------------------------------------------------
# the real checkpoints


@pytest.fixture(scope="module")
def real_folder() -> Path:
    """Sapiens 1.0.5's files in the project cache: fetched from PyPI once when absent, else the tests skip."""
    try:
        return sj.resolve_checkpoints()
    except sj.SapiensCheckpointsMissing:
        pass
    try:
        return sj.fetch()
    except sj.SapiensCheckpointsMissing as err:
        pytest.skip(f"Sapiens checkpoints not in the cache and not fetchable ({err})")


def test_real_vh_scores_far_above_its_shuffles(real_folder: Path) -> None:
    rng = np.random.default_rng(0)
    shuffles = ["".join(rng.permutation(list(TRASTUZUMAB_VH))) for _ in range(4)]
    unmasked = sj.humanness([TRASTUZUMAB_VH, *shuffles], "H", folder=real_folder)
    assert -0.6 < unmasked[0] < -0.2 and unmasked[0] - unmasked[1:].max() > 0.5, unmasked
    pll = sj.sapiens_scores([TRASTUZUMAB_VH, shuffles[0]], "H", "pll", folder=real_folder)
    assert pll[0] - pll[1] > 1.5 and pll[0] < unmasked[0], pll
    np.testing.assert_allclose(unmasked, sj.sapiens_scores([TRASTUZUMAB_VH, *shuffles], "H", "unmasked"))


def test_each_chain_model_prefers_its_own_chain(real_folder: Path) -> None:
    """Kappa and lambda share the VL model (as in sapiens.predict); per-sequence chains keep the input order."""
    got = sj.humanness([TRASTUZUMAB_VH, TRASTUZUMAB_VL, TRASTUZUMAB_VH, TRASTUZUMAB_VL], ["H", "K", "L", "H"])
    assert got[0] - got[2] > 0.5 and got[1] - got[3] > 0.5, got
    assert sj.humanness([TRASTUZUMAB_VL], "L")[0] == pytest.approx(got[1])


@pytest.mark.parametrize(("chain", "seq", "cdrs"), [("H", TRASTUZUMAB_VH, VH_CDRS), ("K", TRASTUZUMAB_VL, VL_CDRS)])
def test_masked_framework_residues_are_recovered(
    real_folder: Path, chain: str, seq: str, cdrs: tuple[str, ...]
) -> None:
    """With each position masked in turn, the top prediction is the real residue at ≥ 90 % of framework positions
    (trastuzumab's frameworks are human VH3 / VK1); only a faithful port of a human-repertoire model does this."""
    model = sj.load_sapiens(chain, real_folder)
    tok = model.encode(seq)
    n = len(seq)
    copies = tok.repeat(n, 1)
    copies[torch.arange(n), torch.arange(1, n + 1)] = model.mask_id
    with torch.no_grad():
        pred = model(copies)[torch.arange(n), torch.arange(1, n + 1)].argmax(-1).numpy()
    framework = np.ones(n, dtype=bool)
    for cdr in cdrs:
        framework[seq.index(cdr) : seq.index(cdr) + len(cdr)] = False
    hits = pred == tok[1:-1].numpy()
    assert hits[framework].mean() >= 0.9 and hits[framework].mean() > hits[~framework].mean(), hits[framework].mean()


def test_errors_name_the_callers_index_when_chains_are_mixed(real_folder: Path) -> None:
    """Sequences are grouped by model; a too-long one is still named by its index in the caller's list."""
    with pytest.raises(AntibodyError, match=r"sequence 2 has 140 residues, more than Sapiens' 126"):
        sj.humanness([TRASTUZUMAB_VH, TRASTUZUMAB_VL, "A" * 140], ["H", "L", "K"])
