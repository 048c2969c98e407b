"""The fold cache: one sqlite table of finished folds, and every SQL statement that touches it.

Folding dominates a report's cost, so each result is stored under
``sha256(model id + "\\n" + sequence)`` and nothing folds twice across reruns,
sweeps, worker processes or machines. This module owns the schema; the folders
(:mod:`protein_didi.fold.backend`) and the fan-out (:mod:`protein_didi.fold.fanout`)
only call its functions.

Columns: ``key, model, sequence, mean_plddt, plddt, pdb, created``. ``mean_plddt``
and ``plddt`` keep their historical names so caches written before IgFold existed
still merge; they hold the backend's own score: ESMFold's pLDDT (0–100) or
IgFold's predicted RMSD (Å). The model id (``transformers:…`` / ``igfold-…``)
tells them apart, and :meth:`FoldCache.get` labels each result with the score
its backend produces. For IgFold, ``sequence`` is the chain string
(``H:EVQL…;L:DIQM…``, see :mod:`protein_didi.fold.igfold`).

Shared caches: :func:`shared_cache_path` gives one cache per backend version
outside any report's ``--out`` (``~/.cache/protein_didi/folds/igfold-1.0.1/folds.sqlite``,
``$PROTEIN_DIDI_FOLD_CACHE`` moves the folder), so the reference rows and shuffled
controls every antibody report shares fold once per machine. Writes are atomic
per batch: each :meth:`FoldCache.put` is one sqlite transaction (journal, then
commit), so a killed job leaves whole folds or none, never half a row; sqlite's
locking lets several reports share the file.
"""

from __future__ import annotations

import hashlib
import os
import sqlite3
import threading
import time
import zlib
from collections.abc import Sequence
from pathlib import Path

import numpy as np

from protein_didi.fold.result import FoldResult

SHARED_ENV = "PROTEIN_DIDI_FOLD_CACHE"
FOLD_COLUMNS = ("key", "model", "sequence", "mean_plddt", "plddt", "pdb", "created")
SHARD_TABLE = "fanout_shard"
SCHEMA = (
    "CREATE TABLE IF NOT EXISTS folds (key TEXT PRIMARY KEY, model TEXT, sequence TEXT, "
    "mean_plddt REAL, plddt BLOB, pdb BLOB, created REAL)"
)


def shared_cache_path(tag: str) -> Path:
    """``$PROTEIN_DIDI_FOLD_CACHE/<tag>/folds.sqlite``, else ``$PROTEIN_DIDI_CACHE/folds/<tag>/folds.sqlite``
    (``~/.cache/protein_didi``); ``tag`` names the backend and its version, e.g. ``igfold-1.0.1``."""
    from protein_didi.core.wheel_files import cache_root

    root = os.environ.get(SHARED_ENV, "").strip()
    folder = Path(root).expanduser() if root else cache_root() / "folds"
    return folder / tag / "folds.sqlite"


def cache_key(sequence: str, model_id: str) -> str:
    return hashlib.sha256(f"{model_id}\n{sequence}".encode()).hexdigest()


class FoldCache:
    """sqlite cache of fold results keyed by ``sha256(model id + "\\n" + sequence)``; committed per batch.

    One connection shared by threads under a lock: the app keeps one folder per server process and Streamlit
    runs each session's script in its own thread.
    """

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._db = sqlite3.connect(self.path, timeout=60, check_same_thread=False)
        self._db.execute(SCHEMA)
        self._db.commit()

    key = staticmethod(cache_key)

    def get(self, sequences: Sequence[str], model_id: str, score: str = "plddt") -> dict[str, FoldResult]:
        found: dict[str, FoldResult] = {}
        for seq in dict.fromkeys(sequences):
            with self._lock:
                row = self._db.execute(
                    "SELECT mean_plddt, plddt, pdb FROM folds WHERE key = ?", (cache_key(seq, model_id),)
                ).fetchone()
            if row is not None:
                values = np.frombuffer(row[1], dtype=np.float32).copy()
                found[seq] = FoldResult(seq, float(row[0]), values, zlib.decompress(row[2]).decode(), score)
        return found

    def put(self, results: Sequence[FoldResult], model_id: str) -> None:
        with self._lock:
            self._put(results, model_id)

    def _put(self, results: Sequence[FoldResult], model_id: str) -> None:
        self._db.executemany(
            "INSERT OR REPLACE INTO folds VALUES (?, ?, ?, ?, ?, ?, ?)",
            [
                (
                    cache_key(r.sequence, model_id),
                    model_id,
                    r.sequence,
                    r.mean,
                    np.asarray(r.per_residue, dtype=np.float32).tobytes(),
                    zlib.compress(r.pdb.encode()),
                    time.time(),
                )
                for r in results
            ],
        )
        self._db.commit()

    def __len__(self) -> int:
        with self._lock:
            return int(self._db.execute("SELECT COUNT(*) FROM folds").fetchone()[0])

    def close(self) -> None:
        with self._lock:
            self._db.close()


