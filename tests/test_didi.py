import json

import pytest
import torch
import torch.nn.functional as F

from protein_didi.core.didi import DidiConfig, DidiTrainer, normalize_rewards
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.loop import TrainingDiverged, run_training
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.core.timesampling import TimeSampler
from protein_didi.protein.alphabet import ALPHABET, STANDARD_AA
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
    assert torch.allclose(ts.weights(t, sched), raw / raw.mean(), rtol=1e-4)  # none above √3 × the mean
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


def test_importance_weights_are_truncated_at_sqrt_group_size():
    """Self-normalised weights of a group of 8 can never exceed 8, so the truncation must bind below that."""
    sched, ts = LogLinearSchedule(), TimeSampler("beta25")
    tau = torch.tensor([0.1, 0.12, 0.15, 0.2, 0.25, 0.3, 0.35, 0.9])  # one rare large τ: raw ratio ~10⁴× the rest
    raw = sched.weight(tau) / ts.pdf(tau)
    assert (raw / raw.mean()).max() > 7.5  # untruncated, one draw would take ~95 % of the group's weight
    w = ts.weights(tau, sched)
    assert torch.allclose(w, (raw / raw.mean()).clamp(max=8**0.5), rtol=1e-5)  # truncated at √n × the mean
    assert w.max().item() == pytest.approx(8**0.5) and w.mean().item() < 0.5  # a dominated group weighs less


def test_discriminator_loss_is_per_position_bce():
    """Eq. 17: BCE per position of the reward region, averaged; not one BCE on the mean logit."""
    from protein_didi.core.discriminator import per_position_bce

    tokens = torch.tensor([[0, 32, 32, 5, 2]])  # <cls> [MASK] [MASK] residue <eos>
    generated = torch.tensor([[False, True, True, True, False]])
    logits = torch.tensor([[9.0, 3.0, -1.0, 7.0, 9.0]])
    want = 0.5 * (F.softplus(-torch.tensor(3.0)) + F.softplus(torch.tensor(1.0)))  # −log σ(l) on the masked two
    assert per_position_bce(logits, tokens, generated, 32, is_student=True).item() == pytest.approx(want.item())
    want_t = 0.5 * (F.softplus(torch.tensor(3.0)) + F.softplus(-torch.tensor(1.0)))  # −log(1 − σ(l))
    assert per_position_bce(logits, tokens, generated, 32, is_student=False).item() == pytest.approx(want_t.item())


ALA = ALPHABET.esm.get_idx("A")


def _alanine_prob(model) -> float:
    z = ALPHABET.masked_template([12] * 2)
    with torch.no_grad():
        return model(z, torch.ones(2))[:, 1:-1, ALA].exp().mean().item()


def test_policy_gradient_moves_the_student_away_from_high_reward(tiny_model, monkeypatch):
    """R = log q_student/q_teacher: samples D scores high are the student's excess, so their probability must fall.

    A stub reward that calls alanine-rich samples student-like must lower the student's alanine probability.
    """
    trainer, _ = make_trainer(tiny_model, kl_weight=0.0, entropy_weight=0.0, lr_student=3e-3, batch_size=8)
    generated_ala = lambda z, t, generated: ((z == ALA) & generated).float().sum(-1)  # noqa: E731
    monkeypatch.setattr(trainer.disc, "reward", generated_ala)
    before = _alanine_prob(trainer.student)
    for step in range(6):
        trainer.train_step(step)
    after = _alanine_prob(trainer.student)
    assert after < 0.8 * before, (before, after)


