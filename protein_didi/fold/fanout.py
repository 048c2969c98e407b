"""Fold one sequence list with several workers, devices or machines, and merge their caches.

Folding dominates a report's cost and every sequence folds independently, so
the work splits cleanly. Two ways, which compose:

* **One node, several devices** — :class:`FoldPool` (``report --fold-devices
  cuda:0,cuda:1`` or ``cpu,cpu``): the parent plans the length batches exactly
  as a single folder (:class:`~protein_didi.fold.backend.FoldBackend`) would, deals whole batches
  to one spawned process per device (largest first, to the least loaded), each
  process loads the model once and writes its own sqlite shard (sqlite has no
  safe concurrent writers), and the parent merges the shards into the cache.
  Same batches, same padding: the pLDDTs equal a one-process run's.
* **N jobs on N machines** — :func:`fold_shard` (``report ... --shard I/N``):
  job I folds a deterministic slice of the deduplicated sequence list (a
  contiguous run of the length-sorted list, balanced by the ~L² folding cost,
  independent of device and cache state, so every job agrees on the split
  without talking to the others) into ``<cache>.shard-I-of-N.sqlite`` and
  exits; :func:`merge_caches` (``report ... --merge-cache SHARD ...``) then
  combines the shards, idempotently, and the report reads every pLDDT from
  the merged cache without loading the model. Each job batches its own slice,
  so a sequence may get other padding partners than in a single run; padding
  is masked out, the pLDDTs agree to ~1e-4.

Under ``torchrun`` the report takes ``RANK/WORLD_SIZE`` as the default shard.
The same machinery serves every backend (ESMFold, IgFold); the cache file's
format belongs to :mod:`protein_didi.fold.cache`.
"""

from __future__ import annotations

import hashlib
import multiprocessing as mp
import os
import pickle
import queue as queue_module
import re
import tempfile
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path

import torch

from protein_didi.core.device import resolve_device
from protein_didi.fold.backend import FoldBackend, length_batches
from protein_didi.fold.cache import (
    FoldCache,
    cached_sequences,
    merge_caches,
    model_ids,
    shard_info,
    write_shard_info,
)
from protein_didi.fold.esmfold import (
    DEFAULT_MODEL,
    ESMFold,
    _backend_of,
    _lm_dtype,
    default_batch_residues,
    model_cache_id,
)
from protein_didi.fold.result import FoldResult, ProgressCallback
from protein_didi.protein.alphabet import ALPHABET


class FoldWorkerError(ChildProcessError):
    """A fold worker process failed or died; its finished batches are kept in the cache.

    An ``OSError`` (via ``ChildProcessError``), so command lines print it as their usual one-line error.
    """


# ---------------------------------------------------------------- how work is split


def _cost(length: int) -> int:
    """Relative folding cost: ESMFold's trunk works on the L × L pair representation (measured ~L^2.2 on CPU)."""
    return length * length


def split_batches(batches: Sequence[Sequence[str]], workers: int) -> list[list[list[str]]]:
    """Deal whole batches to ``workers``: costliest first, each to the least loaded worker (ties: lowest index).

    Deterministic; each worker's batches keep their planned (length) order.
    """
    if workers < 1:
        raise ValueError(f"need at least one worker, got {workers}")
    cost = [len(b) * _cost(max(map(len, b))) for b in batches]
    load = [0] * workers
    owner = [0] * len(batches)
    for i in sorted(range(len(batches)), key=lambda i: (-cost[i], i)):
        w = min(range(workers), key=lambda w: (load[w], w))
        owner[i] = w
        load[w] += cost[i]
    return [[list(b) for i, b in enumerate(batches) if owner[i] == w] for w in range(workers)]


def parse_shard(text: str) -> tuple[int, int]:
    """``"1/4"`` → (1, 4): worker 1 of 4, counting from 0; a one-line ValueError otherwise."""
    parts = text.strip().split("/")
    try:
        index, count = (int(p) for p in parts) if len(parts) == 2 else (None, None)
    except ValueError:
        index = count = None
    if index is None or count is None:
        raise ValueError(f"--shard {text!r} is not I/N (e.g. --shard 0/4 for the first of 4 jobs)")
    if count < 1 or not 0 <= index < count:
        raise ValueError(f"--shard {text}: I must be in 0..N-1 (jobs count from 0), e.g. 0/{max(count, 1)}")
    return index, count


