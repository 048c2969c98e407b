"""The protein domain: ESM alphabet, ESM-2/DPLM and BERT-family denoisers, FASTA data, requests, CDR redesign.

Command bodies (``python -m protein_didi.<command>`` dispatches to them): ``sample``, ``distill``,
``train_teacher``, ``train_judge``; the report's is :mod:`protein_didi.report.protein` (it builds on ``eval``
and ``fold``, which sit above this package), beside the text report's.
"""
