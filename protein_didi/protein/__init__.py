"""The protein domain: ESM alphabet, ESM-2/DPLM denoisers, FASTA data."""
