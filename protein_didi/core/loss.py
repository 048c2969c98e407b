"""Continuous-time masked-diffusion NELBO (MDLM / MD4, DiDi-Instruct eq. 3)."""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass

import torch

from protein_didi.core.denoiser import Denoiser
from protein_didi.core.masking import corrupt, sample_times
from protein_didi.core.schedule import NoiseSchedule


@dataclass
class ElboTerms:
    """Loss and the pieces a training log wants."""

    loss: torch.Tensor  # NELBO in nats per maskable token (scalar, differentiable)
    nll_masked: torch.Tensor  # plain cross-entropy on masked tokens (unweighted), for monitoring
    num_masked: int


def masked_diffusion_loss(
    model: Denoiser,
    x: torch.Tensor,
    maskable: torch.Tensor,
    schedule: NoiseSchedule,
    t: torch.Tensor | None = None,
    generator: torch.Generator | None = None,
) -> ElboTerms:
    """E_t E_q[ ω(t) · Σ_{ℓ masked} −log p_θ(x^ℓ | z_t) ] / #maskable tokens.

    With ω(t) = −α'_t/(1−α_t) this is an upper bound on −log p(x) per token, so a
    model that predicts the unigram distribution scores exactly its cross-entropy.
    """
    if t is None:
        t = sample_times(x.shape[0], x.device, generator)
    z = corrupt(x, t, schedule, model.mask_id, maskable, generator)
    log_probs = model(z, t)
    assert log_probs.shape == (*x.shape, model.vocab_size), log_probs.shape
    nll = -log_probs.gather(-1, x.unsqueeze(-1)).squeeze(-1)
    masked = (z == model.mask_id) & maskable
    weighted = schedule.weight(t).unsqueeze(-1) * nll * masked
    n_tokens = maskable.sum().clamp_min(1)
    n_masked = int(masked.sum())
    return ElboTerms(
        loss=weighted.sum() / n_tokens,
        nll_masked=(nll * masked).sum().detach() / max(n_masked, 1),
        num_masked=n_masked,
    )


@torch.no_grad()
def nelbo_per_token(
    model: Denoiser,
    batches: Iterable[torch.Tensor],
    maskable: Callable[[torch.Tensor], torch.Tensor],
    schedule: NoiseSchedule,
    *,
    draws: int,
    generator: torch.Generator,
) -> float:
    """The NELBO in nats per maskable token over clean-token ``batches``, ``draws`` (t, mask) draws each.

    The held-out NELBO of both domains (each picks its held-out batches and maskable positions); ``generator``
    seeds every draw, so checkpoints compare on identical draws.
    """
    total, count = 0.0, 0
    for x in batches:
        where = maskable(x)
        for _ in range(draws):
            terms = masked_diffusion_loss(model, x, where, schedule, generator=generator)
            n = int(where.sum())
            total += float(terms.loss) * n
            count += n
    return total / count
