import json

import pytest
import torch

from protein_didi.core.didi import DidiConfig, DidiTrainer, normalize_rewards
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.loop import TrainingDiverged, run_training
from protein_didi.core.rgas import RGASConfig, rgas_sample
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.core.timesampling import TimeSampler
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.prompts import ProteinPrompts


def make_trainer(model, **overrides):
    cfg = DidiConfig(
        **{
            "batch_size": 4,
            "student_nfe": 4,
            "teacher_nfe": 4,
            "bank_size": 8,
            "disc_warmup": 0,
            "lr_student": 1e-3,
            "lr_aux": 1e-3,
            "ema": 0.5,
            **overrides,
        }
    )
    exported = {}

    def exporter(out, student, disc, info):
        exported.update(student=student, disc=disc, info=info)

    trainer = DidiTrainer(model, LogLinearSchedule(), ProteinPrompts([12, 16]), cfg, exporter, torch.device("cpu"))
    return trainer, exported


def test_grouped_reward_normalisation():
    r = torch.tensor([1.0, 2.0, 3.0, 4.0, 10.0, 10.0, 10.0, 14.0])
    out = normalize_rewards(r, group_size=4).view(2, 4)
    assert torch.allclose(out.mean(1), torch.zeros(2), atol=1e-6)
    assert torch.allclose(out.std(1, unbiased=False), torch.ones(2), atol=1e-5)
    assert torch.allclose(out[0], (r[:4] - 2.5) / (1.25**0.5 + 1e-6))
    with pytest.raises(ValueError, match="groups of 3"):
        normalize_rewards(r, 3)


def test_time_sampler_and_importance_weights():
    sched = LogLinearSchedule()
    ts = TimeSampler("beta25")
    tau = ts.sample(50_000, torch.Generator().manual_seed(0))
    assert abs(tau.mean().item() - 2 / 7) < 0.01
    t = torch.tensor([0.1, 0.3, 0.6])
    pdf = 30 * t * (1 - t) ** 4  # Beta(2, 5)
    raw = (1 / t) / pdf  # ω(t)/π(t) with ω = 1/t for the log-linear schedule
    assert torch.allclose(ts.pdf(t), pdf, rtol=1e-5)
    assert torch.allclose(ts.weights(t, sched), (raw / raw.mean()).clamp(max=10), rtol=1e-4)
    assert torch.allclose(TimeSampler("uniform", omega="one").weights(t, sched), torch.ones(3))
    assert TimeSampler.default_for_nfe(8) == "beta25" and TimeSampler.default_for_nfe(32) == "beta52"


def test_discriminator_head_shape_and_spectral_norm(tiny_model):
    disc = Discriminator(tiny_model)
    z = ALPHABET.masked_template([10, 10])
    disc.train()
    for _ in range(20):  # power iterations converge during training-mode forwards
        logits = disc(z, torch.ones(2))
    assert logits.shape == z.shape
    for layer in (disc.head[0], disc.head[2]):
        sigma = torch.linalg.matrix_norm(layer.weight.detach(), ord=2)
        assert abs(sigma.item() - 1.0) < 0.05
    r = disc.reward(z, torch.ones(2), ~ALPHABET.special_positions(z))
    assert r.shape == (2,)


def test_one_step_trains_discriminator_and_changes_student(tiny_model):
    frozen, _ = make_trainer(tiny_model, lr_student=0.0)
    first = frozen.train_step(0)
    again = frozen.train_step(0)  # same step → same batch, times and noise; only D has learnt
    assert again["d_loss"] < first["d_loss"]

    trainer, _ = make_trainer(tiny_model)
    before = {k: v.clone() for k, v in trainer.student.state_dict().items()}
    metrics = trainer.train_step(0)
    changed = [k for k, v in trainer.student.state_dict().items() if not torch.equal(v, before[k])]
    assert changed and metrics["s_grad_norm"] > 0
    assert 0.0 <= metrics["d_acc"] <= 1.0


