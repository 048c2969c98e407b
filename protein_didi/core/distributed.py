"""Data-parallel training under ``torchrun``: one process per device, DDP wrappers, rank-aware helpers.

We add no launcher or communication layer of our own: ``torchrun`` starts the
processes and sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (plus the rendezvous
address), :func:`init` joins the process group (NCCL on CUDA, gloo on CPU),
and trainers wrap their trainable modules with :meth:`Context.wrap`
(``DistributedDataParallel``). A plain ``python -m …`` run gets a
single-process :class:`Context` with the same API, so trainers have one code path.

``--fsdp`` shards parameters, gradients and optimiser state over the ranks
(PyTorch's FSDP2, ``fully_shard``) for models whose training state does not
fit one device; checkpoints hold the full, unsharded state either way, so a
run can resume under either strategy and on any number of processes.

Work is split in *units* (fixed-size groups of the global batch, each with its
own seeded generator): rank r takes a contiguous share of the units of a
step. A unit's content depends only on (seed, step, unit), never on the world
size, so one process accumulating all units computes the same update as N
processes averaging their gradients — and a run can resume on another world size.
"""

from __future__ import annotations

import os
import warnings
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.checkpoint.state_dict import (
    StateDictOptions,
    get_model_state_dict,
    get_optimizer_state_dict,
    set_model_state_dict,
    set_optimizer_state_dict,
)
from torch.distributed.device_mesh import init_device_mesh
from torch.distributed.fsdp import fully_shard
from torch.distributed.tensor import DTensor
from torch.nn.parallel import DistributedDataParallel

from protein_didi.core.device import resolve_device
from protein_didi.core.errors import UserError


class DistributedError(RuntimeError, UserError):
    """A torchrun environment that cannot run this job (bad split, device mismatch, …); one-line message."""


@dataclass
class Context:
    """Who this process is in the job and how to talk to the others."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))
    fsdp: bool = False  # shard parameters, gradients and optimiser state (FSDP2) instead of replicating (DDP)

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

    @property
    def sharded(self) -> bool:
        """Whether trainable modules are FSDP-sharded: their full state takes a collective to gather."""
        return self.distributed and self.fsdp

    @property
    def is_main(self) -> bool:
        """Rank 0 writes checkpoints, logs and exports; the others only compute."""
        return self.rank == 0

    def units(self, num_units: int, what: str = "groups", fix: str = "") -> range:
        """This rank's contiguous share of ``num_units`` work units (they must split evenly)."""
        if num_units % self.world_size:
            hint = f"; {fix}" if fix else ""
            raise DistributedError(
                f"{num_units} {what} per step cannot be split evenly over {self.world_size} processes{hint}"
            )
        share = num_units // self.world_size
        return range(self.rank * share, (self.rank + 1) * share)

    def wrap(self, module: nn.Module, probe: Callable[[nn.Module], torch.Tensor] | None = None) -> nn.Module:
        """``module`` in DistributedDataParallel (gradients averaged over ranks), sharded in place with FSDP2 when
        ``fsdp`` is set, or as is on one process.

        ``probe(module)`` runs a representative forward pass; parameters it never
        reaches (a discriminator's unused LM head, ESM's contact head) are frozen
        first, so DDP need not search the autograd graph for them every step.
        Without a probe DDP does that search (``find_unused_parameters``). Freezing happens on one
        process too, so the optimiser holds the same parameters (and checkpoints the same state) everywhere.
        """
        if probe is not None:
            freeze_unused_parameters(module, probe)
        if not self.distributed:
            return module
        if self.sharded:
            return shard(module, self.world_size, self.device)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DenoiserDDP(module, device_ids=ids, find_unused_parameters=probe is None)

    # -- full (unsharded) state, the checkpoint format for every strategy and world size ---------------------------
    def _options(self) -> StateDictOptions:
        return StateDictOptions(full_state_dict=True, cpu_offload=self.sharded)

    def full_state(self, module: nn.Module) -> dict[str, torch.Tensor]:
        """``module``'s full state dict (a collective under FSDP: every rank calls, rank 0 receives)."""
        return get_model_state_dict(module, options=self._options()) if self.sharded else module.state_dict()

    def load_full_state(self, module: nn.Module, state: dict[str, torch.Tensor]) -> None:
        if self.sharded:
            set_model_state_dict(module, state, options=StateDictOptions(full_state_dict=True))
        else:
            module.load_state_dict(state)

    def full_optimizer_state(self, module: nn.Module, opt: torch.optim.Optimizer) -> dict[str, Any]:
        """Optimiser state keyed by parameter name, so any strategy and process count can load it."""
        return get_optimizer_state_dict(module, opt, options=self._options())

    def load_full_optimizer_state(self, module: nn.Module, opt: torch.optim.Optimizer, state: dict[str, Any]) -> None:
        # strict=False: parameters frozen under data parallelism (never used) have no saved state
        options = StateDictOptions(full_state_dict=True, strict=False)
        set_optimizer_state_dict(module, opt, state, options=options)

    def all_mean(self, metrics: dict[str, float]) -> dict[str, float]:
        """Average scalar metrics over ranks (float64), so rank 0 logs — and every rank sees — the global value."""
        if not self.distributed:
            return metrics
        keys = list(metrics)  # same insertion order on every rank: the same code path built it
        values = torch.tensor([float(metrics[k]) for k in keys], dtype=torch.float64, device=self.comm_device)
        dist.all_reduce(values)
        return dict(zip(keys, (values / self.world_size).tolist(), strict=True))

    def any_true(self, flag: bool) -> bool:
        """True on every rank when ``flag`` is true on any rank."""
        if not self.distributed:
            return flag
        value = torch.tensor([1.0 if flag else 0.0], device=self.comm_device)
        dist.all_reduce(value)
        return bool(value.item() > 0)

    def lost_peer(self, err: BaseException) -> bool:
        """Whether ``err`` is a collective failing because another rank died (its own error says why)."""
        if not self.distributed:
            return False
        text = str(err)
        return isinstance(err, dist.DistBackendError) or any(s in text for s in _PEER_GONE)

    def barrier(self) -> None:
        if self.distributed:
            dist.barrier()

    @property
    def comm_device(self) -> torch.device:
        return self.device if self.device.type == "cuda" else torch.device("cpu")

    def close(self) -> None:
        """Leave the job once every rank is done (tearing down while a peer still talks can abort the process)."""
        if self.distributed and dist.is_initialized():
            dist.barrier()
            dist.destroy_process_group()


