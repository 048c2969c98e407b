"""Exponential moving average of parameters, the weights that get exported.

A plain EMA started from the initial weights keeps decay^n of them after n
updates: with the paper's decay 0.9999 and a few hundred CPU iterations the
exported student would be ~95 % teacher. We therefore use the bias-corrected
average (as Adam corrects its moments): update n moves the average by
(1 − d)/(1 − dⁿ) instead of (1 − d), which makes it exactly

    θ̄ₙ = Σₖ (1 − d)·dⁿ⁻ᵏ·θₖ / (1 − dⁿ),

a weighted mean of the *trained* iterates θ₁…θₙ alone: the first update copies
θ₁, short runs average their whole trajectory, and long runs (n ≫ 1/(1 − d))
get the usual EMA. Before any update it holds the initial weights.
"""

from __future__ import annotations

import copy
from typing import Any

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from protein_didi.core.distributed import full_tensor


class EMA:
    """θ̄ ← θ̄ + βₙ(θ − θ̄) with βₙ = (1 − d)/(1 − dⁿ) after the n-th optimizer step (bias-corrected EMA)."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.num_updates = 0
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    def rate(self) -> float:
        """βₙ for the update about to happen (1 for the first)."""
        return (1.0 - self.decay) / (1.0 - self.decay ** (self.num_updates + 1))

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        beta = self.rate()
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), beta)
            else:
                self.shadow[k].copy_(v)
        self.num_updates += 1

    def copy_to(self, template: nn.Module) -> nn.Module:
        """A deep copy of ``template`` (a plain module of the same architecture) carrying the averaged weights."""
        averaged = copy.deepcopy(template)
        averaged.load_state_dict(self.weights())
        return averaged

    def weights(self) -> dict[str, torch.Tensor]:
        """The averaged weights, unsharded (a collective when they are FSDP-sharded: every rank must call)."""
        return {k: full_tensor(v) for k, v in self.shadow.items()}

    def state_dict(self) -> dict[str, Any]:
        """Averaged weights and the update count (the count sets the next βₙ, so resuming needs it)."""
        return {"weights": self.weights(), "num_updates": self.num_updates}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        for k, v in state["weights"].items():
            target = self.shadow[k]
            if isinstance(target, DTensor):  # keep this rank's shard of the full tensor
                v = distribute_tensor(v.to(target.device), target.device_mesh, target.placements)
            target.copy_(v)
        self.num_updates = int(state["num_updates"])


def relative_distance(a: dict[str, torch.Tensor], b: dict[str, torch.Tensor]) -> float:
    """‖a − b‖ / ‖b‖ over all floating-point tensors: how far weights ``a`` moved from ``b``."""
    num = den = 0.0
    for k, v in b.items():
        if v.dtype.is_floating_point:
            num += float((a[k].float() - v.float()).pow(2).sum())
            den += float(v.float().pow(2).sum())
    return (num / max(den, 1e-30)) ** 0.5
