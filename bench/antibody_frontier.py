"""Antibody quality–diversity frontier: AntiBERTy (teacher), its 8-step students and IgLM, on held-out seeds.

    python bench/antibody_frontier.py --split validation   # choose settings here (never on test)
    python bench/antibody_frontier.py --split test         # report these: the README reads this JSON

Each point is a model with one sampler setting: ancestral at several value temperatures T, confidence-ordered
(core/confidence.py) at several order temperatures τ, IgLM prompted with residues as its own CLI does
(``--prompt EVQ``) at several temperatures. Every point is judged by models that did not make it:

* diversity = 1 − mean pairwise identity: over IMGT-aligned heavy chains (ANARCI), and position-wise over
  all sequences (identical residues at the same index / longer length), each with a 95 % bootstrap interval;
* IgLM NLL per residue (favours IgLM's own samples), V-germline identity, numbered fraction (ANARCI);
* IgFold mean predicted RMSD when ``--igfold`` is given and the non-commercial ``[igfold]`` extra is installed.

Seeds: validation 1000, test 2000; the shipped banks, training runs and the older benchmark used seed 0 and
the new bank seed 3000, so no point of either split was seen by a bank, a training run or a model choice.
Times come from one interleaved pass (every method once per round, same batch and threads), with the physical
cost next to them: token-forwards per sequence (NFE × tokens for a diffusion sampler; one token-forward per
residue for IgLM with its KV cache) and parameters. Writes ``bench/results/antibody_frontier_{split}.json`` and
``.png``; generated sets are cached (not committed) under ``bench/results/antibody_frontier_samples/``.
"""

from __future__ import annotations

import argparse
import math
import statistics
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results

from protein_didi.eval.antibody import antibody_table, imgt_identity_matrix, load_natural_antibodies
from protein_didi.eval.iglm_judge import load_iglm
from protein_didi.protein.fasta import read_fasta, write_fasta
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.numbering import AntibodyNumbering, number_antibodies
from protein_didi.protein.pretrained import LoadedModel, load_model

SPLIT_SEEDS = {"validation": 1000, "test": 2000}
N_BOOT = 1000


@dataclass(frozen=True)
class Point:
    """One model with one sampler setting: a point of the frontier."""

    model: str  # a registered model name, or "IgLM"
    sampler: str  # ancestral | confidence | iglm
    temperature: float = 1.0
    order_temperature: float | None = None  # confidence sampler only
    nfe: int | None = None  # diffusion only
    prompt: str = ""  # IgLM only

    @property
    def label(self) -> str:
        if self.model == "IgLM":
            return f"IgLM {self.prompt or 'tags'} T={self.temperature:g}"
        order = f" τ={self.order_temperature:g}" if self.sampler == "confidence" else ""
        return f"{self.model}@{self.nfe} {self.sampler}{order} T={self.temperature:g}"

    @property
    def family(self) -> str:
        return "IgLM" if self.model == "IgLM" else self.model


def parse_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def grid(args: argparse.Namespace) -> list[Point]:
    """The points to chart: every diffusion model under both samplers, IgLM at its temperatures."""
    points = []
    models = [(args.teacher, args.teacher_nfe)] + [(s, args.student_nfe) for s in args.students.split(",") if s]
    for model, nfe in models:
        points += [Point(model, "ancestral", t, None, nfe) for t in parse_floats(args.temperatures)]
        points += [Point(model, "confidence", 1.0, tau, nfe) for tau in parse_floats(args.order_temperatures)]
    points += [Point("IgLM", "iglm", t, prompt=args.iglm_prompt) for t in parse_floats(args.iglm_temperatures)]
    return points


# -- generation --------------------------------------------------------------------------------------------------
def make_set(point: Point, models: dict[str, LoadedModel], num: int, length: int, seed: int) -> list[str]:
    if point.model == "IgLM":
        return list(
            load_iglm()
            .generate(num, "H", "human", temperature=point.temperature, seed=seed, prompt=point.prompt)
            .sequences
        )
    request = ProteinRequest(
        num=num, length=length, nfe=point.nfe or 8, sampler=point.sampler, temperature=point.temperature,
        top_p=1.0, order_temperature=point.order_temperature or 0.0, seed=seed,
    )  # fmt: skip
    return generate(models[point.model], request)


