"""Train the independent judge: ``python -m protein_didi.train_judge [--domain text] --data DIR --out DIR``.

One command for both domains: proteins (the default) train with :mod:`protein_didi.protein.train_judge`,
``--domain text`` with :mod:`protein_didi.text.train_judge` (``--help`` after the domain lists its options).
"""

from __future__ import annotations

from protein_didi.cli import split_domain


def main(argv: list[str] | None = None) -> int:
    """Hand the arguments (without ``--domain``) to the domain's trainer; each loads its model code on demand."""
    domain, rest = split_domain(argv)
    if domain == "text":
        from protein_didi.text import train_judge as text_trainer

        return text_trainer.main(rest)
    from protein_didi.protein import train_judge as protein_trainer

    return protein_trainer.main(rest)


if __name__ == "__main__":
    raise SystemExit(main())
