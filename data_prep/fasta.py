"""Prepare a protein corpus: ``python -m data_prep.fasta --fasta DB.fasta.gz --out data/uniprot20k``.

Streams the FASTA (any size), validates residues, chunks proteins longer than
1022 residues into consecutive pieces (as DPLM does for UniRef50), clusters
everything with MMseqs2 at 30 % identity / 80 % coverage and assigns whole
clusters to train/valid/test, so held-out sets share no close homologue with
training (a random split would leak near-duplicates).

``--splits TRAIN,VALID,TEST`` takes FASTAs that are split already (say
``data/repertoire/{train,validation,test}.fasta``, split by clonal clusters by
``data_prep.repertoire``) and writes the same shard folder without clustering:
a second split would undo the first one's. The data's licence (``--licence``,
or the ``licence`` of a ``manifest.json`` beside the FASTAs) is kept in
``meta.json``, and models trained on the folder record it.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import sys
import tempfile
from collections.abc import Iterator, Mapping, Sequence
from pathlib import Path

import numpy as np
from tqdm import tqdm

from protein_didi.core.checkpoint import save_json
from protein_didi.protein.alphabet import ALPHABET, MAX_RESIDUES, STANDARD_AA, InvalidSequenceError
from protein_didi.protein.fasta import FastaError, iter_fasta
from protein_didi.protein.mmseqs import MMseqsError, cluster_fasta
from protein_didi.protein.shards import SPLITS, ShardWriter

DEFAULT_FASTA = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz"


def chunk(seq: str, max_residues: int = MAX_RESIDUES) -> list[str]:
    """Consecutive pieces of at most ``max_residues``, the last one keeping the remainder."""
    return [seq[i : i + max_residues] for i in range(0, len(seq), max_residues)]


def split_of(representative: str, valid_frac: float, test_frac: float, seed: int) -> str:
    """Deterministic cluster → split assignment from a hash of the representative id."""
    h = int.from_bytes(hashlib.blake2b(f"{seed}:{representative}".encode(), digest_size=8).digest(), "big")
    u = h / 2**64
    return "test" if u < test_frac else "valid" if u < test_frac + valid_frac else "train"


def _names(clean: Path):
    """Original record names, the second word of our numbered headers."""
    with open(clean) as fh:
        for line in fh:
            if line.startswith(">"):
                yield line.rstrip("\n").split(" ", 1)[1]


class SplitWriter:
    """Shards, split FASTA and statistics of every split, one sequence at a time (both ways of splitting)."""

    def __init__(self, out: Path) -> None:
        self.out = out
        self.writers = {s: ShardWriter(out / s) for s in SPLITS}
        self.fastas = {s: open(out / f"{s}.fasta", "w") for s in SPLITS}  # noqa: SIM115 (closed in close())
        self.clusters: dict[str, set[str]] = {s: set() for s in SPLITS}
        self.counts = {s: np.zeros(ALPHABET.size, dtype=np.int64) for s in SPLITS}
        self.lengths: dict[str, list[int]] = {s: [] for s in SPLITS}

    def add(self, split: str, rid: str, seq: str, cluster: str | None = None) -> None:
        ids = ALPHABET.encode_residues(seq)
        self.writers[split].add(ids)
        self.fastas[split].write(f">{rid}\n{seq}\n")
        if cluster is not None:
            self.clusters[split].add(cluster)
        self.counts[split] += np.bincount(ids, minlength=ALPHABET.size)
        self.lengths[split].append(len(seq))

    def close(self) -> None:
        for f in self.fastas.values():
            f.close()
        for w in self.writers.values():
            w.flush()

    def splits(self, clustered: bool = True) -> dict[str, dict]:
        """``meta.json``'s per-split statistics (``clusters`` is None when the splits came split)."""

        def composition(c: np.ndarray) -> dict[str, float]:
            total = c.sum()
            return {aa: float(c[ALPHABET.esm.get_idx(aa)] / total) for aa in STANDARD_AA} if total else {}

        return {
            s: {
                "sequences": self.writers[s].num_sequences,
                "residues": int(self.counts[s].sum()),
                "clusters": len(self.clusters[s]) if clustered else None,
                "composition": composition(self.counts[s]),
                "length_histogram": np.bincount(self.lengths[s], minlength=MAX_RESIDUES + 1).tolist(),
            }
            for s in SPLITS
        }


