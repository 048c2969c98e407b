"""Command-line plumbing shared by the entry points that serve both domains."""

from __future__ import annotations

import argparse
import sys

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
