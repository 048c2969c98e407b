"""Continuing a pretrained masked LM under the masked-diffusion NELBO (``train_teacher --init``), on tiny BERTs.

Deterministic and fast: a 3-layer random BERT with AntiBERTy's vocabulary order stands in for AntiBERTy; each
run is a few CPU steps on the synthetic shards of ``conftest``.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from conftest import kill_at_step, make_tiny_bert
from transformers import BertForMaskedLM

from protein_didi.core.checkpoint import load_state
from protein_didi.core.loop import step_seed
from protein_didi.core.loss import masked_diffusion_loss
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.core.teacher_task import MASK_RATE_BANDS, BandedNelbo
from protein_didi.protein import train_teacher as trainer
from protein_didi.protein.alphabet import STANDARD_AA
from protein_didi.protein.data import ProteinBatches
from protein_didi.protein.hf_mlm import BertDenoiser
from protein_didi.protein.model import EsmDenoiser, esm_config
from protein_didi.protein.pretrained import is_antibody_model, load_model, save_model
from protein_didi.protein.shards import ProteinShards
from protein_didi.protein.train_teacher import TeacherTask
from protein_didi.train_teacher import main

VOCAB = ["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]", *STANDARD_AA]  # AntiBERTy's order
BAND_KEYS = [BandedNelbo.key(b) for b in MASK_RATE_BANDS]


def tiny_bert(seed: int = 123) -> BertDenoiser:
    """A random 3-layer BERT; seeded apart from the trainer's ``--seed 0`` so a fresh model can never equal it."""
    return make_tiny_bert(VOCAB, num_layers=3, seed=seed)


@pytest.fixture
def bert_folder(tmp_path: Path) -> Path:
    """A ``transformers`` BERT folder (ProtBert-style, fp32 weights): a foreign, non-antibody init."""
    model = tiny_bert()
    mlm = BertForMaskedLM(model.mlm.config)
    mlm.load_state_dict(model.mlm.state_dict())
    mlm.save_pretrained(tmp_path / "bert")
    (tmp_path / "bert" / "vocab.txt").write_text("\n".join(VOCAB) + "\n")
    return tmp_path / "bert"


@pytest.fixture
def antibody_folder(tmp_path: Path) -> Path:
    """One of our folders whose info marks an antibody model (as an AntiBERTy student or tuned teacher's does)."""
    return save_model(tmp_path / "ab", tiny_bert(), LogLinearSchedule(), "teacher", {"antibody": True, "source": "t"})


def _args(data: Path, out: Path, init: Path, steps: int, *extra: str) -> list[str]:
    return [
        "--data", str(data), "--out", str(out), "--init", str(init), "--steps", str(steps), "--batch-size", "4",
        "--max-residues", "32", "--checkpoint-every", "3", "--warmup", "2", "--band-sequences", "8",
        "--device", "cpu", *extra,
    ]  # fmt: skip


