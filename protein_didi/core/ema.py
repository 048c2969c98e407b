"""Exponential moving average of parameters, the weights that get exported."""

from __future__ import annotations

import copy

import torch
from torch import nn
from torch.distributed.tensor import DTensor, distribute_tensor

from protein_didi.core.distributed import full_tensor


class EMA:
    """θ_ema ← decay·θ_ema + (1 − decay)·θ after every optimizer step."""

    def __init__(self, model: nn.Module, decay: float) -> None:
        if not 0.0 <= decay < 1.0:
            raise ValueError(f"EMA decay must be in [0, 1), got {decay}")
        self.decay = decay
        self.shadow = {k: v.detach().clone() for k, v in model.state_dict().items()}

    @torch.no_grad()
    def update(self, model: nn.Module) -> None:
        for k, v in model.state_dict().items():
            if v.dtype.is_floating_point:
                self.shadow[k].lerp_(v.detach(), 1.0 - self.decay)
            else:
                self.shadow[k].copy_(v)

    def copy_to(self, template: nn.Module) -> nn.Module:
        """A deep copy of ``template`` (a plain module of the same architecture) carrying the averaged weights."""
        averaged = copy.deepcopy(template)
        averaged.load_state_dict(self.state_dict())
        return averaged

    def state_dict(self) -> dict[str, torch.Tensor]:
        """The averaged weights, unsharded (a collective when they are FSDP-sharded: every rank must call)."""
        return {k: full_tensor(v) for k, v in self.shadow.items()}

    def load_state_dict(self, state: dict[str, torch.Tensor]) -> None:
        for k, v in state.items():
            target = self.shadow[k]
            if isinstance(target, DTensor):  # keep this rank's shard of the full tensor
                v = distribute_tensor(v.to(target.device), target.device_mesh, target.placements)
            target.copy_(v)
