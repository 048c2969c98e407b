"""Old import path of the fold fan-out, which now lives in :mod:`protein_didi.fold.fanout` (kept for callers)."""

from protein_didi.fold.cache import FOLD_COLUMNS, SHARD_TABLE, cached_sequences, merge_caches, shard_info
from protein_didi.fold.fanout import (
    FoldPool,
    FoldSpec,
    FoldWorkerError,
    ShardRun,
    fold_shard,
    merge_notes,
    parse_shard,
    plan_id,
    shard_cache_path,
    shard_from_env,
    split_batches,
    unique_sequences,
)

__all__ = [
    "FOLD_COLUMNS",
    "SHARD_TABLE",
    "FoldPool",
    "FoldSpec",
    "FoldWorkerError",
    "ShardRun",
    "cached_sequences",
    "fold_shard",
    "merge_caches",
    "merge_notes",
    "parse_shard",
    "plan_id",
    "shard_cache_path",
    "shard_from_env",
    "shard_info",
    "split_batches",
    "unique_sequences",
]