def test_forward_kl_pulls_the_student_towards_the_teacher(tiny_model):
    """With a zero reward only the KL term acts: a student pushed off the teacher must come back."""
    trainer, _ = make_trainer(tiny_model, entropy_weight=0.0, kl_weight=1.0, lr_student=3e-3)
    with torch.no_grad():
        trainer.student.mlm.lm_head.bias[ALA] -= 3.0
    trainer.disc.reward = lambda z, t, generated: torch.zeros(z.shape[0])
    teacher_p, before = _alanine_prob(trainer.teacher), _alanine_prob(trainer.student)
    for step in range(4):
        trainer.train_step(step)
    after = _alanine_prob(trainer.student)
    assert before < after < teacher_p * 1.5, (before, after, teacher_p)


def test_forward_kl_and_entropy_values():
    """KL(p_teacher ‖ p_student), the mass-covering direction the paper uses, and H(p_student), per masked position."""
    from protein_didi.core.didi import forward_kl_and_entropy

    p_t = torch.tensor([[[0.7, 0.2, 0.1], [0.5, 0.4, 0.1]]])
    p_s = torch.tensor([[[0.4, 0.4, 0.2], [0.9, 0.05, 0.05]]])
    where = torch.tensor([[True, False]])
    kl, entropy = forward_kl_and_entropy(p_t.log(), p_s.log(), where)
    assert kl.item() == pytest.approx(float((p_t[0, 0] * (p_t[0, 0] / p_s[0, 0]).log()).sum()), rel=1e-5)
    assert entropy.item() == pytest.approx(float(-(p_s[0, 0] * p_s[0, 0].log()).sum()), rel=1e-5)


def test_entropy_bonus_raises_the_students_entropy(tiny_model):
    trainer, _ = make_trainer(tiny_model, kl_weight=0.0, entropy_weight=1.0, lr_student=3e-3)
    trainer.disc.reward = lambda z, t, generated: torch.zeros(z.shape[0])
    z = ALPHABET.masked_template([12] * 2)

    def entropy() -> float:
        with torch.no_grad():
            log_p = trainer.student(z, torch.ones(2))[:, 1:-1]
        return float(-(log_p.exp() * log_p).sum(-1).mean())

    before = entropy()
    for step in range(4):
        trainer.train_step(step)
    assert entropy() > before + 1e-3


def test_trainer_scores_under_the_suppressed_distribution(tiny_model):
    """A student that differs from the teacher only on never-sampled residues (X, U, …) samples exactly like it:
    its KL to the teacher, computed as the trainer does, must be 0."""
    trainer, _ = make_trainer(tiny_model)
    with torch.no_grad():
        trainer.student.mlm.lm_head.bias[list(ALPHABET.nonstandard_ids)] += 8.0
    play = trainer._play(0, 0, trainer.prompts.draw_key(0))
    parts = {"pg_loss": [], "kl": [], "entropy": []}
    with torch.no_grad():
        trainer._student_loss(play, torch.tensor([0.3, -1.0, 2.0, 0.5]), parts)
    assert parts["kl"][0] < 1e-5


def test_score_uses_the_distribution_the_sampler_draws_from(tiny_model):
    """Tokens are drawn with non-standard residues suppressed; the score must renormalise the same way."""
    from protein_didi.core.sampler import without_suppressed

    trainer, _ = make_trainer(tiny_model)
    z = ALPHABET.masked_template([12])
    log_p = without_suppressed(trainer.student(z, torch.ones(1)), trainer.prompts.suppress)
    total = log_p[0, 1:-1].exp().sum(-1)
    assert torch.allclose(total, torch.ones_like(total), atol=1e-5)
    assert log_p[0, 1:-1][:, list(ALPHABET.nonstandard_ids)].exp().max() < 1e-12


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


def _plays(trainer, steps=range(12)):
    return [trainer._play(s, 0, trainer.prompts.draw_key(s)) for s in steps]


def test_ablation_score_decompose_rolls_out_from_all_mask(tiny_model):
    on = _plays(make_trainer(tiny_model)[0])
    off = _plays(make_trainer(tiny_model, score_decompose=False)[0])
    assert all(len(p.roll.states) == 0 and torch.all(p.tau_traj == 1) for p in off)
    assert any(len(p.roll.states) > 0 for p in on) and all(torch.all(p.tau_traj < 1) for p in on)


