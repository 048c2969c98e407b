"""Fold fan-out: a pool of CPU workers, --shard I/N jobs and cache merging, all with the tiny random ESMFold."""

from __future__ import annotations

import functools
import shutil
import sqlite3
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch

from protein_didi import report
from protein_didi.fold import esmfold as fold_module
from protein_didi.fold.backend import length_batches
from protein_didi.fold.cache import merge_caches
from protein_didi.fold.esmfold import Folder
from protein_didi.fold.fanout import (
    FoldPool,
    FoldSpec,
    fold_shard,
    merge_notes,
    parse_shard,
    shard_cache_path,
    shard_from_env,
    shard_sequences,
    split_batches,
)
from protein_didi.fold.result import FoldResult
from protein_didi.fold.testing import tiny_esmfold
from protein_didi.protein.fasta import write_fasta

AA = list("ACDEFGHIKLMNPQRSTVWY")


@pytest.fixture(scope="module")
def seqs() -> list[str]:
    """Eleven sequences of 20–60 residues (several length buckets) and one duplicate."""
    rng = np.random.default_rng(7)
    out = ["".join(rng.choice(AA, size=n)) for n in (20, 24, 31, 33, 40, 45, 52, 60, 25, 38, 58)]
    return [*out, out[3]]


@pytest.fixture(scope="module")
def esmfold() -> torch.nn.Module:
    torch.set_num_threads(1)
    return tiny_esmfold(seed=0)


@pytest.fixture(scope="module")
def single(esmfold, seqs) -> list[FoldResult]:
    """The reference: one in-process Folder, no cache."""
    return Folder.from_model(esmfold).fold(seqs)


def _same(a: list[FoldResult], b: list[FoldResult], atol: float = 0.0) -> bool:
    return all(
        x.sequence == y.sequence
        and np.allclose(x.plddt, y.plddt, rtol=0, atol=atol)
        and abs(x.mean_plddt - y.mean_plddt) <= atol
        for x, y in zip(a, b, strict=True)
    )


def _rows(path: Path) -> int:
    with sqlite3.connect(path) as db:
        return db.execute("SELECT COUNT(*) FROM folds").fetchone()[0]


def test_plans_are_deterministic_balanced_partitions(seqs) -> None:
    unique = set(seqs)
    shards = [shard_sequences(seqs, i, 3) for i in range(3)]
    assert sorted(s for part in shards for s in part) == sorted(unique)  # every sequence in exactly one shard
    assert shards == [shard_sequences(list(reversed(seqs)), i, 3) for i in range(3)]  # input order is irrelevant
    assert max(map(len, shards[0])) <= min(map(len, shards[1]))  # contiguous runs of the length-sorted list
    costs = [sum(len(s) ** 2 for s in part) for part in shards]
    assert max(costs) - min(costs) <= 2 * max(len(s) for s in seqs) ** 2
    batches = [[seqs[i] for i in b] for b in length_batches([len(s) for s in seqs[:-1]], 100)]
    parts = split_batches(batches, 2)
    assert sorted(map(tuple, parts[0] + parts[1])) == sorted(map(tuple, batches))
    assert parts == split_batches(batches, 2) and all(parts)
    assert parse_shard("1/4") == (1, 4) and parse_shard(" 0/1 ") == (0, 1)
    assert shard_from_env({"RANK": "2", "WORLD_SIZE": "3"}) == (2, 3)
    assert shard_from_env({"RANK": "0", "WORLD_SIZE": "1"}) is None and shard_from_env({}) is None
    for bad in ("3/2", "2/2", "-1/2", "0/0", "1", "a/b", "1/2/3"):
        with pytest.raises(ValueError, match="--shard") as err:
            parse_shard(bad)
        assert "\n" not in str(err.value)


def test_two_cpu_workers_equal_one_process(esmfold, seqs, single, tmp_path) -> None:
    cache = tmp_path / "folds.sqlite"
    pool = FoldPool(FoldSpec(functools.partial(tiny_esmfold, seed=0)), ["cpu", "cpu"], cache, threads=1)
    assert pool.model_id == Folder.from_model(esmfold).model_id  # the workers key the cache like the parent
    seen: list[tuple[int, int]] = []
    out = pool.fold(seqs, progress=lambda done, total: seen.append((done, total)))
    assert _same(out, single)  # the same batches as one process: bit for bit
    assert all(a.pdb == b.pdb for a, b in zip(out, single, strict=True))
    assert pool.calls == len(length_batches([len(s) for s in set(seqs)], pool.max_batch_residues))
    assert seen[0] == (0, 11) and seen[-1] == (11, 11)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["folds.sqlite"]  # worker shards merged and removed
    assert _rows(cache) == 11
    again = Folder.from_model(esmfold, cache_path=cache)  # the merged cache serves a plain Folder
    assert _same(again.fold(seqs), single) and again.calls == 0


