"""Sample: ``python -m protein_didi.sample [--domain text] --model NAME --num N --length L --out FILE``.

One command for both domains: proteins (the default, CDR redesign included) sample with
:mod:`protein_didi.protein.sample`, ``--domain text`` with :mod:`protein_didi.text.sample`
(``--help`` after the domain lists its options); :func:`protein_didi.cli.run_command` hands over.
"""

from __future__ import annotations

from protein_didi.cli import run_command


def main(argv: list[str] | None = None) -> int:
    return run_command("sample", argv)


if __name__ == "__main__":
    raise SystemExit(main())
