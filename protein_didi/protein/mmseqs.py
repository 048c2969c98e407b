"""Thin subprocess wrapper around the ``mmseqs`` binary (Debian package ``mmseqs2``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

from protein_didi.core.errors import UserError


class MMseqsError(RuntimeError, UserError):
    """``mmseqs`` is missing or failed; the message carries the fix or its stderr tail."""


def mmseqs_binary() -> str:
    path = shutil.which("mmseqs")
    if path is None:
        raise MMseqsError(
            "mmseqs not found on PATH; install it with `apt-get install mmseqs2` (Debian package mmseqs2)"
        )
    return path


def run_mmseqs(args: list[str], threads: int | None = None) -> None:
    """Run ``mmseqs ARGS``; raise with the last lines of stderr on failure."""
    cmd = [mmseqs_binary(), *args, "--threads", str(threads or os.cpu_count() or 1), "-v", "1"]
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        tail = " | ".join((proc.stderr or proc.stdout).strip().splitlines()[-3:])
        raise MMseqsError(f"mmseqs {args[0]} failed (exit {proc.returncode}): {tail}")


def cluster_fasta(
    fasta: str | Path,
    min_seq_id: float = 0.3,
    coverage: float = 0.8,
    threads: int | None = None,
    linclust: bool = False,
    extra_args: list[str] | None = None,
) -> dict[str, str]:
    """Cluster sequences with ``mmseqs easy-cluster`` (or ``easy-linclust``); return member id → representative id."""
    with tempfile.TemporaryDirectory(prefix="mmseqs-") as tmp:
        prefix = Path(tmp) / "clu"
        run_mmseqs(
            [
                "easy-linclust" if linclust else "easy-cluster",
                str(fasta),
                str(prefix),
                str(Path(tmp) / "work"),
                "--min-seq-id",
                str(min_seq_id),
                "-c",
                str(coverage),
                *(extra_args or []),
            ],
            threads,
        )
        members: dict[str, str] = {}
        with open(f"{prefix}_cluster.tsv") as fh:
            for line in fh:
                rep, member = line.rstrip("\n").split("\t")
                members[member] = rep
    return members


SEARCH_COLUMNS = ("query", "target", "fident", "nident", "alnlen", "qlen", "tlen", "evalue", "bits")


def search_fasta(
    query: str | Path,
    target: str | Path,
    threads: int | None = None,
    sensitivity: float | None = None,
    max_seqs: int | None = None,
    extra_args: list[str] | None = None,
) -> list[dict[str, str | float]]:
    """Search ``query`` against ``target`` with ``mmseqs easy-search``; one dict per hit with :data:`SEARCH_COLUMNS`.

    ``-a`` keeps the alignment backtrace so that ``nident`` (identical residues) is
    real rather than 0, which identity-over-query-length measures depend on.
    Queries without any hit are simply absent from the result.
    """
    with tempfile.TemporaryDirectory(prefix="mmseqs-") as tmp:
        out = Path(tmp) / "hits.m8"
        args = ["easy-search", str(query), str(target), str(out), str(Path(tmp) / "work"), "-a"]
        args += ["--format-output", ",".join(SEARCH_COLUMNS)]
        if sensitivity is not None:
            args += ["-s", str(sensitivity)]
        if max_seqs is not None:
            args += ["--max-seqs", str(max_seqs)]
        run_mmseqs([*args, *(extra_args or [])], threads)
        hits: list[dict[str, str | float]] = []
        with open(out) as fh:
            for line in fh:
                fields = line.rstrip("\n").split("\t")
                hit: dict[str, str | float] = {"query": fields[0], "target": fields[1]}
                hit.update({col: float(v) for col, v in zip(SEARCH_COLUMNS[2:], fields[2:], strict=True)})
                hits.append(hit)
    return hits
