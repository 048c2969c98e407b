"""Natural antibody reference set from real sequences available offline: ``python -m data_prep.antibodies --out F``.

Two sources, each record labelled by the first field of its id:

* ``mature`` / ``v_gene``: entries of Debian's ``mmseqs2-examples`` UniProt sample
  (20,000 proteins) that ANARCI numbers as an antibody H/K/L chain at ≥ 70 %
  identity to a germline V gene (this keeps mammalian V genes and drops
  surrogate light chains such as VPREB1 and distant fish or frog V-like
  domains). ``mature`` ones also carry a J region (J identity ≥ 0.5): real
  rearranged V domains. ``v_gene`` ones have none: V-gene translations.
  Only the numbered V domain is kept (``start-end``, 1-based, in the id).
* ``germline_vj``: ANARCI's germline V genes (human and mouse, one allele per
  gene) each joined to a germline J gene of the same species and chain with the
  functional W/F-G-x-G motif at IMGT 118–121, drawn with a fixed seed. Both
  segments are real, but the join is not an observed antibody: there is no D
  gene and no junctional diversity, so CDR3s are short
  (heavy CDR3 ≈ 5 residues instead of ≈ 15); use them for framework/germline
  statistics, not as a CDR3 reference.

Candidates from the UniProt sample are found first with ``hmmsearch`` against
ANARCI's own HMMs at a bit score of 40 (half ANARCI's threshold of 80, so none
is lost): numbering all 20,000 proteins with ANARCI would take 20+ minutes,
this takes seconds. Every kept record is then numbered by ANARCI.
"""

from __future__ import annotations

import argparse
import gzip
import importlib.util
import re
import shutil
import subprocess
import sys
import tempfile
from collections import Counter
from pathlib import Path

import numpy as np

from protein_didi.protein.numbering import ANARCI_SPECIES, AntibodyError, number_antibodies

DEFAULT_DB = "/usr/share/doc/mmseqs2/example-data/DB.fasta.gz"
DEFAULT_OUT = Path(__file__).resolve().parents[1] / "protein_didi" / "eval" / "data" / "natural_antibodies.fasta"
GERMLINE_SPECIES = ("human", "mouse")
MIN_V_IDENTITY = 0.70
MIN_J_IDENTITY = 0.5
PREFILTER_BITS = 40.0
STANDARD = re.compile(r"^[ACDEFGHIKLMNPQRSTVWY]+$")
J_MOTIF = re.compile(r"^[WF]G.G$")
"""IMGT 118–121 of a functional J gene (W-G-x-G heavy, F-G-x-G light); ANARCI also lists J genes without it."""


def _anarci_hmm() -> Path:
    spec = importlib.util.find_spec("anarci")
    if spec is None or not spec.submodule_search_locations:
        raise AntibodyError("the anarci package is not installed; run: pip install -e .[antibody]")
    return Path(next(iter(spec.submodule_search_locations))) / "dat" / "HMMs" / "ALL.hmm"


def read_uniprot(path: Path) -> list[tuple[str, str, str]]:
    """(accession id, header description, sequence) of every record of a (gzipped) UniProt FASTA."""
    opener = gzip.open if path.suffix == ".gz" else open
    records: list[tuple[str, str, str]] = []
    with opener(path, "rt") as fh:
        head, parts = None, []
        for line in fh:
            if line.startswith(">"):
                if head is not None:
                    records.append((head.split()[0], head, "".join(parts)))
                head, parts = line[1:].strip(), []
            else:
                parts.append(line.strip())
        if head is not None:
            records.append((head.split()[0], head, "".join(parts)))
    return records


def hmm_candidates(records: list[tuple[str, str, str]], bits: float = PREFILTER_BITS) -> set[str]:
    """Ids with an ``hmmsearch`` hit of at least ``bits`` to any of ANARCI's V-domain HMMs."""
    if shutil.which("hmmsearch") is None:
        raise AntibodyError("hmmsearch is not on PATH; install Debian package hmmer")
    with tempfile.TemporaryDirectory(prefix="protein_didi-ab-") as tmp:
        fasta, table = Path(tmp) / "db.fasta", Path(tmp) / "hits.tbl"
        with open(fasta, "w") as fh:
            for rid, _, seq in records:
                fh.write(f">{rid}\n{seq}\n")
        cmd = ["hmmsearch", "--cpu", "1", "-T", str(bits), "--tblout", str(table), "-o", "/dev/null"]
        subprocess.run([*cmd, str(_anarci_hmm()), str(fasta)], check=True, capture_output=True)
        return {line.split()[0] for line in table.read_text().splitlines() if not line.startswith("#")}


def _field(value: str) -> str:
    return re.sub(r"[\s|]+", "_", value.strip())


