"""Real human antibody repertoires, offline: ``python -m data_prep.repertoire --out data/repertoire``.

Source: the ``abnativ==2.0.9`` wheel on PyPI ships AbNatiV's held-out sets of real OAS chains as CSV
(licence CC BY-NC-SA 4.0, non-commercial: see ``LICENSE-abnativ.txt`` written beside the output):
50,000 human VH, 50,000 human VL (κ and λ) and 50,000 VH/VL pairs, of which the 30,831 labelled
``pairedAbNGS`` are real paired repertoires; the other 19,169 (``pIgGen``) may be generated and are left
out, as is the VHH set (camelid). The wheel is fetched with ``pip download --no-deps`` (or given with
``--wheel``); its CSVs are read from the zip, nothing is installed.

Steps, each recorded in ``manifest.json`` with counts:

1. read VH, VL and the real pairs; drop exact duplicate sequences (pairs first, so a chain seen both
   paired and alone keeps its partner);
2. number every chain with ANARCI (IMGT, human germlines) in chunks cached under ``.numbering/``, so an
   interrupted run resumes where it stopped;
3. keep the chains :mod:`protein_didi.protein.chain_validity` calls valid (a pair only when both are);
4. cluster: chains of one class with the same V gene (allele dropped) and CDR3 length whose CDR3 is
   ≥ 80 % identical to a cluster representative's are one clonal cluster (greedy, as CD-HIT and MMseqs2
   cluster); the two chains of a pair join their clusters, so a pair never spans two splits;
5. assign whole clusters to train / validation / test (80 / 10 / 10 % of clusters, seeded), so no CDR3
   cluster spans two splits.

Outputs in ``--out``: ``chains.tsv.gz`` (every kept chain: id, split, chain type, sequence, pair,
germlines, CDR3, cluster, source, original id), ``{train,validation,test}.fasta`` (for ``train_teacher``),
``numbering.jsonl.gz`` (ANARCI's numbering per chain, readable without ANARCI), ``shards/`` (what
``train_teacher --data`` reads), ``manifest.json`` and the licence. ``--reference`` also writes the package's
small shipped reference (:mod:`protein_didi.protein.repertoire`): a sample of the validation and test splits
with their numbering, and the train split's length distributions.
"""

from __future__ import annotations

import argparse
import gzip
import hashlib
import json
import os
import sys
import tempfile
import zipfile
from collections import Counter, defaultdict
from collections.abc import Iterable, Sequence
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from tqdm import tqdm

from protein_didi.cli import error_line
from protein_didi.core.checkpoint import file_sha256
from protein_didi.core.wheel_files import WheelFilesMissing, download_wheel
from protein_didi.protein.chain_validity import check_chain
from protein_didi.protein.numbering import (
    AntibodyError,
    number_antibodies,
    numbering_from_record,
    numbering_record,
)
from protein_didi.protein.repertoire import LENGTHS_FILE, LICENSE_NOTE, REFERENCE_DIR, REFERENCE_FILE, SPLITS

WHEEL = "abnativ==2.0.9"
MEMBERS = {
    "vh": "abnativ/model/percentiles/test_vh_v2_abnativ_seq_scores.csv",
    "vl": "abnativ/model/percentiles/test_vl_v2_abnativ_seq_scores.csv",
    "paired": "abnativ/model/percentiles/test_vpaired_v2_abnativ_seq_scores.csv",
}
LICENSE_MEMBER = "abnativ-2.0.9.dist-info/licenses/LICENSE"
REAL_PAIRS = "pairedAbNGS"
CDR3_IDENTITY = 0.8
SPLIT_FRACTIONS = {"train": 0.8, "validation": 0.1, "test": 0.1}
CHUNK = 1000
REFERENCE_SIZES = {"H": 600, "K": 300, "L": 300, "pairs": 200}
"""Chains per split in the shipped reference: heavy, kappa, lambda (unpaired) and real pairs."""


