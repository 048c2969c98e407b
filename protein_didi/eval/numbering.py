"""Old import path of antibody numbering (ANARCI, IMGT), now :mod:`protein_didi.protein.numbering`.

CDR redesign (generation) uses it too, and generation must not depend on evaluation. Kept for existing callers as
an alias, not a copy: importing it returns the new module, so monkeypatches and isinstance checks see one object.
"""

import sys

from protein_didi.protein import numbering

sys.modules[__name__] = numbering
