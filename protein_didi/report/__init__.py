"""Evaluate generated sets: ``python -m protein_didi.report --fasta samples.fasta --out report/`` (``--domain text``).

Where things are (one concept per module):

* :mod:`.sets`      the user's labelled sets and the natural/random reference rows matched to them
* :mod:`.defaults`  shipped reference (embedded teacher's test split) and the default novelty target
* :mod:`.metrics`   one module per metric family (pLDDT, judge NLL, sequence statistics, clusters, novelty,
  antibody metrics, engineers' checks, IgFold pRMSD, liabilities, regions); a new family is one module plus one
  line in ``metrics.FAMILIES``
* :mod:`.evaluate`  runs the families: per-sequence frame, summary rows, notes, reasons for blanks
* :mod:`.figures`   shared plotting helpers (and the pRMSD figure); :mod:`.render` the HTML page (antibody-first
  for antibody inputs, nothing empty drawn) and CSV files; :mod:`.tables` the summary tables;
  :mod:`.per_sequence` the per-sequence table (sequence column, short headers, footnoted reasons)
* :mod:`.sweep`     ``--sweep`` generation; :mod:`.fanout` fold fan-out steps (devices, shards, merge)
* :mod:`.protein`   the protein report's command body: arguments, checks and the order of the steps
* :mod:`.text`      the text report's command body (judge perplexity, token entropy)
* :mod:`.cli`       ``python -m protein_didi.report [--domain text]``: hands over to :mod:`.protein` or :mod:`.text`

Both report bodies live here rather than in ``protein/`` and ``text/``: the protein one builds on ``eval`` and
``fold``, which sit above the domain packages, and the text one sits beside it so each domain's report is
found under its domain's name in one place.

Run ``python -m protein_didi.report --help`` for the options, ``--domain text --help`` for the text report's.
"""

from protein_didi.report.cli import main
from protein_didi.report.evaluate import Evaluation, evaluate
from protein_didi.report.protein import build_parser
from protein_didi.report.render import render_html, write_outputs
from protein_didi.report.sets import SequenceSet, load_set, parse_label, reference_lengths, reference_sets
from protein_didi.report.sweep import run_sweep

__all__ = [
    "Evaluation",
    "SequenceSet",
    "build_parser",
    "evaluate",
    "load_set",
    "main",
    "parse_label",
    "reference_lengths",
    "reference_sets",
    "render_html",
    "run_sweep",
    "write_outputs",
]
