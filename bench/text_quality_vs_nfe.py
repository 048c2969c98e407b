"""Text quality vs. sampling steps: the paper's Table 1 (OWT, L = 1024) at CPU scale.

    python bench/text_quality_vs_nfe.py            # full protocol (≈ 5 CPU-minutes)
    python bench/text_quality_vs_nfe.py --quick    # smoke run

The shipped text teacher is sampled at 8…256 NFE and its DiDi-Instruct student
at 4…32 NFE (``--num`` blocks of ``--length`` tokens each, float64 ancestral
sampling, one seed). Every set is scored with generative perplexity under the
judge (``--judge auto``: GPT-2 Large if present, else the shipped corpus-trained
judge) and mean per-sample unigram token entropy; held-out test blocks of the
same length are the reference row. Target (the paper's claim at our scale):
student at 8 NFE ≤ teacher at 128 NFE in judge PPL, entropy within 2 %.
Samples are cached in ``bench/results/text_samples/`` so a rerun only computes
what is missing. Writes ``bench/results/text_quality_vs_nfe.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
from _common import RESULTS, write_results

from protein_didi.report.text import reference_set, sample_model, score_set
from protein_didi.text.judge import load_judge
from protein_didi.text.pretrained import load_model

TEACHER_KEYS = ("arch", "parameters", "trained_steps", "valid_nelbo_nats_per_token", "valid_unigram_nats_per_token")
STUDENT_KEYS = ("method", "distill_steps", "student_nfe", "teacher_nfe", "batch_size", "lr_student", "ema")


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--teacher", default="teacher")
    p.add_argument("--student", default="student")
    p.add_argument("--teacher-nfe", default="8,16,32,64,128,256")
    p.add_argument("--student-nfe", default="4,8,16,32")
    p.add_argument("--num", type=int, default=48, help="samples per row (default 48)")
    p.add_argument("--length", type=int, default=128, help="tokens per sample incl. <bos>/<eos> (default 128)")
    p.add_argument("--data", type=Path, default=Path("data/text-pydoc"), help="prepared corpus for the reference")
    p.add_argument("--judge", default="auto")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--quick", action="store_true", help="8 samples, few NFEs")
    args = p.parse_args()
    if args.quick:
        args.num, args.teacher_nfe, args.student_nfe = 8, "8,32", "8"
    cache = RESULTS / ("text_samples_quick" if args.quick else "text_samples")
    judge = load_judge(args.judge)
    plan = [("teacher", args.teacher, args.teacher_nfe), ("student", args.student, args.student_nfe)]
    rows = []
    for label, name, nfes in plan:
        for nfe in (int(x) for x in nfes.split(",")):
            s = sample_model(name, f"{label}-{nfe}", nfe, args.num, args.length, args.seed, 16, "cpu", cache)
            row, _ = score_set(s, judge)
            rows.append({**row, "model": label})
            print(rows[-1], flush=True)
    if (args.data / "meta.json").is_file():
        row, _ = score_set(reference_set(args.data, args.num, args.length, args.seed), judge)
        rows.append(row)
    else:
        print(f"no reference row: {args.data} is not prepared (python -m data_prep.text --out {args.data})")
    teacher, student = load_model(args.teacher), load_model(args.student)
    extra = {
        "num": args.num,
        "length": args.length,
        "seed": args.seed,
        "judge": judge.info,
        "teacher": {k: teacher.info.get(k) for k in TEACHER_KEYS},
        "student": {k: student.info.get(k) for k in STUDENT_KEYS},
        "target": target(rows),
    }
    name = "text_quality_vs_nfe_quick" if args.quick else "text_quality_vs_nfe"
    write_results(name, rows, extra)
    print(extra["target"])
    plot(rows, RESULTS / f"{name}.png")
    return 0


def target(rows: list[dict]) -> dict:
    """Student at 8 NFE vs teacher at 128 NFE: PPL no worse, entropy within 2 %."""
    find = {(r["model"], r["nfe"]): r for r in rows}
    s, t = find.get(("student", 8)), find.get(("teacher", 128))
    if s is None or t is None:
        return {"checked": False, "reason": "needs student@8 and teacher@128 rows"}
    rel = (s["entropy"] - t["entropy"]) / t["entropy"]
    return {
        "checked": True,
        "student8_gen_ppl": s["gen_ppl"],
        "teacher128_gen_ppl": t["gen_ppl"],
        "ppl_met": s["gen_ppl"] <= t["gen_ppl"],
        "entropy_rel_diff": round(rel, 4),
        "entropy_met": abs(rel) <= 0.02,
    }


def plot(rows: list[dict], path: Path) -> None:
    """Judge PPL and token entropy vs NFE; the held-out data as horizontal lines."""
    fig, axes = plt.subplots(1, 2, figsize=(10, 4))
    for ax, key, ylabel in zip(
        axes, ("gen_ppl", "entropy"), ("judge generative PPL (lower is better)", "token entropy (nats)"), strict=True
    ):
        for label in ("teacher", "student"):
            pts = sorted((r["nfe"], r[key]) for r in rows if r["model"] == label)
            if pts:
                ax.plot(*zip(*pts, strict=True), marker="o", label=label)
        for r in rows:
            if r["nfe"] is None:
                ax.axhline(r[key], linestyle="--", color="green", label=r["label"])
        ax.set_xscale("log", base=2)
        ax.set_xlabel("NFE (sampling steps)")
        ax.set_ylabel(ylabel)
    axes[0].set_yscale("log")  # real text scores ~10x lower than CPU-scale samples
    axes[0].legend(fontsize=8)
    fig.suptitle("text: teacher vs DiDi-Instruct student (CPU scale)")
    fig.tight_layout()
    fig.savefig(path, dpi=120)
    print(f"wrote {path}")


if __name__ == "__main__":
    raise SystemExit(main())
