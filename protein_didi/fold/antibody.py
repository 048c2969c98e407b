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

From the shell, a PDB per design plus a CSV (``python -m protein_didi.fold.antibody --fasta d.fasta --out DIR``):
IMGT-numbered (ANARCI's residue numbers and insertion codes), pRMSD in the B-factor column, H and L of a pair in
one file, a progress bar per chain, and folds kept in the machine's shared cache
(:func:`~protein_didi.fold.igfold.shared_igfold_cache`), so nothing folds twice.

pRMSD is IgFold's confidence (its predicted error), not a measured error: a design can be confidently predicted
and still wrong.
"""

from __future__ import annotations

import io
import os
import random
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from protein_didi.cli import error_line
from protein_didi.fold.igfold import IgFold, check_chain, encode_chains, shared_igfold_cache
from protein_didi.fold.result import FoldResult, ProgressCallback

CONFIDENT_PRMSD = 1.0  # Å: "share under 1 Å" (natural V domains: 96 % of chains, their shuffles: none)
PAIR_ID = re.compile(r"^(?P<stem>.+?)[|:_/](?P<chain>[HL])$")
NOT_ANTIBODY = "not an antibody V domain (ANARCI cannot number it)"
WORKERS_ENV = "PROTEIN_DIDI_IGFOLD_WORKERS"
PRMSD_NOTE = "pRMSD is IgFold's confidence (its predicted error, Å), not a measured error"


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
    imgt: tuple[tuple[str, int], ...] = ()  # ANARCI's IMGT labels ("111A") with each residue's index in sequence
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


def default_workers(device: str = "auto") -> int:
    """Fold processes: ``$PROTEIN_DIDI_IGFOLD_WORKERS``, else one per usable CPU core (at most 4) on CPU, else 1.

    Each worker folds on one thread (see :mod:`protein_didi.fold.igfold`): two single-threaded workers on two cores
    fold twice as many chains per second as one, and never spin against each other the way two threads do.
    """
    text = os.environ.get(WORKERS_ENV, "").strip()
    if text:
        if not text.isdigit() or int(text) < 1:
            raise ValueError(f"{WORKERS_ENV}={text!r} must be a number of fold processes, 1 or more")
        return int(text)
    from protein_didi.core.device import resolve_device

    if resolve_device(device).type != "cpu":
        return 1
    cores = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    return max(1, min(cores, 4))


def make_igfold(
    cache_path: str | Path | None = None,
    device: str = "auto",
    num_models: int | None = None,
    workers: int | None = None,
) -> Any:
    """IgFold in this process (``workers`` 1) or a :class:`~protein_didi.fold.fanout.FoldPool` of single-threaded
    CPU workers (the default on a multi-core CPU: :func:`default_workers`); ``cache_path`` None = the shared cache."""
    cache = Path(cache_path) if cache_path is not None else shared_igfold_cache()
    workers = workers or default_workers(device)
    if workers <= 1:
        return IgFold(device, cache, num_models=num_models)
    from protein_didi.fold.fanout import FoldPool, FoldSpec

    return FoldPool(FoldSpec(backend="igfold", num_models=num_models), [device] * workers, cache, threads=1)


@dataclass
class FoldPlan:
    """What :func:`plan_antibodies` decided: a result per record and the units (chain strings) to fold."""

    folds: list[AntibodyFold]
    units: list[str]
    unit_of: dict[int, int]  # record index → its unit in ``units``


def plan_antibodies(
    seqs: Sequence[str],
    ids: Sequence[str] | None = None,
    *,
    numberings: Sequence[Any] | None = None,
    pair: str = "ids",
) -> FoldPlan:
    """Number ``seqs`` with ANARCI (or reuse ``numberings``), give the rest a reason, pair H with L, list the units.

    ``pair="ids"`` pairs records named ``<stem>|H``/``<stem>|L`` (see :func:`pairs_from_ids`); ``pair="order"``
    pairs the k-th heavy with the k-th light chain in input order (a VH and a VL given as a pair); ``"none"``
    folds every chain alone.
    """
    from protein_didi.protein.numbering import number_antibodies

    if pair not in ("ids", "order", "none"):
        raise ValueError(f"pair={pair!r}: choose ids, order or none")
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
        out[i].imgt = tuple(num.imgt)
        out[i].reason = check_chain(s)
    ids = list(ids) if ids is not None else [str(i) for i in range(len(seqs))]
    chains = [f.chain if f.reason is None else None for f in out]
    if pair == "ids":
        pairs = pairs_from_ids(ids, chains)
    elif pair == "order":
        heavy = [i for i, c in enumerate(chains) if c == "H"]
        pairs = dict(zip(heavy, [i for i, c in enumerate(chains) if c == "L"], strict=False))
    else:
        pairs = {}
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
    return FoldPlan(out, units, unit_of)


def finish_antibodies(plan: FoldPlan, results: Sequence[FoldResult]) -> list[AntibodyFold]:
    """Fill each record of ``plan`` from the folded units (``results[k]`` folds ``plan.units[k]``)."""
    for i, k in plan.unit_of.items():
        f, r = plan.folds[i], results[k]
        f.prmsd = np.asarray(r.per_residue[f.offset : f.offset + len(f.sequence)], dtype=np.float64)
        f.pdb = r.pdb
        f.cdr_prmsd = {
            name: float(f.prmsd[a:b].mean()) for name, (a, b) in f.cdr_spans.items() if b > a and b <= len(f.prmsd)
        }
    return plan.folds


def fold_antibodies(
    seqs: Sequence[str],
    ids: Sequence[str] | None = None,
    folder: Any | None = None,
    *,
    cache_path: str | Path | None = None,
    numberings: Sequence[Any] | None = None,
    progress: ProgressCallback | None = None,
    pair: str = "ids",
) -> list[AntibodyFold]:
    """IgFold every antibody chain of ``seqs`` (see the module docstring); order and length follow ``seqs``.

    ``folder`` is an :class:`~protein_didi.fold.igfold.IgFold` (or a
    :class:`~protein_didi.fold.fanout.FoldPool` of them); by default :func:`make_igfold` builds one with
    ``cache_path`` (None: the machine's shared IgFold cache). ``numberings`` reuses ANARCI results the caller
    already has; ``pair`` is :func:`plan_antibodies`'. Raises :class:`~protein_didi.fold.result.FoldingUnavailable`
    when IgFold cannot run at all and :class:`~protein_didi.protein.numbering.AntibodyError` when ANARCI is missing.
    """
    plan = plan_antibodies(seqs, ids, numberings=numberings, pair=pair)
    if not plan.units:
        return plan.folds
    folder = folder if folder is not None else make_igfold(cache_path)
    return finish_antibodies(plan, folder.fold(plan.units, progress=progress))


def imgt_numbered_pdb(fold: AntibodyFold, partner: AntibodyFold | None = None, title: str = "") -> str:
    """``fold``'s PDB renumbered to IMGT (ANARCI's residue numbers and insertion codes; residues outside the V
    domain continue the count), pRMSD (Å) in the B-factor column, REMARKs saying what pRMSD is; biotite writes it.

    ``partner`` is the other chain of a pair (chains H and L in one file). IgFold predicts the backbone and CB
    (N, CA, C, CB, O; no side chains: its OpenMM/PyRosetta refinement is not run).
    """
    from biotite.structure.io.pdb import PDBFile

    if fold.pdb is None:
        raise ValueError("no structure to write: the record was not folded")
    atoms = PDBFile.read(io.StringIO(fold.pdb)).get_structure(model=1, extra_fields=["b_factor"])
    chains = {fold.chain or "H": fold} | ({partner.chain or "L": partner} if partner is not None else {})
    res_id = atoms.res_id.copy()
    ins_code = atoms.ins_code.copy()
    for chain_id, f in chains.items():
        sel = atoms.chain_id == chain_id
        numbers, codes = imgt_residue_numbers(len(f.sequence), f.imgt)
        index = atoms.res_id[sel] - atoms.res_id[sel].min()  # IgFold numbers each chain's residues 1…n
        if index.max(initial=-1) >= len(f.sequence):
            raise ValueError(f"chain {chain_id} of the PDB has more residues than its sequence ({len(f.sequence)})")
        res_id[sel] = numbers[index]
        ins_code[sel] = codes[index]
    atoms.res_id, atoms.ins_code = res_id, ins_code
    pdb = PDBFile()
    pdb.set_structure(atoms)
    body = io.StringIO()
    pdb.write(body)
    remarks = [
        f"TITLE     {title[:70]}" if title else None,
        "REMARK   1 PREDICTED BY IGFOLD (BACKBONE + CB; NO SIDE CHAINS, NOT REFINED)",
        "REMARK   1 RESIDUE NUMBERS AND INSERTION CODES: IMGT (ANARCI)",
        "REMARK   1 B-FACTOR = PRMSD, IGFOLD'S PREDICTED RMSD PER RESIDUE (ANGSTROM):",
        "REMARK   1 ITS CONFIDENCE (PREDICTED ERROR), NOT A MEASURED ERROR",
    ]
    return "\n".join(r for r in remarks if r) + "\n" + body.getvalue()


def imgt_residue_numbers(length: int, imgt: Sequence[tuple[str, int]]) -> tuple[np.ndarray, np.ndarray]:
    """Per residue of a chain: its IMGT number and insertion code ("" for none). Residues ANARCI left out (before
    or after the V domain, or none numbered at all) count on from their numbered neighbours: 0, -1, … before and
    129, 130, … after, so every residue keeps a unique number."""
    numbers = np.zeros(length, dtype=int)
    codes = np.full(length, "", dtype="<U1")
    known = np.zeros(length, dtype=bool)
    for label, idx in imgt:
        m = re.fullmatch(r"(-?\d+)([A-Z]*)", str(label).strip())
        if m is None or not 0 <= idx < length:
            continue
        numbers[idx], codes[idx], known[idx] = int(m[1]), m[2][-1:] if m[2] else "", True
    if not known.any():
        return np.arange(1, length + 1), codes
    first, last = int(np.argmax(known)), length - 1 - int(np.argmax(known[::-1]))
    numbers[:first] = numbers[first] - np.arange(first, 0, -1)
    numbers[last + 1 :] = numbers[last] + np.arange(1, length - last)
    for i in range(first + 1, last):  # a gap inside the domain (should not happen): follow the previous residue
        if not known[i]:
            numbers[i], codes[i] = numbers[i - 1], "Z"
    return numbers, codes


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

    from protein_didi.fold.progress import FoldProgress
    from protein_didi.fold.result import FoldingUnavailable
    from protein_didi.protein.fasta import FastaError, read_fasta
    from protein_didi.protein.numbering import AntibodyError

    parser = argparse.ArgumentParser(
        prog="python -m protein_didi.fold.antibody",
        description="Fold antibody chains with IgFold (non-commercial licence): OUT/<id>.pdb per folded record "
        "(IMGT-numbered; B-factors = pRMSD, IgFold's predicted RMSD in Å: its confidence, not a measured error) "
        "and OUT/prmsd.csv (mean, share < 1 Å, per-CDR pRMSD, or the reason). Records named <name>|H and "
        "<name>|L fold as one pair (chains H and L in one PDB); --pair pairs heavy and light chains in file order.",
    )
    parser.add_argument("--fasta", type=Path, required=True)
    parser.add_argument("--out", type=Path, required=True)
    parser.add_argument("--models", type=int, default=None, help="IgFold ensemble members, 1–4 (default 4)")
    parser.add_argument("--device", default="auto")
    parser.add_argument(
        "--pair", action="store_true", help="fold the k-th heavy chain with the k-th light chain of the file"
    )
    parser.add_argument(
        "--fold-cache",
        type=Path,
        default=None,
        help="sqlite fold cache (default: this machine's shared IgFold cache, "
        "$PROTEIN_DIDI_FOLD_CACHE or ~/.cache/protein_didi/folds/igfold-<version>/folds.sqlite)",
    )
    parser.add_argument(
        "--workers",
        type=int,
        default=None,
        help=f"fold processes, one thread each (default ${WORKERS_ENV}, else one per CPU core, at most 4)",
    )
    args = parser.parse_args(argv)
    try:
        if args.workers is not None and args.workers < 1:
            raise ValueError(f"--workers {args.workers}: give 1 or more fold processes")
        records = read_fasta(args.fasta)
        if not records:
            raise FastaError(f"{args.fasta} has no records; give a FASTA of antibody chains")
        args.out.mkdir(parents=True, exist_ok=True)
        folder = make_igfold(args.fold_cache, args.device, args.models, args.workers)
        pair = "order" if args.pair else "ids"
        plan = plan_antibodies([q for _, q in records], [rid for rid, _ in records], pair=pair)
        start = time.perf_counter()
        with FoldProgress("IgFold") as progress:
            results = folder.fold(plan.units, progress=progress) if plan.units else []
        folds = finish_antibodies(plan, results)
        seconds = time.perf_counter() - start
    except (FastaError, FoldingUnavailable, AntibodyError, ValueError, OSError) as err:
        print(error_line(err), file=sys.stderr)
        return 2
    rows = []
    names = [re.sub(r"[^A-Za-z0-9_.-]+", "_", rid).strip("_") or "design" for rid, _ in records]
    written: dict[int, str] = {}
    for i, ((rid, _), f) in enumerate(zip(records, folds, strict=True)):
        if f.pdb is not None and i not in written:
            partner = folds[f.paired_with] if f.paired_with is not None else None
            name = names[i] if partner is None else _pair_name(names[i], names[f.paired_with])
            heavy, light = (f, partner) if partner is None or f.chain == "H" else (partner, f)
            title = rid if partner is None else f"{rid} + {records[f.paired_with][0]}"
            (args.out / f"{name}.pdb").write_text(imgt_numbered_pdb(heavy, light, title=title))
            written[i] = f"{name}.pdb"
            if f.paired_with is not None:
                written[f.paired_with] = f"{name}.pdb"
        rows.append({"id": rid, "chain": f.chain, "length": len(f.sequence), "mean_prmsd": f.mean_prmsd,
                     "share_below_1A": float(np.mean(f.prmsd < CONFIDENT_PRMSD)) if f.prmsd is not None else np.nan,
                     "worst_cdr": f.worst_cdr, **{f"{c}_prmsd": v for c, v in f.cdr_prmsd.items()},
                     "paired_with": records[f.paired_with][0] if f.paired_with is not None else "",
                     "pdb": written.get(i, ""), "reason": f.reason or ""})  # fmt: skip
    pd.DataFrame(rows).to_csv(args.out / "prmsd.csv", index=False)
    stats = prmsd_summary([f.mean_prmsd for f in folds])
    lo, hi = stats["ci95"]
    folded = sum(1 for f in folds if f.pdb is not None)
    per_unit = f" ({seconds / len(plan.units):.1f} s per fold unit)" if plan.units else ""
    print(f"{folded} of {len(records)} chains folded in {seconds:.1f} s{per_unit}; mean pRMSD {stats['mean']:.2f} Å "
          f"[{lo:.2f}, {hi:.2f}], {100 * stats['share_below_1A']:.0f} % under 1 Å; wrote {args.out} "
          f"(IMGT-numbered PDBs, B-factor = pRMSD)")  # fmt: skip
    print(f"{PRMSD_NOTE}: a confident design can still be wrong.")
    for f, (rid, _) in zip(folds, records, strict=True):
        if f.reason:
            print(f"{rid}: {f.reason}")
    return 0


def _pair_name(a: str, b: str) -> str:
    """``ab1_H`` + ``ab1_L`` → ``ab1_HL``; otherwise both names joined."""
    ma, mb = PAIR_ID.match(a), PAIR_ID.match(b)
    if ma and mb and ma["stem"] == mb["stem"]:
        return f"{ma['stem']}_HL"
    return f"{a}+{b}"


if __name__ == "__main__":
    raise SystemExit(main())
