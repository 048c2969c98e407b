"""Old import path of antibody sequence liabilities, now :mod:`protein_didi.protein.liabilities`.

CDR redesign (generation) uses it too, and generation must not depend on evaluation. Kept for existing callers as
an alias, not a copy: importing it returns the new module, so monkeypatches and isinstance checks see one object.
"""

import sys

from protein_didi.protein import liabilities

sys.modules[__name__] = liabilities
