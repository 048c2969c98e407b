"""One sampling request, in every domain: how many, which sampler with which settings, seed and batching.

Every entry point (CLI, app, benchmarks) builds one request and hands it to its domain's ``generate``;
the request checks itself when it is made, before any model loads or progress is drawn. A new sampler
option is therefore one field here (checked in :meth:`SampleRequest.__post_init__`, with its flag in
:func:`add_sampling_args`) plus its use in :func:`protein_didi.core.draw.draw`: no caller's signature
changes. Domains subclass the request with what they add (lengths, motifs, CDR plans) and their own step
count for teachers.

Sampler settings left ``None`` are the model's: a checkpoint may store the settings chosen for it on a
validation set (``info["sampling"]``); otherwise students take 8 ancestral steps and teachers
:attr:`SampleRequest.teacher_nfe`. :meth:`SampleRequest.for_model` fills them in.

``corrector_steps`` > 0 adds a correction phase after the sampler (:mod:`protein_didi.core.remask`): each
round remasks a ``corrector_fraction`` of the generated positions and redraws them from a corrector model
(:func:`protein_didi.core.draw.draw` with ``corrector=...``; the main model when none is given) at
``corrector_temperature``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import ClassVar, Self

import torch

from protein_didi.core.confidence import check_order_temperature
from protein_didi.core.pretrained import LoadedModel
from protein_didi.core.remask import PICKS, RemaskConfig
from protein_didi.core.rgas import RGASConfig
from protein_didi.core.sampler import SamplerConfig, StepCallback

SAMPLERS = ("ancestral", "confidence", "rgas")
CORRECTOR_PICKS = PICKS  # which positions a correction round remasks: random, or the least confident
ProgressCallback = Callable[[int, int], None]  # (steps done, steps in all), across every batch of a request
SAMPLING_KEYS = (
    "nfe", "sampler", "temperature", "top_p", "order_temperature",
    "corrector_steps", "corrector_fraction", "corrector_temperature", "corrector_pick",
)  # fmt: skip
STUDENT_NFE = 8
# ρ when a request asks for correction rounds without saying how many positions: the 15 % a BERT-style
# corrector (AntiBERTy) was trained to denoise; bench/antibody_frontier.py charts other values
CORRECTOR_FRACTION = 0.15


def plain_sampling(sampler: str = "ancestral") -> dict:
    """Value temperature 1, no nucleus cut, greedy order τ = 0, no correction rounds: every model's default without
    stored settings, and what a benchmark fixes when it measures steps rather than a model's chosen settings."""
    return {
        "sampler": sampler, "temperature": 1.0, "top_p": 1.0, "order_temperature": 0.0,
        "corrector_steps": 0, "corrector_fraction": CORRECTOR_FRACTION, "corrector_temperature": 1.0,
        "corrector_pick": "random",
    }  # fmt: skip


