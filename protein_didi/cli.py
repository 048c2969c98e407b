"""Command-line plumbing shared by the entry points of both domains (argparse; torch and domain code load only once a
command's body runs).

Every command is ``python -m protein_didi.<command> [--domain text]``: :data:`COMMANDS` names the body of each
command in each domain and :func:`run_command` is the one rule they all follow (read ``--domain``, import that
body, run it, print a user error as one line with exit code 2). The modules ``protein_didi/<command>.py`` only
call it, so a new command is one row here and one module of a few lines.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
from pathlib import Path
from typing import Any

from protein_didi.core.errors import USER_ERRORS

DOMAINS = ("protein", "text")
COMMANDS: dict[str, tuple[str, str]] = {
    "distill": ("protein_didi.protein.distill", "protein_didi.text.distill"),
    "report": ("protein_didi.report.protein", "protein_didi.report.text"),
    "sample": ("protein_didi.protein.sample", "protein_didi.text.sample"),
    "train_judge": ("protein_didi.protein.train_judge", "protein_didi.text.train_judge"),
    "train_teacher": ("protein_didi.protein.train_teacher", "protein_didi.text.train_teacher"),
}
"""Command → (protein body, text body), in the order of :data:`DOMAINS`. Each body has ``main(argv) -> int``.

Bodies are imported only when their command runs, so ``sample --domain text`` never loads the protein models;
``tests/test_import_graph.py`` reads this table and counts a call ``run_command("sample", …)`` as an import of both
``sample`` bodies, so the layering of the commands is checked like any import.
"""


def split_domain(argv: list[str] | None) -> tuple[str, list[str]]:
    """``--domain`` and the remaining arguments (each domain's command has its own options)."""
    pre = argparse.ArgumentParser(add_help=False)
    pre.add_argument("--domain", choices=DOMAINS, default="protein")
    known, rest = pre.parse_known_args(sys.argv[1:] if argv is None else argv)
    return known.domain, rest


def run_command(command: str, argv: list[str] | None = None, *extra: Any) -> int:
    """Run ``command``'s body for the domain ``--domain`` names with the other arguments (and ``extra``).

    A user error (:data:`~protein_didi.core.errors.USER_ERRORS`) becomes one ``error: …`` line on stderr and exit
    code 2 (naming the rank in a torchrun job of several processes, since every rank prints it); anything else is
    a bug and keeps its traceback. Bodies raise their errors rather than print them, so they need not know this.
    """
    domain, rest = split_domain(argv)
    body = importlib.import_module(COMMANDS[command][DOMAINS.index(domain)])
    try:
        return body.main(rest, *extra)
    except USER_ERRORS as err:
        print(error_line(err), file=sys.stderr)
        return 2


def error_line(err: BaseException) -> str:
    """``error: …`` on one line (the message's own line breaks become spaces), ``error (rank R of N): …`` when
    torchrun started several processes (the variables it sets, read without importing torch)."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    where = f" (rank {os.environ.get('RANK', '0')} of {world})" if world > 1 else ""
    return f"error{where}: {' '.join(str(err).split())}"


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
