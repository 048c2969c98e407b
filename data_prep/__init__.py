"""Turn raw corpora into tokenised shards: ``python -m data_prep.fasta`` for proteins."""
