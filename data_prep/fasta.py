"""Prepare a protein corpus: ``python -m data_prep.fasta --fasta DB.fasta.gz --out data/uniprot20k``.

Streams the FASTA (any size), validates residues, chunks proteins longer than
1022 residues into consecutive pieces (as DPLM does for UniRef50), clusters
everything with MMseqs2 at 30 % identity / 80 % coverage and assigns whole
clusters to train/valid/test, so held-out sets share no close homologue with
training (a random split would leak near-duplicates).
"""

from __future__ import annotations

import argparse
import hashlib
import sys
import tempfile
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
        n_in = n_skipped = n_out = 0
        with open(clean, "w") as fh:
            for rid, seq in tqdm(iter_fasta(fasta), desc="validate+chunk", unit="seq"):
                n_in += 1
                try:
                    seq = ALPHABET.validate(seq, rid, max_residues=None)
                except InvalidSequenceError:
                    if on_invalid == "error":
                        raise
                    n_skipped += 1
                    continue
                pieces = chunk(seq)
                for k, piece in enumerate(pieces):
                    if len(piece) < min_length:
                        continue
                    name = rid if len(pieces) == 1 else f"{rid}/chunk{k}"
                    # MMseqs2 rewrites UniProt-style ids (tr|ACC|NAME → ACC): key by position instead
                    fh.write(f">{n_out} {name}\n{piece}\n")
                    n_out += 1
        if n_out == 0:
            raise FastaError(f"{fasta}: no usable sequences (≥{min_length} residues) after validation")

        print(f"clustering {n_out} sequences with MMseqs2 ({min_seq_id:.0%} id, {coverage:.0%} cov)…", file=sys.stderr)
        rep_of = cluster_fasta(clean, min_seq_id, coverage, threads, linclust=n_out > 2_000_000)

        writers = {s: ShardWriter(out / s) for s in SPLITS}
        fastas = {s: open(out / f"{s}.fasta", "w") for s in SPLITS}  # noqa: SIM115 (closed below)
        clusters = {s: set() for s in SPLITS}
        counts = {s: np.zeros(ALPHABET.size, dtype=np.int64) for s in SPLITS}
        lengths: dict[str, list[int]] = {s: [] for s in SPLITS}
        try:
            for (key, seq), name in zip(
                tqdm(iter_fasta(clean), total=n_out, desc="write shards", unit="seq"), _names(clean), strict=True
            ):
                rep, rid = rep_of[key], name
                split = split_of(rep, valid_frac, test_frac, seed)
                ids = ALPHABET.encode_residues(seq)
                writers[split].add(ids)
                fastas[split].write(f">{rid}\n{seq}\n")
                clusters[split].add(rep)
                counts[split] += np.bincount(ids, minlength=ALPHABET.size)
                lengths[split].append(len(seq))
        finally:
            for f in fastas.values():
                f.close()
        for w in writers.values():
            w.flush()

    def composition(c: np.ndarray) -> dict[str, float]:
        total = c.sum()
        return {aa: float(c[ALPHABET.esm.get_idx(aa)] / total) for aa in STANDARD_AA} if total else {}

    meta = {
        "format": "protein_didi.shards/1",
        "alphabet": "esm-1b (33 tokens)",
        "source": str(fasta),
        "records_in": n_in,
        "records_skipped_invalid": n_skipped,
        "max_residues": MAX_RESIDUES,
        "split": {"method": "mmseqs2 easy-cluster", "min_seq_id": min_seq_id, "coverage": coverage, "seed": seed},
        "splits": {
            s: {
                "sequences": writers[s].num_sequences,
                "residues": int(counts[s].sum()),
                "clusters": len(clusters[s]),
                "composition": composition(counts[s]),
                "length_histogram": np.bincount(lengths[s], minlength=MAX_RESIDUES + 1).tolist(),
            }
            for s in SPLITS
        },
    }
    save_json(out / "meta.json", meta)
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m data_prep.fasta", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--fasta",
        type=Path,
        default=Path(DEFAULT_FASTA),
        help=f"input FASTA, plain or .gz (default: the 20,000 UniProt sequences of mmseqs2-examples, {DEFAULT_FASTA})",
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
    args = p.parse_args(argv)
    try:
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
        print(
            f"{s:>5}: {info['sequences']:>6} sequences, {info['residues']:>9} residues, {info['clusters']:>5} clusters"
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
