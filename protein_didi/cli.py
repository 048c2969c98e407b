"""Command-line plumbing shared by the entry points of both domains (argparse only: no torch, no domain code)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

DOMAINS = ("protein", "text")


def split_domain(argv: list[str] | None) -> tuple[str, list[str]]:
    """``--domain`` and the remaining arguments (each domain's command has its own options)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--domain", choices=DOMAINS, default="protein")
    known, rest = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.domain, rest


def int_list(text: str) -> list[int]:
    """argparse type for ``50,100,200``."""
    try:
        return [int(x) for x in text.split(",") if x.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of integers") from None


PRECISIONS = ("auto", "fp32", "bf16", "int8")  # = protein_didi.core.precision.PRECISIONS, without importing torch


def add_device_args(p: argparse.ArgumentParser, precision_default: str = "auto", precision_help: str = "") -> None:
    """``--device`` and ``--precision``, the same for every inference command."""
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, mps")
    p.add_argument(
        "--precision",
        choices=PRECISIONS,
        default=precision_default,
        help=precision_help
        or "network precision: auto (bf16 where the device has native bf16, else fp32), fp32, bf16, int8 (CPU)",
    )


def check_out(out: Path | None) -> None:
    """Refuse an output path that cannot be written before any sampling time is spent."""
    if out is None:
        return
    if out.is_dir():
        raise ValueError(f"--out {out} is a folder; give a file name, e.g. {out / 'samples.fasta'}")
    if not out.parent.is_dir():
        raise ValueError(f"--out {out}: folder {out.parent} does not exist; create it or choose another path")
