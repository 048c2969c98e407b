"""Inference precision: conversion, float64 draws, ``auto`` resolution, one-line refusals, CLI plumbing."""

from __future__ import annotations

import copy

import pytest
import torch
from transformers import BertConfig

from protein_didi.core import precision as prec
from protein_didi.core import sampler as sampler_mod
from protein_didi.core.precision import (
    PrecisionError,
    apply_precision,
    module_precision,
    parameter_count,
    resolve_precision,
)
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein import sample
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.generate import ProteinRequest, generate, plan_batches
from protein_didi.protein.hf_mlm import BERT_SPECIALS, BertDenoiser
from protein_didi.protein.model import EsmDenoiser, esm_config
from protein_didi.protein.pretrained import load_model
from protein_didi.report.metrics.judge import judge_scores
from protein_didi.sample import main as sample_main

LETTERS = list("ACDEFGHIKLMNPQRSTVWY")


def half_masked(batch: int = 3, length: int = 30) -> torch.Tensor:
    gen = torch.Generator().manual_seed(0)
    z = ALPHABET.masked_template([length] * batch)
    fill = torch.randint(4, 24, (batch, length), generator=gen)  # residue letters of ESM's alphabet
    keep = torch.rand(batch, length, generator=gen) < 0.5
    z[:, 1 : length + 1] = torch.where(keep, fill, z[:, 1 : length + 1])
    return z


def esm(token_dropout: bool = False) -> EsmDenoiser:
    torch.manual_seed(0)
    # width 128 so that int8 quantises the encoder (layers with < 128 outputs stay fp32)
    cfg = esm_config("test", hidden_size=128, intermediate_size=256, token_dropout=token_dropout)
    return EsmDenoiser(cfg).eval()


def bert() -> BertDenoiser:
    torch.manual_seed(0)
    vocab = [*BERT_SPECIALS.values(), *LETTERS]
    cfg = BertConfig(vocab_size=len(vocab), hidden_size=128, num_hidden_layers=2, num_attention_heads=2,
                     intermediate_size=256, max_position_embeddings=64)  # fmt: skip
    return BertDenoiser(cfg, vocab).eval()


def max_prob_gap(a: torch.Tensor, b: torch.Tensor) -> float:
    return float((a.exp() - b.exp()).abs().max())


@pytest.mark.parametrize("make", [esm, bert], ids=["esm", "bert"])
@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_converted_models_run_in_the_requested_precision_and_agree_with_fp32(make, precision: str) -> None:
    model = make()
    z = half_masked()
    t = torch.ones(z.shape[0])
    with torch.no_grad():
        ref = model(z, t)
        low = apply_precision(copy.deepcopy(model), precision)
        out = low(z, t)
    assert module_precision(model) == "fp32" and module_precision(low) == precision
    if precision == "bf16":
        assert {p.dtype for p in low.parameters()} == {torch.bfloat16}
        rotary = [b.dtype for n, b in low.named_buffers() if n.endswith("inv_freq")]
        assert rotary == ([torch.float32] * len(rotary)) and (make is bert or rotary)  # positions stay exact
    else:
        quantised = [m for m in low.modules() if type(m) is torch.ao.nn.quantized.dynamic.Linear]
        assert len(quantised) >= 8  # every encoder Linear, not only one
    assert out.dtype == torch.float32  # logits are cast up before the softmax
    gap = max_prob_gap(out, ref)
    assert 0 < gap < 0.05, gap  # really computed differently, yet close
    assert parameter_count(low) == parameter_count(model)


@pytest.mark.parametrize("make", [lambda: esm(token_dropout=True), bert], ids=["esm-token-dropout", "bert"])
def test_soft_tokens_work_in_bf16(make) -> None:
    """RGAS feeds one-hot soft tokens; the embedding path must stay in the model's dtype."""
    model = make()
    z = half_masked()
    soft = torch.nn.functional.one_hot(z, ALPHABET.size).float().requires_grad_(True)
    low = apply_precision(copy.deepcopy(model), "bf16")
    out = low(z, torch.ones(z.shape[0]), soft_tokens=soft)
    (grad,) = torch.autograd.grad(out[z == ALPHABET.mask_id].logsumexp(-1).sum(), soft)
    assert torch.isfinite(grad).all() and grad.abs().sum() > 0
    with torch.no_grad():
        assert max_prob_gap(out, model(z, torch.ones(z.shape[0]))) < 0.05


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_categorical_draws_stay_float64(monkeypatch, precision: str) -> None:
    seen = []
    draw = sampler_mod.sample_categorical

    def spy(probs, generator=None):
        seen.append(probs.dtype)
        return draw(probs, generator)

    monkeypatch.setattr(sampler_mod, "sample_categorical", spy)
    model = apply_precision(esm(), precision)
    z = ALPHABET.masked_template([20, 20])
    out = ancestral_sample(model, z, ALPHABET.special_positions(z), LogLinearSchedule(), SamplerConfig(4),
                           torch.Generator().manual_seed(0))  # fmt: skip
    assert (out != ALPHABET.mask_id).all()
    assert seen and set(seen) == {torch.float64}


