"""From a request to a sampler: the one dispatch, beside the samplers it chooses between.

``ancestral`` (:mod:`~protein_didi.core.sampler`), ``confidence`` (:mod:`~protein_didi.core.confidence`) and
``rgas`` (:mod:`~protein_didi.core.rgas`) run a whole chain; with ``corrector_steps`` > 0 the remasking
rounds of :mod:`~protein_didi.core.remask` follow. The request (:mod:`~protein_didi.core.request`) only says
which and with what settings; this module binds them.
"""

from __future__ import annotations

import torch

from protein_didi.core.confidence import ConfidenceConfig, confidence_sample
from protein_didi.core.denoiser import Denoiser
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.remask import FirstPhase, remask_sample
from protein_didi.core.request import SampleRequest
from protein_didi.core.rgas import RGASConfig, rgas_sample
from protein_didi.core.sampler import StepCallback, ancestral_sample
from protein_didi.core.schedule import NoiseSchedule


def draw(
    request: SampleRequest,
    model: Denoiser,
    tokens: torch.Tensor,
    fixed: torch.Tensor,
    schedule: NoiseSchedule,
    generator: torch.Generator,
    on_step: StepCallback | None = None,
    discriminator: Discriminator | None = None,
    suppress: tuple[int, ...] = (),
    corrector: Denoiser | None = None,
    corrector_schedule: NoiseSchedule | None = None,
) -> torch.Tensor:
    """One batch of masked ``tokens`` (``fixed`` positions kept) through the request's sampler.

    ``ancestral`` reveals in random order, ``confidence`` reveals the most confident positions first at
    the request's order temperature, ``rgas`` is guided by ``discriminator`` (a distilled student's).
    With ``corrector_steps`` > 0, that many correction rounds follow, redrawing from ``corrector`` (a denoiser
    on the same vocabulary with its ``corrector_schedule``; default the main model and ``schedule``).
    """
    first = first_phase(request, suppress, discriminator)
    if not request.corrector_steps:
        return first(model, tokens, fixed, schedule, generator, on_step)
    return remask_sample(model, tokens, fixed, schedule, request.remask_config(suppress), first, generator, on_step,
                         corrector, corrector_schedule)  # fmt: skip


def first_phase(
    request: SampleRequest, suppress: tuple[int, ...] = (), discriminator: Discriminator | None = None
) -> FirstPhase:
    """The request's own sampler with its settings bound: ``(model, z, fixed, schedule, generator, callback) → z``."""
    config = request.sampler_config(suppress)
    if request.sampler == "rgas":
        if discriminator is None:
            raise ValueError("RGAS needs the discriminator a distilled student ships; choose another sampler")
        rgas = RGASConfig(sampler=config, **request.rgas)
        return lambda m, z, f, s, g, cb: rgas_sample(m, discriminator, z, f, s, rgas, g, cb)
    if request.sampler == "confidence":
        ordered = ConfidenceConfig(config, float(request.order_temperature))  # type: ignore[arg-type]
        return lambda m, z, f, s, g, cb: confidence_sample(m, z, f, s, ordered, g, cb)
    return lambda m, z, f, s, g, cb: ancestral_sample(m, z, f, s, config, g, cb)