def test_discriminator_warmup_freezes_student(tiny_model):
    trainer, _ = make_trainer(tiny_model, disc_warmup=5)
    before = {k: v.clone() for k, v in trainer.student.state_dict().items()}
    metrics = trainer.train_step(0)
    assert all(torch.equal(v, before[k]) for k, v in trainer.student.state_dict().items())
    assert "s_grad_norm" not in metrics


@pytest.mark.parametrize(
    "ablation",
    [
        {"score_decompose": False},
        {"grouped_norm": False},
        {"coupled_time": False},
        {"kl_weight": 0.0, "entropy_weight": 0.0},
        {"time_dist": "uniform"},
        {"omega": "one"},
    ],
)
def test_ablations_run(tiny_model, ablation):
    trainer, _ = make_trainer(tiny_model, **ablation)
    metrics = trainer.train_step(0)
    assert all(v == v for v in metrics.values())  # no NaN


def test_rgas_with_one_candidate_and_no_tilt_equals_ancestral(tiny_model):
    disc = Discriminator(tiny_model).eval()
    z = ALPHABET.masked_template([14, 14, 14])
    fixed = ALPHABET.special_positions(z)
    cfg = SamplerConfig(6, suppress=ALPHABET.nonstandard_ids)
    plain = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(5))
    guided = rgas_sample(
        tiny_model,
        disc,
        z,
        fixed,
        LogLinearSchedule(),
        RGASConfig(cfg, guidance_start=0.0, guidance_end=0.0, candidates=1),
        torch.Generator().manual_seed(5),
    )
    assert torch.equal(plain, guided)


def test_rgas_guided_sampling_is_valid(tiny_model):
    disc = Discriminator(tiny_model).eval()
    z = ALPHABET.masked_template([14, 14])
    fixed = ALPHABET.special_positions(z)
    out = rgas_sample(
        tiny_model, disc, z, fixed, LogLinearSchedule(), RGASConfig(SamplerConfig(4)), torch.Generator().manual_seed(0)
    )
    assert not (out == ALPHABET.mask_id).any() and torch.equal(out[fixed], z[fixed])
    assert RGASConfig(SamplerConfig(8)).guidance(0) == 30.0 and RGASConfig(SamplerConfig(8)).guidance(3) == 40.0
    assert RGASConfig(SamplerConfig(8)).guidance(4) == 0.0 and RGASConfig(SamplerConfig(8)).num_candidates(4) == 4


def test_resume_is_exact(tiny_model, tmp_path, monkeypatch):
    def losses(run):
        return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]

    trainer, _ = make_trainer(tiny_model)
    run_training(trainer, tmp_path / "full", 4, checkpoint_every=2, show_progress=False)

    trainer, _ = make_trainer(tiny_model)
    original = DidiTrainer.train_step

    def crash(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(DidiTrainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        run_training(trainer, tmp_path / "part", 4, checkpoint_every=2, show_progress=False)
    monkeypatch.setattr(DidiTrainer, "train_step", original)
    trainer, _ = make_trainer(tiny_model)
    run_training(trainer, tmp_path / "part", 4, resume=True, checkpoint_every=2, show_progress=False)
    assert losses(tmp_path / "full") == losses(tmp_path / "part")


def test_nan_loss_stops_and_keeps_last_checkpoint(tiny_model, tmp_path, monkeypatch):
    trainer, _ = make_trainer(tiny_model)
    original = DidiTrainer.train_step

    def nan_at_3(self, step):
        metrics = original(self, step)
        if step == 3:
            metrics["d_loss"] = float("nan")
        return metrics

    monkeypatch.setattr(DidiTrainer, "train_step", nan_at_3)
    with pytest.raises(TrainingDiverged, match="d_loss became non-finite at step 3"):
        run_training(trainer, tmp_path, 6, checkpoint_every=2, show_progress=False)
    assert torch.load(tmp_path / "train_state.pt", weights_only=False)["step"] == 2