SINGLE = Context()
_PEER_GONE = ("Connection closed by peer", "Connection reset by peer", "NCCL communicator was aborted", "Broken pipe")


class DenoiserDDP(DistributedDataParallel):
    """DDP that also exposes the wrapped module's plain attributes (``mask_id``, ``vocab_size`` …).

    So a wrapped denoiser still satisfies the ``Denoiser`` protocol. Only call
    the wrapper itself for forward passes that need gradients; a method reached
    through here (e.g. ``features``) bypasses DDP's gradient hooks.
    """

    def __getattr__(self, name: str):
        try:
            return super().__getattr__(name)
        except AttributeError:
            return getattr(self.module, name)


def shard(module: nn.Module, world_size: int, device: torch.device) -> nn.Module:
    """FSDP2 in place: each entry of every ``ModuleList`` (the transformer layers) is one shard group, the rest another.

    The module stays callable as before (forward passes gather parameters), so
    the same object serves gradient and no-gradient passes.
    """
    # our losses never modify a model's output in place, which is what this warning is about
    warnings.filterwarnings("ignore", message=r"FSDP2-wrapped module .* returned a view tensor")
    mesh = init_device_mesh(device.type, (world_size,))
    for sub in list(module.modules()):
        if isinstance(sub, nn.ModuleList):
            for layer in sub:
                fully_shard(layer, mesh=mesh)
    fully_shard(module, mesh=mesh)
    return module


def full_tensor(x: torch.Tensor) -> torch.Tensor:
    """A sharded DTensor gathered to a plain tensor (collective); anything else as is."""
    return x.full_tensor() if isinstance(x, DTensor) else x


def freeze_unused_parameters(module: nn.Module, probe: Callable[[nn.Module], torch.Tensor]) -> list[str]:
    """Set ``requires_grad=False`` on the parameters ``probe(module)`` gets no gradient for; returns their names.

    The probe runs in eval mode (no dropout, no spectral-norm power iteration),
    so the module's state is unchanged. Those parameters never had a gradient,
    so the optimiser skipped them already; training is unaffected.
    """
    was_training = module.training
    module.eval()
    with torch.enable_grad():
        probe(module).float().sum().backward()
    unused = [name for name, p in module.named_parameters() if p.requires_grad and p.grad is None]
    for name, p in module.named_parameters():
        if name in unused:
            p.requires_grad_(False)
    module.zero_grad(set_to_none=True)
    module.train(was_training)
    return unused


def torchrun_env() -> tuple[int, int, int] | None:
    """(rank, world size, local rank) when launched by torchrun with more than one process, else None."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return None
    return int(os.environ["RANK"]), world, int(os.environ.get("LOCAL_RANK", "0"))


def init(device: str = "auto", fsdp: bool = False, timeout_minutes: float = 30.0) -> Context:
    """Join the torchrun job (if any) and pick this process's device; ``fsdp`` shards instead of replicating.

    ``--device auto``/``cuda`` under torchrun means ``cuda:LOCAL_RANK``; ``cpu``
    runs every rank on the CPU with gloo (what CI and laptops use). A rank that
    dies makes torchrun stop the others; the collective timeout bounds the wait
    if a rank hangs instead.
    """
    env = torchrun_env()
    if env is None:
        return Context(device=resolve_device(device))
    rank, world, local = env
    chosen = resolve_device(device)
    if chosen.type == "cuda":
        if local >= torch.cuda.device_count():
            raise DistributedError(
                f"LOCAL_RANK {local} but only {torch.cuda.device_count()} CUDA devices; "
                "lower --nproc_per_node or pass --device cpu"
            )
        chosen = torch.device("cuda", local)
        torch.cuda.set_device(chosen)
    elif chosen.type == "mps":
        raise DistributedError("torchrun on Apple MPS is not supported by torch.distributed; pass --device cpu")
    backend = "nccl" if chosen.type == "cuda" else "gloo"
    if not dist.is_initialized():
        dist.init_process_group(backend, timeout=timedelta(minutes=timeout_minutes))
    return Context(rank=rank, world_size=world, local_rank=local, device=chosen, fsdp=fsdp)


def sync_context(module: nn.Module, sync: bool) -> AbstractContextManager[None]:
    """DDP's ``no_sync`` while accumulating gradients over several units; gradients are all-reduced on the last."""
    if not sync and isinstance(module, DistributedDataParallel):
        return module.no_sync()
    return nullcontext()