def _lines(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


def test_init_starts_from_the_pretrained_weights(synthetic_data, bert_folder, tmp_path):
    """Step 0's loss is the init model's NELBO on step 0's batch and noise; the step-0 bands are the init's."""
    run = tmp_path / "run"
    assert main(_args(synthetic_data, run, bert_folder, 1, "--checkpoint-every", "1")) == 0
    lines = _lines(run)
    train0 = next(r for r in lines if r["step"] == 0 and not r.get("eval"))
    init = load_model(str(bert_folder))
    x = ProteinBatches(ProteinShards.open(synthetic_data, "train"), 32, seed=0).batch(0, 4)
    gen = torch.Generator().manual_seed(step_seed(0, 0, 0))
    with torch.no_grad():
        expected = masked_diffusion_loss(init.model, x, trainer.residue_positions(x), init.schedule, generator=gen)
    assert train0["loss"] == pytest.approx(float(expected.loss), rel=1e-6, abs=1e-7)
    # the held-out bands of step 0 are the init model's, on the same fixed draws every checkpoint reuses
    bands = BandedNelbo(
        trainer.band_batches(ProteinShards.open(synthetic_data, "valid"), 8, 32),
        trainer.residue_positions,
        init.schedule,
        seed=trainer.BAND_SEED,
    )(init.model)
    eval0 = next(r for r in lines if r["step"] == 0 and r.get("eval"))
    for key in [*BAND_KEYS, "heldout_nelbo"]:
        assert eval0[key] == pytest.approx(bands[key], rel=1e-6), key
    assert eval0["heldout_nelbo"] == pytest.approx(np.mean([bands[k] for k in BAND_KEYS]))


def test_train_layers_freezes_the_bottom_and_keeps_no_optimizer_state_for_it(synthetic_data, bert_folder, tmp_path):
    run = tmp_path / "run"
    assert main(_args(synthetic_data, run, bert_folder, 3, "--train-layers", "1", "--lr", "1e-3")) == 0
    init = load_model(str(bert_folder)).model.state_dict()
    state = load_state(run / "train_state.pt")["task"]
    trained = state["model"]
    top = ("mlm.bert.encoder.layer.2.", "mlm.cls.")  # the top layer and the LM head (its bias is the decoder's)
    for key, before in init.items():
        if key.startswith(top) and not key.endswith("decoder.weight"):
            assert not torch.equal(trained[key], before), f"{key} should train"
        else:  # embeddings (and the LM head's output matrix, tied to them), layers 0 and 1
            assert torch.equal(trained[key], before), f"{key} should stay bit-identical"
    # AdamW holds moments for the trainable parameters only
    opt_keys = set(state["opt"]["state"])
    assert opt_keys and all(k.startswith(top) for k in opt_keys), sorted(opt_keys)[:3]
    # the exported (EMA) model keeps the frozen layers too (up to the export's fp16 rounding)
    exported = load_model(str(run / "model")).model.state_dict()
    for key in ("mlm.bert.encoder.layer.0.attention.self.query.weight", "mlm.bert.embeddings.word_embeddings.weight"):
        assert torch.equal(exported[key], init[key].half().float()), key


def test_train_top_layers_on_esm_keeps_the_tied_output_matrix_frozen():
    model = EsmDenoiser(esm_config("test"))
    trainable, total = trainer.train_top_layers(model, 1)
    names = {n for n, p in model.named_parameters() if p.requires_grad}
    assert any(n.startswith("mlm.esm.encoder.layer.1.") for n in names)
    assert not any(n.startswith(("mlm.esm.encoder.layer.0.", "mlm.esm.embeddings.")) for n in names)
    assert "mlm.lm_head.dense.weight" in names and "mlm.esm.encoder.emb_layer_norm_after.weight" in names
    assert model.mlm.lm_head.decoder.weight.requires_grad is False
    assert 0 < trainable < total
    with pytest.raises(ValueError, match=r"choose 1\.\.2"):
        trainer.train_top_layers(EsmDenoiser(esm_config("test")), 3)


def test_resume_continues_bit_for_bit(synthetic_data, bert_folder, tmp_path, monkeypatch, same_state):
    extra = ("--train-layers", "2")
    assert main(_args(synthetic_data, tmp_path / "full", bert_folder, 6, *extra)) == 0
    original = kill_at_step(monkeypatch, TeacherTask, 4)
    with pytest.raises(KeyboardInterrupt):
        main(_args(synthetic_data, tmp_path / "part", bert_folder, 6, *extra))
    assert load_state(tmp_path / "part" / "train_state.pt")["step"] == 3
    monkeypatch.setattr(TeacherTask, "train_step", original)
    assert main(_args(synthetic_data, tmp_path / "part", bert_folder, 6, *extra, "--resume")) == 0

    full, part = _lines(tmp_path / "full"), _lines(tmp_path / "part")
    assert full == part  # every training and held-out line, in the same order, bit for bit
    # the per-band held-out NELBO: before the first step and at every checkpoint, drawn in curves.png
    evals = [r for r in full if r.get("eval")]
    assert [r["step"] for r in evals] == [0, 3, 6]
    assert all(set(BAND_KEYS) <= set(r) and r["heldout_nelbo"] > 0 for r in evals)
    assert [r["step"] for r in full if not r.get("eval")] == list(range(6))
    assert (tmp_path / "full" / "curves.png").stat().st_size > 0
    same_state(*(load_state(tmp_path / run / "train_state.pt")["task"] for run in ("full", "part")))
    for name in ("model.safetensors", "config.json"):
        a, b = ((tmp_path / run / "model" / name).read_bytes() for run in ("full", "part"))
        assert a == b, name


def test_export_is_a_bert_model_that_keeps_the_antibody_flag(synthetic_data, antibody_folder, tmp_path):
    run = tmp_path / "run"
    licence = "CC BY-NC-SA 4.0 (trained on OAS data)"
    assert main(_args(synthetic_data, run, antibody_folder, 2, "--licence", licence)) == 0
    loaded = load_model(str(run / "model"))
    cfg = json.loads((run / "model" / "config.json").read_text())
    assert cfg["family"] == "bert" and isinstance(loaded.model, BertDenoiser) and loaded.role == "teacher"
    assert cfg["vocabulary"] == VOCAB and cfg["schedule"]["name"] == "loglinear"
    info = loaded.info
    assert info["antibody"] is True and is_antibody_model(info)
    assert info["init"] == str(antibody_folder) and info["data"] == "synthetic" and info["licence"] == licence
    assert set(info["valid_nelbo_by_mask_rate"]) == {*BAND_KEYS, "heldout_nelbo"}
    assert info["train_length_histogram"] and info["train_layers"] == "all"
    assert info["settings"]["lr"] == 4e-5 and info["settings"]["licence"] == licence


def test_splits_prepared_without_clustering_carry_their_licence_into_the_model(bert_folder, tmp_path):
    """``data_prep.fasta --splits`` (the repertoire's ready-made splits) → shards → a teacher that cites the data."""
    from data_prep.fasta import main as prepare_main

    rng = np.random.default_rng(0)
    names = {"train": "train", "valid": "validation", "test": "test"}
    for split, name in names.items():
        seqs = ["".join(rng.choice(list(STANDARD_AA), size=int(rng.integers(20, 40)))) for _ in range(12)]
        text = "".join(f">{split}{i} chain=H pair=p{i}\n{s}\n" for i, s in enumerate(seqs))
        (tmp_path / f"{name}.fasta").write_text(text)
    (tmp_path / "manifest.json").write_text(json.dumps({"licence": "CC BY-NC-SA 4.0 (OAS data)"}))
    files = ",".join(str(tmp_path / f"{n}.fasta") for n in names.values())
    assert prepare_main(["--splits", files, "--out", str(tmp_path / "shards")]) == 0
    meta = json.loads((tmp_path / "shards" / "meta.json").read_text())
    assert meta["licence"] == "CC BY-NC-SA 4.0 (OAS data)" and meta["split"]["method"] == "given"
    assert [meta["splits"][s]["sequences"] for s in ("train", "valid", "test")] == [12, 12, 12]
    valid = ProteinShards.open(tmp_path / "shards", "valid")
    assert len(valid) == 12 and (tmp_path / "shards" / "valid.fasta").read_text().startswith(">valid0\n")

    run = tmp_path / "run"
    assert main(_args(tmp_path / "shards", run, bert_folder, 1)) == 0
    info = load_model(str(run / "model")).info
    assert info["licence"] == "CC BY-NC-SA 4.0 (OAS data)"
    assert info["antibody"] is False  # a foreign BERT folder is no antibody model


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        (("--arch", "test"), "--arch test describes a fresh model"),
        (("--schedule", "cosine"), "keeps; leave --schedule out"),
        (("--max-residues", "64"), "takes at most 38 residues"),
        (("--train-layers", "4"), "the model has 3 transformer layers"),
        (("--lr", "1e-7", "--lr-end", "1e-6"), "--lr-end 1e-06 must be positive and at most --lr 1e-07"),
    ],
)
def test_bad_combinations_are_one_line_errors(synthetic_data, bert_folder, tmp_path, capsys, extra, message):
    assert main(_args(synthetic_data, tmp_path / "run", bert_folder, 1, *extra)) == 2
    err = capsys.readouterr().err
    assert message in err and err.strip().count("\n") == 0, err


