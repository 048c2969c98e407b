"""Thin subprocess wrapper around the ``mmseqs`` binary (Debian package ``mmseqs2``)."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path


class MMseqsError(RuntimeError):
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