def valid_pieces(fasta: Path, on_invalid: str, min_length: int, counts: dict[str, int]) -> Iterator[tuple[str, str]]:
    """(name, residues) of every usable piece of ``fasta``: validated, chunked to 1022, at least ``min_length``.

    ``counts`` receives ``records_in`` and ``records_skipped_invalid``.
    """
    for rid, seq in tqdm(iter_fasta(fasta), desc=f"validate+chunk {fasta.name}", unit="seq"):
        counts["records_in"] = counts.get("records_in", 0) + 1
        try:
            seq = ALPHABET.validate(seq, rid, max_residues=None)
        except InvalidSequenceError:
            if on_invalid == "error":
                raise
            counts["records_skipped_invalid"] = counts.get("records_skipped_invalid", 0) + 1
            continue
        pieces = chunk(seq)
        for k, piece in enumerate(pieces):
            if len(piece) >= min_length:
                yield (rid if len(pieces) == 1 else f"{rid}/chunk{k}"), piece


def prepare(
    fasta: Path,
    out: Path,
    valid_frac: float = 0.05,
    test_frac: float = 0.05,
    min_seq_id: float = 0.3,
    coverage: float = 0.8,
    on_invalid: str = "error",
    min_length: int = 10,
    threads: int | None = None,
    seed: int = 0,
) -> dict:
    out.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory(prefix="data_prep-", dir=out) as tmp:
        clean = Path(tmp) / "all.fasta"
        counts: dict[str, int] = {}
        n_out = 0
        with open(clean, "w") as fh:
            for name, piece in valid_pieces(fasta, on_invalid, min_length, counts):
                # MMseqs2 rewrites UniProt-style ids (tr|ACC|NAME → ACC): key by position instead
                fh.write(f">{n_out} {name}\n{piece}\n")
                n_out += 1
        n_in, n_skipped = counts.get("records_in", 0), counts.get("records_skipped_invalid", 0)
        if n_out == 0:
            raise FastaError(f"{fasta}: no usable sequences (≥{min_length} residues) after validation")

        print(f"clustering {n_out} sequences with MMseqs2 ({min_seq_id:.0%} id, {coverage:.0%} cov)…", file=sys.stderr)
        rep_of = cluster_fasta(clean, min_seq_id, coverage, threads, linclust=n_out > 2_000_000)

        splits = SplitWriter(out)
        try:
            for (key, seq), name in zip(
                tqdm(iter_fasta(clean), total=n_out, desc="write shards", unit="seq"), _names(clean), strict=True
            ):
                rep = rep_of[key]
                splits.add(split_of(rep, valid_frac, test_frac, seed), name, seq, cluster=rep)
        finally:
            splits.close()

    meta = {
        "format": "protein_didi.shards/1",
        "alphabet": "esm-1b (33 tokens)",
        "source": str(fasta),
        "records_in": n_in,
        "records_skipped_invalid": n_skipped,
        "max_residues": MAX_RESIDUES,
        "split": {"method": "mmseqs2 easy-cluster", "min_seq_id": min_seq_id, "coverage": coverage, "seed": seed},
        "splits": splits.splits(),
    }
    save_json(out / "meta.json", meta)
    return meta


def manifest_licence(fastas: Sequence[Path]) -> str | None:
    """The ``licence`` of a ``manifest.json`` beside the split FASTAs (``data_prep.repertoire`` writes one)."""
    for folder in dict.fromkeys(f.parent for f in fastas):
        manifest = folder / "manifest.json"
        if manifest.is_file():
            try:
                licence = json.loads(manifest.read_text()).get("licence")
            except (OSError, json.JSONDecodeError, AttributeError):
                continue
            if licence:
                return str(licence)
    return None


