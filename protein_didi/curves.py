"""``python -m protein_didi.curves RUN [RUN ...]``: the command; the code is :mod:`protein_didi.core.curves`.

The training loop (core) draws ``curves.png`` at every checkpoint and core imports nothing above it, so the
plotting lives in core; this module only makes it a command. It reads runs of either domain, so it has no
``--domain`` and no row in :data:`protein_didi.cli.COMMANDS`.
"""

from __future__ import annotations

from protein_didi.core.curves import main

if __name__ == "__main__":
    raise SystemExit(main())
