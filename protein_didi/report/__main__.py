"""``python -m protein_didi.report``."""

import os

from protein_didi.report.cli import main

os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
raise SystemExit(main())