def test_ablation_coupled_time(tiny_model):
    on = _plays(make_trainer(tiny_model)[0])
    off = _plays(make_trainer(tiny_model, coupled_time=False)[0])
    assert all(torch.equal(p.tau, p.tau_d) for p in on)
    assert all(not torch.equal(p.tau, p.tau_d) for p in off)


def test_ablation_time_distribution(tiny_model):
    beta25 = torch.cat([p.tau for p in _plays(make_trainer(tiny_model)[0], range(30))])
    uniform = torch.cat([p.tau for p in _plays(make_trainer(tiny_model, time_dist="uniform")[0], range(30))])
    assert beta25.mean() < 0.36 < 0.40 < uniform.mean()  # Beta(2,5) mean 2/7; U(0,1) mean 1/2 (120 draws each)


def _pg_loss(trainer, reward):
    play = trainer._play(0, 0, trainer.prompts.draw_key(0))
    parts = {"pg_loss": [], "kl": [], "entropy": []}
    with torch.no_grad():
        trainer._student_loss(play, reward, parts)
    return parts["pg_loss"][0]


def test_ablation_grouped_norm(tiny_model):
    """Normalised rewards ignore a constant shift and scale of R; raw rewards do not."""
    r = torch.tensor([0.3, -1.0, 2.0, 0.5])
    normed, _ = make_trainer(tiny_model)
    assert _pg_loss(normed, r) == pytest.approx(_pg_loss(normed, 3 * r + 1.0), rel=1e-4)
    raw, _ = make_trainer(tiny_model, grouped_norm=False)
    assert _pg_loss(raw, r) != pytest.approx(_pg_loss(raw, 3 * r + 1.0), rel=1e-2)


def test_ablation_omega_and_regularisers(tiny_model):
    tau = torch.tensor([0.1, 0.2, 0.4, 0.6])
    sched = LogLinearSchedule()
    elbo, _ = make_trainer(tiny_model)
    one, _ = make_trainer(tiny_model, omega="one")
    assert not torch.allclose(elbo.times.weights(tau, sched), one.times.weights(tau, sched))
    pdf = one.times.pdf(tau)
    assert torch.allclose(one.times.weights(tau, sched), ((1 / pdf) / (1 / pdf).mean()).clamp(max=2.0), rtol=1e-4)
    with_reg = make_trainer(tiny_model)[0].train_step(0)
    without = make_trainer(tiny_model, kl_weight=0.0, entropy_weight=0.0)[0].train_step(0)
    assert with_reg["loss"] != pytest.approx(with_reg["pg_loss"])
    assert without["loss"] == pytest.approx(without["pg_loss"])


def test_warmup_longer_than_the_run_is_refused(tiny_model):
    with pytest.raises(ValueError, match="student would never train"):
        make_trainer(tiny_model, steps=50, disc_warmup=50)


def test_learning_rates_warm_up_then_decay_linearly(tiny_model):
    trainer, _ = make_trainer(tiny_model, steps=10, warmup=2, disc_warmup=0)
    lrs = []
    for step in range(10):
        trainer.train_step(step)
        lrs.append(trainer.opt_student.param_groups[0]["lr"])
    base = trainer.cfg.lr_student
    # the rate for update s: (s + 1)/2 during the 2-update warm-up, then (10 − s)/8, reaching 0 at the end
    factor = [(s + 1) / 2 if s < 2 else (10 - s) / 8 for s in range(1, 11)]
    assert lrs == pytest.approx([base * f for f in factor])
    assert trainer.opt_student.param_groups[0]["weight_decay"] == 0.01


