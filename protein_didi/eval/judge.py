"""Old import path of the protein judge, now :mod:`protein_didi.protein.judge` (beside the text judge, both built on
:mod:`protein_didi.core.judge`, and below its trainer). Kept for existing callers as an alias, not a copy:
importing it returns the new module, so patches and its loader cache are shared.
"""

import sys

from protein_didi.protein import judge

sys.modules[__name__] = judge