def cached(folder: Path, label: str, make: Callable[[], list[str]]) -> list[str]:
    """Sequences of set ``label``, generated once and kept as FASTA so an interrupted run resumes."""
    name = label.replace(" ", "_").replace("=", "").replace("τ", "tau").replace("/", "_")
    fasta = folder / f"{name}.fasta"
    if fasta.exists():
        return [s for _, s in read_fasta(fasta)]
    seqs = make()
    tmp = fasta.with_suffix(".tmp")
    write_fasta(tmp, [(f"s{i + 1:04d}", s) for i, s in enumerate(seqs)])
    tmp.rename(fasta)
    return seqs


# -- judging -----------------------------------------------------------------------------------------------------
def positional_identity_matrix(seqs: Sequence[str]) -> np.ndarray:
    """Identity of every pair: residues equal at the same index, over the longer of the two lengths."""
    lengths = np.array([len(s) for s in seqs])
    codes = np.zeros((len(seqs), lengths.max()), dtype=np.uint8)
    for i, s in enumerate(seqs):
        codes[i, : len(s)] = np.frombuffer(s.encode(), dtype=np.uint8)
    same = np.zeros((len(seqs), len(seqs)))
    for i in range(len(seqs)):
        same[i] = ((codes == codes[i]) & (codes != 0)).sum(1)
    return same / np.maximum(lengths[:, None], lengths[None, :])


def resample_pair_mean(matrix: np.ndarray, idx: np.ndarray) -> float:
    """Mean off-diagonal identity of a bootstrap resample (pairs of a sequence with its own copy excluded)."""
    sub = matrix[np.ix_(idx, idx)]
    distinct = idx[:, None] != idx[None, :]
    return float(sub[distinct].mean()) if distinct.any() else float("nan")


@dataclass
class Judged:
    """Per-sequence judgements of one set; every summary and interval is computed from these."""

    numbered: np.ndarray  # (n,) bool
    nll: np.ndarray  # IgLM NLL of numbered sequences
    v_identity: np.ndarray  # of numbered sequences
    imgt_h: np.ndarray  # IMGT identity matrix of numbered heavy chains
    positional: np.ndarray  # position-wise identity matrix of all sequences
    heavy_fraction: float
    mean_length: float
    prmsd: np.ndarray | None = None

    def stats(self, rng: np.random.Generator | None = None) -> dict[str, float]:
        """The point's statistics on the data (``rng`` None) or on one bootstrap resample of every part."""

        def pick(n: int) -> np.ndarray:
            return np.arange(n) if rng is None else rng.integers(0, n, n)

        out = {
            "numbered": float(self.numbered[pick(len(self.numbered))].mean()),
            "iglm_nll": float(self.nll[pick(len(self.nll))].mean()) if len(self.nll) else math.nan,
            "v_identity": float(self.v_identity[pick(len(self.v_identity))].mean())
            if len(self.v_identity)
            else math.nan,
            "diversity_imgt_h": 1 - resample_pair_mean(self.imgt_h, pick(len(self.imgt_h)))
            if len(self.imgt_h) > 1
            else math.nan,
            "diversity_positional": 1 - resample_pair_mean(self.positional, pick(len(self.positional))),
        }
        if self.prmsd is not None and len(self.prmsd):
            out["prmsd"] = float(self.prmsd[pick(len(self.prmsd))].mean())
        return out

    def boot(self, seed: int) -> list[dict[str, float]]:
        rng = np.random.default_rng(seed)
        return [self.stats(rng) for _ in range(N_BOOT)]