def test_resume_is_exact(tiny_model, tmp_path, monkeypatch, same_state):
    """Interrupted and resumed = uninterrupted: metrics, every tensor of the state (student, EMA, D, optimisers,
    schedules) and the exported weights."""

    def losses(run):
        return [json.loads(x) for x in (run / "metrics.jsonl").read_text().splitlines()]

    full, full_export = make_trainer(tiny_model, steps=4, warmup=2)
    run_training(full, tmp_path / "full", 4, checkpoint_every=2, show_progress=False)

    trainer, _ = make_trainer(tiny_model, steps=4, warmup=2)
    original = DidiTrainer.train_step

    def crash(self, step):
        if step == 3:
            raise KeyboardInterrupt
        return original(self, step)

    monkeypatch.setattr(DidiTrainer, "train_step", crash)
    with pytest.raises(KeyboardInterrupt):
        run_training(trainer, tmp_path / "part", 4, checkpoint_every=2, show_progress=False)
    monkeypatch.setattr(DidiTrainer, "train_step", original)
    resumed, resumed_export = make_trainer(tiny_model, steps=4, warmup=2)
    run_training(resumed, tmp_path / "part", 4, resume=True, checkpoint_every=2, show_progress=False)
    assert losses(tmp_path / "full") == losses(tmp_path / "part")
    same_state(full.state_dict(), resumed.state_dict())
    same_state(full_export["student"].state_dict(), resumed_export["student"].state_dict(), "exported student")
    same_state(full_export["disc"].state_dict(), resumed_export["disc"].state_dict(), "exported D")
    assert full.ema.num_updates == 4 and full_export["info"]["exported_moved_from_teacher"] > 0


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


def test_path_subsampling_is_an_unbiased_estimate_of_the_full_trajectory_score():
    """E[Σ_{i∈S} w_i v_i] = Σ_i v_i; step 0 (z_1, read by KL/entropy) is always kept; None scores every step."""
    from protein_didi.core.didi import path_steps

    gen = torch.Generator().manual_seed(0)
    assert path_steps(7, None, gen) == (list(range(7)), [1.0] * 7)
    assert path_steps(3, 2, gen) == ([0, 1, 2], [1.0] * 3)  # nothing to leave out
    draws = 20_000
    expected_weight = torch.zeros(7, dtype=torch.float64)  # E[w_i · 1(i ∈ S)] must be 1 for every step i
    for _ in range(draws):
        steps, weights = path_steps(7, 2, gen)
        assert steps[0] == 0 and len(steps) == 3 and len(set(steps)) == 3
        for i, w in zip(steps, weights, strict=True):
            expected_weight[i] += w / draws
    assert abs(expected_weight[0] - 1.0) < 1e-9  # always scored
    assert torch.allclose(expected_weight, torch.ones(7, dtype=torch.float64), atol=0.05), expected_weight


def test_teacher_at_all_masked_prompt_is_cached_per_prompt(tiny_model):
    """The cached p_θ(x | z_1) equals the teacher's forward, and different prompts never share an entry."""
    from protein_didi.core.didi import DidiTrainer
    from protein_didi.core.sampler import without_suppressed
    from protein_didi.protein.alphabet import ALPHABET

    trainer = DidiTrainer.__new__(DidiTrainer)
    trainer.teacher, trainer._z1_cache = tiny_model, {}
    trainer.prompts = type("P", (), {"suppress": ALPHABET.nonstandard_ids})()
    for length in (10, 14, 10):
        z1 = ALPHABET.masked_template([length, length])
        want = without_suppressed(tiny_model(z1, torch.ones(2)), ALPHABET.nonstandard_ids)
        assert torch.allclose(trainer._teacher_at_z1(z1), want)
    assert len(trainer._z1_cache) == 2


