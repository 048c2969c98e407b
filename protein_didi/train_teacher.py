"""Train a teacher: ``python -m protein_didi.train_teacher [--domain text] --data DIR --out DIR``.

One command for both domains: proteins (the default) train with :mod:`protein_didi.protein.train_teacher`,
``--domain text`` with :mod:`protein_didi.text.train_teacher` (``--help`` after the domain lists its options).
"""

from __future__ import annotations

from protein_didi.cli import split_domain
from protein_didi.protein import train_teacher as protein_trainer
from protein_didi.protein.train_teacher import TeacherTask, build_parser, residue_positions

__all__ = ["TeacherTask", "build_parser", "main", "residue_positions"]  # the protein trainer's, for existing callers


def main(argv: list[str] | None = None) -> int:
    """Hand the arguments (without ``--domain``) to the domain's trainer."""
    domain, rest = split_domain(argv)
    if domain == "text":
        from protein_didi.text import train_teacher as text_trainer

        return text_trainer.main(rest)
    return protein_trainer.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