def judge(seqs: list[str], igfold: int) -> Judged:
    nums: list[AntibodyNumbering] = number_antibodies(seqs)
    table = antibody_table(seqs, numbering=nums, iglm=True)  # per-sequence values; every summary is made here
    numbered = table["numbered"].to_numpy(bool)
    heavy = [n for n in nums if n.numbered and n.chain_class == "H"]
    prmsd = None
    if igfold:
        from protein_didi.fold.antibody import mean_prmsd  # optional, non-commercial extra

        cache = RESULTS / "antibody_frontier_samples" / "igfold_cache.sqlite"
        values = mean_prmsd(seqs[:igfold], cache_path=cache, num_models=1)  # the first N of the set, one model
        prmsd = values[np.isfinite(values)]
    return Judged(
        numbered=numbered,
        nll=table.loc[numbered, "iglm_nll"].to_numpy(float),
        v_identity=table.loc[numbered, "v_identity"].to_numpy(float),
        imgt_h=imgt_identity_matrix(heavy) if len(heavy) > 1 else np.zeros((len(heavy), len(heavy))),
        positional=positional_identity_matrix(seqs),
        heavy_fraction=float((table["chain_type"] == "H").mean()),
        mean_length=float(np.mean([len(s) for s in seqs])),
        prmsd=prmsd,
    )


def interval(values: Sequence[float]) -> list[float]:
    v = np.asarray([x for x in values if math.isfinite(x)])
    return [round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)] if len(v) else []


def summarise(label: str, point: Point | None, judged: Judged, seed: int) -> tuple[dict[str, Any], list[dict]]:
    point_stats, boots = judged.stats(), judged.boot(seed)
    row: dict[str, Any] = {"set": label, "family": point.family if point else "natural"}
    if point is not None:
        row |= {k: v for k, v in asdict(point).items() if k != "model"}
    row |= {"n": len(judged.numbered), "heavy": round(judged.heavy_fraction, 3), "length": round(judged.mean_length, 1)}
    for key, value in point_stats.items():
        row[key] = round(value, 3)
        row[f"{key}_ci95"] = interval([b[key] for b in boots])
    return row, boots


# -- claims with intervals -----------------------------------------------------------------------------------------
CLAIMS = (  # (name, metric, direction, margin): candidate − reference compared with the margin
    ("diversity (IMGT, heavy) ≥ IgLM's", "diversity_imgt_h", ">=", 0.0),
    ("diversity (position-wise) ≥ IgLM's", "diversity_positional", ">=", 0.0),
    ("IgLM NLL within 0.3 nats of IgLM's", "iglm_nll", "<=", 0.3),
    ("V identity ≥ IgLM's", "v_identity", ">=", 0.0),
    ("numbered fraction ≥ IgLM's", "numbered", ">=", 0.0),
)


def claims(candidate: list[dict], reference: list[dict], point_c: dict, point_r: dict) -> list[dict]:
    """Each target as a difference with a 95 % interval: 'met' on the estimate, 'sure' when the interval agrees."""
    out = []
    for name, key, direction, margin in CLAIMS:
        diffs = [c[key] - r[key] for c, r in zip(candidate, reference, strict=True)]
        est = point_c[key] - point_r[key]
        lo, hi = interval(diffs)
        met = est >= -margin if direction == ">=" else est <= margin
        sure = lo >= -margin if direction == ">=" else hi <= margin
        out.append({"claim": name, "difference": round(est, 3), "ci95": [lo, hi], "met": bool(met), "sure": bool(sure)})
    return out


# -- timing ------------------------------------------------------------------------------------------------------
def params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def timing(points: list[Point], models: dict[str, LoadedModel], length: int, batch: int, rounds: int) -> list[dict]:
    """Seconds per sequence, every method once per round in turn (same batch, same threads), after a warm-up."""
    iglm = load_iglm()
    per: dict[str, list[float]] = {p.label: [] for p in points}
    made: dict[str, list[str]] = {}
    for r in tqdm(range(rounds + 1), desc="timing rounds"):
        for p in points:
            t0 = time.perf_counter()
            made[p.label] = make_set(p, models, batch, length, seed=10_000 + r)
            if r:  # round 0 warms up every method
                per[p.label].append((time.perf_counter() - t0) / len(made[p.label]))
    rows = []
    for p in points:
        if p.model == "IgLM":
            tokens = statistics.mean(len(s) for s in made[p.label]) + 2 - len(p.prompt)
            cost, n_params = tokens, params(iglm.model)
        else:
            cost, n_params = (p.nfe or 8) * (length + 2), params(models[p.model].model)
        times = per[p.label]
        rows.append(
            {
                "set": p.label,
                "seconds_per_seq": round(statistics.median(times), 4),
                "seconds_per_seq_range": [round(min(times), 4), round(max(times), 4)],
                "per_round": [round(t, 4) for t in times],
                "token_forwards_per_seq": round(cost, 1),
                "parameters": n_params,
                "gflop_per_seq": round(2 * n_params * cost / 1e9, 2),
            }
        )
    return rows


