"""What 16 forward passes buy, however they are split: more student steps, or student steps + corrector rounds.

    python bench/remask_frontier.py                      # validation split (seed 1000), 64 per point
    python bench/remask_frontier.py --markdown bench/results/remask_frontier_validation.json

The 8-step ``antibody-student`` tracks AntiBERTy, a BERT trained at 15 % masking: a poor denoiser when most of a
sequence is masked, an excellent one when few positions are. A correction round (core/remask.py) remasks a
share ρ of the generated residues and redraws them from a corrector in one forward pass at value temperature T.
Points, all with the student's own first-phase sampler (its stored settings) and the prefix ``EVQ`` fixed:

* student@8 and student@16, no correction (8 and 16 passes);
* student@8 + 8 AntiBERTy rounds at ρ ∈ {0.15, 0.3} × T ∈ {0.7, 1.0}, random picks (16 passes);
* student@12 + 4 AntiBERTy rounds (16 passes); student@8 + 8 rounds with the student as its own corrector, and
  with confidence picks (which corrector, which rule);
* IgLM prompted with EVQ at T = 1, the reference the antibody frontier compares with.

Judged as ``bench/antibody_frontier.py`` judges its ``heavy`` task (its functions, imported), here at a fixed
length: only valid human heavy chains are kept and judged by IgLM NLL per residue, V-germline identity,
IMGT-aligned diversity and Sapiens humanness, each with a 95 % bootstrap interval.
Seconds per point are one un-interleaved pass on shared cores (indicative only); the cost that matters,
forward passes of two 26 M-parameter BERTs, is equal across the 16-pass points. Writes
``bench/results/remask_frontier_{split}.json``; sets are cached (not committed) under
``bench/results/remask_frontier_samples/{split}/``.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results
from antibody_frontier import SPLIT_SEEDS, TASKS, Point, Task, cached, judge, make_set, summarise

from protein_didi.protein.generate import ProteinRequest, generate, load_corrector
from protein_didi.protein.pretrained import LoadedModel, load_model
from protein_didi.protein.request import Motif


@dataclass(frozen=True)
class RemaskPoint:
    """The student's first phase at ``nfe`` steps, then ``rounds`` correction rounds by ``corrector``."""

    nfe: int
    rounds: int = 0
    corrector: str = ""  # "" with rounds: the student itself
    fraction: float = 0.15
    temperature: float = 1.0
    pick: str = "random"

    @property
    def label(self) -> str:
        if not self.rounds:
            return f"student@{self.nfe}"
        who = self.corrector or "student"
        pick = "" if self.pick == "random" else f" {self.pick}"
        return f"student@{self.nfe} + {self.rounds}×{who} ρ={self.fraction:g} T={self.temperature:g}{pick}"

    @property
    def family(self) -> str:
        return self.corrector or "student"

    @property
    def passes(self) -> int:
        return self.nfe + self.rounds


def grid(corrector: str, full: bool = False) -> list[RemaskPoint]:
    """16 passes split every way asked for (and 8 without correction); ``full`` adds the which-corrector and
    12 + 4 at ρ = 0.15 points."""
    points = [RemaskPoint(8), RemaskPoint(16)]
    points += [RemaskPoint(8, 8, corrector, rho, t) for rho in (0.15, 0.3) for t in (0.7, 1.0)]
    points += [RemaskPoint(12, 4, corrector, 0.3, 0.7), RemaskPoint(8, 8, corrector, 0.3, 0.7, "confidence")]
    if full:
        points += [RemaskPoint(12, 4, corrector, 0.15, 0.7), RemaskPoint(8, 8, "", 0.3, 0.7)]
    return points


def make(point: RemaskPoint, student: LoadedModel, num: int, length: int, prefix: str, seed: int) -> list[str]:
    """``num`` sequences of ``point``: the student's own sampler settings, its steps, the point's rounds."""
    request = ProteinRequest(
        num=num, length=length, motif=Motif.parse(prefix=prefix), seed=seed, nfe=point.nfe,
        corrector_steps=point.rounds, corrector_fraction=point.fraction, corrector_temperature=point.temperature,
        corrector_pick=point.pick, corrector=point.corrector or None,
    )  # fmt: skip
    return generate(student, request)