@dataclass
class Chain:
    """One chain read from the wheel, with what the later steps learn about it."""

    id: str
    source: str  # vh | vl | paired
    sequence: str
    origin: str  # the CSV's own id
    pair: str = ""  # pair id for chains of a real pair
    record: dict = field(default_factory=dict)  # numbering_record once numbered


# -- reading ---------------------------------------------------------------------------------------------------------
def read_wheel(wheel: Path, limit: int | None = None) -> list[Chain]:
    """VH, VL and real paired chains from the wheel's CSVs, exact duplicates dropped (pairs first)."""
    chains: list[Chain] = []
    seen: set[str] = set()
    with zipfile.ZipFile(wheel) as zf:
        missing = [m for m in MEMBERS.values() if m not in zf.namelist()]
        if missing:
            raise AntibodyError(f"{wheel.name} has no {missing[0]}; give the {WHEEL} wheel")
        paired = pd.read_csv(zf.open(MEMBERS["paired"]), usecols=["seq_id", "input_seq_vh", "input_seq_vl"])
        paired = paired[paired["seq_id"].str.startswith(REAL_PAIRS)].head(limit)
        for k, row in enumerate(paired.itertuples(index=False)):
            vh, vl = row.input_seq_vh.strip().upper(), row.input_seq_vl.strip().upper()
            if vh in seen or vl in seen:
                continue
            seen.update((vh, vl))
            pair = f"pair{k:05d}"
            chains += [
                Chain(f"{pair}_H", "paired", vh, row.seq_id, pair),
                Chain(f"{pair}_L", "paired", vl, row.seq_id, pair),
            ]
        for source in ("vh", "vl"):
            table = pd.read_csv(zf.open(MEMBERS[source]), usecols=["seq_id", "input_seq"]).head(limit)
            for row in table.itertuples(index=False):
                seq = row.input_seq.strip().upper()
                if seq not in seen:
                    seen.add(seq)
                    chains.append(Chain(f"{source}_{row.seq_id}", source, seq, str(row.seq_id)))
    return chains


# -- numbering (chunked, cached, two processes) ------------------------------------------------------------------------
def _number_chunk(seqs: list[str]) -> list[dict]:
    return [numbering_record(n) for n in number_antibodies(seqs, species=("human",))]


def number_all(chains: list[Chain], cache: Path, workers: int) -> None:
    """Fill ``chain.record`` for every chain; each chunk of :data:`CHUNK` is cached (atomically) once done."""
    cache.mkdir(parents=True, exist_ok=True)
    chunks = []
    for source in dict.fromkeys(c.source for c in chains):  # per source, so a --limit run's chunks serve a full run
        own = [c for c in chains if c.source == source]
        chunks += [own[i : i + CHUNK] for i in range(0, len(own), CHUNK)]

    def path(chunk: list[Chain]) -> Path:
        digest = hashlib.sha256("\n".join(c.sequence for c in chunk).encode()).hexdigest()[:16]
        return cache / f"{digest}.json.gz"

    todo = [c for c in chunks if not path(c).exists()]
    done = len(chains) - sum(len(c) for c in todo)
    with (
        ProcessPoolExecutor(max_workers=workers) as pool,
        tqdm(total=len(chains), desc="ANARCI numbering", unit="chain", initial=done) as bar,
    ):
        futures = {pool.submit(_number_chunk, [c.sequence for c in chunk]): chunk for chunk in todo}
        for future, chunk in futures.items():
            records = future.result()
            tmp = path(chunk).with_suffix(".tmp")
            with gzip.open(tmp, "wt") as fh:
                json.dump(records, fh)
            os.replace(tmp, path(chunk))
            bar.update(len(chunk))
    for chunk in chunks:
        with gzip.open(path(chunk), "rt") as fh:
            for chain, record in zip(chunk, json.load(fh), strict=True):
                chain.record = record


