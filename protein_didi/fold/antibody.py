"""Fold antibody designs with IgFold: ANARCI decides heavy or light, H/L records pair, the rest get a reason.

:func:`fold_antibodies` is what the report, the app and the benchmarks call.
Every input gets an :class:`AntibodyFold`: a structure with per-residue
predicted RMSD (Å), its mean and the per-CDR means (IMGT CDRs from ANARCI), or
a one-line ``reason`` (not an antibody, non-standard letters, too long). Two
records whose ids differ only in a final ``H``/``L`` after ``|``, ``:``, ``_``
or ``/`` (``ab1|H``, ``ab1|L``) and that ANARCI numbers as heavy and light fold
together as a pair; each record keeps its own chain's values.

For a benchmark column::

    from protein_didi.fold.antibody import mean_prmsd, prmsd_summary
    values = mean_prmsd(seqs, cache_path="fold_cache.sqlite")  # per sequence, NaN where IgFold gave a reason
    prmsd_summary(values)                                      # mean, 95 % bootstrap interval, share < 1 Å, n

From the shell, a PDB per design plus a CSV (``python -m protein_didi.fold.antibody --fasta d.fasta --out DIR``).
"""

from __future__ import annotations

import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protein_didi.cli import error_line
from protein_didi.fold.igfold import IgFold, check_chain, encode_chains
from protein_didi.fold.result import ProgressCallback

CONFIDENT_PRMSD = 1.0  # Å: "share under 1 Å" (natural V domains: 96 % of chains, their shuffles: none)
PAIR_ID = re.compile(r"^(?P<stem>.+?)[|:_/](?P<chain>[HL])$")
NOT_ANTIBODY = "not an antibody V domain (ANARCI cannot number it)"


@dataclass
class AntibodyFold:
    """One input's IgFold result, or why there is none (``reason``); values are for this record's chain only."""

    sequence: str
    chain: str | None = None  # "H" or "L" (ANARCI's K and L are both light)
    paired_with: int | None = None  # index of the partner record when folded as an H/L pair
    prmsd: np.ndarray | None = None
    pdb: str | None = None  # the folded unit (the pair's PDB for paired records)
    cdr_prmsd: dict[str, float] = field(default_factory=dict)  # "H1" … "L3" → mean pRMSD (Å)
    cdr_spans: dict[str, tuple[int, int]] = field(default_factory=dict)  # residue spans in ``sequence``
    offset: int = 0  # where this chain starts in the PDB's residue order (light chain of a pair: len(heavy))
    reason: str | None = None

    @property
    def mean_prmsd(self) -> float:
        return float(self.prmsd.mean()) if self.prmsd is not None and self.prmsd.size else float("nan")

    @property
    def worst_cdr(self) -> str | None:
        """The CDR with the highest mean predicted RMSD (the least certain loop), or None."""
        return max(self.cdr_prmsd, key=self.cdr_prmsd.__getitem__) if self.cdr_prmsd else None


def pairs_from_ids(ids: Sequence[str], chains: Sequence[str | None]) -> dict[int, int]:
    """Heavy index → light index for records named ``<stem>[|:_/]H`` and ``<stem>[|:_/]L`` that number as such."""
    by_stem: dict[str, dict[str, int]] = {}
    for i, rid in enumerate(ids):
        m = PAIR_ID.match(rid.strip())
        if m is not None and chains[i] == m["chain"]:
            by_stem.setdefault(m["stem"], {}).setdefault(m["chain"], i)
    return {d["H"]: d["L"] for d in by_stem.values() if "H" in d and "L" in d}


def make_igfold(cache_path: str | Path | None = None, device: str = "auto", num_models: int | None = None) -> IgFold:
    return IgFold(device, cache_path, num_models=num_models)


