"""The training commands' flags: a trainer's settings class makes its own (:mod:`protein_didi.core.settings`),
and these are the few a run has beside them (data, run folder, device, resume, checkpoints, threads, FSDP).

``distill`` has one parser for both domains and both methods (:func:`distill_parser`: the flags of every
method's settings, grouped as the paper's run, optimisation and ablations; :func:`distill_config` reads the
``--method``'s settings back); each domain adds only what is its own (a tokenizer, a file of teacher samples,
the lengths' parser). How a run then proceeds is :mod:`protein_didi.core.run_driver`'s.
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from pathlib import Path
from typing import NamedTuple

from protein_didi.core.distill_base import ABLATIONS, OPTIMISATION, RUN, DistillConfig
from protein_didi.core.run_driver import TRAINERS
from protein_didi.core.settings import add_dataclass_args, dataclass_from_args

RUN_FLAGS = ("--data", "--out", "--checkpoint-every", "--threads", "--device", "--resume", "--fsdp")
"""The flags of a training command that are not settings: where the run reads and writes, on what, and whether it
continues; none of them changes what is trained (``--resume`` continues bit-for-bit, under any process count)."""
DISTILL_INPUTS = ("--teacher", "--method", "--lengths", "--teacher-samples", "--student-init", "--tokenizer")
"""``distill``'s other flags that are not settings: the teacher and its prompts, which a domain reads."""


def training_parser(prog: str, doc: str | None, data_help: str) -> argparse.ArgumentParser:
    """A trainer's parser (``doc`` as description) with ``--data`` and ``--out``."""
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--data", type=Path, required=True, help=data_help)
    p.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    return p


def add_run_args(p: argparse.ArgumentParser, *, checkpoint_every: int, threads: bool = True) -> None:
    """``--checkpoint-every [--threads] --device --resume``."""
    p.add_argument("--checkpoint-every", type=int, default=checkpoint_every, help="steps between atomic checkpoints")
    if threads:
        p.add_argument("--threads", type=int, default=0, help="CPU threads for torch (default 0: torch's choice)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, cuda:1, mps")
    p.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt")


def add_fsdp_arg(p: argparse.ArgumentParser | argparse._ArgumentGroup) -> None:
    """``--fsdp``: shard instead of replicate under torchrun."""
    p.add_argument(
        "--fsdp",
        action="store_true",
        help="under torchrun: shard parameters, gradients and optimiser state (FSDP2) instead of replicating "
        "them (DDP), for models whose training state does not fit one device",
    )


def trainer_parser(
    prog: str,
    doc: str | None,
    settings: type,
    *,
    data_help: str,
    checkpoint_every: int,
    threads: bool = True,
    fsdp: bool = False,
) -> argparse.ArgumentParser:
    """A teacher's or judge's parser: ``--data --out``, one flag per field of ``settings``, then the run's flags."""
    p = training_parser(prog, doc, data_help)
    add_dataclass_args(p, settings)
    if fsdp:
        add_fsdp_arg(p)
    add_run_args(p, checkpoint_every=checkpoint_every, threads=threads)
    return p


class DistillParser(NamedTuple):
    """``distill``'s parser and the two groups a domain adds its own options to."""

    parser: argparse.ArgumentParser
    inputs: argparse._ArgumentGroup  # "inputs and outputs"
    run: argparse._ArgumentGroup


def distill_parser(
    prog: str,
    doc: str | None,
    *,
    teacher_help: str,
    data_help: str,
    lengths_type: Callable[[str], list[int]],
    lengths_help: str,
) -> DistillParser:
    """The options every ``distill`` run has: teacher and run folder, method, then every method's settings.

    The domain names what its teacher, data and lengths are (``lengths_type`` parses ``50,100``). A setting two
    methods share is one flag; one only a method has (``--lr-disc``, ``--fake-updates``) is ignored by the other.
    """
    p = argparse.ArgumentParser(prog=prog, description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    io = p.add_argument_group("inputs and outputs")
    io.add_argument("--teacher", default="teacher", help=teacher_help)
    io.add_argument("--data", type=Path, default=None, help=data_help)
    io.add_argument("--out", type=Path, required=True, help="run folder: train_state.pt, metrics.jsonl, model/")
    io.add_argument("--method", choices=list(TRAINERS), default="didi", help="DiDi-Instruct (didi) or IDLM")
    io.add_argument("--resume", action="store_true", help="continue from OUT/train_state.pt exactly")
    io.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, mps")
    add_fsdp_arg(io)
    groups = {
        RUN: p.add_argument_group("run"),
        OPTIMISATION: p.add_argument_group("optimisation (paper defaults)"),
        ABLATIONS: p.add_argument_group("ablations"),
    }
    for trainer in TRAINERS.values():
        add_dataclass_args(p, trainer.config_type, groups=groups)
    run = groups[RUN]
    run.add_argument("--lengths", type=lengths_type, default=None, help=lengths_help)
    run.add_argument("--checkpoint-every", type=int, default=50, help="iterations between atomic checkpoints")
    return DistillParser(p, io, run)


def distill_config(args: argparse.Namespace) -> DistillConfig:
    """The ``--method``'s settings from parsed :func:`distill_parser` arguments."""
    return dataclass_from_args(TRAINERS[args.method].config_type, args)