# -- validity, clusters, splits ----------------------------------------------------------------------------------------
def keep_valid(chains: list[Chain]) -> tuple[list[Chain], dict[str, Counter]]:
    """The valid chains (pairs only when both chains are valid) and the reasons for dropping, per source."""
    dropped: dict[str, Counter] = defaultdict(Counter)
    verdict = {}
    for c in chains:
        check = check_chain(numbering_from_record(c.sequence, c.record))
        verdict[c.id] = check.valid
        if not check.valid:
            dropped[c.source][(check.reason or "").split(" (")[0]] += 1
    bad_pairs = {c.pair for c in chains if c.pair and not verdict[c.id]}
    for c in chains:
        if c.pair in bad_pairs and verdict[c.id]:
            dropped[c.source]["partner invalid"] += 1
    kept = [c for c in chains if verdict[c.id] and c.pair not in bad_pairs]
    return kept, dropped


class UnionFind:
    def __init__(self, n: int) -> None:
        self.parent = list(range(n))

    def find(self, i: int) -> int:
        while self.parent[i] != i:
            self.parent[i] = self.parent[self.parent[i]]
            i = self.parent[i]
        return i

    def union(self, i: int, j: int) -> None:
        ri, rj = self.find(i), self.find(j)
        if ri != rj:
            self.parent[max(ri, rj)] = min(ri, rj)


def cdr3_of(chain: Chain) -> str:
    return numbering_from_record(chain.sequence, chain.record).region("CDR3")


def chain_class(chain: Chain) -> str:
    return "H" if chain.record["chain_type"] == "H" else "L"


def clusters(chains: Sequence[Chain], identity: float = CDR3_IDENTITY) -> list[int]:
    """Component id per chain: greedy clusters of chains with the same class, V gene and CDR3 length whose CDR3 is
    ≥ ``identity`` identical to the cluster's representative, with the two chains of a pair joined.

    Greedy (each chain joins the first representative within reach, as CD-HIT and MMseqs2 cluster), not single
    linkage: light-chain CDR3s are close to germline, and chaining them through pairs would merge half the
    repertoire into one component. Representatives are taken in input order, so the result is deterministic.
    """
    uf = UnionFind(len(chains))
    buckets: dict[tuple[str, str, int], list[int]] = defaultdict(list)
    cdr3 = [cdr3_of(c) for c in chains]
    for i, c in enumerate(chains):
        buckets[(chain_class(c), c.record["v_gene"].split("*")[0], len(cdr3[i]))].append(i)
    for (_, _, length), members in buckets.items():
        if len(members) < 2 or length == 0:
            continue
        codes = np.frombuffer("".join(cdr3[i] for i in members).encode(), dtype=np.uint8).reshape(len(members), length)
        free = np.ones(len(members), dtype=bool)
        for a in range(len(members)):
            if not free[a]:
                continue
            near = free & ((codes == codes[a]).sum(1) >= identity * length)
            for b in np.nonzero(near)[0]:
                uf.union(members[a], members[int(b)])
            free &= ~near
    first: dict[str, int] = {}
    for i, c in enumerate(chains):
        if c.pair:
            if c.pair in first:
                uf.union(first[c.pair], i)
            else:
                first[c.pair] = i
    return [uf.find(i) for i in range(len(chains))]


def assign_splits(components: Sequence[int], seed: int) -> list[str]:
    """Whole components to splits: a seeded uniform draw per component against :data:`SPLIT_FRACTIONS`."""
    roots = sorted(set(components))
    draw = np.random.default_rng(seed).random(len(roots))
    edges = np.cumsum(list(SPLIT_FRACTIONS.values()))
    names = list(SPLIT_FRACTIONS)
    split_of = {r: names[int(np.searchsorted(edges, u, side="right"))] for r, u in zip(roots, draw, strict=True)}
    return [split_of[c] for c in components]


# -- writing -----------------------------------------------------------------------------------------------------------
def table(chains: Sequence[Chain], components: Sequence[int], splits: Sequence[str]) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "id": [c.id for c in chains],
            "split": splits,
            "chain_type": [c.record["chain_type"] for c in chains],
            "sequence": [c.sequence for c in chains],
            "pair": [c.pair for c in chains],
            "v_gene": [c.record["v_gene"] for c in chains],
            "j_gene": [c.record["j_gene"] for c in chains],
            "v_identity": [round(c.record["v_identity"], 4) for c in chains],
            "cdr3": [cdr3_of(c) for c in chains],
            "cluster": components,
            "source": [c.source for c in chains],
            "origin": [c.origin for c in chains],
        }
    )


