"""Fold fan-out steps of the report: several devices, ``--shard I/N`` jobs and ``--merge-cache``.

The folding itself lives in :mod:`protein_didi.fold`; this module turns the
report's arguments into those calls, for ESMFold and for IgFold beside it.
"""

from __future__ import annotations

import argparse
import os
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from protein_didi.report.metrics.fold import foldable, progress_bar
from protein_didi.report.sets import SequenceSet


def make_folder(args: argparse.Namespace, cache_path: Path, device: str) -> Any:
    """An :class:`ESMFold` on ``device``, or a :class:`FoldPool` when ``--fold-devices`` names several devices."""
    from protein_didi.fold.esmfold import ESMFold as Folder
    from protein_didi.fold.esmfold import default_model

    model = args.esmfold or default_model()
    devices = args.fold_devices or [device]
    if len(devices) == 1:
        return Folder(model, devices[0], cache_path, args.chunk_size, allow_download=not args.offline)
    from protein_didi.fold.fanout import FoldPool, FoldSpec

    spec = FoldSpec(model, args.chunk_size, allow_download=not args.offline)
    return FoldPool(spec, devices, cache_path, threads=args.threads)


def shard_and_device(args: argparse.Namespace) -> tuple[tuple[int, int] | None, str]:
    """``--shard I/N``, else RANK/WORLD_SIZE under torchrun (then each rank folds on its own GPU), else None."""
    if args.shard is not None or ("WORLD_SIZE" in os.environ and not args.merge_cache):
        from protein_didi.fold.fanout import parse_shard, shard_from_env

        if args.shard is not None:
            return parse_shard(args.shard), args.device
        shard = shard_from_env(os.environ)
        if shard is not None:
            import torch

            if args.device == "auto" and "LOCAL_RANK" in os.environ and torch.cuda.is_available():
                args.device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            print(f"torchrun: folding shard {shard[0]}/{shard[1]} (RANK/WORLD_SIZE) on {args.device}", file=sys.stderr)
        return shard, args.device
    return None, args.device


def merge_step(args: argparse.Namespace, dst: Path, folder: Any | None) -> None:
    """Merge ``--merge-cache`` files into ``dst`` and say what is missing or keyed by another model id."""
    from protein_didi.fold.cache import merge_caches
    from protein_didi.fold.fanout import merge_notes

    srcs = args.merge_cache
    model_id = None
    if args.fasta or args.sweep:  # a report follows: check that it will find the merged folds
        if folder is not None:
            model_id = getattr(folder, "model_id", None)
        elif not args.no_fold:
            from protein_didi.fold.esmfold import _backend_of, default_model, model_cache_id

            model = args.esmfold or default_model()
            model_id = model_cache_id(model, _backend_of(model, "auto"))
    notes = merge_notes(srcs, model_id)  # also checks every file before anything is written
    added = merge_caches(dst, srcs)
    print(f"merged {len(srcs)} fold cache(s) into {dst}: {added} new fold(s)")
    for note in notes:
        print(f"note: {note}")


def shard_step(
    args: argparse.Namespace, sets: Sequence[SequenceSet], shard: tuple[int, int], cache_path: Path, device: str
) -> int:
    """Fold this job's slice of every set's sequences (reference rows included) into its shard cache."""
    from protein_didi.fold.fanout import fold_shard, shard_cache_path

    index, count = shard
    folder = make_folder(args, shard_cache_path(cache_path, index, count), device)
    bar, progress = progress_bar(f"folding shard {index}/{count}")
    try:
        seqs = foldable([q for s in sets for q in s.sequences])  # the report skips longer ones too
        run = fold_shard(folder, seqs, index, count, cache_path, progress)
    finally:
        bar.close()
    print(
        f"shard {index}/{count}: {run.slice_size} of {run.total} unique sequences, {run.folded} folded now, "
        f"in {run.path}"
    )
    merge = shard_cache_path(cache_path, "*", count)
    print(f"when all {count} jobs are done, rerun without --shard and with --merge-cache {merge}")
    return 0