def shard_from_env(env: Mapping[str, str]) -> tuple[int, int] | None:
    """``(RANK, WORLD_SIZE)`` under torchrun (or any launcher setting both) with more than one process, else None."""
    if "RANK" not in env or "WORLD_SIZE" not in env:
        return None
    try:
        rank, world = int(env["RANK"]), int(env["WORLD_SIZE"])
    except ValueError:
        raise ValueError(f"RANK={env['RANK']!r} WORLD_SIZE={env['WORLD_SIZE']!r} are not integers") from None
    if world <= 1:
        return None
    return parse_shard(f"{rank}/{world}")


def unique_sequences(seqs: Sequence[str], validate: Callable[[str, str], str] | None = None) -> list[str]:
    """Validated, upper-cased, deduplicated, sorted by (length, sequence): the same list whatever the input order.

    ``validate`` is the backend's (:meth:`FoldBackend.validate`); proteins by default.
    """
    check = validate or ALPHABET.validate
    valid = {check(s, f"sequence {i + 1}") for i, s in enumerate(seqs)}
    return sorted(valid, key=lambda s: (len(s), s))


def shard_sequences(
    seqs: Sequence[str], index: int, count: int, validate: Callable[[str, str], str] | None = None
) -> list[str]:
    """Job ``index`` of ``count``'s slice: a contiguous run of the length-sorted unique list, cost-balanced.

    A sequence belongs to the shard where the midpoint of its cost falls, so
    the slices partition the list, differ in cost by at most one sequence, and
    depend only on the sequences, never on devices or caches.
    """
    if not 0 <= index < count:
        raise ValueError(f"shard {index}/{count}: index must be in 0..{count - 1}")
    unique = unique_sequences(seqs, validate)
    total = sum(_cost(len(s)) for s in unique) or 1
    out, before = [], 0
    for s in unique:
        c = _cost(len(s))
        if min(count - 1, (count * (2 * before + c)) // (2 * total)) == index:
            out.append(s)
        before += c
    return out


def plan_id(seqs: Sequence[str], count: int, validate: Callable[[str, str], str] | None = None) -> str:
    """Fingerprint of a shard plan, so a merge can tell when jobs were given different inputs."""
    h = hashlib.sha256(f"{count}\n".encode())
    h.update("\n".join(unique_sequences(seqs, validate)).encode())
    return h.hexdigest()[:16]


def shard_cache_path(cache: str | Path, index: int | str, count: int) -> Path:
    """``DIR/fold_cache.sqlite`` → ``DIR/fold_cache.shard-I-of-N.sqlite``."""
    cache = Path(cache)
    return cache.with_name(f"{cache.stem}.shard-{index}-of-{count}{cache.suffix or '.sqlite'}")


# ---------------------------------------------------------------- caches


def merge_notes(srcs: Sequence[str | Path], model_id: str | None = None) -> list[str]:
    """Warnings about an incomplete or inconsistent set of shards (what is missing simply folds later).

    With ``model_id`` (the id the report will look folds up by), also warns when
    the shards were folded under another id — e.g. ESMFold at another path on
    the job machines — because their folds would then not be found.
    """
    notes = []
    if model_id is not None:
        others: set[str] = set()
        for path in srcs:
            others |= model_ids(path) - {model_id}
        if others:
            notes.append(
                f"folds for model id(s) {', '.join(sorted(others))} do not match this report's {model_id} "
                "(another --esmfold path or name on the shard jobs?) and will not be used"
            )
    infos = [i for i in (shard_info(s) for s in srcs) if i is not None]
    if not infos:
        return notes
    if len({(count, plan) for _, count, plan in infos}) > 1:
        notes.append(
            "the merged shards were planned on different sequence lists or shard counts (other --fasta, "
            "--reference, --seed or a regenerated sweep?); the report folds whatever is missing"
        )
    else:
        count = infos[0][1]
        missing = sorted(set(range(count)) - {index for index, _, _ in infos})
        if missing:
            notes.append(
                f"shard(s) {', '.join(f'{i}/{count}' for i in missing)} not merged; the report folds their sequences"
            )
    return notes


# ---------------------------------------------------------------- worker processes


@dataclass(frozen=True)
class FoldSpec:
    """How a worker process builds its folder: a model and an sqlite handle cannot cross processes.

    ``backend="igfold"`` builds :class:`~protein_didi.fold.igfold.IgFold` (``num_models``
    of its ensemble; ``model`` is ignored). Otherwise ``model`` is what
    :class:`~protein_didi.fold.esmfold.ESMFold` takes (a folder, hub id,
    ``fair-esm:…``) or a picklable zero-argument factory returning an
    ``EsmForProteinFolding`` (e.g. ``functools.partial(tiny_esmfold, seed=0)``);
    a factory is called once in the parent too, to fingerprint the weights for
    the cache key.
    """

    model: str | Callable[[], torch.nn.Module] = DEFAULT_MODEL
    chunk_size: int | None = 64
    dtype: str | None = None
    backend: str = "auto"
    max_batch_residues: int | None = None
    num_recycles: int | None = None
    allow_download: bool = True
    num_models: int | None = None

    def build(self, device: str | torch.device, cache_path: str | Path | None = None) -> FoldBackend:
        if self.backend == "igfold":
            from protein_didi.fold.igfold import IgFold

            return IgFold(device, cache_path, num_models=self.num_models, max_batch_residues=self.max_batch_residues)
        if isinstance(self.model, str):
            return ESMFold(
                self.model,
                device,
                cache_path,
                self.chunk_size,
                self.dtype,
                backend=self.backend,
                max_batch_residues=self.max_batch_residues,
                num_recycles=self.num_recycles,
                allow_download=self.allow_download,
            )
        return ESMFold.from_model(
            self.model(),
            device,
            cache_path,
            self.chunk_size,
            self.dtype,
            max_batch_residues=self.max_batch_residues,
            num_recycles=self.num_recycles,
        )

    def default_batch_residues(self, device: torch.device) -> int:
        if self.backend == "igfold":
            from protein_didi.fold.igfold import default_batch_residues as igfold_batch

            return igfold_batch(device)
        return default_batch_residues(device)

    def cache_id(self) -> str:
        """The model id every worker will key the cache with."""
        if self.backend == "igfold":
            return self.build("cpu").model_id  # computed without loading the weights
        if isinstance(self.model, str):
            return model_cache_id(self.model, _backend_of(self.model, self.backend), self.num_recycles)
        return replace(self, dtype=None).build("cpu").model_id  # the id does not depend on device or precision


def _portable(err: BaseException, where: str) -> BaseException:
    """The worker's exception if it survives pickling (FoldingUnavailable, ValueError, …), else its text."""
    try:
        pickle.loads(pickle.dumps(err))
        return err
    except Exception:
        return FoldWorkerError(f"{where}: {type(err).__name__}: {err}")


def _worker(
    spec: FoldSpec, device: str, shard: str, batches: list[list[str]], threads: int, out: mp.Queue, rank: int
) -> None:
    """One process: load the model on ``device`` once, fold the given batches into its own shard cache."""
    try:
        torch.set_num_threads(threads)
        folder = spec.build(device, shard)
        folder.fold_batches(batches, lambda results: out.put(("progress", rank, len(results))))
        folder.cache.close()
        out.put(("done", rank, None))
    except BaseException as err:  # reported to the parent, which raises it there
        out.put(("error", rank, _portable(err, f"fold worker {rank} on {device}")))


def _alive(pid: int) -> bool:
    """Whether process ``pid`` still runs (signal 0 checks without sending anything)."""
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def _check_device(name: str) -> str:
    device = resolve_device(name)
    if device.type == "cuda" and device.index is not None and device.index >= torch.cuda.device_count():
        raise ValueError(f"device {name} does not exist: {torch.cuda.device_count()} CUDA device(s) are visible")
    return str(device)


class FoldPool:
    """A drop-in for a folder (``fold``, ``model_id``) that folds on one spawned process per device.

    Repeat a device to run several workers on it (``["cpu", "cpu"]``). The
    model is never loaded in the parent, and nothing is spawned when every
    sequence is already cached.
    """

    def __init__(
        self,
        spec: FoldSpec,
        devices: Sequence[str],
        cache_path: str | Path | None = None,
        threads: int | None = None,
    ) -> None:
        if not devices:
            raise ValueError("--fold-devices needs at least one device, e.g. cuda:0,cuda:1 or cpu,cpu")
        self.spec = spec
        self.devices = [_check_device(d) for d in devices]
        if spec.backend != "igfold":
            for d in self.devices:  # fail now, not in every worker
                _lm_dtype(torch.device(d), spec.dtype)
            _backend_of(spec.model if isinstance(spec.model, str) else "", spec.backend)
        probe = spec.build("cpu") if spec.backend == "igfold" else None
        self.validate = probe.validate if probe is not None else ALPHABET.validate
        self.score = probe.score if probe is not None else "plddt"
        self.model_id = spec.cache_id()
        self.max_batch_residues = spec.max_batch_residues or min(
            spec.default_batch_residues(torch.device(d)) for d in self.devices
        )
        self.cache = FoldCache(cache_path) if cache_path is not None else None
        self.threads = threads or max(1, (os.cpu_count() or 1) // len(self.devices))
        self.calls = 0  # batches folded by the workers

    def _worker_paths(self, root: Path) -> list[Path]:
        """One shard per worker, named by this process's id: reports sharing a cache folder (the shared IgFold
        cache) never write, merge or delete each other's shards."""
        stem = self.cache.path.stem if self.cache is not None else "folds"
        # not "-of-N.sqlite" at the end, so a glob for --shard files never picks up a pool's leftovers
        return [root / f"{stem}.pid{os.getpid()}.worker{i}.sqlite" for i in range(len(self.devices))]

    def _merge_leftovers(self) -> None:
        """Shards of an interrupted earlier run (its process is gone): merge their folds, then drop them."""
        assert self.cache is not None
        stem = self.cache.path.stem
        for path in sorted(self.cache.path.parent.glob(f"{stem}.*worker*.sqlite")):
            m = re.fullmatch(rf"{re.escape(stem)}\.(?:pid(\d+)\.)?worker\d+\.sqlite", path.name)
            if m is None or (m[1] is not None and _alive(int(m[1]))):
                continue  # not a pool shard, or another live run's (this run's own are merged after it)
            merge_caches(self.cache.path, [path])
            path.unlink()

    def fold(self, seqs: Sequence[str], progress: ProgressCallback | None = None) -> list[FoldResult]:
        """Fold ``seqs`` like :meth:`FoldBackend.fold` (validated, deduplicated, cached ones skipped), in order."""
        seqs = [self.validate(s, f"sequence {i + 1}") for i, s in enumerate(seqs)]
        unique = list(dict.fromkeys(seqs))
        if self.cache is not None:
            self._merge_leftovers()
        done = self.cache.get(unique, self.model_id, self.score) if self.cache is not None else {}
        todo = [s for s in unique if s not in done]
        if progress is not None:
            progress(len(done), len(unique))
        if todo:
            batches = [[todo[i] for i in b] for b in length_batches([len(s) for s in todo], self.max_batch_residues)]
            parts = split_batches(batches, len(self.devices))
            with tempfile.TemporaryDirectory(prefix="fold-workers-") as tmp:
                root = self.cache.path.parent if self.cache is not None else Path(tmp)
                paths = self._worker_paths(root)
                count = len(done)

                def advance(n: int) -> None:
                    nonlocal count
                    count += n
                    if progress is not None:
                        progress(count, len(unique))

                try:
                    self._run(parts, paths, advance)
                finally:
                    done.update(self._collect([p for p in paths if p.exists()], todo))
            missing = [s for s in todo if s not in done]
            if missing:
                raise FoldWorkerError(f"the fold workers returned no result for {len(missing)} sequence(s)")
            self.calls += sum(map(len, parts))
        return [done[s] for s in seqs]

    def _collect(self, paths: list[Path], todo: list[str]) -> dict[str, FoldResult]:
        """Worker shards → the cache (then deleted), or read directly when there is no cache."""
        if self.cache is not None:
            merge_caches(self.cache.path, paths)
            for p in paths:
                p.unlink()
            return self.cache.get(todo, self.model_id, self.score)
        found: dict[str, FoldResult] = {}
        for p in paths:
            shard = FoldCache(p)
            found |= shard.get(todo, self.model_id, self.score)
            shard.close()
        return found

    def _run(self, parts: list[list[list[str]]], paths: list[Path], advance: Callable[[int], None]) -> None:
        ctx = mp.get_context("spawn")  # CUDA cannot be forked; spawn behaves the same everywhere
        messages = ctx.Queue()
        procs: dict[int, mp.process.BaseProcess] = {}
        for rank, (part, path) in enumerate(zip(parts, paths, strict=True)):
            if part:
                args = (self.spec, self.devices[rank], str(path), part, self.threads, messages, rank)
                procs[rank] = ctx.Process(target=_worker, args=args, name=f"fold-worker-{rank}", daemon=True)
                procs[rank].start()
        pending = set(procs)
        error: BaseException | None = None

        def handle(kind: str, rank: int, payload: object) -> None:
            nonlocal error
            if kind == "progress":
                advance(int(payload))  # type: ignore[arg-type]
            else:
                pending.discard(rank)
                if kind == "error" and error is None:
                    error = payload  # type: ignore[assignment]

        try:
            while pending and error is None:
                try:
                    handle(*messages.get(timeout=0.5))
                    continue
                except queue_module.Empty:
                    pass
                for rank in sorted(pending):
                    if procs[rank].is_alive():
                        continue
                    try:  # a finished worker's last messages are flushed before it exits
                        while True:
                            handle(*messages.get(timeout=0.2))
                    except queue_module.Empty:
                        pass
                    if rank in pending and error is None:
                        error = FoldWorkerError(
                            f"fold worker {rank} on {self.devices[rank]} exited with code {procs[rank].exitcode} "
                            "before finishing (out of memory?); its finished batches are cached, re-run to resume"
                        )
        finally:
            for p in procs.values():
                p.join(timeout=30 if not pending and error is None else 0)  # finished workers exit on their own
                if p.is_alive():  # an error elsewhere, or the parent was interrupted: finished batches are cached
                    p.terminate()
                    p.join()
            messages.close()
        if error is not None:
            raise error


# ---------------------------------------------------------------- one job of N


@dataclass
class ShardRun:
    """What one ``--shard I/N`` job did."""

    index: int
    count: int
    path: Path
    slice_size: int
    folded: int  # by this run; the rest of the slice was cached already
    total: int  # unique sequences over all shards


def fold_shard(
    folder: FoldBackend | FoldPool,
    seqs: Sequence[str],
    index: int,
    count: int,
    main_cache: str | Path | None = None,
    progress: ProgressCallback | None = None,
) -> ShardRun:
    """Fold job ``index`` of ``count``'s slice of ``seqs`` into ``folder``'s cache (the shard file).

    Sequences already in ``main_cache`` (when it exists) are skipped, so a
    re-run after a partial merge only folds what is missing.
    """
    if folder.cache is None:
        raise ValueError("a shard job needs a cache file to write its folds to")
    mine = shard_sequences(seqs, index, count, folder.validate)
    skip = cached_sequences(main_cache, mine, folder.model_id) if main_cache and Path(main_cache).is_file() else set()
    todo = [s for s in mine if s not in skip]
    resumed = len(folder.cache.get(todo, folder.model_id))  # folded by an earlier, interrupted run of this job
    folder.fold(todo, progress=progress)
    write_shard_info(folder.cache.path, index, count, plan_id(seqs, count, folder.validate))
    total = len(unique_sequences(seqs, folder.validate))
    return ShardRun(index, count, folder.cache.path, len(mine), len(todo) - resumed, total)
