"""Scores of generated proteins that need no structure: sequence statistics, diversity and antibody judges.

Modules (imported on demand, since the judges load models):
    ``stats``          length, amino-acid composition KL, low-complexity fraction
    ``diversity``      MMseqs2 clustering (cluster entropy, mean cluster size) and novelty
    ``antibody``       antibody set metrics: valid chains, germline identity, CDR3 lengths and diversity
    ``regions``        per-region identity to the closest germline V and J genes
    ``iglm_judge``     IgLM, the antibody judge (``iglm_tokens``: its vocabulary and tags; ``iglm_sampler``: its
                       infilling and generation, the baseline the benchmarks compare against)
    ``sapiens_judge``  Sapiens humanness, a second antibody judge
Folding is :mod:`protein_didi.fold`, the protein judge :mod:`protein_didi.protein.judge`.
``python -m protein_didi.report`` runs them all and writes CSVs plus an HTML report.
"""
