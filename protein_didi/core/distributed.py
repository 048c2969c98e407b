"""Data-parallel training under ``torchrun``: one process per device, DDP wrappers, rank-aware helpers.

We add no launcher or communication layer of our own: ``torchrun`` starts the
processes and sets ``WORLD_SIZE``/``RANK``/``LOCAL_RANK`` (plus the rendezvous
address), :func:`init` joins the process group (NCCL on CUDA, gloo on CPU),
and trainers wrap their trainable modules with :meth:`Context.wrap`
(``DistributedDataParallel``). A plain ``python -m …`` run gets a
single-process :class:`Context` with the same API, so trainers have one code path.

Work is split in *units* (fixed-size groups of the global batch, each with its
own seeded generator): rank r takes a contiguous share of the units of a
step. A unit's content depends only on (seed, step, unit), never on the world
size, so one process accumulating all units computes the same update as N
processes averaging their gradients — and a run can resume on another world size.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from contextlib import AbstractContextManager, nullcontext
from dataclasses import dataclass, field
from datetime import timedelta

import torch
import torch.distributed as dist
from torch import nn
from torch.nn.parallel import DistributedDataParallel

from protein_didi.core.device import resolve_device


class DistributedError(RuntimeError):
    """A torchrun environment that cannot run this job (bad split, device mismatch, …); one-line message."""


@dataclass
class Context:
    """Who this process is in the job and how to talk to the others."""

    rank: int = 0
    world_size: int = 1
    local_rank: int = 0
    device: torch.device = field(default_factory=lambda: torch.device("cpu"))

    @property
    def distributed(self) -> bool:
        return self.world_size > 1

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
        """``module`` in DistributedDataParallel (gradients averaged over ranks), or as is on one process.

        ``probe(module)`` runs a representative forward pass; parameters it never
        reaches (a discriminator's unused LM head, ESM's contact head) are frozen
        first, so DDP need not search the autograd graph for them every step.
        Without a probe DDP does that search (``find_unused_parameters``).
        """
        if not self.distributed:
            return module
        if probe is not None:
            freeze_unused_parameters(module, probe)
        ids = [self.device.index] if self.device.type == "cuda" else None
        return DenoiserDDP(module, device_ids=ids, find_unused_parameters=probe is None)

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
        if self.distributed and dist.is_initialized():
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


def init(device: str = "auto", timeout_minutes: float = 30.0) -> Context:
    """Join the torchrun job (if any) and pick this process's device.

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
    return Context(rank=rank, world_size=world, local_rank=local, device=chosen)


def sync_context(module: nn.Module, sync: bool) -> AbstractContextManager[None]:
    """DDP's ``no_sync`` while accumulating gradients over several units; gradients are all-reduced on the last."""
    if not sync and isinstance(module, DistributedDataParallel):
        return module.no_sync()
    return nullcontext()