def open_cache(path: str | Path, check: bool = True) -> sqlite3.Connection:
    """An existing fold cache, checked; one-line ValueErrors for a missing, corrupt or foreign file.

    Opened read-write (never created) so sqlite can roll back a journal a killed job left behind;
    ``check`` runs sqlite's ``quick_check`` (a full read) before anything is merged from it.
    """
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"fold cache {path} not found; run the job that writes it first or fix the path")
    db = sqlite3.connect(f"{path.resolve().as_uri()}?mode=rw", uri=True, timeout=60)
    try:
        if check and db.execute("PRAGMA quick_check").fetchone()[0] != "ok":
            raise sqlite3.DatabaseError("quick_check failed")
        columns = tuple(row[1] for row in db.execute("PRAGMA table_info(folds)"))
    except sqlite3.DatabaseError as err:
        db.close()
        raise ValueError(f"{path} is not a readable fold cache ({err}); delete it and re-run its job") from None
    if columns != FOLD_COLUMNS:
        db.close()
        raise ValueError(f"{path} has no fold table, so it is not a protein_didi fold cache")
    return db


def merge_caches(dst: str | Path, srcs: Sequence[str | Path]) -> int:
    """Copy every fold in ``srcs`` into ``dst`` (created if absent); returns how many were new.

    ``INSERT OR IGNORE`` on the ``sha256(model id + sequence)`` key: merging
    again adds nothing, and a fold already in ``dst`` is never overwritten.
    All sources are checked before anything is written.
    """
    dst = Path(dst)
    sources = [Path(s) for s in dict.fromkeys(srcs) if not (dst.exists() and Path(s).resolve() == dst.resolve())]
    opened: list[sqlite3.Connection] = []
    try:
        for s in sources:
            opened.append(open_cache(s))
    except ValueError:
        for src in opened:
            src.close()
        raise
    FoldCache(dst).close()  # creates the table
    db = sqlite3.connect(dst, timeout=60)
    before = db.total_changes
    placeholders = ", ".join("?" * len(FOLD_COLUMNS))
    try:
        for path, src in zip(sources, opened, strict=True):
            try:
                with db:  # one transaction per source: all of it or nothing
                    rows = src.execute(f"SELECT {', '.join(FOLD_COLUMNS)} FROM folds")
                    while chunk := rows.fetchmany(256):
                        db.executemany(f"INSERT OR IGNORE INTO folds VALUES ({placeholders})", chunk)
            except sqlite3.DatabaseError as err:
                raise ValueError(f"cannot merge {path} ({err}); delete it and re-run its job") from None
        return db.total_changes - before
    finally:
        db.close()
        for src in opened:
            src.close()


def write_shard_info(path: str | Path, index: int, count: int, plan: str) -> None:
    """Record which ``--shard I/N`` job (and which plan) wrote this cache."""
    db = sqlite3.connect(path, timeout=60)
    with db:
        db.execute(f"CREATE TABLE IF NOT EXISTS {SHARD_TABLE} (key TEXT PRIMARY KEY, value TEXT)")
        db.executemany(
            f"INSERT OR REPLACE INTO {SHARD_TABLE} VALUES (?, ?)",
            [("index", str(index)), ("count", str(count)), ("plan", plan)],
        )
    db.close()


def shard_info(path: str | Path) -> tuple[int, int, str] | None:
    """(index, count, plan id) recorded by :func:`write_shard_info`, or None for other caches."""
    db = open_cache(path, check=False)
    try:
        rows = dict(db.execute(f"SELECT key, value FROM {SHARD_TABLE}").fetchall())
        return int(rows["index"]), int(rows["count"]), rows["plan"]
    except (sqlite3.DatabaseError, KeyError, ValueError):
        return None
    finally:
        db.close()


def model_ids(path: str | Path) -> set[str]:
    """The model ids a cache holds folds for."""
    db = open_cache(path, check=False)
    try:
        return {row[0] for row in db.execute("SELECT DISTINCT model FROM folds")}
    finally:
        db.close()


def cached_sequences(cache: str | Path, seqs: Sequence[str], model_id: str) -> set[str]:
    """Which of ``seqs`` a cache already holds for ``model_id``: a shard job skips what the main cache has."""
    db = open_cache(cache, check=False)
    try:
        return {
            s for s in seqs if db.execute("SELECT 1 FROM folds WHERE key = ?", (cache_key(s, model_id),)).fetchone()
        }
    finally:
        db.close()
