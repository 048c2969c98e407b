"""Sample: ``python -m protein_didi.sample [--domain text] --model NAME --num N --length L --out FILE``.

One command for both domains: proteins (the default, CDR redesign included) sample with
:mod:`protein_didi.protein.sample`, ``--domain text`` with :mod:`protein_didi.text.sample`
(``--help`` after the domain lists its options).
"""

from __future__ import annotations

from protein_didi.cli import split_domain


def main(argv: list[str] | None = None) -> int:
    """Hand the arguments (without ``--domain``) to the domain's command; each loads its model code on demand."""
    domain, rest = split_domain(argv)
    if domain == "text":
        from protein_didi.text import sample as text_command

        return text_command.main(rest)
    from protein_didi.protein import sample as protein_command

    return protein_command.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