@dataclass(frozen=True, kw_only=True)
class SampleRequest:
    """What to sample, independent of the domain; invalid values raise a one-line ``ValueError`` when made."""

    num: int = 8
    nfe: int | None = None  # sampling steps (function evaluations); None: the model's
    sampler: str | None = None  # one of SAMPLERS; None: the model's
    temperature: float | None = None  # softmax temperature of the values (1 = off)
    top_p: float | None = None  # nucleus mass (1 = off)
    order_temperature: float | None = None  # confidence sampler and pick: 0 greedy order … inf random order
    corrector_steps: int | None = None  # remask-and-redraw rounds after the sampler (0 = none)
    corrector_fraction: float | None = None  # ρ ∈ (0, 1): share of the generated positions each round remasks
    corrector_temperature: float | None = None  # softmax temperature of the corrector's values
    corrector_pick: str | None = None  # one of CORRECTOR_PICKS
    seed: int = 0
    batch_size: int = 32
    rgas: Mapping[str, float] = field(default_factory=dict, hash=False)  # RGASConfig overrides (candidates, …)

    teacher_nfe: ClassVar[int] = 64  # a domain's default steps for models that are not students

    def __post_init__(self) -> None:
        if self.num < 1:
            raise ValueError(f"number of sequences must be ≥ 1, got {self.num}")
        if self.batch_size < 1:
            raise ValueError(f"batch size must be ≥ 1, got {self.batch_size}")
        if self.seed < 0:
            raise ValueError(f"seed must be ≥ 0, got {self.seed}")
        if self.nfe is not None and self.nfe < 1:
            raise ValueError(f"NFE (sampling steps) must be ≥ 1, got {self.nfe}")
        if self.sampler is not None and self.sampler not in SAMPLERS:
            raise ValueError(f"unknown sampler {self.sampler!r}; choose one of {SAMPLERS}")
        if self.temperature is not None and not (math.isfinite(self.temperature) and self.temperature > 0):
            raise ValueError(f"temperature must be > 0, got {self.temperature}")
        if self.top_p is not None and not 0 < self.top_p <= 1:
            raise ValueError(f"top-p must be in (0, 1], got {self.top_p}")
        if self.order_temperature is not None:
            check_order_temperature(self.order_temperature)
        if self.corrector_steps is not None and self.corrector_steps < 0:
            raise ValueError(f"corrector steps must be ≥ 0, got {self.corrector_steps}")
        rho = self.corrector_fraction
        if rho is not None and not 0 < rho < 1:
            raise ValueError(f"corrector fraction must be in (0, 1) (the share of residues remasked), got {rho}")
        temp = self.corrector_temperature
        if temp is not None and not (math.isfinite(temp) and temp > 0):
            raise ValueError(f"corrector temperature must be > 0, got {temp}")
        if self.corrector_pick is not None and self.corrector_pick not in CORRECTOR_PICKS:
            raise ValueError(f"unknown corrector pick {self.corrector_pick!r}; choose one of {CORRECTOR_PICKS}")
        unknown = set(self.rgas) - {f.name for f in dataclasses.fields(RGASConfig)} - {"sampler"}
        if unknown:
            raise ValueError(f"unknown RGAS settings {sorted(unknown)}; see protein_didi.core.rgas.RGASConfig")

    @classmethod
    def recommended(cls, info: Mapping, role: str) -> dict:
        """The sampler settings a model is used with when the request leaves them unset (the one default rule)."""
        nfe = STUDENT_NFE if role.startswith("student") else cls.teacher_nfe
        settings = {"nfe": nfe, **plain_sampling()}
        stored = info.get("sampling", {})
        unknown = set(stored) - set(SAMPLING_KEYS) - {"chosen_on"}
        if unknown:
            raise ValueError(
                f"checkpoint's sampling settings have unknown keys {sorted(unknown)}; expected {SAMPLING_KEYS}"
            )
        return settings | {k: stored[k] for k in SAMPLING_KEYS if k in stored}

    def given(self) -> dict:
        """The sampler settings this request sets itself (the rest are the model's)."""
        return {k: getattr(self, k) for k in SAMPLING_KEYS if getattr(self, k) is not None}

    def for_model(self, info: Mapping, role: str) -> Self:
        """This request with every unset sampler setting taken from the model (stored or role default)."""
        return dataclasses.replace(self, **(self.recommended(info, role) | self.given()))

    def replace(self, **changes: object) -> Self:
        """A copy with ``changes``, checked again (e.g. one request per parent from a template request)."""
        return dataclasses.replace(self, **changes)  # type: ignore[arg-type]

    def fitted(self, loaded: LoadedModel) -> Self:
        """This request for ``loaded``: unset sampler settings filled from it, RGAS only with its discriminator.

        Domains extend it with their own checks against the model (e.g. its positional limit).
        """
        request = self.for_model(loaded.info, loaded.role)
        if request.sampler == "rgas":
            loaded.require_discriminator()  # one line if there is none (or loads a head-only one), before progress
        return request

    @property
    def resolved(self) -> bool:
        return all(getattr(self, k) is not None for k in SAMPLING_KEYS)

    @property
    def steps(self) -> int:
        """Steps one batch takes, the progress unit: the sampler's NFE plus the correction rounds (filled request)."""
        assert self.resolved, "fill the request's sampler settings with for_model(info, role) first"
        return int(self.nfe) + int(self.corrector_steps)  # type: ignore[arg-type]

    def sampler_config(self, suppress: tuple[int, ...] = ()) -> SamplerConfig:
        """The core sampler's settings; call on a request :meth:`for_model` has filled in."""
        assert self.resolved, "fill the request's sampler settings with for_model(info, role) first"
        return SamplerConfig(self.nfe, self.temperature, self.top_p, suppress=suppress)  # type: ignore[arg-type]

    def remask_config(self, suppress: tuple[int, ...] = ()) -> RemaskConfig:
        """The correction phase's settings (corrector rounds, ρ, value temperature, pick); filled request only."""
        assert self.resolved, "fill the request's sampler settings with for_model(info, role) first"
        return RemaskConfig(
            rounds=self.corrector_steps, fraction=self.corrector_fraction, temperature=self.corrector_temperature,
            top_p=self.top_p, pick=self.corrector_pick, order_temperature=self.order_temperature, suppress=suppress,
        )  # type: ignore[arg-type]  # fmt: skip


