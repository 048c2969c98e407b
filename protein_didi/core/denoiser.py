"""The one interface every model learns and samples through.

A denoiser maps partially masked tokens ``z_t`` (B, L) and times ``t`` (B,) to
log-probabilities over the clean vocabulary (B, L, K). Samplers, losses and
trainers only ever call ``model(tokens, t)``; they never see a concrete class.
"""

from __future__ import annotations

from typing import Protocol, runtime_checkable

import torch

# Finite stand-in for log(0): exp() gives exactly 0, and 0·NEG_INF stays finite
# (−inf would turn entropy and KL terms into NaN).
NEG_INF = -1e6


@runtime_checkable
class Denoiser(Protocol):
    """``log_probs = model(tokens, t)`` with the SUBS parameterisation applied.

    Attributes:
        mask_id: id of the absorbing [MASK] token.
        vocab_size: K, the size of the last output dimension.
        time_conditioned: whether the output depends on ``t`` beyond what the
            mask pattern already tells; samplers may reuse outputs when it does not.
    """

    mask_id: int
    vocab_size: int
    time_conditioned: bool

    def __call__(self, tokens: torch.Tensor, t: torch.Tensor) -> torch.Tensor: ...


def subs_log_probs(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    mask_id: int,
    allowed: torch.Tensor | None = None,
) -> torch.Tensor:
    """Turn raw logits into MDLM's SUBS log-probabilities.

    * zero mask logit: the clean-data prediction never puts mass on [MASK]
      (nor on tokens outside ``allowed``, e.g. special tokens);
    * carry-over unmasking: an already unmasked position predicts itself with
      probability one, so unmasked tokens never change during sampling.

    Args:
        logits: (B, L, K) raw network outputs.
        tokens: (B, L) the noisy input z_t.
        mask_id: id of [MASK].
        allowed: optional (K,) bool, tokens a masked position may become.
    """
    assert logits.dim() == 3 and logits.shape[:2] == tokens.shape, (logits.shape, tokens.shape)
    logits = logits.float()
    forbidden = torch.zeros(logits.shape[-1], dtype=torch.bool, device=logits.device)
    if allowed is not None:
        forbidden |= ~allowed.to(logits.device)
    forbidden[mask_id] = True
    logits = logits.masked_fill(forbidden, NEG_INF)
    log_probs = torch.log_softmax(logits, dim=-1)

    unmasked = tokens != mask_id
    carry = torch.full_like(log_probs, NEG_INF)
    carry.scatter_(-1, tokens.unsqueeze(-1), 0.0)
    return torch.where(unmasked.unsqueeze(-1), carry, log_probs)