def test_shards_then_merge_equal_single_run_and_merge_is_idempotent(esmfold, seqs, single, tmp_path) -> None:
    main = tmp_path / "fold_cache.sqlite"
    shards = [shard_cache_path(main, i, 2) for i in range(2)]
    runs = [fold_shard(Folder.from_model(esmfold, cache_path=path), seqs, i, 2) for i, path in enumerate(shards)]
    assert [r.slice_size for r in runs] == [_rows(p) for p in shards] and sum(_rows(p) for p in shards) == 11
    assert [r.folded for r in runs] == [r.slice_size for r in runs] and runs[0].total == 11
    assert merge_notes(shards[:1]) == ["shard(s) 1/2 not merged; the report folds their sequences"]
    assert merge_notes(shards) == [] and merge_notes(shards, Folder.from_model(esmfold).model_id) == []
    assert "do not match" in merge_notes(shards, "transformers:/weights/elsewhere")[0]  # their folds would be missed
    assert merge_caches(main, shards) == 11
    assert merge_caches(main, shards) == 0 and merge_caches(main, [*shards, main]) == 0  # idempotent
    assert _rows(main) == 11
    merged = Folder.from_model(esmfold, cache_path=main)
    # each job batches its own slice, so padding partners may differ; padding is masked out
    assert _same(merged.fold(seqs), single, atol=1e-4) and merged.calls == 0
    rerun = fold_shard(Folder.from_model(esmfold, cache_path=shards[1]), seqs, 1, 2, main_cache=main)
    assert rerun.folded == 0  # everything is already in the main cache


@pytest.fixture(scope="module")
def cli_files(tmp_path_factory, seqs, esmfold) -> dict[str, Path]:
    """Two small FASTAs, a reference, and the tiny ESMFold saved as a transformers folder for --esmfold."""
    root = tmp_path_factory.mktemp("fanout")
    esmfold.save_pretrained(root / "esmfold")
    return {
        "a": write_fasta(root / "a.fasta", [(f"a{i}", s[:20]) for i, s in enumerate(seqs[:4])]),
        "b": write_fasta(root / "b.fasta", [(f"b{i}", s[:24]) for i, s in enumerate(seqs[4:8])]),
        "reference": write_fasta(root / "test.fasta", [(f"n{i}", s) for i, s in enumerate(seqs[:11])]),
        "esmfold": root / "esmfold",
    }


@pytest.mark.skipif(shutil.which("mmseqs") is None, reason="the report checks for mmseqs2")
def test_report_shard_jobs_then_merge_report_without_refolding(cli_files, tmp_path, capsys, monkeypatch) -> None:
    out = tmp_path / "out"
    common = ["--fasta", str(cli_files["a"]), str(cli_files["b"]), "--reference", str(cli_files["reference"])]
    common += ["--out", str(out), "--esmfold", str(cli_files["esmfold"]), "--offline", "--threads", "1"]
    for i in range(2):
        assert report.main([*common, "--shard", f"{i}/2"]) == 0
    printed = capsys.readouterr().out
    assert "shard 0/2:" in printed and "shard 1/2:" in printed and "--merge-cache" in printed
    assert not (out / "report.html").exists()  # a shard job folds and exits
    shards = sorted(out.glob("fold_cache.shard-*-of-2.sqlite"))
    assert len(shards) == 2

    def no_loading(*args, **kwargs):
        raise AssertionError("the merged report must not load ESMFold")

    monkeypatch.setattr(fold_module, "_load_transformers", no_loading)
    argv = [*common, "--no-judge", "--no-diversity", "--merge-cache", *map(str, shards)]
    assert report.main(argv) == 0
    printed = capsys.readouterr().out
    assert "merged 2 fold cache(s)" in printed and "note:" not in printed  # complete, and keyed like this report
    metrics = pd.read_csv(out / "metrics.csv")
    assert metrics["plddt"].notna().all()
    monkeypatch.undo()
    single = Folder(str(cli_files["esmfold"]), "cpu").fold(metrics["sequence"].tolist())
    assert np.allclose(metrics["plddt"], [r.mean_plddt for r in single], rtol=0, atol=1e-4)
    assert report.main(["--out", str(out), "--merge-cache", *map(str, shards)]) == 0  # merge only, again
    assert "0 new fold(s)" in capsys.readouterr().out


def test_bad_shard_and_cache_arguments_are_one_line_errors(cli_files, tmp_path, capsys) -> None:
    base = ["--fasta", str(cli_files["a"]), "--reference", str(cli_files["reference"]), "--out", str(tmp_path)]
    corrupt = tmp_path / "corrupt.sqlite"
    corrupt.write_bytes(b"this is not sqlite" * 100)
    foreign = tmp_path / "foreign.sqlite"
    with sqlite3.connect(foreign) as db:
        db.execute("CREATE TABLE other (x)")
    cases = [
        ([*base, "--shard", "3/2"], "--shard 3/2: I must be in 0..N-1"),
        ([*base, "--shard", "two/four"], "is not I/N"),
        ([*base, "--shard", "0/2", "--merge-cache", str(foreign)], "separate steps"),
        (["--out", str(tmp_path), "--merge-cache", str(tmp_path / "missing.sqlite")], "not found"),
        (["--out", str(tmp_path), "--merge-cache", str(corrupt)], "not a readable fold cache"),
        (["--out", str(tmp_path), "--merge-cache", str(foreign)], "not a protein_didi fold cache"),
        (["--out", str(tmp_path)], "nothing to evaluate"),
    ]
    for argv, message in cases:
        assert report.main(argv) == 2, argv
        err = capsys.readouterr().err.strip()
        assert err.startswith("error: ") and message in err and "\n" not in err, err
    assert not (tmp_path / "fold_cache.sqlite").exists()  # nothing merged from bad files
