"""``python -m protein_didi.curves RUN [RUN ...]``: the command; the code is :mod:`protein_didi.core.curves`.

The training loop (core) draws ``curves.png`` at every checkpoint and core imports nothing above it, so the
plotting lives in core. Imported, this module is an alias of that one (one object, so patches apply to both).
"""

import sys

from protein_didi.core import curves

if __name__ == "__main__":
    raise SystemExit(curves.main())
sys.modules[__name__] = curves
