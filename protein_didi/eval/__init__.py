"""Evaluation of generated proteins: foldability, diversity, novelty and sequence statistics.

Modules (imported on demand, since folding pulls in ESMFold and the judge a model):
    ``stats``      length, amino-acid composition KL, low-complexity fraction
    ``diversity``  MMseqs2 clustering (cluster entropy, mean cluster size) and novelty
    ``fold``       ESMFold pLDDT with batching and an on-disk cache
    ``judge``      an autoregressive protein LM's NLL of each sequence
``python -m protein_didi.report`` runs them all and writes CSVs plus an HTML report.
"""
