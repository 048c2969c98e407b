"""``python -m protein_didi.report [--domain text]``: hand the arguments to the domain's report.

Proteins (the default) are reported by :mod:`protein_didi.report.protein`, ``--domain text`` by
:mod:`protein_didi.report.text` (``--help`` after the domain lists its options);
:func:`protein_didi.cli.run_command` hands over.
"""

from __future__ import annotations

from typing import Any

from protein_didi.cli import run_command, split_domain


def main(argv: list[str] | None = None, folder: Any | None = None) -> int:
    """Hand the arguments (without ``--domain``) to the domain's report.

    ``folder`` (a ready :class:`~protein_didi.fold.esmfold.Folder`, for tests and the app) goes to the protein
    report; the text report folds nothing.
    """
    if folder is None:
        return run_command("report", argv)
    if split_domain(argv)[0] == "text":
        raise TypeError("folder= is for the protein report; the text report folds nothing")
    return run_command("report", argv, folder)


if __name__ == "__main__":
    raise SystemExit(main())