def speedups(rows: list[dict], reference: str) -> dict[str, dict]:
    """Per-round time ratios reference/method (paired by round): median with the min–max over rounds."""
    ref = next(r for r in rows if r["set"] == reference)["per_round"]
    out = {}
    for r in rows:
        ratios = [a / b for a, b in zip(ref, r["per_round"], strict=True)]
        out[r["set"]] = {
            "median": round(statistics.median(ratios), 2),
            "range": [round(min(ratios), 2), round(max(ratios), 2)],
        }
    return out


# -- figure ------------------------------------------------------------------------------------------------------
def plot(rows: list[dict], path: Path, title: str) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("diversity_imgt_h", "iglm_nll", "IgLM NLL (nats/residue, lower better)"),
        ("diversity_imgt_h", "v_identity", "V-germline identity"),
        ("diversity_imgt_h", "numbered", "numbered fraction (ANARCI)"),
        ("diversity_positional", "iglm_nll", "IgLM NLL (nats/residue)"),
    ]
    if any("prmsd" in r for r in rows):
        panels.append(("diversity_imgt_h", "prmsd", "IgFold mean predicted RMSD (Å, lower better)"))
    fig, axes = plt.subplots(1, len(panels), figsize=(5.2 * len(panels), 4.6))
    families = list(dict.fromkeys(r["family"] for r in rows))
    colours = dict(zip(families, plt.cm.tab10.colors, strict=False))
    markers = {"ancestral": "o", "confidence": "s", "iglm": "^"}
    for ax, (xk, yk, ylabel) in zip(axes, panels, strict=True):
        for r in rows:
            if yk not in r or xk not in r or not math.isfinite(r[xk]) or not math.isfinite(r[yk]):
                continue
            xe = [[r[xk] - r[f"{xk}_ci95"][0]], [r[f"{xk}_ci95"][1] - r[xk]]]
            ye = [[r[yk] - r[f"{yk}_ci95"][0]], [r[f"{yk}_ci95"][1] - r[yk]]]
            ax.errorbar(
                r[xk], r[yk], xerr=xe, yerr=ye, fmt=markers.get(r.get("sampler", ""), "*"), ms=6,
                color=colours[r["family"]], ecolor=colours[r["family"]], elinewidth=0.7, capsize=2, alpha=0.85,
            )  # fmt: skip
            tag = r["set"].split(" ", 1)[1] if " " in r["set"] else r["set"]
            ax.annotate(tag.replace("ancestral ", "").replace("confidence ", ""), (r[xk], r[yk]), fontsize=6,
                        xytext=(3, 3), textcoords="offset points")  # fmt: skip
        ax.set_xlabel(
            "diversity: 1 − " + ("IMGT pair identity (heavy)" if xk.endswith("h") else "position-wise pair identity")
        )
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[f], marker="o", ls="", label=f) for f in families]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=s) for s, m in markers.items()]
    axes[0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


# -- markdown (what the README shows, read from the JSON) ------------------------------------------------------------
def markdown(path: Path) -> str:
    """The README's tables from a results JSON: points, targets with intervals, interleaved times."""
    import json

    data = json.loads(path.read_text())

    def ci(r: dict, key: str) -> str:
        if key not in r or not isinstance(r[key], float) or not math.isfinite(r[key]):
            return ""
        lo_hi = r.get(f"{key}_ci95") or []
        return f"{r[key]:.2f} [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else f"{r[key]:.2f}"

    cols = ["numbered", "iglm_nll", "v_identity", "diversity_imgt_h", "diversity_positional", "prmsd"]
    heads = ["numbered", "IgLM NLL", "V identity", "diversity (IMGT, H)", "diversity (position-wise)", "IgFold pRMSD Å"]
    has = [c for c in cols if any(c in r for r in data["rows"])]
    lines = ["| set | n | heavy | " + " | ".join(h for c, h in zip(cols, heads, strict=True) if c in has) + " |"]
    lines.append("|" + " --- |" * (3 + len(has)))
    for r in data["rows"]:
        lines.append(f"| {r['set']} | {r['n']} | {r['heavy']:.2f} | " + " | ".join(ci(r, c) for c in has) + " |")
    if "targets" in data:
        t = data["targets"]
        lines += [
            "",
            f"Targets: `{t['candidate']}` − `{t['reference']}` (95 % bootstrap interval of the difference):",
            "",
        ]
        lines += [
            "| target | difference | 95 % interval | met (estimate) | met (whole interval) |",
            "| --- | --- | --- | --- | --- |",
        ]
        for c in t["claims"]:
            lines.append(f"| {c['claim']} | {c['difference']:+.3f} | [{c['ci95'][0]:+.3f}, {c['ci95'][1]:+.3f}] | "
                         f"{'yes' if c['met'] else 'no'} | {'yes' if c['sure'] else 'no'} |")  # fmt: skip
    if "timing" in data:
        speed = data.get("speedup_vs_teacher", {})
        head = "| method | s/seq (median, range) | token-forwards/seq | parameters | GFLOP/seq | speed-up vs teacher |"
        lines += ["", head, "| --- | --- | --- | --- | --- | --- |"]
        for r in data["timing"]:
            sp = speed.get(r["set"], {})
            lo, hi = r["seconds_per_seq_range"]
            lines.append(
                f"| {r['set']} | {r['seconds_per_seq']:.3f} [{lo:.3f}, {hi:.3f}] | {r['token_forwards_per_seq']:.0f} | "
                f"{r['parameters'] / 1e6:.1f} M | {r['gflop_per_seq']:.1f} | "
                + (f"{sp['median']:.2f}× [{sp['range'][0]:.2f}, {sp['range'][1]:.2f}]" if sp else "")
                + " |"
            )
    return "\n".join(lines)


# -- main --------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--split", choices=list(SPLIT_SEEDS), default="validation", help="validation (choose) or test (report)"
    )
    p.add_argument("--num", type=int, default=128, help="sequences per point (default 128)")
    p.add_argument("--length", type=int, default=120, help="residues of every diffusion sample (120, a VH)")
    p.add_argument("--teacher", default="antiberty")
    p.add_argument("--teacher-nfe", type=int, default=32, help="teacher steps (default 32)")
    p.add_argument("--students", default="antibody-student", help="comma-separated 8-step students")
    p.add_argument("--student-nfe", type=int, default=8)
    p.add_argument("--temperatures", default="1.0,0.7", help="ancestral value temperatures")
    p.add_argument("--order-temperatures", default="0,0.5,1,2", help="confidence order temperatures τ")
    p.add_argument("--iglm-temperatures", default="1.0,0.8", help="IgLM sampling temperatures")
    p.add_argument("--iglm-prompt", default="EVQ", help="IgLM residue prompt, as its CLI (default EVQ)")
    p.add_argument(
        "--extra", default="", help="more points: model:sampler:T:tau[;…], e.g. antibody-student:confidence:1:0.7"
    )
    p.add_argument(
        "--candidate", default=None, help="point checked against the targets (default: antibody-student's own settings)"
    )
    p.add_argument("--reference", default=None, help="IgLM point the targets compare with (default: IgLM EVQ T=1)")
    p.add_argument(
        "--igfold",
        type=int,
        default=0,
        metavar="N",
        help="IgFold pRMSD of the first N sequences of every set, one ensemble model (non-commercial [igfold] extra)",
    )
    p.add_argument("--timing-rounds", type=int, default=3, help="interleaved timing rounds (0: skip timing)")
    p.add_argument("--timing-batch", type=int, default=16, help="sequences per method per timing round")
    p.add_argument("--name", default="antibody_frontier")
    p.add_argument("--markdown", type=Path, default=None, help="only print the README tables of this results JSON")
    return p


