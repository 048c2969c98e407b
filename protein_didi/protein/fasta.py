"""FASTA reading and writing through biotite, streaming so that UniRef50-sized files never sit in memory."""

from __future__ import annotations

import gzip
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from biotite.sequence.io.fasta import FastaFile


class FastaError(ValueError):
    """A FASTA file is missing, empty or malformed."""


def _open_text(path: Path) -> io.TextIOBase:
    if path.suffix == ".gz":
        return io.TextIOWrapper(gzip.open(path, "rb"), encoding="utf-8", errors="replace")
    return open(path, encoding="utf-8", errors="replace")


def iter_fasta(path: str | Path) -> Iterator[tuple[str, str]]:
    """Yield ``(record_id, sequence)`` one record at a time (plain or ``.gz``).

    The id is the first word of the header, as UniProt and MMseqs2 use it.
    """
    path = Path(path)
    if not path.is_file():
        raise FastaError(f"FASTA file {path} not found; check the path")
    with _open_text(path) as fh:
        first = fh.read(1)
        if not first:
            raise FastaError(f"FASTA file {path} is empty; give at least one '>id' record")
        if first != ">":
            raise FastaError(f"{path} does not look like FASTA (first character {first!r}, expected '>')")
        fh.seek(0)
        n = 0
        for header, seq in FastaFile.read_iter(fh):
            n += 1
            yield (header.split()[0] if header.strip() else f"record{n}"), seq
        if n == 0:
            raise FastaError(f"FASTA file {path} has no records; give at least one '>id' record")


def read_fasta(path: str | Path) -> list[tuple[str, str]]:
    """All records of a (small) FASTA file."""
    return list(iter_fasta(path))


def write_fasta(path: str | Path, records: Iterable[tuple[str, str]]) -> Path:
    """Write ``(id, sequence)`` records with biotite's line wrapping."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fasta = FastaFile()
    for rid, seq in records:
        fasta[rid] = seq
    fasta.write(str(path))
    return path
