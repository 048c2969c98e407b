import torch

from protein_didi.core.denoiser import subs_log_probs
from protein_didi.core.sampler import SamplerConfig, ancestral_sample, sample_categorical, temper
from protein_didi.core.schedule import LogLinearSchedule

K, MASK = 6, 5


class Deterministic:
    """Always predicts a fixed target with certainty; counts forward calls."""

    mask_id, vocab_size, time_conditioned = MASK, K, False

    def __init__(self, target: torch.Tensor) -> None:
        self.target, self.calls = target, 0

    def __call__(self, tokens, t):
        self.calls += 1
        logits = torch.nn.functional.one_hot(self.target, K).float().expand(tokens.shape[0], -1, -1) * 50
        return subs_log_probs(logits.clone(), tokens, MASK)


def test_nfe_equal_length_reproduces_argmax():
    target = torch.tensor([0, 1, 2, 3, 4, 0, 1, 2, 3, 4])
    z = torch.full((3, 10), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    out = ancestral_sample(
        Deterministic(target), z, fixed, LogLinearSchedule(), SamplerConfig(10), torch.Generator().manual_seed(0)
    )
    assert (out == target).all()


def test_fixed_positions_never_change_and_callback_runs_each_step():
    target = torch.zeros(8, dtype=torch.long)
    z = torch.full((2, 8), MASK)
    z[:, 2], z[:, 5] = 3, 4
    fixed = torch.zeros_like(z, dtype=torch.bool)
    fixed[:, [2, 5]] = True
    seen = []
    out = ancestral_sample(
        Deterministic(target),
        z,
        fixed,
        LogLinearSchedule(),
        SamplerConfig(4),
        torch.Generator().manual_seed(0),
        callback=lambda n, total, zz: seen.append(zz.clone()),
    )
    assert len(seen) == 4
    for zz in [*seen, out]:
        assert (zz[:, 2] == 3).all() and (zz[:, 5] == 4).all()
    assert (out[:, [0, 1, 3, 4, 6, 7]] == 0).all()


def test_unchanged_state_reuses_forward_pass():
    model = Deterministic(torch.zeros(4, dtype=torch.long))
    z = torch.full((1, 4), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    ancestral_sample(model, z, fixed, LogLinearSchedule(), SamplerConfig(64), torch.Generator().manual_seed(0))
    assert model.calls <= 5  # at most one forward per change (4 positions) + the first
    model.calls = 0
    ancestral_sample(
        model, z, fixed, LogLinearSchedule(), SamplerConfig(64, reuse_unchanged=False), torch.Generator().manual_seed(0)
    )
    assert model.calls == 64


def test_float64_categorical_matches_probabilities():
    probs = torch.tensor([0.5, 0.3, 0.15, 0.05], dtype=torch.float64)
    draws = sample_categorical(probs.expand(200_000, 4).clone(), torch.Generator().manual_seed(0))
    freq = torch.bincount(draws, minlength=4).double() / 200_000
    assert torch.allclose(freq, probs, atol=0.005)


def test_temperature_top_p_and_suppression():
    log_p = torch.log(torch.tensor([[[0.6, 0.25, 0.1, 0.05]]]))
    nucleus = temper(log_p, 1.0, 0.8, torch.float64)
    assert torch.allclose(nucleus[0, 0], torch.tensor([0.6 / 0.85, 0.25 / 0.85, 0, 0], dtype=torch.float64))
    cold = temper(log_p, 0.5, 1.0, torch.float64)
    assert cold[0, 0, 0] > 0.6 and torch.isclose(cold.sum(), torch.tensor(1.0, dtype=torch.float64))
    no_first = temper(log_p, 1.0, 1.0, torch.float64, suppress=(0,))
    assert no_first[0, 0, 0] == 0 and torch.isclose(no_first[0, 0, 1], torch.tensor(0.625, dtype=torch.float64))


def test_same_seed_same_samples(tiny_model):
    from protein_didi.protein.alphabet import ALPHABET

    z = ALPHABET.masked_template([12, 12])
    fixed = ALPHABET.special_positions(z)
    cfg = SamplerConfig(6)
    a = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(3))
    b = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(3))
    assert torch.equal(a, b) and not (a == ALPHABET.mask_id).any()


class Uniform:
    """Predicts every clean token with equal probability: only the schedule decides what gets revealed."""

    mask_id, vocab_size, time_conditioned = MASK, K, False

    def __call__(self, tokens, t):
        return subs_log_probs(torch.zeros(*tokens.shape, K), tokens, MASK)


def test_masked_fraction_follows_the_schedule_step_by_step():
    """After step n the masked fraction is (1 − α(tₙ))/(1 − α(1)), within a binomial tolerance.

    Catches a sampler that reveals too much or too little per step (e.g. everything at the first step,
    which would make every NFE behave like NFE = 1).
    """
    schedule, steps = LogLinearSchedule(), 8
    z = torch.full((64, 100), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    fractions = []
    ancestral_sample(
        Uniform(),
        z,
        fixed,
        schedule,
        SamplerConfig(steps),
        torch.Generator().manual_seed(0),
        callback=lambda n, total, zz: fractions.append((zz == MASK).double().mean().item()),
    )
    ts = torch.linspace(1.0, 0.0, steps + 1, dtype=torch.float64)
    expected = (schedule.mask_prob(ts) / schedule.mask_prob(ts[:1])).tolist()[1:]
    n = z.numel()
    for got, want in zip(fractions, expected, strict=True):
        sigma = (max(want * (1 - want), 1e-12) / n) ** 0.5
        assert abs(got - want) <= 5 * sigma + 1e-9, (fractions, expected)
    assert fractions[-1] == 0.0


def test_another_seed_gives_other_samples(tiny_model):
    from protein_didi.protein.alphabet import ALPHABET

    z = ALPHABET.masked_template([20, 20])
    fixed = ALPHABET.special_positions(z)
    cfg = SamplerConfig(6)
    a = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(3))
    b = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(4))
    assert (a != b).float().mean() > 0.5  # random weights: most positions differ between independent draws
