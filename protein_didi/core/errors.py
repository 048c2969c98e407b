"""Which errors are the user's to fix: every command prints them as one ``error: …`` line and exits 2.

A bad value the user gave (a flag, a path, a file's content) raises ``ValueError`` or a subclass, as the standard
library does; most of this package's errors (``FastaError``, ``ShardError``, ``TokenizerError``, …) are such
subclasses already. An error that must stay a ``RuntimeError`` for its other callers (a checkpoint that does not
load, a torchrun job that cannot run, a missing ``mmseqs``) adds :class:`UserError` as a second base instead, so the
command runner (:func:`protein_didi.cli.run_command`) catches one tuple and no command lists the types again.

``UserError`` is not itself a ``ValueError`` on purpose: adding it to a ``RuntimeError`` must not make code that
catches ``ValueError`` start catching a checkpoint error. No imports: everything may depend on this module.
"""

from __future__ import annotations


class UserError(Exception):
    """An error whose message tells the user what to change; the commands print it without a traceback."""


USER_ERRORS: tuple[type[Exception], ...] = (ValueError, UserError)
"""What the commands turn into a one-line ``error: …`` and exit code 2."""
