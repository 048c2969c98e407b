"""``python -m protein_didi.report [--domain text]``: hand the arguments to the domain's report.

Proteins (the default) are reported by :mod:`protein_didi.report.protein`, ``--domain text`` by
:mod:`protein_didi.report.text` (``--help`` after the domain lists its options).
"""

from __future__ import annotations

from typing import Any

from protein_didi.cli import split_domain
from protein_didi.report import protein as protein_report
from protein_didi.report.protein import build_parser, check_arguments

__all__ = ["build_parser", "check_arguments", "main"]  # the protein report's parser and checks, for existing callers


def main(argv: list[str] | None = None, folder: Any | None = None) -> int:
    """Hand the arguments (without ``--domain``) to the domain's report.

    ``folder`` (a ready :class:`~protein_didi.fold.esmfold.Folder`, for tests and the app) goes to the protein
    report; the text report folds nothing.
    """
    domain, rest = split_domain(argv)
    if domain == "text":
        if folder is not None:
            raise TypeError("folder= is for the protein report; the text report folds nothing")
        from protein_didi.report import text as text_report

        return text_report.main(rest)
    return protein_report.main(rest, folder)


if __name__ == "__main__":
    raise SystemExit(main())
