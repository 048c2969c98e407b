"""Build the report's shipped defaults: ``python -m data_prep.reference [--data data/uniprot20k]``.

``python -m protein_didi.report --fasta samples.fasta --out report/`` must work
right after sampling, with no corpus prepared. So the package ships, from the
embedded teacher's corpus (Debian ``mmseqs2-examples`` DB.fasta.gz, split by
``python -m data_prep.fasta`` at 30 % identity / 80 % coverage):

* ``natural_test_sample.fasta.gz``: a fixed random sample (``--num``, seed
  ``--seed``) of the held-out **test** split — the natural reference rows;
* ``heldout_names.txt.gz``: the record names of the valid and test splits, so
  the report can rebuild the exact **training** split from DB.fasta.gz (every
  chunk not held out) as the novelty target; searching the whole DB instead
  would find each natural reference protein itself (identity 1.0);
* ``reference.json``: where all this came from (source file and its sha256,
  split settings, counts), which the report prints.

Without ``--data`` the split is made first in a temporary folder (~2.5 min on
2 cores). The output is byte-for-byte reproducible (gzip without timestamps).
"""

from __future__ import annotations

import argparse
import gzip
import json
import sys
import tempfile
from collections.abc import Iterable
from pathlib import Path

import numpy as np

from data_prep.fasta import DEFAULT_FASTA, prepare
from protein_didi.core.checkpoint import file_sha256
from protein_didi.protein.fasta import FastaError, read_fasta
from protein_didi.protein.mmseqs import MMseqsError

PACKAGE_DATA = Path(__file__).resolve().parents[1] / "protein_didi" / "data"
SAMPLE_FILE = "natural_test_sample.fasta.gz"
HELDOUT_FILE = "heldout_names.txt.gz"
META_FILE = "reference.json"


def _write_gz(path: Path, lines: Iterable[str]) -> None:
    """gzip with mtime 0 and no file name, so the same input gives the same bytes."""
    with open(path, "wb") as raw, gzip.GzipFile(filename="", mode="wb", fileobj=raw, mtime=0) as gz:
        for line in lines:
            gz.write(line.encode())


def build(data: Path, source: Path, out: Path, num: int, seed: int, split_meta: dict) -> dict:
    """Write the three files from a prepared corpus folder ``data`` (train/valid/test.fasta)."""
    test = read_fasta(data / "test.fasta")
    heldout = sorted({rid for split in ("valid", "test") for rid, _ in read_fasta(data / f"{split}.fasta")})
    if num > len(test):
        raise ValueError(f"--num {num} exceeds the {len(test)} test sequences; choose at most {len(test)}")
    pick = np.sort(np.random.default_rng(seed).choice(len(test), size=num, replace=False))
    sample = [test[i] for i in pick]
    out.mkdir(parents=True, exist_ok=True)
    _write_gz(out / SAMPLE_FILE, (f">{rid}\n{seq}\n" for rid, seq in sample))
    _write_gz(out / HELDOUT_FILE, (f"{rid}\n" for rid in heldout))
    lengths = np.array([len(s) for _, s in sample])
    meta = {
        "source": str(source),
        "source_sha256": file_sha256(source),
        "split": split_meta,
        "test_sequences": len(test),
        "heldout_names": len(heldout),
        "sample": {
            "file": SAMPLE_FILE,
            "sequences": num,
            "seed": seed,
            "length_min": int(lengths.min()),
            "length_median": int(np.median(lengths)),
            "length_max": int(lengths.max()),
        },
        "command": f"python -m data_prep.reference --num {num} --seed {seed}",
    }
    (out / META_FILE).write_text(json.dumps(meta, indent=1) + "\n")
    return meta


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m data_prep.reference", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--data", type=Path, default=None, help="prepared corpus folder (default: split --fasta anew)")
    p.add_argument("--fasta", type=Path, default=Path(DEFAULT_FASTA), help=f"raw corpus (default {DEFAULT_FASTA})")
    p.add_argument("--num", type=int, default=400, help="test proteins to ship (default 400)")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--threads", type=int, default=None, help="MMseqs2 threads when splitting (default: all cores)")
    p.add_argument("--out", type=Path, default=PACKAGE_DATA, help=f"output folder (default {PACKAGE_DATA})")
    args = p.parse_args(argv)
    try:
        if args.num < 1:
            raise ValueError(f"--num must be ≥ 1, got {args.num}")
        if not args.fasta.is_file():
            raise FastaError(f"{args.fasta} not found; apt-get install mmseqs2-examples or give --fasta")
        with tempfile.TemporaryDirectory(prefix="reference-") as tmp:
            data = args.data
            if data is None:
                data = Path(tmp) / "corpus"
                prepare(args.fasta, data, threads=args.threads)
            split_meta = json.loads((data / "meta.json").read_text()).get("split", {})
            meta = build(data, args.fasta, args.out, args.num, args.seed, split_meta)
    except (FastaError, MMseqsError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    s = meta["sample"]
    print(f"wrote {args.out / SAMPLE_FILE}: {s['sequences']} of {meta['test_sequences']} test proteins "
          f"(lengths {s['length_min']}–{s['length_max']}, median {s['length_median']}); "
          f"{meta['heldout_names']} held-out names")  # fmt: skip
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