def test_bf16_runs_only_where_it_is_native(synthetic_data, bert_folder, tmp_path, capsys, monkeypatch):
    monkeypatch.setattr(trainer, "native_bf16", lambda device: False)
    assert main(_args(synthetic_data, tmp_path / "refused", bert_folder, 1, "--bf16")) == 2
    assert "no native bf16" in capsys.readouterr().err
    monkeypatch.setattr(trainer, "native_bf16", lambda device: True)  # emulated here, but the path is the same
    assert main(_args(synthetic_data, tmp_path / "run", bert_folder, 1, "--bf16", "--band-sequences", "0")) == 0
    assert np.isfinite(_lines(tmp_path / "run")[0]["loss"])


def test_fresh_runs_keep_their_defaults():
    args = trainer.settings_from_args(trainer.build_parser().parse_args(["--data", "d", "--out", "o"]))
    assert (args.arch, args.schedule, args.lr, args.warmup, args.lr_end, args.band_sequences) == (
        "tiny", "loglinear", 1e-3, 200, None, 0,
    )  # fmt: skip
    args = trainer.settings_from_args(trainer.build_parser().parse_args(["--data", "d", "--out", "o", "--init", "x"]))
    assert (args.lr, args.lr_end, args.warmup, args.band_sequences) == (4e-5, 1e-5, 100, 64)
