"""Remasking sampler: a first pass, then rounds that send revealed tokens back to [MASK] and redraw them.

Every other sampler here reveals a token once and keeps it (carry-over unmasking). A few-step student makes
its early choices while most of the sequence is masked, where a BERT-style teacher trained at 15 % masking is
a poor denoiser; the same teacher is an excellent denoiser when *few* positions are masked. So after the first
phase (the request's own sampler, ``N`` steps with the main model) each of ``R`` correction rounds does

    F = |free positions of the row|,  k = round(ρ · F)                        (per row; exactly k remasked)
    S ⊂ free, |S| = k                 picked by rule (below)
    z_i ← [MASK] for i ∈ S;  x̂_i ~ p_c(x_i | z, t_ρ)^{1/T} (top-p) for i ∈ S   (one forward pass of the corrector)

with p_c the corrector (the main model itself unless another denoiser is given, e.g. the teacher), T its
value temperature, and t_ρ the schedule's time whose mask probability is ρ (1 − α(t_ρ) = ρ), so a
time-conditioned corrector is told the mask rate it really sees. *Free* positions are those this call
generates: masked in the input and not ``fixed``; fixed positions (motifs, prefixes, a redesign's framework,
special tokens) and tokens given in the input are never remasked.

Which positions a round remasks (``pick``):

* ``random``: uniform without replacement (the top k of i.i.d. Gumbel noise), the prototype's rule and
  ReMDM's in spirit;
* ``confidence`` (DPLM-like): the positions whose current token was least probable, top k of
  −log c_i / τ + g_i, g_i ~ Gumbel(0, 1) — a Plackett–Luce draw with weights c_i^{−1/τ}, so τ = 0 remasks
  the k least confident (greedy, DPLM's rule), τ = ∞ is the random rule.

The confidence c_i of a position is p(x_i | z) under the forward pass that *drew its current value* (the
model's own probability, before value temperature and top-p, renormalised over the tokens it may draw). Under
the SUBS parameterisation a later pass says nothing about a revealed token (carry-over: p = 1), so this is the
latest pass that holds any information about it. It is recorded as the tokens are drawn: the first phase's
model is wrapped to keep its last output (read off at each step's reveals), and each correction round updates
the positions it redrew from the corrector's pass. No pass is ever spent only on scoring, so

    forward passes = N + R  exactly

(the first phase's N — one per step — plus one per round; the ancestral sampler may spend fewer than N with a
time-free model, since it reuses a pass when a step revealed nothing). All categorical and Gumbel draws are
float64, as in the other samplers.
"""

from __future__ import annotations

import math
from collections.abc import Callable
from dataclasses import dataclass

import torch

from protein_didi.core.confidence import check_order_temperature, reveal_scores
from protein_didi.core.denoiser import Denoiser
from protein_didi.core.sampler import StepCallback, sample_categorical, temper, without_suppressed
from protein_didi.core.schedule import NoiseSchedule

PICKS = ("random", "confidence")

# the first phase: (model, z, fixed, schedule, generator, callback) → z, e.g. ancestral_sample with its config bound
FirstPhase = Callable[
    [Denoiser, torch.Tensor, torch.Tensor, NoiseSchedule, torch.Generator | None, StepCallback | None], torch.Tensor
]


@dataclass(frozen=True)
class RemaskConfig:
    """The correction phase: ``rounds`` rounds remasking a ``fraction`` ρ of every row's free positions each.

    ``temperature``/``top_p`` shape the corrector's values; ``order_temperature`` τ the ``confidence`` pick.
    """

    rounds: int
    fraction: float
    temperature: float = 1.0
    top_p: float = 1.0
    pick: str = "random"
    order_temperature: float = 0.0
    dtype: torch.dtype = torch.float64
    suppress: tuple[int, ...] = ()  # token ids never generated

    def __post_init__(self) -> None:
        if self.rounds < 0:
            raise ValueError(f"corrector rounds must be ≥ 0, got {self.rounds}")
        if not 0 < self.fraction < 1:
            raise ValueError(f"remask fraction must be in (0, 1), got {self.fraction}")
        if not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"corrector temperature must be > 0, got {self.temperature}")
        if not 0 < self.top_p <= 1:
            raise ValueError(f"top_p must be in (0, 1], got {self.top_p}")
        if self.pick not in PICKS:
            raise ValueError(f"unknown remask pick {self.pick!r}; choose one of {PICKS}")
        check_order_temperature(self.order_temperature)