def add_sampling_args(parser: argparse.ArgumentParser, request_type: type[SampleRequest]) -> None:
    """The sampler flags of every sampling command: one per sampler setting of the request, unset by default."""
    g = parser.add_argument_group(
        f"sampler (defaults: the model's stored settings, else {STUDENT_NFE} ancestral steps for students, "
        f"{request_type.teacher_nfe} for teachers)"
    )
    g.add_argument("--nfe", type=int, default=None, help="sampling steps")
    g.add_argument(
        "--sampler",
        choices=SAMPLERS,
        default=None,
        help="ancestral (random reveal order), confidence (most confident positions first) or rgas (reward-guided)",
    )
    g.add_argument("--temperature", type=float, default=None, help="softmax temperature of the values (1.0 = off)")
    g.add_argument("--top-p", type=float, default=None, help="nucleus sampling mass (1.0 = off)")
    g.add_argument(
        "--order-temperature",
        type=float,
        default=None,
        help="confidence sampler: 0 = greedy confidence order … inf = random order (positions drawn ∝ p^(1/τ)); "
        "also the order of --corrector-pick confidence",
    )
    g.add_argument(
        "--corrector-steps",
        type=int,
        default=None,
        help="correction rounds after sampling: each remasks a share of the generated residues and redraws them "
        "in one forward pass of the corrector (default 0 = none)",
    )
    g.add_argument(
        "--corrector-fraction",
        type=float,
        default=None,
        help=f"share ρ ∈ (0, 1) of the generated residues each correction round remasks (default {CORRECTOR_FRACTION})",
    )
    g.add_argument(
        "--corrector-temperature",
        type=float,
        default=None,
        help="softmax temperature of the corrector's redrawn values (default 1.0 = off)",
    )
    g.add_argument(
        "--corrector-pick",
        choices=CORRECTOR_PICKS,
        default=None,
        help="which residues a round remasks: random (uniform) or confidence (the least probable when drawn, "
        "ordered at --order-temperature; default random)",
    )


def sampling_args(args: argparse.Namespace) -> dict:
    """The request's sampler settings from flags :func:`add_sampling_args` made."""
    return {k: getattr(args, k) for k in SAMPLING_KEYS}


def steps_reporter(progress: ProgressCallback | None, done: int, total: int) -> StepCallback:
    """A sampler's per-step callback for one batch that reports ``done + step`` of ``total`` steps."""

    def on_step(step: int, n_steps: int, z: torch.Tensor) -> None:
        if progress is not None:
            progress(done + step, total)

    return on_step
