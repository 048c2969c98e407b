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