def time_at_mask_rate(schedule: NoiseSchedule, rate: float, iterations: int = 60) -> float:
    """The t ∈ [0, 1] with 1 − α(t) = ``rate`` (bisection in float64; any schedule with a rising mask rate).

    A rate above the schedule's largest, 1 − α(1), gives t = 1.
    """
    lo, hi = torch.zeros((), dtype=torch.float64), torch.ones((), dtype=torch.float64)
    if schedule.mask_prob(hi) <= rate:
        return 1.0
    for _ in range(iterations):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if schedule.mask_prob(mid) < rate else (lo, mid)
    return float((lo + hi) / 2)


def remask_counts(free: torch.Tensor, fraction: float) -> torch.Tensor:
    """k = round(ρ · F) per row (B,), F the row's free positions (round half to even, as ``round``)."""
    return torch.round(free.sum(-1).to(torch.float64) * fraction).long()


def token_log_probs(
    log_p: torch.Tensor, tokens: torch.Tensor, suppress: tuple[int, ...], dtype: torch.dtype
) -> torch.Tensor:
    """log p(tokens | z) (B, L) in ``dtype`` under ``log_p`` renormalised over the tokens that may be drawn."""
    assert log_p.shape[:2] == tokens.shape, (log_p.shape, tokens.shape)
    return without_suppressed(log_p.to(dtype), suppress).gather(-1, tokens.unsqueeze(-1)).squeeze(-1)


def pick_remask(
    log_conf: torch.Tensor,
    free: torch.Tensor,
    counts: torch.Tensor,
    pick: str,
    order_temperature: float,
    generator: torch.Generator | None = None,
) -> torch.Tensor:
    """(B, L) bool: exactly ``counts[b]`` free positions of row b, the least confident first (or at random).

    ``log_conf`` (B, L) float64 is each position's log confidence; ``random`` ignores it (τ = ∞).
    """
    assert log_conf.shape == free.shape and counts.shape == free.shape[:1], (log_conf.shape, free.shape, counts.shape)
    assert bool((counts <= free.sum(-1)).all()), "cannot remask more positions than a row has free"
    tau = math.inf if pick == "random" else order_temperature
    score = reveal_scores(-log_conf, tau, generator).masked_fill(~free, -math.inf)  # high = remask first
    rank = score.argsort(dim=-1, descending=True, stable=True).argsort(dim=-1)
    return free & (rank < counts.unsqueeze(-1))


def correction_round(
    corrector: Denoiser,
    z: torch.Tensor,
    free: torch.Tensor,
    log_conf: torch.Tensor,
    t: float,
    config: RemaskConfig,
    generator: torch.Generator | None = None,
) -> tuple[torch.Tensor, torch.Tensor]:
    """One round: remask round(ρ·F) free positions per row, redraw them in one corrector pass at time ``t``.

    Returns the new tokens and log confidences (the redrawn positions' from this pass, the others kept).
    """
    assert z.shape == free.shape == log_conf.shape, (z.shape, free.shape, log_conf.shape)
    mask_id = corrector.mask_id
    assert not bool((z == mask_id)[free].any()), "a correction round starts from a fully revealed sequence"
    counts = remask_counts(free, config.fraction)
    picked = pick_remask(log_conf, free, counts, config.pick, config.order_temperature, generator)
    assert torch.equal(picked.sum(-1), counts), (picked.sum(-1), counts)
    z_masked = z.masked_fill(picked, mask_id)
    times = torch.full((z.shape[0],), t, dtype=torch.float32, device=z.device)
    log_p = corrector(z_masked, times)
    probs = temper(log_p, config.temperature, config.top_p, config.dtype, config.suppress)
    drawn = sample_categorical(probs, generator)
    z_new = torch.where(picked, drawn, z_masked)
    assert not bool((z_new == mask_id)[free].any()), "a round left a [MASK] behind"
    new_conf = torch.where(picked, token_log_probs(log_p, z_new, config.suppress, config.dtype), log_conf)
    return z_new, new_conf