def fold_antibodies(
    seqs: Sequence[str],
    ids: Sequence[str] | None = None,
    folder: Any | None = None,
    *,
    cache_path: str | Path | None = None,
    numberings: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
) -> list[AntibodyFold]:
    """IgFold every antibody chain of ``seqs`` (see the module docstring); order and length follow ``seqs``.

    ``folder`` is an :class:`~protein_didi.fold.igfold.IgFold` (or a
    :class:`~protein_didi.fold.fanout.FoldPool` of them); by default one is built
    on the best device with ``cache_path``. ``numberings`` reuses ANARCI results
    the caller already has. Raises :class:`~protein_didi.fold.result.FoldingUnavailable`
    when IgFold cannot run at all and :class:`~protein_didi.protein.numbering.AntibodyError`
    when ANARCI is missing.
    """
    from protein_didi.protein.numbering import number_antibodies

    seqs = ["".join(str(s).split()).upper() for s in seqs]
    out = [AntibodyFold(s) for s in seqs]
    numberable = [i for i, s in enumerate(seqs) if s and re.fullmatch(r"[A-Z]+", s)]
    if numberings is None:
        ok = [i for i in numberable if re.fullmatch(r"[ACDEFGHIKLMNPQRSTVWYX]+", seqs[i])]
        found = number_antibodies([seqs[i] for i in ok]) if ok else []
        numbering: dict[int, Any] = dict(zip(ok, found, strict=True))
    else:
        numbering = dict(enumerate(numberings))
    for i, s in enumerate(seqs):
        num = numbering.get(i)
        if num is None or not num.numbered:
            out[i].reason = (check_chain(s) if num is None else None) or NOT_ANTIBODY
            continue
        out[i].chain = num.chain_class
        out[i].cdr_spans = {f"{num.chain_class}{k}": num.regions[f"CDR{k}"] for k in (1, 2, 3)}
        out[i].reason = check_chain(s)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(seqs))]
    pairs = {
        h: lo
        for h, lo in pairs_from_ids(ids, [f.chain if f.reason is None else None for f in out]).items()
        if out[h].reason is None and out[lo].reason is None
    }
    units: list[str] = []
    unit_of: dict[int, int] = {}
    for h, lo in pairs.items():
        unit_of[h] = unit_of[lo] = len(units)
        units.append(encode_chains({"H": seqs[h], "L": seqs[lo]}))
        out[h].paired_with, out[lo].paired_with, out[lo].offset = lo, h, len(seqs[h])
    for i, f in enumerate(out):
        if f.reason is None and i not in unit_of:
            unit_of[i] = len(units)
            units.append(encode_chains({f.chain or "H": seqs[i]}))
    if not units:
        return out
    folder = folder if folder is not None else make_igfold(cache_path)
    results = folder.fold(units, progress=progress)
    for i, k in unit_of.items():
        f, r = out[i], results[k]
        f.prmsd = np.asarray(r.per_residue[f.offset : f.offset + len(f.sequence)], dtype=np.float64)
        f.pdb = r.pdb
        f.cdr_prmsd = {
            name: float(f.prmsd[a:b].mean()) for name, (a, b) in f.cdr_spans.items() if b > a and b <= len(f.prmsd)
        }
    return out


def mean_prmsd(
    seqs: Sequence[str], cache_path: str | Path | None = None, num_models: int | None = None, device: str = "auto"
) -> np.ndarray:
    """Per-sequence mean predicted RMSD (Å) of ``seqs`` as single chains; NaN where there is no structure.

    Folds are cached in ``cache_path`` (sqlite), so rerunning a benchmark costs nothing.
    """
    folder = IgFold(device, cache_path, num_models=num_models)
    return np.array([f.mean_prmsd for f in fold_antibodies(seqs, folder=folder)], dtype=np.float64)


def prmsd_summary(values: Sequence[float], n_boot: int = 1000, seed: int = 0) -> dict[str, Any]:
    """Mean predicted RMSD with its 95 % bootstrap interval, share of chains under 1 Å, and how many had a value."""
    from protein_didi.eval.antibody import bootstrap_mean

    x = np.asarray(values, dtype=np.float64)
    x = x[np.isfinite(x)]
    mean, lo, hi = bootstrap_mean(x, n_boot=n_boot, seed=seed)
    share = float(np.mean(x < CONFIDENT_PRMSD)) if x.size else float("nan")
    return {"mean": mean, "ci95": (lo, hi), "share_below_1A": share, "n": int(x.size)}