def _atomic_text(path: Path, text: str, compress: bool = False) -> None:
    tmp = path.with_name(path.name + ".tmp")
    if compress:
        with gzip.open(tmp, "wt") as fh:
            fh.write(text)
    else:
        tmp.write_text(text)
    os.replace(tmp, path)


def write_outputs(out: Path, chains: list[Chain], frame: pd.DataFrame) -> None:
    out.mkdir(parents=True, exist_ok=True)
    tmp = out / "chains.tsv.gz.tmp"
    frame.to_csv(tmp, sep="\t", index=False, compression="gzip")
    os.replace(tmp, out / "chains.tsv.gz")
    for split in SPLITS:
        part = frame[frame["split"] == split]
        lines = [f">{r.id} chain={r.chain_type} pair={r.pair or '-'}\n{r.sequence}\n" for r in part.itertuples()]
        _atomic_text(out / f"{split}.fasta", "".join(lines))
    records = (json.dumps({"id": c.id, **c.record}) for c in chains)
    _atomic_text(out / "numbering.jsonl.gz", "\n".join(records) + "\n", compress=True)


def reference_sample(frame: pd.DataFrame, chains: Sequence[Chain], seed: int) -> list[dict]:
    """Per split (validation, test): :data:`REFERENCE_SIZES` unpaired H, K, L chains and real pairs, seeded."""
    by_id = {c.id: c for c in chains}
    rng = np.random.default_rng(seed)
    out: list[dict] = []
    for split in ("validation", "test"):
        part = frame[frame["split"] == split]
        unpaired = part[part["pair"] == ""]
        for chain_type in ("H", "K", "L"):
            pool = unpaired[unpaired["chain_type"] == chain_type]["id"].tolist()
            out += [_ref_row(by_id[i], split) for i in _pick(pool, REFERENCE_SIZES[chain_type], rng)]
        pairs = sorted(set(part.loc[part["pair"] != "", "pair"]))
        for pair in _pick(pairs, REFERENCE_SIZES["pairs"], rng):
            out += [_ref_row(by_id[f"{pair}_H"], split), _ref_row(by_id[f"{pair}_L"], split)]
    return out


def _pick(pool: list, n: int, rng: np.random.Generator) -> list:
    return [pool[i] for i in sorted(rng.choice(len(pool), size=min(n, len(pool)), replace=False))]


def _ref_row(chain: Chain, split: str) -> dict:
    return {"id": chain.id, "split": split, "sequence": chain.sequence, "pair": chain.pair, "origin": chain.origin,
            "numbering": chain.record}  # fmt: skip


def length_distributions(frame: pd.DataFrame) -> dict:
    """The train split's chain and CDR3 length histograms per chain type (H, K, L): what sampling and the
    CDR-length checks read (the test split stays unseen)."""
    train = frame[frame["split"] == "train"]
    out: dict[str, dict] = {}
    for chain_type in ("H", "K", "L"):
        part = train[train["chain_type"] == chain_type]
        out[chain_type] = {
            "chain": {int(k): int(v) for k, v in sorted(part["sequence"].str.len().value_counts().items())},
            "cdr3": {int(k): int(v) for k, v in sorted(part["cdr3"].str.len().value_counts().items())},
        }
    return out


def write_reference(
    frame: pd.DataFrame, chains: Sequence[Chain], manifest: dict, licence_text: str, folder: Path, seed: int
) -> None:
    folder.mkdir(parents=True, exist_ok=True)
    rows = reference_sample(frame, chains, seed)
    _atomic_text(folder / REFERENCE_FILE, "".join(json.dumps(r) + "\n" for r in rows), compress=True)
    lengths = {"splits": "train", "source": manifest["source"], **length_distributions(frame)}
    _atomic_text(folder / LENGTHS_FILE, json.dumps(lengths, indent=1) + "\n")
    provenance = {k: manifest[k] for k in ("source", "licence", "splits", "clusters")}
    provenance["reference_sizes_per_split"] = REFERENCE_SIZES
    _atomic_text(folder / "provenance.json", json.dumps(provenance, indent=1) + "\n")
    _atomic_text(folder / "LICENSE", licence_text)


