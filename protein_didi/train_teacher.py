"""Train a teacher: ``python -m protein_didi.train_teacher [--domain text] --data DIR --out DIR``.

One command for both domains: proteins (the default) train with :mod:`protein_didi.protein.train_teacher`,
``--domain text`` with :mod:`protein_didi.text.train_teacher` (``--help`` after the domain lists its options);
:func:`protein_didi.cli.run_command` hands over.
"""

from __future__ import annotations

from protein_didi.cli import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("train_teacher", argv)


if __name__ == "__main__":
    raise SystemExit(main())