def shuffled(seq: str, seed: int = 0) -> str:
    """The same residues in a random order: same length and composition, no antibody left."""
    residues = list(seq)
    random.Random(seed).shuffle(residues)
    return "".join(residues)


def natural_reference(n: int, seed: int = 0) -> list[tuple[str, str]]:
    """``n`` real human chains (VH, Vκ, Vλ) of the repertoire's shipped test split, drawn with ``seed``."""
    from protein_didi.protein.repertoire import load_repertoire

    records = [(c.id, c.sequence) for c in load_repertoire("test")]
    if n >= len(records):
        return records
    rng = np.random.default_rng(seed)
    picks = sorted(rng.choice(len(records), size=n, replace=False).tolist())
    return [records[i] for i in picks]


def main(argv: list[str] | None = None) -> int:
    """``python -m protein_didi.fold.antibody --fasta designs.fasta --out DIR``: a PDB per design and a CSV."""
    import argparse
    import sys
    import time

    import pandas as pd

    from protein_didi.fold.result import FoldingUnavailable
    from protein_didi.protein.fasta import FastaError, read_fasta
    from protein_didi.protein.numbering import AntibodyError

    parser = argparse.ArgumentParser(
        prog="python -m protein_didi.fold.antibody",
        description="Fold antibody chains with IgFold (non-commercial licence): OUT/<id>.pdb per folded record "
        "(B-factors = predicted RMSD, Å) and OUT/prmsd.csv (mean, share < 1 Å, per-CDR pRMSD, or the reason). "
        "Records named <name>|H and <name>|L fold as one pair.",
    )
    parser.add_argument("--fasta", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", type=int, default=None, help="IgFold ensemble members, 1–4 (default 4)")
    parser.add_argument("--device", default="auto")
    args = parser.parse_args(argv)
    try:
        records = read_fasta(args.fasta)
        if not records:
            raise FastaError(f"{args.fasta} has no records; give a FASTA of antibody chains")
        args.out.mkdir(parents=True, exist_ok=True)
        folder = IgFold(args.device, args.out / "fold_cache.sqlite", num_models=args.models)
        start = time.perf_counter()
        folds = fold_antibodies([q for _, q in records], [rid for rid, _ in records], folder)
        seconds = time.perf_counter() - start
    except (FastaError, FoldingUnavailable, AntibodyError, ValueError, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    rows = []
    for (rid, _), f in zip(records, folds, strict=True):
        name = re.sub(r"[^A-Za-z0-9_.-]+", "_", rid).strip("_") or "design"
        if f.pdb is not None:
            (args.out / f"{name}.pdb").write_text(f.pdb)
        rows.append({"id": rid, "chain": f.chain, "length": len(f.sequence), "mean_prmsd": f.mean_prmsd,
                     "share_below_1A": float(np.mean(f.prmsd < CONFIDENT_PRMSD)) if f.prmsd is not None else np.nan,
                     "worst_cdr": f.worst_cdr, **{f"{c}_prmsd": v for c, v in f.cdr_prmsd.items()},
                     "pdb": f"{name}.pdb" if f.pdb is not None else "", "reason": f.reason or ""})  # fmt: skip
    pd.DataFrame(rows).to_csv(args.out / "prmsd.csv", index=False)
    stats = prmsd_summary([f.mean_prmsd for f in folds])
    lo, hi = stats["ci95"]
    print(f"{stats['n']} of {len(records)} chains folded in {seconds:.1f} s; mean pRMSD {stats['mean']:.2f} Å "
          f"[{lo:.2f}, {hi:.2f}], {100 * stats['share_below_1A']:.0f} % under 1 Å; wrote {args.out}")  # fmt: skip
    for f, (rid, _) in zip(folds, records, strict=True):
        if f.reason:
            print(f"{rid}: {f.reason}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
