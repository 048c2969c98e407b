"""Antibody folding speed on CPU: ``fold.antibody`` per chain, and two reports on 8 designs with structures.

    python bench/antibody_fold_speed.py [--designs 8] [--models 4] [--keep DIR]

An engineer's afternoon, timed end to end as the commands run (wall clock, process start included):

1. ``python -m protein_didi.fold.antibody`` on 8 VH chains with an empty cache of its own: seconds per chain
   (target ≤ 5 s a chain on 2 quiet cores).
2. ``python -m protein_didi.report --antibody --offline`` on those 8 designs with a fresh shared IgFold cache
   (``$PROTEIN_DIDI_FOLD_CACHE``): the first report on a machine, which also folds the reference rows and the
   shuffled controls (target ≤ 2 min).
3. The same report on 8 OTHER designs: the references come from the shared cache, so it must be no slower.
4. In this process, one thread, the whole ensemble: wall and CPU seconds per chain for 3 more VH chains. CPU
   seconds do not grow with other jobs' load, so they estimate the wall time on a quiet core.

The "designs" are real VH chains of the repertoire's validation split (the report's reference rows come from the
test split): folding time depends on chain count and length, not on who wrote the chain. ESMFold has no weights
here (``--offline``), so the reports' pLDDT is one note. The machine is shared: ``uptime``'s load averages are
recorded before and after each step; read the times as upper bounds when the load exceeds the core count.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from _common import write_results  # bench/ is on sys.path when a script here runs

from protein_didi.protein.repertoire import load_repertoire

TARGET_REPORT_S = 120.0
TARGET_CHAIN_S = 5.0


def load() -> str:
    """The 1/5/15-minute load averages, as ``uptime`` prints them."""
    return " ".join(f"{x:.2f}" for x in os.getloadavg())


def run(cmd: list[str], env: dict[str, str]) -> tuple[float, str]:
    """Wall seconds of ``cmd`` (its stderr's last line kept for the record); a failure stops the benchmark."""
    start = time.perf_counter()
    done = subprocess.run(cmd, env=env, capture_output=True, text=True)
    seconds = time.perf_counter() - start
    if done.returncode != 0:
        sys.exit(f"{' '.join(cmd)} failed ({done.returncode}): {done.stderr.strip()[-2000:]}")
    return seconds, done.stdout.strip().splitlines()[0] if done.stdout.strip() else ""


def write_fasta(path: Path, records: list[tuple[str, str]]) -> Path:
    path.write_text("".join(f">{rid}\n{seq}\n" for rid, seq in records))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--designs", type=int, default=8, help="designs per report (default 8)")
    parser.add_argument("--models", type=int, default=4, help="IgFold ensemble members (default 4, as shipped)")
    parser.add_argument("--keep", type=Path, default=None, help="keep the outputs here instead of a temp folder")
    args = parser.parse_args()

    heavy = [(c.id, c.sequence) for c in load_repertoire("validation", chain_types=("H",))]
    first, second = heavy[: args.designs], heavy[args.designs : 2 * args.designs]
    root = args.keep or Path(tempfile.mkdtemp(prefix="antibody-fold-speed-"))
    root.mkdir(parents=True, exist_ok=True)
    env = os.environ | {
        "PROTEIN_DIDI_FOLD_CACHE": str(root / "shared-cache"),  # a machine that has never folded the references
        "PROTEIN_DIDI_IGFOLD_MODELS": str(args.models),
    }
    fasta_a = write_fasta(root / "designs_a.fasta", first)
    fasta_b = write_fasta(root / "designs_b.fasta", second)
    rows = []

    before = load()
    cmd = [sys.executable, "-m", "protein_didi.fold.antibody", "--fasta", str(fasta_a), "--out", str(root / "cli")]
    seconds, line = run([*cmd, "--fold-cache", str(root / "cli_cache.sqlite"), "--models", str(args.models)], env)
    rows.append({"step": f"fold.antibody, {len(first)} VH (empty cache)", "seconds": round(seconds, 1),
                 "per_chain_s": round(seconds / len(first), 2), "target_s": f"≤ {TARGET_CHAIN_S:.0f} a chain",
                 "load_before": before, "load_after": load(), "output": line})  # fmt: skip

    for label, fasta in (("first report (references fold)", fasta_a), ("second report, other designs", fasta_b)):
        before = load()
        out = root / ("report_a" if fasta is fasta_a else "report_b")
        cmd = [sys.executable, "-m", "protein_didi.report", "--fasta", str(fasta), "--out", str(out)]
        seconds, _ = run([*cmd, "--antibody", "--offline"], env)
        rows.append({"step": f"report on {len(first)} designs with structures: {label}", "seconds": round(seconds, 1),
                     "per_chain_s": None, "target_s": f"≤ {TARGET_REPORT_S:.0f}", "load_before": before,
                     "load_after": load(), "output": str(out / "report.html")})  # fmt: skip

    import torch

    from protein_didi.fold.igfold import IgFold

    torch.set_num_threads(1)
    folder = IgFold("cpu", None, num_models=args.models).load()
    third = heavy[2 * args.designs : 2 * args.designs + 3]
    before, wall, cpu = load(), time.perf_counter(), time.process_time()
    folder.fold([q for _, q in third])
    wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
    rows.append({"step": f"in-process fold, {args.models} models, 1 thread ({len(third)} VH)",
                 "seconds": round(wall, 1), "per_chain_s": round(wall / len(third), 2),
                 "target_s": f"≤ {TARGET_CHAIN_S:.0f} a chain", "load_before": before, "load_after": load(),
                 "output": f"CPU {cpu / len(third):.2f} s per chain (≈ wall on a quiet core)"})  # fmt: skip

    write_results(
        "antibody_fold_speed",
        rows,
        {
            "cores": os.cpu_count(),
            "models": args.models,
            "designs": args.designs,
            "note": "wall clock incl. process start; shared machine: load averages (1/5/15 min) per step",
        },
    )


if __name__ == "__main__":
    main()