def extra_points(spec: str, nfe: dict[str, int]) -> list[Point]:
    out = []
    for part in filter(None, (s.strip() for s in spec.split(";"))):
        model, sampler, temp, tau = part.split(":")
        out.append(
            Point(model, sampler, float(temp), float(tau) if sampler == "confidence" else None, nfe.get(model, 8))
        )
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.markdown is not None:
        print(markdown(args.markdown))
        return 0
    seed = SPLIT_SEEDS[args.split]
    folder = RESULTS / "antibody_frontier_samples" / args.split  # shared by every --name: sets are made once
    folder.mkdir(parents=True, exist_ok=True)
    names = [args.teacher] + [s for s in args.students.split(",") if s]
    models = {name: load_model(name, "cpu") for name in names}
    nfe = {args.teacher: args.teacher_nfe} | {s: args.student_nfe for s in names[1:]}
    points = grid(args) + extra_points(args.extra, nfe)
    # the shipped student's own settings (what `sample --model antibody-student` does) are always a point
    own = models[names[1]].info.get("sampling") if len(names) > 1 else None
    if own:
        points.append(Point(names[1], own.get("sampler", "ancestral"), own.get("temperature", 1.0),
                            own.get("order_temperature") if own.get("sampler") == "confidence" else None,
                            own.get("nfe", args.student_nfe)))  # fmt: skip
    points = list(dict.fromkeys(points))

    rows, boots = [], {}
    for k, point in enumerate(tqdm(points, desc=f"{args.split} points")):
        seqs = cached(folder, point.label, lambda p=point: make_set(p, models, args.num, args.length, seed))
        row, boots[point.label] = summarise(point.label, point, judge(seqs, args.igfold), seed + k)
        rows.append(row)
        tqdm.write(f"{point.label}: NLL {row['iglm_nll']} div {row['diversity_imgt_h']} V {row['v_identity']}")
    natural = [s for rid, s in load_natural_antibodies() if "IGHV" in rid or "|H|" in rid][: args.num]
    row, boots["natural"] = summarise("natural heavy (shipped set)", None, judge(natural, args.igfold), seed - 1)
    rows.append(row)

    extra: dict[str, Any] = {"split": args.split, "seed": seed, "args": vars(args)}
    reference = args.reference or Point("IgLM", "iglm", 1.0, prompt=args.iglm_prompt).label
    candidate = args.candidate or (points[-1].label if own else None)
    by_label = {r["set"]: r for r in rows}
    if candidate and candidate in by_label and reference in by_label:
        extra["targets"] = {
            "candidate": candidate,
            "reference": reference,
            "claims": claims(boots[candidate], boots[reference], by_label[candidate], by_label[reference]),
        }
    if args.split == "validation":
        # the teacher setting for the bank: lowest NLL among teacher points at least as diverse as IgLM
        div_ref = by_label[reference]["diversity_imgt_h"] if reference in by_label else 0.0
        ok = [r for r in rows if r["family"] == args.teacher and r["diversity_imgt_h"] >= div_ref]
        extra["bank_choice"] = min(ok, key=lambda r: r["iglm_nll"])["set"] if ok else None
    if args.timing_rounds > 0:
        timed = [p for p in points if p.model == "IgLM" and p.temperature == 1.0]
        timed += [
            p for p in points if p.model != "IgLM" and p.temperature == 1.0 and p.order_temperature in (None, 0.0)
        ]
        if own:
            timed.append(points[-1])
        timed = list(dict.fromkeys(timed))
        extra["timing"] = timing(timed, models, args.length, args.timing_batch, args.timing_rounds)
        teacher_point = next((p for p in timed if p.model == args.teacher and p.sampler == "ancestral"), timed[0])
        extra["speedup_vs_teacher"] = speedups(extra["timing"], teacher_point.label)
    write_results(f"{args.name}_{args.split}", rows, extra)
    for key in ("targets", "bank_choice", "timing", "speedup_vs_teacher"):
        if key in extra:
            print(key, extra[key])
    plot(rows, RESULTS / f"{args.name}_{args.split}.png", f"{args.split} split (seed {seed}), {args.num} per point")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