def test_label_smoothing_bounds_the_optimal_discriminator_logit():
    """With targets 1 − ε / ε the BCE is minimised at logit ±log((1 − ε)/ε), not at ±∞."""
    from protein_didi.core.discriminator import per_position_bce

    tokens = ALPHABET.masked_template([6])
    generated = ~ALPHABET.special_positions(tokens)
    grid = torch.linspace(-8, 8, 1601)
    eps = 0.1
    for is_student, sign in ((True, 1.0), (False, -1.0)):
        losses = torch.stack([
            per_position_bce(torch.full(tokens.shape, float(x)), tokens, generated, ALPHABET.mask_id, is_student, eps)
            for x in grid
        ])  # fmt: skip
        best = grid[losses.argmin()].item()
        assert abs(best - sign * torch.log(torch.tensor(9.0)).item()) < 0.02
    with pytest.raises(ValueError, match="label smoothing"):
        per_position_bce(torch.zeros(tokens.shape), tokens, generated, ALPHABET.mask_id, True, 0.5)


def test_collapse_watch_stops_after_patience_consecutive_wins(tiny_model):
    from protein_didi.core.didi import DiscriminatorWon

    trainer, _ = make_trainer(tiny_model, collapse_patience=3, collapse_accuracy=0.9, disc_warmup=2)
    trainer._watch_collapse(0, 1.0)  # D's warm-up: wins do not count
    trainer._watch_collapse(1, 1.0)
    assert trainer.won_streak == 0
    trainer._watch_collapse(2, 1.0)
    trainer._watch_collapse(3, 0.95)
    trainer._watch_collapse(4, 0.5)  # a loss resets the streak
    assert trainer.won_streak == 0
    trainer._watch_collapse(5, 0.9)
    trainer._watch_collapse(6, 1.0)
    with pytest.raises(DiscriminatorWon, match=r"won 3 student updates in a row .*steps 5–7"):
        trainer._watch_collapse(7, 0.92)
    resumed, _ = make_trainer(tiny_model, collapse_patience=3)
    resumed.load_state_dict({**trainer.state_dict(), "won_streak": 2})
    assert resumed.won_streak == 2
    off, _ = make_trainer(tiny_model, collapse_patience=0)
    for step in range(50):
        off._watch_collapse(step, 1.0)


def test_domain_description_of_student_samples_is_logged(tiny_model):
    seen = []

    def describe(seqs):
        seen.append(seqs)
        return {"mix_long": sum(len(s) > 13 for s in seqs) / len(seqs)}

    trainer, _ = make_trainer(tiny_model)
    trainer.prompts = ProteinPrompts([12, 16], describe=describe)
    metrics = trainer.train_step(0)
    assert len(seen) == 1 and len(seen[0]) == 4
    assert metrics["mix_long"] == float(len(seen[0][0]) > 13)
    assert all(set(s) <= set(STANDARD_AA) for s in seen[0])


def test_student_can_start_from_another_model_of_the_same_architecture(tiny_model):
    import copy

    from protein_didi.protein.model import EsmDenoiser, esm_config

    start = copy.deepcopy(tiny_model)
    with torch.no_grad():
        for p in start.parameters():
            p.add_(0.01)
    cfg = DidiConfig(batch_size=4, student_nfe=4, teacher_nfe=4, bank_size=8, disc_warmup=0)
    trainer = DidiTrainer(tiny_model, LogLinearSchedule(), ProteinPrompts([12]), cfg, lambda *a: None,
                          torch.device("cpu"), student_init=start)  # fmt: skip
    for name, value in trainer.student.state_dict().items():
        assert torch.equal(value, start.state_dict()[name]), name
    assert not torch.equal(next(trainer.teacher.parameters()), next(start.parameters()))  # the teacher is kept
    cfg_other = esm_config("test")
    cfg_other.hidden_size *= 2
    cfg_other.intermediate_size *= 2
    with pytest.raises(ValueError, match="does not have the teacher's architecture"):
        DidiTrainer(tiny_model, LogLinearSchedule(), ProteinPrompts([12]), cfg, lambda *a: None,
                    torch.device("cpu"), student_init=EsmDenoiser(cfg_other))  # fmt: skip
