"""Folding, in one place: one backend interface, one cache, one fan-out.

* :mod:`~protein_didi.fold.backend` — :class:`FoldBackend`: dedup, cache lookups, length batches (shared);
* :mod:`~protein_didi.fold.esmfold` — ESMFold (pLDDT, 0–100); :mod:`~protein_didi.fold.igfold` — IgFold for
  antibodies (predicted RMSD, Å; optional non-commercial extra ``.[igfold]``);
* :mod:`~protein_didi.fold.cache` — the sqlite cache and every SQL statement on it (and the shared per-version
  cache outside any report's ``--out``);
* :mod:`~protein_didi.fold.progress` — the per-chain tqdm bar whose rate counts only what folds now;
* :mod:`~protein_didi.fold.antibody` — antibody chains: ANARCI typing, H/L pairs, IMGT-numbered PDBs;
* :mod:`~protein_didi.fold.fanout` — worker processes per device and ``--shard I/N`` jobs, for every backend;
* :mod:`~protein_didi.fold.testing` — a tiny random-weight ESMFold for tests and benchmarks.

Submodules are imported on use, so ``import protein_didi.fold`` stays cheap.
"""
