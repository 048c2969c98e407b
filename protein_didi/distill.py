"""Distil a teacher into a few-step student: ``python -m protein_didi.distill [--domain text] --out DIR ...``.

One command for both domains: proteins (the default) distil with :mod:`protein_didi.protein.distill`,
``--domain text`` with :mod:`protein_didi.text.distill` (``--help`` after the domain lists its options). The
options they share, the method configs and trainers are :mod:`protein_didi.core.train_cli`'s.
"""

from __future__ import annotations

from protein_didi.cli import split_domain
from protein_didi.core.train_cli import TRAINERS, config_from_args
from protein_didi.protein import distill as protein_distill
from protein_didi.protein.distill import PROTEIN_LENGTHS, build_parser, read_teacher_samples

__all__ = [  # the protein command's and the shared names, for existing callers
    "PROTEIN_LENGTHS",
    "TRAINERS",
    "build_parser",
    "config_from_args",
    "main",
    "read_teacher_samples",
]


def main(argv: list[str] | None = None) -> int:
    """Hand the arguments (without ``--domain``) to the domain's distiller."""
    domain, rest = split_domain(argv)
    if domain == "text":
        from protein_didi.text import distill as text_distill

        return text_distill.main(rest)
    return protein_distill.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