# -- main --------------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="python -m data_prep.repertoire", description=__doc__.split("\n\n")[0])
    p.add_argument("--out", type=Path, default=Path("data/repertoire"), help="output folder (default data/repertoire)")
    p.add_argument("--wheel", type=Path, default=None, help=f"a local {WHEEL} wheel (default: pip download it)")
    p.add_argument("--limit", type=int, default=None, help="read at most N rows per CSV (a quick run)")
    p.add_argument("--workers", type=int, default=min(2, os.cpu_count() or 1), help="ANARCI processes (default 2)")
    p.add_argument("--seed", type=int, default=0, help="split and reference-sample seed")
    p.add_argument(
        "--reference", type=Path, nargs="?", const=REFERENCE_DIR, default=None,
        help=f"also write the shipped reference sample (default folder {REFERENCE_DIR})",
    )  # fmt: skip
    return p


def main(argv: Iterable[str] | None = None) -> int:
    args = build_parser().parse_args(list(argv) if argv is not None else None)
    try:
        with tempfile.TemporaryDirectory(prefix="abnativ-") as tmp:
            wheel = args.wheel or download_wheel(WHEEL, Path(tmp))
            if not wheel.is_file():
                raise AntibodyError(f"wheel {wheel} does not exist; give the {WHEEL} wheel or omit --wheel")
            chains = read_wheel(wheel, args.limit)
            with zipfile.ZipFile(wheel) as zf:
                licence_text = zf.read(LICENSE_MEMBER).decode()
            digest = file_sha256(wheel)
        read = Counter(c.source for c in chains)
        number_all(chains, args.out / ".numbering", args.workers)
        kept, dropped = keep_valid(chains)
        components = clusters(kept)
        splits = assign_splits(components, args.seed)
        frame = table(kept, components, splits)
        manifest = {
            "source": {"wheel": WHEEL, "sha256": digest, "members": MEMBERS, "real_pairs": REAL_PAIRS},
            "licence": "CC BY-NC-SA 4.0 (AbNatiV / OAS data): non-commercial use only",
            "read": dict(read),
            "dropped": {k: dict(v) for k, v in dropped.items()},
            "kept": {k: int(v) for k, v in frame["source"].value_counts().items()},
            "chain_types": {k: int(v) for k, v in frame["chain_type"].value_counts().items()},
            "splits": {s: int((frame["split"] == s).sum()) for s in SPLITS},
            "clusters": {
                "rule": f"same class, V gene and CDR3 length, CDR3 identity ≥ {CDR3_IDENTITY} to the cluster's "
                "representative (greedy); a pair's two chains joined",
                "largest_component": int(frame.groupby("cluster").size().max()),
                "per_split": {s: int(frame.loc[frame["split"] == s, "cluster"].nunique()) for s in SPLITS},
                "spanning_splits": int((frame.groupby("cluster")["split"].nunique() > 1).sum()),
            },
            "seed": args.seed,
        }
        write_outputs(args.out, kept, frame)
        _atomic_text(args.out / "manifest.json", json.dumps(manifest, indent=1) + "\n")
        _atomic_text(args.out / "LICENSE-abnativ.txt", licence_text)
        from data_prep.fasta import prepare_splits  # the shards train_teacher reads, the splits kept as made here

        split_fastas = {"train": "train", "valid": "validation", "test": "test"}
        prepare_splits({k: args.out / f"{v}.fasta" for k, v in split_fastas.items()}, args.out / "shards")
        if args.reference is not None:
            write_reference(frame, kept, manifest, licence_text, args.reference, args.seed)
    except (AntibodyError, WheelFilesMissing, OSError, zipfile.BadZipFile) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    print(f"{len(kept)} of {len(chains)} chains kept; splits {manifest['splits']}; {LICENSE_NOTE}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
