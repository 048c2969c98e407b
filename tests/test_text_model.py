"""The DiT denoiser: shapes, SUBS, time conditioning, soft inputs, checkpoints and MDLM/DUO loading."""

from __future__ import annotations

import pytest
import torch
from test_text_data import SENTENCES

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.core.denoiser import Denoiser
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.text.model import DiT, dit_config
from protein_didi.text.pretrained import ModelNotFoundError, load_model, mdlm_state_dict, save_model
from protein_didi.text.tokenizer import train_bpe

torch.set_num_threads(1)


@pytest.fixture(scope="module")
def tok():
    return train_bpe(SENTENCES * 3, vocab_size=320)


def randomised(model: DiT, seed: int = 0) -> DiT:
    """Give the zero-initialised adaLN and output layers random weights so every input path matters."""
    gen = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, p in model.named_parameters():
            if "adaLN" in name or "output_layer.linear" in name:
                p.copy_(0.1 * torch.randn(p.shape, generator=gen))
    return model.eval()


def test_forward_shapes_and_subs(tok):
    model = randomised(DiT(dit_config("test", tok.vocab_size), tok.mask_id))
    assert isinstance(model, Denoiser) and model.mask_id == tok.mask_id and model.time_conditioned
    z = torch.randint(0, tok.mask_id, (3, 16))
    z[:, 5:9] = tok.mask_id
    log_p = model(z, torch.rand(3))
    assert log_p.shape == (3, 16, tok.vocab_size) and log_p.dtype == torch.float32
    torch.testing.assert_close(log_p.exp().sum(-1), torch.ones(3, 16))
    assert (log_p[..., tok.mask_id].exp() == 0).all()  # never predicts [MASK]
    carried = log_p[:, 0].argmax(-1)
    assert torch.equal(carried, z[:, 0]) and (log_p[:, 0].max(-1).values == 0).all()  # carry-over unmasking
    assert model.features(z, torch.rand(3)).shape == (3, 16, model.hidden_size)


def test_time_conditioning(tok):
    model = randomised(DiT(dit_config("test", tok.vocab_size), tok.mask_id))
    z = torch.full((2, 12), tok.mask_id)
    early, late = model(z, torch.full((2,), 0.1)), model(z, torch.full((2,), 0.9))
    assert (early - late).abs().max() > 1e-3
    torch.testing.assert_close(model(z, torch.tensor([0.1, 0.9]))[0], early[0])  # per-sequence times
    frozen = randomised(DiT(dit_config("test", tok.vocab_size, time_conditioning=False), tok.mask_id))
    assert not frozen.time_conditioned
    torch.testing.assert_close(frozen(z, torch.full((2,), 0.1)), frozen(z, torch.full((2,), 0.9)))


def test_soft_one_hot_inputs_match_hard_tokens_and_carry_gradients(tok):
    model = randomised(DiT(dit_config("test", tok.vocab_size), tok.mask_id))
    z = torch.randint(0, tok.vocab_size, (2, 10))
    t = torch.rand(2)
    soft = torch.nn.functional.one_hot(z, tok.vocab_size).float().requires_grad_(True)
    torch.testing.assert_close(model(z, t, soft), model(z, t))
    disc = Discriminator(model)
    disc.reward(z, t, torch.ones_like(z, dtype=torch.bool), soft).sum().backward()
    assert soft.grad is not None and soft.grad.abs().sum() > 0


def test_tied_tiny_model_and_named_sizes(tok):
    tiny = DiT(dit_config("tiny", tok.vocab_size), tok.mask_id)
    assert tiny.output_layer.linear.weight is None and "output_layer.linear.weight" not in tiny.weights()
    assert tiny(torch.full((1, 8), tok.mask_id), torch.ones(1)).shape == (1, 8, tok.vocab_size)
    with torch.device("meta"):
        big = DiT(dit_config("mdlm-169m", 50258))
    assert abs(big.num_parameters() / 1e6 - 169) < 2  # the paper's 169M OWT teacher
    with pytest.raises(ValueError, match="unknown architecture"):
        dit_config("huge", 10)
    with pytest.raises(ValueError, match="heads of even size"):
        dit_config("test", 10, num_heads=3)