def test_auto_picks_bf16_only_where_it_is_native(monkeypatch) -> None:
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_bf16"}))
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "amx_bf16"}))
    assert resolve_precision("auto", "cpu") == "bf16"
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2", "avx512f", "avx512_vnni"}))
    assert resolve_precision("auto", "cpu") == "fp32"
    assert resolve_precision("int8", "cpu") == "int8" and resolve_precision("fp32", "cpu") == "fp32"
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: not including_emulation)
    assert resolve_precision("auto", "cuda") == "bf16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: including_emulation)
    assert resolve_precision("auto", "cuda") == "fp32"  # emulated bf16 (pre-Ampere) is not "fast"
    assert resolve_precision("auto", "mps") == "fp32"


def test_precisions_a_device_cannot_run_are_refused_in_one_line(monkeypatch) -> None:
    monkeypatch.setattr(torch.cuda, "is_available", lambda: True)
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda including_emulation=True: True)
    with pytest.raises(PrecisionError, match=r"int8 runs on CPU only.*use bf16") as err:
        resolve_precision("int8", "cuda")
    assert "\n" not in str(err.value)
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(PrecisionError, match=r"bf16: this CPU has no AVX512-BF16/AMX.*use --precision int8 or fp32"):
        resolve_precision("bf16", "cpu")
    with pytest.raises(PrecisionError, match="unknown precision 'fp16'"):
        resolve_precision("fp16", "cpu")


def test_sample_cli_loads_the_model_in_the_chosen_precision(monkeypatch, capsys) -> None:
    seen = {}

    def fake_generate(loaded, request, *args, **kwargs):
        seen["precision"], seen["net"] = loaded.precision, module_precision(loaded.model)
        seen["max_tokens"] = request.max_tokens
        return ["ACD"] * request.num

    monkeypatch.setattr(sample, "generate", fake_generate)
    assert sample_main(["--model", "student", "--num", "2", "--precision", "int8", "--max-tokens", "500"]) == 0
    assert seen == {"precision": "int8", "net": "int8", "max_tokens": 500}
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    assert sample_main(["--model", "student", "--num", "2", "--precision", "bf16"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: --precision bf16") and "int8 or fp32" in err and "\n" not in err
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    assert sample_main(["--model", "student", "--num", "2"]) == 0  # default auto → bf16 on a native-bf16 CPU
    assert seen["precision"] == "bf16" and seen["net"] == "bf16"


def test_report_judge_runs_in_the_requested_precision() -> None:
    seqs = ["MKTAYIAKQRQISFVKSHFSRQ", "GSHMLEDPVDAFQGRLSELLTK"]
    fp32, note = judge_scores(seqs, None)
    int8, note8 = judge_scores(seqs, None, "int8")
    assert note is None and note8 is None
    assert 0 < abs(int8 - fp32).max() < 0.05


def test_rgas_discriminator_precision(monkeypatch) -> None:
    """int8 keeps D in fp32 (no backward through quantised layers); bf16 runs D in bf16."""
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx512_bf16"}))
    for precision, disc_precision in (("int8", "fp32"), ("bf16", "bf16")):
        loaded = load_model("student", "cpu", precision)
        assert module_precision(loaded.discriminator) == disc_precision
        seqs = generate(loaded, ProteinRequest(num=2, length=12, nfe=4, sampler="rgas", seed=0))
        assert [len(s) for s in seqs] == [12, 12]


def test_batches_respect_the_token_budget() -> None:
    assert plan_batches([10] * 5, 2) == [(0, 2), (2, 4), (4, 5)]
    assert plan_batches([10, 10, 10, 100, 100], 32, max_tokens=40) == [(0, 3), (3, 4), (4, 5)]
    assert plan_batches([1000], 32, max_tokens=10) == [(0, 1)]  # one sequence always fits
    with pytest.raises(ValueError, match="max tokens"):
        plan_batches([10], 2, max_tokens=0)


def test_cli_precision_choices_match_the_core() -> None:
    from protein_didi import cli

    assert cli.PRECISIONS == prec.PRECISIONS  # cli keeps a torch-free copy for fast --help