class ConfidenceRecorder:
    """The first phase's model, keeping its last output so each revealed token's probability is read off free.

    Samplers call it like the model; :meth:`observe` after every step records log p(x_i | z) for the positions
    that step revealed, from the pass made on the state before the step.
    """

    def __init__(self, model: Denoiser, z: torch.Tensor, suppress: tuple[int, ...], dtype: torch.dtype) -> None:
        self.model = model
        self.mask_id, self.vocab_size = model.mask_id, model.vocab_size
        self.time_conditioned = getattr(model, "time_conditioned", True)
        self.suppress, self.dtype = suppress, dtype
        self.previous = z
        self.inputs: torch.Tensor | None = None
        self.log_p: torch.Tensor | None = None
        self.log_conf = torch.zeros(z.shape, dtype=dtype, device=z.device)
        self.recorded = torch.zeros_like(z, dtype=torch.bool)

    def __call__(self, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor:
        self.inputs, self.log_p = tokens, self.model(tokens, t)
        return self.log_p

    def observe(self, z: torch.Tensor) -> None:
        """Record the confidence of every token revealed since the last call (drawn from the last pass)."""
        revealed = (self.previous == self.mask_id) & (z != self.mask_id)
        if bool(revealed.any()):
            assert self.log_p is not None and self.inputs is not None and torch.equal(self.inputs, self.previous), (
                "the tokens revealed in a step must come from a pass on the state before it"
            )
            conf = token_log_probs(self.log_p, z, self.suppress, self.dtype)
            self.log_conf = torch.where(revealed, conf, self.log_conf)
            self.recorded |= revealed
        self.previous = z


@torch.no_grad()
def remask_sample(
    model: Denoiser,
    z: torch.Tensor,
    fixed: torch.Tensor,
    schedule: NoiseSchedule,
    config: RemaskConfig,
    first_phase: FirstPhase,
    generator: torch.Generator | None = None,
    callback: StepCallback | None = None,
    corrector: Denoiser | None = None,
    corrector_schedule: NoiseSchedule | None = None,
) -> torch.Tensor:
    """``first_phase`` with ``model``, then ``config.rounds`` correction rounds with ``corrector`` (default ``model``).

    Args:
        z: (B, L) start tokens: [MASK] where to generate, anything else is kept (and never remasked).
        fixed: (B, L) bool, positions never resampled nor remasked (special tokens, motif, padding).
        first_phase: the request's own sampler, e.g. ``ancestral_sample`` with its config bound; its
            random draws are exactly those it makes alone, so the first phase's output does not depend on
            the correction settings.
        callback: called as ``callback(step, N + R, z)`` after each of the N first-phase steps and R rounds.
        corrector_schedule: the corrector's noise schedule (default ``schedule``), for t_ρ.
    """
    assert z.shape == fixed.shape and z.dim() == 2, (z.shape, fixed.shape)
    corrector = model if corrector is None else corrector
    if corrector.mask_id != model.mask_id or corrector.vocab_size != model.vocab_size:
        raise ValueError("the corrector must share the model's vocabulary and [MASK] token")
    free = (z == model.mask_id) & ~fixed
    first_steps = 0
    recorder = ConfidenceRecorder(model, z, config.suppress, config.dtype) if config.pick == "confidence" else None

    def first_step(step: int, n_steps: int, zz: torch.Tensor) -> None:
        nonlocal first_steps
        first_steps = n_steps
        if recorder is not None:
            recorder.observe(zz)
        if callback is not None:
            callback(step, n_steps + config.rounds, zz)

    z = first_phase(model if recorder is None else recorder, z, fixed, schedule, generator, first_step)
    assert not bool((z == model.mask_id)[free].any()), "the first phase left masked positions"
    log_conf = torch.zeros(z.shape, dtype=config.dtype, device=z.device)
    if recorder is not None:
        assert bool(recorder.recorded[free].all()), "every generated token's confidence is recorded"
        log_conf = recorder.log_conf
    t = time_at_mask_rate(corrector_schedule or schedule, config.fraction)
    for r in range(config.rounds):
        z, log_conf = correction_round(corrector, z, free, log_conf, t, config, generator)
        if callback is not None:
            callback(first_steps + r + 1, first_steps + config.rounds, z)
    return z