def prepare_splits(
    split_fastas: Mapping[str, Path],
    out: Path,
    on_invalid: str = "error",
    min_length: int = 10,
    licence: str | None = None,
) -> dict:
    """Shards from FASTAs that are split already (``{"train": …, "valid": …, "test": …}``), without clustering.

    Why no clustering: the splits were made by someone who knew what must not leak (clonal clusters for
    antibodies: chains that MMseqs2's 30 % identity would put into one cluster all together); re-splitting
    would undo that. ``licence`` (default: the FASTAs' ``manifest.json``'s) goes into ``meta.json``.
    """
    if set(split_fastas) != set(SPLITS):
        raise FastaError(f"give one FASTA for each split {', '.join(SPLITS)} (got {', '.join(split_fastas)})")
    paths = [Path(split_fastas[s]) for s in SPLITS]
    for path in paths:
        if not path.is_file():
            raise FastaError(f"FASTA file {path} not found; check the path")
    out.mkdir(parents=True, exist_ok=True)
    counts: dict[str, int] = {}
    splits = SplitWriter(out)
    try:
        for split, path in zip(SPLITS, paths, strict=True):
            for name, seq in valid_pieces(path, on_invalid, min_length, counts):
                splits.add(split, name, seq)
    finally:
        splits.close()
    stats = splits.splits(clustered=False)
    if stats["train"]["sequences"] == 0:
        raise FastaError(f"{split_fastas['train']}: no usable training sequences (≥{min_length} residues)")
    licence = licence or manifest_licence(paths)
    meta = {
        "format": "protein_didi.shards/1",
        "alphabet": "esm-1b (33 tokens)",
        "source": ",".join(str(p) for p in paths),
        "records_in": counts.get("records_in", 0),
        "records_skipped_invalid": counts.get("records_skipped_invalid", 0),
        "max_residues": MAX_RESIDUES,
        "split": {"method": "given", "files": {s: str(p) for s, p in zip(SPLITS, paths, strict=True)}},
        "splits": stats,
        **({"licence": licence} if licence else {}),
    }
    save_json(out / "meta.json", meta)
    return meta


def parse_splits(value: str) -> dict[str, Path]:
    """``TRAIN,VALID,TEST`` (three FASTA paths, in that order) → ``{split: path}``."""
    parts = [v.strip() for v in value.split(",")]
    if len(parts) != len(SPLITS) or not all(parts):
        raise argparse.ArgumentTypeError(f"give three FASTAs, {','.join(s.upper() for s in SPLITS)}, comma-separated")
    return {s: Path(v) for s, v in zip(SPLITS, parts, strict=True)}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m data_prep.fasta", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    source = p.add_mutually_exclusive_group()
    source.add_argument(
        "--fasta",
        type=Path,
        default=Path(DEFAULT_FASTA),
        help=f"input FASTA, plain or .gz (default: the 20,000 UniProt sequences of mmseqs2-examples, {DEFAULT_FASTA})",
    )
    source.add_argument(
        "--splits",
        type=parse_splits,
        default=None,
        metavar="TRAIN,VALID,TEST",
        help="three FASTAs that are split already (e.g. data/repertoire/train.fasta,validation.fasta,test.fasta "
        "with the folder spelt out): written as train/valid/test without clustering (the options of the clustered "
        "split below do not apply)",
    )
    p.add_argument("--out", type=Path, required=True, help="output directory for shards, split FASTAs and meta.json")
    p.add_argument("--valid-frac", type=float, default=0.05, help="fraction of clusters for validation (default 0.05)")
    p.add_argument("--test-frac", type=float, default=0.05, help="fraction of clusters for test (default 0.05)")
    p.add_argument("--min-seq-id", type=float, default=0.3, help="MMseqs2 clustering identity (default 0.3)")
    p.add_argument("--coverage", type=float, default=0.8, help="MMseqs2 clustering coverage -c (default 0.8)")
    p.add_argument("--min-length", type=int, default=10, help="drop sequences/chunks shorter than this (default 10)")
    p.add_argument(
        "--on-invalid",
        choices=["error", "skip"],
        default="error",
        help="what to do with a sequence holding non-amino-acid letters (default: error)",
    )
    p.add_argument("--threads", type=int, default=None, help="MMseqs2 threads (default: all cores)")
    p.add_argument("--seed", type=int, default=0, help="seed of the cluster→split hash (default 0)")
    p.add_argument(
        "--licence",
        default=None,
        help="with --splits: the data's licence, kept in meta.json (default: the licence of a manifest.json "
        "beside the FASTAs, if any)",
    )
    args = p.parse_args(argv)
    try:
        if args.splits is not None:
            meta = prepare_splits(args.splits, args.out, args.on_invalid, args.min_length, args.licence)
        else:
            meta = prepare(
                args.fasta,
                args.out,
                args.valid_frac,
                args.test_frac,
                args.min_seq_id,
                args.coverage,
                args.on_invalid,
                args.min_length,
                args.threads,
                args.seed,
            )
    except (FastaError, InvalidSequenceError, MMseqsError) as err:
        print(f"error: {err}", file=sys.stderr)
        return 2
    for s, info in meta["splits"].items():
        clusters = "" if info["clusters"] is None else f", {info['clusters']:>5} clusters"
        print(f"{s:>5}: {info['sequences']:>6} sequences, {info['residues']:>9} residues{clusters}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
