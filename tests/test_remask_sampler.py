"""Remasking sampler: exact remask counts, fixed positions kept, the right model in each phase, N + R passes."""

from __future__ import annotations

import argparse
import dataclasses
import math

import pytest
import torch

import protein_didi.core.confidence as confidence
import protein_didi.core.remask as remask
import protein_didi.protein.generate as protein_generate
from protein_didi.core.confidence import ConfidenceConfig, confidence_sample
from protein_didi.core.denoiser import subs_log_probs
from protein_didi.core.draw import draw, first_phase
from protein_didi.core.remask import RemaskConfig, remask_sample, time_at_mask_rate
from protein_didi.core.request import SAMPLING_KEYS, SampleRequest, add_sampling_args, sampling_args
from protein_didi.core.sampler import ancestral_sample
from protein_didi.core.schedule import CosineSchedule, LogLinearSchedule
from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.protein.request import ProteinRequest
from protein_didi.text.request import TextRequest

K = 8
MASK = K - 1


class Table:
    """Position i draws uniformly from its first ``counts[i]`` tokens (confidence exactly 1/counts[i]).

    Every call is logged as ``(name, tokens, t)`` in the shared ``log``, so a test sees which model ran when
    and on what input.
    """

    mask_id, vocab_size = MASK, K

    def __init__(self, name: str, counts: list[int], log: list, time_conditioned: bool = True) -> None:
        assert all(1 <= c < K for c in counts)
        self.name, self.log, self.time_conditioned = name, log, time_conditioned
        logits = torch.full((len(counts), K), -1e9)
        for i, c in enumerate(counts):
            logits[i, :c] = 0.0
        self.logits = logits

    def __call__(self, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.log.append((self.name, tokens.clone(), t.clone()))
        return subs_log_probs(self.logits.expand(tokens.shape[0], -1, -1).clone(), tokens, MASK)


def batch(rows: int = 4, length: int = 30) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Masked rows with different free counts: row b has a fixed head of 2 + 3b tokens and a fixed tail token."""
    z = torch.full((rows, length), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    for b in range(rows):
        fixed[b, : 2 + 3 * b], z[b, : 2 + 3 * b] = True, 3
    fixed[:, -1], z[:, -1] = True, 5
    return z, fixed, (z == MASK) & ~fixed


def ancestral(steps: int):
    return first_phase(SampleRequest(nfe=steps).for_model({}, "student"))


def run(
    pick: str = "random",
    rounds: int = 3,
    fraction: float = 0.3,
    steps: int = 4,
    tau: float = 0.0,
    time_conditioned: bool = True,
    separate_corrector: bool = True,
    seed: int = 0,
):
    """One remask_sample run on :func:`batch` with logging fakes; returns (output, free, log, callback trace)."""
    z, fixed, free = batch()
    log: list = []
    main = Table("main", [1 + i % 6 for i in range(z.shape[1])], log, time_conditioned)
    corrector = Table("corrector", [6 - i % 6 for i in range(z.shape[1])], log) if separate_corrector else None
    trace: list = []
    config = RemaskConfig(rounds, fraction, pick=pick, order_temperature=tau)
    out = remask_sample(main, z, fixed, LogLinearSchedule(), config, ancestral(steps),
                        torch.Generator().manual_seed(seed), lambda n, total, zz: trace.append((n, total, zz.clone())),
                        corrector)  # fmt: skip
    return out, z, fixed, free, log, trace


@pytest.mark.parametrize("fraction", [0.25, 0.3])
@pytest.mark.parametrize(("pick", "tau"), [("random", 0.0), ("confidence", 0.0), ("confidence", 1.0)])
def test_each_round_remasks_exactly_round_rho_f_per_row_and_leaves_no_mask(pick, tau, fraction):
    """Row b has F_b free positions; every corrector pass sees exactly round(ρ·F_b) masks in row b, all free."""
    rounds = 3
    out, z, fixed, free, log, trace = run(pick, rounds, fraction, tau=tau)
    f = free.sum(-1)
    assert len(set(f.tolist())) == 4  # rows really differ
    want = [round(fraction * n) for n in f.tolist()]  # F = 27, 24, 21, 18: ρ = 0.25 rounds 6.75 up, 4.5 to even
    passes = [tokens for name, tokens, _ in log if name == "corrector"]
    assert len(passes) == rounds
    for tokens in passes:
        masked = tokens == MASK
        assert masked.sum(-1).tolist() == want
        assert not (masked & ~free).any()  # only generated positions are remasked, never fixed ones
    assert len(trace) == 4 + rounds
    for _, _, zz in trace[3:]:
        assert not (zz == MASK).any()  # after the first phase and after every round, nothing is left masked
    assert torch.equal(out[fixed], z[fixed])


def test_rounding_follows_round_half_to_even_per_row():
    free = torch.zeros(3, 12, dtype=torch.bool)
    free[0, :10], free[1, :5], free[2, :1] = True, True, True
    assert remask.remask_counts(free, 0.25).tolist() == [2, 1, 0]  # 2.5 → 2, 1.25 → 1, 0.25 → 0
    assert remask.remask_counts(free, 0.35).tolist() == [4, 2, 0]  # 3.5 → 4, 1.75 → 2


def test_the_main_model_runs_the_first_phase_and_the_corrector_the_rounds():
    steps, rounds = 4, 3
    _, _, _, _, log, trace = run(steps=steps, rounds=rounds)
    assert [name for name, _, _ in log] == ["main"] * steps + ["corrector"] * rounds
    # the corrector is told the mask rate it sees: mask_prob(t) = ρ
    for _, _, t in log[steps:]:
        assert torch.allclose(LogLinearSchedule().mask_prob(t.double()), torch.tensor(0.3, dtype=torch.float64))
    assert [(n, total) for n, total, _ in trace] == [(i, steps + rounds) for i in range(1, steps + rounds + 1)]


@pytest.mark.parametrize("pick", ["random", "confidence"])
@pytest.mark.parametrize("sampler", ["ancestral", "confidence"])
def test_forward_passes_are_nfe_plus_corrector_steps(sampler, pick):
    """No pass is spent on scoring: N first-phase passes + one per round, with or without a second model."""
    z, fixed, _ = batch()
    for separate in (True, False):
        log: list = []
        main = Table("main", [3] * z.shape[1], log)
        corrector = Table("corrector", [2] * z.shape[1], log) if separate else None
        request = SampleRequest(nfe=5, sampler=sampler, corrector_steps=3, corrector_pick=pick).for_model({}, "student")
        draw(request, main, z, fixed, LogLinearSchedule(), torch.Generator().manual_seed(0), corrector=corrector)
        assert len(log) == 5 + 3


def test_a_time_free_model_may_skip_unchanged_first_phase_passes_but_never_a_round():
    """Ancestral reuses a pass when a step revealed nothing (time-free models): at most N + R, exactly R rounds."""
    z, fixed, _ = batch(rows=1, length=6)
    log: list = []
    main = Table("main", [2] * 6, log, time_conditioned=False)
    corrector = Table("corrector", [2] * 6, log, time_conditioned=False)
    config = RemaskConfig(2, 0.5, pick="confidence")
    remask_sample(main, z, fixed, LogLinearSchedule(), config, ancestral(64), torch.Generator().manual_seed(0),
                  corrector=corrector)  # fmt: skip
    names = [name for name, _, _ in log]
    assert names.count("main") <= 6 + 1 and names[-2:] == ["corrector", "corrector"] and len(names) < 64


def test_greedy_confidence_pick_remasks_the_least_confident_and_updates_redrawn_positions():
    """τ = 0: round 1 remasks the k positions the main model was least sure of; round 2, with those redrawn by a
    certain corrector, the next least confident."""
    length, rounds = 10, 2
    z = torch.full((1, length), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    log: list = []
    main = Table("main", [1 + i % 7 for i in range(length)], log)  # confidence 1/(1 + i mod 7)
    corrector = Table("corrector", [1] * length, log)  # certain of every value it draws
    config = RemaskConfig(rounds, 0.3, pick="confidence", order_temperature=0.0)
    remask_sample(main, z, fixed, LogLinearSchedule(), config, ancestral(length), torch.Generator().manual_seed(0),
                  corrector=corrector)  # fmt: skip
    picked = [set((tokens[0] == MASK).nonzero().flatten().tolist()) for name, tokens, _ in log if name == "corrector"]
    # counts 1 2 3 4 5 6 7 1 2 3 → least confident 6, 5, 4 (1/7, 1/6, 1/5); then 3 (1/4), 2 and 9 (1/3; ties by index)
    assert picked == [{6, 5, 4}, {3, 2, 9}]


def test_random_pick_is_uniform_over_the_free_positions():
    z = torch.full((4000, 10), MASK)
    fixed = torch.zeros_like(z, dtype=torch.bool)
    fixed[:, 0], z[:, 0] = True, 1
    log: list = []
    main = Table("main", [4] * 10, log)
    remask_sample(main, z, fixed, LogLinearSchedule(), RemaskConfig(1, 1 / 3), ancestral(2),
                  torch.Generator().manual_seed(0))  # fmt: skip
    freq = (log[-1][1] == MASK).double().mean(0)
    assert freq[0] == 0 and torch.allclose(freq[1:], torch.full((9,), 1 / 3, dtype=torch.float64), atol=0.03)


def test_draws_are_float64(monkeypatch):
    """Values (categorical race) and position picks (Gumbel noise) are drawn in float64."""
    seen: list = []
    original_categorical, original_gumbel = remask.sample_categorical, confidence.gumbel

    def categorical(probs, generator=None):
        seen.append(("categorical", probs.dtype))
        return original_categorical(probs, generator)

    def gumbel(*args, **kwargs):
        noise = original_gumbel(*args, **kwargs)
        seen.append(("gumbel", noise.dtype))
        return noise

    monkeypatch.setattr(remask, "sample_categorical", categorical)
    monkeypatch.setattr(confidence, "gumbel", gumbel)
    for pick in ("random", "confidence"):
        seen.clear()
        run(pick, rounds=2, tau=0.5)
        assert seen == [("gumbel", torch.float64), ("categorical", torch.float64)] * 2


@pytest.mark.parametrize("sampler", ["ancestral", "confidence"])
def test_no_corrector_steps_is_exactly_the_old_sampler(tiny_model, sampler):
    """corrector_steps = 0 draws the old sampler's tokens from the same generator; with rounds, the first phase
    still ends on exactly those tokens (all correction draws come after it)."""
    tokens = ALPHABET.masked_template([14, 14, 14])
    fixed = ALPHABET.special_positions(tokens)
    base = SampleRequest(nfe=4, sampler=sampler, order_temperature=0.5).for_model({}, "student")
    cfg = base.sampler_config()
    if sampler == "ancestral":
        old = ancestral_sample(tiny_model, tokens, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(7))
    else:
        ordered = ConfidenceConfig(cfg, 0.5)
        old = confidence_sample(
            tiny_model, tokens, fixed, LogLinearSchedule(), ordered, torch.Generator().manual_seed(7)
        )
    assert base.corrector_steps == 0
    new = draw(base, tiny_model, tokens, fixed, LogLinearSchedule(), torch.Generator().manual_seed(7))
    assert torch.equal(old, new)
    trace: list = []
    corrected = draw(base.replace(corrector_steps=2, corrector_pick="confidence"), tiny_model, tokens, fixed,
                     LogLinearSchedule(), torch.Generator().manual_seed(7),
                     lambda n, total, z: trace.append(z.clone()))  # fmt: skip
    assert torch.equal(trace[3], old) and len(trace) == 6
    assert not torch.equal(corrected, old) and torch.equal(corrected[fixed], tokens[fixed])


@pytest.mark.parametrize("schedule", [LogLinearSchedule(), CosineSchedule()])
def test_time_at_mask_rate_inverts_the_schedule(schedule):
    for rho in (0.05, 0.15, 0.3, 0.9):
        t = time_at_mask_rate(schedule, rho)
        assert abs(float(schedule.mask_prob(torch.tensor(t, dtype=torch.float64))) - rho) < 1e-9
    assert time_at_mask_rate(schedule, 0.99999) == 1.0  # above 1 − α(1): the noisiest time


# -- the request -------------------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"corrector_steps": -1}, "corrector steps must be ≥ 0"),
        ({"corrector_fraction": 0.0}, "corrector fraction must be in (0, 1)"),
        ({"corrector_fraction": 1.0}, "corrector fraction must be in (0, 1)"),
        ({"corrector_temperature": 0.0}, "corrector temperature must be > 0"),
        ({"corrector_temperature": math.nan}, "corrector temperature must be > 0"),
        ({"corrector_pick": "worst"}, "unknown corrector pick 'worst'"),
    ],
)
def test_bad_corrector_settings_are_refused_when_the_request_is_made(fields, message):
    for request_type in (ProteinRequest, TextRequest):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            request_type(**fields)


def test_a_corrector_model_without_rounds_is_refused():
    with pytest.raises(ValueError, match="corrector is empty"):
        ProteinRequest(corrector=" ")
    with pytest.raises(ValueError, match="a corrector model needs correction rounds"):
        ProteinRequest(corrector="antiberty", corrector_steps=0)
    loaded = LoadedModel(Table("m", [2], []), LogLinearSchedule(), "m")  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="a corrector model needs correction rounds"):
        ProteinRequest(corrector="antiberty", length=20).fitted(loaded)  # the model's default: 0 rounds


def test_stored_corrector_settings_apply_and_flags_override():
    stored = {"sampling": {"corrector_steps": 4, "corrector_fraction": 0.3, "corrector_pick": "confidence"}}
    got = ProteinRequest(corrector_steps=2).for_model(stored, "student")
    assert (got.corrector_steps, got.corrector_fraction, got.corrector_pick, got.corrector_temperature) == (
        2, 0.3, "confidence", 1.0
    )  # fmt: skip
    plain = ProteinRequest().for_model({}, "teacher")
    assert (plain.corrector_steps, plain.steps) == (0, 64)
    assert ProteinRequest(corrector_steps=3).for_model({}, "student").steps == 11


def test_every_sampling_flag_reaches_the_request():
    """Protein and text commands share the flags add_sampling_args makes; each lands in its request field."""
    from protein_didi.protein import sample as protein_sample
    from protein_didi.text import sample as text_sample

    given = {
        "nfe": 5, "sampler": "confidence", "temperature": 0.7, "top_p": 0.9, "order_temperature": 0.3,
        "corrector_steps": 6, "corrector_fraction": 0.25, "corrector_temperature": 0.8, "corrector_pick": "confidence",
    }  # fmt: skip
    assert set(given) == set(SAMPLING_KEYS)
    argv = [arg for key, value in given.items() for arg in (f"--{key.replace('_', '-')}", str(value))]
    for command in (protein_sample, text_sample):
        request = command.sampling_request(command.build_parser().parse_args(argv))
        assert {k: getattr(request, k) for k in SAMPLING_KEYS} == given
    parser = argparse.ArgumentParser()
    add_sampling_args(parser, ProteinRequest)
    assert all(v is None for v in sampling_args(parser.parse_args([])).values())  # unset: the model's
    with pytest.raises(SystemExit):
        parser.parse_args(["--corrector-pick", "worst"])


# -- proteins: a corrector model by name --------------------------------------------------------------------------
@pytest.fixture
def corrector_registry(monkeypatch, tiny_model):
    """``load_model`` in generate replaced by a registry of tiny models; counts loads, cache cleared around."""
    loads: list[str] = []
    models = {"other": tiny_model, "short": tiny_model}

    def fake_load(name, device="cpu", precision="fp32"):
        loads.append(name)
        if name == "short":
            short = dataclasses.replace(LoadedModel(tiny_model, LogLinearSchedule(), name))
            short.model = _WithLimit(tiny_model, 30)
            return short
        if name == "foreign":
            return LoadedModel(Table("foreign", [2], []), LogLinearSchedule(), name)  # 8 tokens, not ESM's 33
        return LoadedModel(models[name], LogLinearSchedule(), name)

    monkeypatch.setattr(protein_generate, "load_model", fake_load)
    protein_generate.load_corrector.cache_clear()
    yield loads
    protein_generate.load_corrector.cache_clear()


class _WithLimit:
    """A denoiser that says it places at most ``max_residues`` (as a BERT-style model does)."""

    def __init__(self, model, max_residues: int) -> None:
        self.model, self.max_residues = model, max_residues
        self.mask_id, self.vocab_size, self.time_conditioned = model.mask_id, model.vocab_size, model.time_conditioned

    def __call__(self, tokens, t):
        return self.model(tokens, t)


def test_a_named_corrector_loads_once_per_request_and_redraws(tiny_model, corrector_registry):
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "main")
    base = ProteinRequest(num=5, length=(12, 20), nfe=3, seed=1, batch_size=2, corrector_steps=2)
    progress: list = []
    with_corrector = protein_generate.generate(
        loaded, base.replace(corrector="other"), lambda d, n: progress.append((d, n))
    )
    assert corrector_registry == ["other"]  # one load for three batches
    assert progress[-1][0] == progress[-1][1] == (3 + 2) * 3  # progress counts the rounds too
    # the same weights as corrector or as the main model itself: the same proteins
    assert with_corrector == protein_generate.generate(loaded, base)
    assert corrector_registry == ["other"]
    assert protein_generate.generate(loaded, base.replace(corrector="main")) == with_corrector  # the model itself
    assert corrector_registry == ["other"]


def test_a_corrector_must_share_the_alphabet_and_place_every_residue(tiny_model, corrector_registry):
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "main")
    calls: list = []
    with pytest.raises(ValueError, match="a corrector must share its alphabet"):
        protein_generate.generate(loaded, ProteinRequest(num=2, length=20, nfe=2, corrector="foreign",
                                                         corrector_steps=1), lambda d, n: calls.append(d))  # fmt: skip
    with pytest.raises(InvalidSequenceError, match="corrector 'short' places at most 30"):
        protein_generate.generate(loaded, ProteinRequest(num=2, length=(20, 40), nfe=2, corrector="short",
                                                         corrector_steps=1), lambda d, n: calls.append(d))  # fmt: skip
    assert calls == []  # refused before any progress
    assert len(protein_generate.generate(loaded, ProteinRequest(num=2, length=30, nfe=2, corrector="short",
                                                                corrector_steps=1))) == 2  # fmt: skip
