"""Quality vs. sampling steps: teacher vs. distilled students (the paper's Figure 5 / Table 13 at CPU scale).

    python bench/quality_vs_nfe.py                 # full protocol (≈ 20 min on 2 cores)
    python bench/quality_vs_nfe.py --quick         # smoke run

For every (model, NFE, length) it samples ``--num`` sequences in float64 and
reports judge NLL (nats/residue under the independent autoregressive judge),
amino-acid composition KL to the training set, low-complexity fraction,
MMseqs2 cluster entropy (natural log) and mean cluster size at 30 % identity /
80 % coverage, and seconds per sequence. Reference rows: natural held-out
proteins (test split, same lengths) and composition-matched random sequences.
Rows are cached in ``bench/results/quality_vs_nfe.cache.json`` so a rerun only
computes what is missing. Writes ``bench/results/quality_vs_nfe.json`` and a plot.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import torch
from _common import RESULTS, write_results

from protein_didi.core.request import plain_sampling
from protein_didi.eval.diversity import diversity
from protein_didi.eval.stats import (
    composition_kl,
    low_complexity_fraction,
    natural_at_lengths,
    random_sequences,
)
from protein_didi.protein.fasta import read_fasta
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.judge import judge_nll
from protein_didi.protein.pretrained import load_model

CACHE = RESULTS / "quality_vs_nfe.cache.json"


def score(label: str, nfe: int | None, length: int, seqs: list[str], sec_per_seq: float, reference: dict) -> dict:
    div = diversity(seqs, threads=2)
    return {
        "model": label,
        "nfe": nfe,
        "length": length,
        "judge_nll": round(float(np.mean(judge_nll(seqs))), 4),
        "composition_kl": round(composition_kl(seqs, reference), 4),
        "low_complexity": round(float(np.mean([low_complexity_fraction(s) for s in seqs])), 4),
        "cluster_entropy": round(div.entropy, 4),
        "mean_cluster_size": round(div.mean_size, 4),
        "sec_per_seq": round(sec_per_seq, 4) if sec_per_seq == sec_per_seq else None,
    }


def parse_models(text: str) -> list[tuple[str, str]]:
    """``label=name_or_path,…`` (a bare name is its own label)."""
    return [tuple(item.split("=", 1)) if "=" in item else (item, item) for item in text.split(",") if item]


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=40, help="sequences per row (40, as the paper)")
    p.add_argument("--lengths", default="50,100,200")
    p.add_argument("--teacher", default="teacher")
    p.add_argument("--teacher-nfe", default="8,16,32,64,128,256")
    p.add_argument(
        "--students",
        default="student=student,student-idlm=student-idlm",
        help="label=model pairs sampled at --student-nfe",
    )
    p.add_argument("--student-nfe", default="4,8,16,32")
    p.add_argument("--extra", default="", help="label=model pairs (e.g. ablations) sampled at --extra-nfe only")
    p.add_argument("--extra-nfe", default="8")
    p.add_argument("--rgas", action="store_true", help="also sample the DiDi student with RGAS at --student-nfe")
    p.add_argument("--test-fasta", type=Path, default=Path("data/uniprot20k/test.fasta"))
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="10 sequences, L=50, few NFEs")
    p.add_argument("--fresh", action="store_true", help="ignore cached rows")
    args = p.parse_args()
    if args.quick:
        args.num, args.lengths, args.teacher_nfe, args.student_nfe = 10, "50", "8,32", "8"
    lengths = [int(x) for x in args.lengths.split(",")]
    torch.manual_seed(args.seed)
    cache: dict[str, dict] = {} if args.fresh or not CACHE.exists() else json.loads(CACHE.read_text())

    teacher = load_model(args.teacher)
    reference = teacher.info["train_composition"]
    plan: list[tuple[str, str, str, list[int]]] = [
        ("teacher", args.teacher, "ancestral", [int(x) for x in args.teacher_nfe.split(",")])
    ]
    for label, name in parse_models(args.students):
        plan.append((label, name, "ancestral", [int(x) for x in args.student_nfe.split(",")]))
    if args.rgas:
        label, name = parse_models(args.students)[0]
        plan.append((f"{label}+rgas", name, "rgas", [int(x) for x in args.student_nfe.split(",")]))
    for label, name in parse_models(args.extra):
        plan.append((label, name, "ancestral", [int(x) for x in args.extra_nfe.split(",")]))

    rows = []
    for label, name, sampler, nfes in plan:
        try:
            loaded = load_model(name)
        except Exception as err:  # a model that is not trained yet is reported, not fatal
            print(f"skip {label}: {err}")
            continue
        for length in lengths:
            for nfe in nfes:
                key = f"{label}|{nfe}|{length}|{args.num}|{args.seed}"
                if key not in cache:
                    start = time.perf_counter()
                    request = ProteinRequest(
                        num=args.num, length=length, nfe=nfe, **plain_sampling(sampler),
                        seed=args.seed,
                    )  # fmt: skip
                    seqs = generate(loaded, request)
                    elapsed = (time.perf_counter() - start) / args.num
                    cache[key] = score(label, nfe, length, seqs, elapsed, reference)
                    CACHE.write_text(json.dumps(cache, indent=1))
                print(cache[key], flush=True)
                rows.append(cache[key])

    test_records = read_fasta(args.test_fasta)
    for length in lengths:
        natural = [s for _, s in natural_at_lengths(test_records, [length] * args.num, seed=args.seed)]
        rows.append(score("natural (test split)", None, length, natural, float("nan"), reference))
        rows.append(
            score(
                "random (composition)",
                None,
                length,
                random_sequences([length] * args.num, reference, args.seed),
                float("nan"),
                reference,
            )
        )
    name = "quality_vs_nfe_quick" if args.quick else "quality_vs_nfe"
    write_results(name, rows, {"num": args.num, "lengths": lengths, "seed": args.seed})
    plot(rows, lengths, RESULTS / f"{name}.png")
    return 0


def plot(rows: list[dict], lengths: list[int], path: Path) -> None:
    """Judge NLL vs NFE, one panel per length; teacher and students as lines, references as horizontals."""
    fig, axes = plt.subplots(1, len(lengths), figsize=(5 * len(lengths), 4), squeeze=False, sharey=True)
    for ax, length in zip(axes[0], lengths, strict=True):
        at = [r for r in rows if r["length"] == length]
        for label in dict.fromkeys(r["model"] for r in at if r["nfe"] is not None):
            pts = sorted((r["nfe"], r["judge_nll"]) for r in at if r["model"] == label)
            ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        for r, style in ((r, "--") for r in at if r["nfe"] is None):
            ax.axhline(
                r["judge_nll"], linestyle=style, color="grey" if "random" in r["model"] else "green", label=r["model"]
            )
        ax.set_xscale("log", base=2)
        ax.set_title(f"L = {length}")
        ax.set_xlabel("NFE (sampling steps)")
    axes[0][0].set_ylabel("judge NLL (nats/residue, lower is better)")
    axes[0][-1].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
