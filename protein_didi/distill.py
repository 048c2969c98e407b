"""Distil a teacher into a few-step student: ``python -m protein_didi.distill [--domain text] --out DIR ...``.

One command for both domains: proteins (the default) distil with :mod:`protein_didi.protein.distill`,
``--domain text`` with :mod:`protein_didi.text.distill` (``--help`` after the domain lists its options);
:func:`protein_didi.cli.run_command` hands over. The options they share are :mod:`protein_didi.core.train_cli`'s
(made from each method's settings class), the run itself :mod:`protein_didi.core.run_driver`'s.
"""

from __future__ import annotations

from protein_didi.cli import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("distill", argv)


if __name__ == "__main__":
    raise SystemExit(main())