def markdown(path: Path) -> str:
    """The table of a results JSON: every point with its passes and 95 % intervals."""
    data = json.loads(path.read_text())

    def ci(r: dict, key: str) -> str:
        value, lo_hi = r.get(key), r.get(f"{key}_ci95") or []
        if not isinstance(value, float) or not math.isfinite(value):
            return ""
        return f"{value:.2f} [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else f"{value:.2f}"

    cols = ["kept", "iglm_nll", "v_identity", "diversity_imgt", "humanness"]
    lines = ["| set | passes | kept (valid human VH) | IgLM NLL | V identity | diversity (IMGT) | humanness | s |"]
    lines.append("|" + " --- |" * 8)
    for r in data["rows"]:
        seconds = f"{r['seconds']:.0f}" if r.get("seconds") is not None else ""
        lines.append(f"| {r['set']} | {r.get('passes') or ''} | " + " | ".join(ci(r, c) for c in cols)
                     + f" | {seconds} |")  # fmt: skip
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--split", choices=list(SPLIT_SEEDS), default="validation", help="validation (choose) or test")
    p.add_argument("--num", type=int, default=64, help="sequences per point (default 64)")
    p.add_argument("--length", type=int, default=120, help="residues per sequence (default 120, a VH)")
    p.add_argument("--prefix", default="EVQ", help="residues fixed at the N-terminus (default EVQ)")
    p.add_argument("--student", default="antibody-student")
    p.add_argument("--corrector", default="antiberty")
    p.add_argument("--no-iglm", action="store_true", help="skip the prompted-IgLM reference point")
    p.add_argument("--full", action="store_true", help="add 12 + 4 at ρ = 0.15 and the student as its own corrector")
    p.add_argument("--threads", type=int, default=2)
    p.add_argument("--name", default="remask_frontier")
    p.add_argument("--markdown", type=Path, default=None, help="only print the table of this results JSON")
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.markdown is not None:
        print(markdown(args.markdown))
        return 0
    torch.set_num_threads(args.threads)
    seed = SPLIT_SEEDS[args.split]
    folder = RESULTS / f"{args.name}_samples" / args.split
    folder.mkdir(parents=True, exist_ok=True)
    student = load_model(args.student, "cpu")
    load_corrector(args.corrector, "cpu", student.precision)  # loaded once, before the first timed point
    # the frontier's heavy task (valid human heavy chains judged) at one length, as IgLM is prompted
    task = Task("heavy", args.prefix, "H", ("H",), True, fixed_length=args.length)
    rows: list[dict[str, Any]] = []
    points = grid(args.corrector, args.full)
    for k, point in enumerate(tqdm(points, desc=f"{args.split} points")):
        t0 = time.perf_counter()
        seqs = cached(folder, point.label, lambda p=point: make(p, student, args.num, args.length, args.prefix, seed))
        seconds = time.perf_counter() - t0
        judged = judge(seqs, task, args.split, 0)
        row, _ = summarise(point.label, point, judged, seed + k, task.name)  # type: ignore[arg-type]
        row |= {"passes": point.passes, "seconds": round(seconds, 1)}
        rows.append(row)
        tqdm.write(f"{point.label}: NLL {row['iglm_nll']} div {row['diversity_imgt']} V {row['v_identity']}")
    if not args.no_iglm and args.prefix == TASKS["heavy"].prompt:
        iglm = Point("IgLM", "iglm", 1.0, task="heavy")  # [HEAVY][HUMAN] + EVQ, its own lengths
        seqs = cached(folder, iglm.label, lambda: make_set(iglm, {}, args.num, seed))
        row, _ = summarise(iglm.label, iglm, judge(seqs, task, args.split, 0), seed + len(points), task.name)
        rows.append(row | {"passes": None, "seconds": None})
    extra = {"split": args.split, "seed": seed, "args": {k: str(v) for k, v in vars(args).items()}}
    path = write_results(f"{args.name}_{args.split}", rows, extra)
    print(markdown(path))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
