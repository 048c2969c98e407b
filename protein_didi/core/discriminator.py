"""The DiDi-Instruct discriminator D_λ and the reward it defines (paper Sec. 3.2, eq. 6 and 8).

D shares the teacher's backbone (initialised from it) and adds a fresh head of
two spectrally normalised linear layers with a SiLU between them, giving one
logit per token. At the optimum, logit D = log q_ν(z_t)/q_θ(z_t), so the reward
R(z_t, t) — the mean logit over masked positions — estimates the log density
ratio between student and teacher marginals.

Deliberate option (not in the paper): ``frozen_backbone=True`` trains the head
alone on the frozen teacher's features. The backbone is then not part of D's
state (it *is* the teacher), so a student ships its discriminator in a few MB
instead of a second copy of the teacher, and D's update costs no backward pass
through the backbone — what makes DiDi-Instruct on a 26 M-parameter teacher fit
a 2-core CPU. Gradients still flow to *inputs* (RGAS differentiates the reward
with respect to soft tokens).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


class Discriminator(nn.Module):
    """Per-token logits D_λ(z_t, t) ∈ ℝ^{B×L}; positive means "looks like the student"."""

    def __init__(self, backbone: nn.Module, frozen_backbone: bool = False) -> None:
        super().__init__()
        self.frozen_backbone = frozen_backbone
        if frozen_backbone:
            # held outside the module tree: not trained, not saved, not moved or put in train mode with the head
            self._frozen = (backbone.requires_grad_(False).eval(),)
        else:
            self.backbone = backbone
        self.mask_id: int = backbone.mask_id
        hidden = backbone.hidden_size
        self.head = nn.Sequential(
            spectral_norm(nn.Linear(hidden, hidden)),
            nn.SiLU(),
            spectral_norm(nn.Linear(hidden, 1)),
        )

    def forward(self, tokens: torch.Tensor, t: torch.Tensor, soft_tokens: torch.Tensor | None = None) -> torch.Tensor:
        h = self.feature_backbone().features(tokens, t, soft_tokens)
        logits = self.head(h).squeeze(-1)
        assert logits.shape == tokens.shape, (logits.shape, tokens.shape)
        return logits

    def feature_backbone(self) -> nn.Module:
        """The backbone D reads its features from (the frozen teacher with ``frozen_backbone``)."""
        return self._frozen[0] if self.frozen_backbone else self.backbone

    def reward(
        self,
        tokens: torch.Tensor,
        t: torch.Tensor,
        generated: torch.Tensor,
        soft_tokens: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """R(z_t, t) (B,): mean logit over masked positions (eq. 6).

        Args:
            generated: (B, L) bool, positions the model generates (not special or
                fixed). A sequence with no masked position left (t ≈ 0) is scored
                over all its generated positions instead, so R stays defined.
        """
        return mean_masked_logit(self(tokens, t, soft_tokens), tokens, generated, self.mask_id)


def reward_region(tokens: torch.Tensor, generated: torch.Tensor, mask_id: int) -> torch.Tensor:
    """(B, L) bool: the masked generated positions, or all generated ones in a sequence with none masked."""
    region = (tokens == mask_id) & generated
    return torch.where(region.any(-1, keepdim=True), region, generated)


def region_mean(values: torch.Tensor, region: torch.Tensor) -> torch.Tensor:
    """(B,) mean of per-position ``values`` over ``region``."""
    return (values * region).sum(-1) / region.sum(-1).clamp_min(1)


def mean_masked_logit(
    logits: torch.Tensor, tokens: torch.Tensor, generated: torch.Tensor, mask_id: int
) -> torch.Tensor:
    """R (B,) from per-token logits: the mean over masked generated positions (all generated ones if none is masked).

    Separate from :meth:`Discriminator.reward` so a data-parallel wrapper's
    forward can produce the logits (gradients then synchronise across ranks).
    """
    return region_mean(logits, reward_region(tokens, generated, mask_id))


def per_position_bce(
    logits: torch.Tensor,
    tokens: torch.Tensor,
    generated: torch.Tensor,
    mask_id: int,
    is_student: bool,
    smoothing: float = 0.0,
) -> torch.Tensor:
    """Balanced-BCE half for one side (eq. 8 in the per-position form of eq. 17), mean over the batch.

    Each position of the reward region is its own classification, so the
    optimal per-position logit is that position's log density ratio, and the
    reward R (their mean, eq. 6) is a mean of calibrated log-ratios — which a
    BCE on the mean logit would not guarantee.

    ``smoothing`` ε (not in the paper) moves the targets to 1 − ε and ε: the optimal logit is then bounded by
    ±log((1 − ε)/ε), so a discriminator that separates the two sides perfectly cannot drive the reward, and
    with it the student's policy gradient, to extremes (the collapse a sharper teacher bank caused).
    """
    if not 0.0 <= smoothing < 0.5:
        raise ValueError(f"discriminator label smoothing must be in [0, 0.5), got {smoothing}")
    target = torch.full_like(logits, 1.0 - smoothing if is_student else smoothing)
    loss = F.binary_cross_entropy_with_logits(logits, target, reduction="none")
    return region_mean(loss, reward_region(tokens, generated, mask_id)).mean()