def test_save_and_load_round_trip(tok, tmp_path):
    model = randomised(DiT(dit_config("tiny", tok.vocab_size), tok.mask_id))
    save_model(tmp_path / "m", model, LogLinearSchedule(), tok, "teacher", {"block_length": 24})
    loaded = load_model(str(tmp_path / "m"))
    assert loaded.tokenizer.sha256 == tok.sha256 and loaded.block_length == 24 and loaded.role == "teacher"
    z = torch.full((2, 24), tok.mask_id)
    torch.testing.assert_close(loaded.model(z, torch.rand(2).fill_(0.5)), model(z, torch.full((2,), 0.5)), atol=2e-2,
                               rtol=0)  # fmt: skip  # half-precision weights
    (tmp_path / "m" / "model.safetensors").write_bytes(b"junk")
    with pytest.raises(CheckpointError, match="corrupt"):
        load_model(str(tmp_path / "m"))
    with pytest.raises(ModelNotFoundError, match="no text model"):
        load_model(str(tmp_path / "nowhere"))


def _mdlm_checkpoint(model: DiT, heads: int) -> dict:
    """What MDLM's Lightning trainer saves: backbone.* state, Hydra config, EMA shadow parameters."""
    state = {f"backbone.{k}": v.clone() for k, v in model.state_dict().items()}
    shadow = [p.detach().clone() + 0.01 for p in model.parameters()]
    hyper = {"config": {"model": {"n_heads": heads, "length": 64}, "time_conditioning": True}}
    return {"state_dict": state, "hyper_parameters": hyper, "ema": {"decay": 0.9999, "shadow_params": shadow}}


def test_mdlm_lightning_checkpoint_loads_with_ema_weights(tok, tmp_path):
    model = randomised(DiT(dit_config("test", tok.vocab_size, dropout=0.1), tok.mask_id))
    tok.tokenizer.model.save(str(tmp_path))  # a GPT-2-style tokenizer folder next to the checkpoint
    ckpt = _mdlm_checkpoint(model, heads=2)
    torch.save(ckpt, tmp_path / "last.ckpt")
    loaded = load_model(str(tmp_path / "last.ckpt"))
    cfg = loaded.model.config
    assert (cfg.hidden_size, cfg.num_layers, cfg.num_heads, cfg.time_conditioning) == (32, 2, 2, True)
    assert loaded.tokenizer.kind == "gpt2" and loaded.model.mask_id == tok.mask_id
    ema = dict(zip([k for k, _ in model.named_parameters()], ckpt["ema"]["shadow_params"], strict=True))
    torch.testing.assert_close(loaded.model.state_dict()["blocks.0.attn_qkv.weight"], ema["blocks.0.attn_qkv.weight"])
    assert set(mdlm_state_dict(ckpt, use_ema=False)) == set(model.weights())


def test_uniform_state_checkpoint_without_mask_row_is_refused(tok, tmp_path):
    model = DiT(dit_config("test", tok.mask_id))  # DUO's uniform-state models have no [MASK] row
    tok.tokenizer.model.save(str(tmp_path))
    torch.save({"state_dict": {f"backbone.{k}": v for k, v in model.state_dict().items()}}, tmp_path / "duo.ckpt")
    with pytest.raises(CheckpointError, match="no \\[MASK\\] row"):
        load_model(str(tmp_path / "duo.ckpt"))
    torch.save({"state_dict": {"model.weight": torch.zeros(1)}}, tmp_path / "other.ckpt")
    with pytest.raises(CheckpointError, match="not an MDLM/DUO DiT checkpoint"):
        load_model(str(tmp_path / "other.ckpt"))


@pytest.mark.parametrize("precision", ["bf16", "int8"])
def test_text_models_load_in_the_requested_precision(tok, tmp_path, monkeypatch, precision):
    """bf16 runs the time embedding and rotary phases (computed in fp32) in the network's dtype; int8 quantises."""
    from protein_didi.core import precision as prec

    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx512_bf16"}))  # let this CPU "run" bf16
    model = randomised(DiT(dit_config("tiny", tok.vocab_size, time_conditioning=True), tok.mask_id))
    save_model(tmp_path / "m", model, LogLinearSchedule(), tok, "teacher", {"block_length": 24})
    ref = load_model(str(tmp_path / "m"))
    low = load_model(str(tmp_path / "m"), precision=precision)
    assert low.precision == precision
    if precision == "bf16":
        assert {p.dtype for p in low.model.parameters()} == {torch.bfloat16}
    else:
        assert any(type(m) is torch.ao.nn.quantized.dynamic.Linear for m in low.model.modules())
    z = torch.full((2, 24), tok.mask_id)
    z[:, ::3] = 7
    t = torch.tensor([0.3, 0.9])
    with torch.no_grad():
        out, expected = low.model(z, t), ref.model(z, t)
    assert out.dtype == torch.float32
    gap = float((out.exp() - expected.exp()).abs().max())
    assert 0 < gap < 0.05, gap
    monkeypatch.setattr(prec, "cpu_flags", lambda: frozenset({"avx2"}))
    with pytest.raises(ValueError, match="bf16"):
        load_model(str(tmp_path / "m"), precision="bf16")
