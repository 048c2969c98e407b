"""Old path of the protein judge's trainer: now ``python -m protein_didi.train_judge``, code in
:mod:`protein_didi.protein.train_judge` (a trainer is not evaluation). Run, it says so in one line and trains;
imported, it is an alias of the new module (one object, so patches apply to both).
"""

import sys

from protein_didi.protein import train_judge

if __name__ == "__main__":
    print("note: python -m protein_didi.eval.train_judge is now python -m protein_didi.train_judge", file=sys.stderr)
    raise SystemExit(train_judge.main())
sys.modules[__name__] = train_judge