def uniprot_antibodies(db: Path) -> tuple[list[tuple[str, str]], Counter]:
    """``mature`` and ``v_gene`` records from the UniProt sample, and counts of why candidates were dropped."""
    records = read_uniprot(db)
    hits = hmm_candidates(records)
    cands = [r for r in records if r[0] in hits]
    nums = number_antibodies([seq for _, _, seq in cands], species=None)
    out: list[tuple[str, str]] = []
    why: Counter = Counter()
    for (rid, head, _), num in zip(cands, nums, strict=True):
        if not num.numbered:
            why["not numbered as H/K/L"] += 1
            continue
        if (num.v_identity or 0.0) < MIN_V_IDENTITY:
            why[f"V identity < {MIN_V_IDENTITY}"] += 1
            continue
        start, end = num.domain
        domain = num.sequence[start:end]
        if not STANDARD.match(domain):
            why["non-standard residue"] += 1
            continue
        kind = "mature" if (num.j_identity or 0.0) >= MIN_J_IDENTITY else "v_gene"
        organism = re.search(r"OS=(.+?) (?:OX|GN|PE)=", head)
        acc = rid.split("|")[1] if rid.count("|") >= 2 else rid
        name = rid.split("|")[2] if rid.count("|") >= 2 else rid
        fields = [
            kind,
            f"uniprot:{acc}",
            name,
            _field(organism.group(1) if organism else "unknown"),
            num.chain_type,
            num.v_gene or "",
            f"{start + 1}-{end}",
        ]
        out.append(("|".join(fields), domain))
    return out, why


def _one_allele_per_gene(genes: dict[str, str]) -> list[tuple[str, str]]:
    """The lowest-numbered allele of each gene (``IGHV1-18*01`` over ``*03``), sorted by name."""
    best: dict[str, str] = {}
    for allele in sorted(genes):
        best.setdefault(allele.split("*")[0], allele)
    return [(best[g], genes[best[g]]) for g in sorted(best)]


def germline_vj(seed: int = 0) -> tuple[list[tuple[str, str]], Counter]:
    """Germline V genes joined to a seeded-random germline J of the same species and chain, ANARCI-checked."""
    try:
        from anarci.germlines import all_germlines
    except ImportError:
        raise AntibodyError("the anarci package is not installed; run: pip install -e .[antibody]") from None
    rng = np.random.default_rng(seed)
    recs: list[tuple[str, str, str]] = []
    for species in GERMLINE_SPECIES:
        for chain in ("H", "K", "L"):
            v_genes = _one_allele_per_gene(all_germlines["V"][chain].get(species, {}))
            j_all = _one_allele_per_gene(all_germlines["J"][chain].get(species, {}))
            j_genes = [(n, a) for n, a in j_all if J_MOTIF.match(a[117:121])]
            if not v_genes or not j_genes:
                continue
            for v_name, v_aligned in v_genes:
                j_name, j_aligned = j_genes[int(rng.integers(len(j_genes)))]
                j_first = next(i for i, c in enumerate(j_aligned) if c != "-")
                if any(c != "-" for c in v_aligned[j_first:]):  # segments would overlap in IMGT positions
                    continue
                seq = (v_aligned[:j_first] + j_aligned[j_first:]).replace("-", "")
                if STANDARD.match(seq):
                    recs.append((f"germline_vj|anarci:{species}|{chain}|{v_name}+{j_name}", chain, seq))
    nums = number_antibodies([s for _, _, s in recs], species=list(GERMLINE_SPECIES))
    out: list[tuple[str, str]] = []
    why: Counter = Counter()
    for (rid, chain, seq), num in zip(recs, nums, strict=True):
        if not num.numbered:
            why["not numbered"] += 1
        elif num.chain_type != chain:
            why["numbered as another chain type"] += 1
        else:
            out.append((rid, seq))
    return out, why


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--db", default=DEFAULT_DB, help="UniProt FASTA (default: mmseqs2-examples' DB.fasta.gz)")
    parser.add_argument("--out", default=str(DEFAULT_OUT), help="output FASTA")
    parser.add_argument("--seed", type=int, default=0, help="seed of the V–J pairing")
    args = parser.parse_args(argv)
    db = Path(args.db)
    if not db.is_file():
        print(f"error: {db} not found; install Debian package mmseqs2-examples or pass --db", file=sys.stderr)
        return 2
    try:
        uni, uni_why = uniprot_antibodies(db)
        germ, germ_why = germline_vj(args.seed)
    except AntibodyError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 2
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    with open(out, "w") as fh:
        for rid, seq in uni + germ:
            fh.write(f">{rid}\n{seq}\n")
    kinds = Counter(rid.split("|")[0] for rid, _ in uni + germ)
    chains = Counter(
        (rid.split("|")[0], rid.split("|")[4 if rid.startswith(("mature", "v_gene")) else 2]) for rid, _ in uni + germ
    )
    print(f"wrote {len(uni) + len(germ)} sequences to {out}: {dict(kinds)}; by chain {dict(sorted(chains.items()))}")
    print(f"UniProt candidates dropped: {dict(uni_why)}; germline joins dropped: {dict(germ_why)}")
    print(f"species searched for UniProt entries: {', '.join(ANARCI_SPECIES)}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
