"""Antibody quality–diversity frontier on a task matched with IgLM: AntiBERTy, its students and IgLM, held out.

    python bench/antibody_frontier.py --split validation   # choose settings here (never on test)
    python bench/antibody_frontier.py --split test         # report these: the README reads this JSON

**Tasks** (``--tasks``; like is compared with like):

* ``heavy`` (the headline): human heavy chains. IgLM gets ``[HEAVY][HUMAN]`` + ``EVQ`` (its CLI's prompt) and
  chooses its own length; every diffusion point gets ``EVQ`` as a fixed prefix and lengths drawn from the real
  VH length distribution (the repertoire's train split). Only **valid human heavy chains** are judged (valid:
  :mod:`protein_didi.protein.chain_validity`; human: ANARCI's germline species); each row says how many of its
  sequences that filter kept and how many were heavy/light chimeras.
* ``light``: the same with ``[LIGHT][HUMAN]`` + ``DIQ`` (a κ start) and real Vκ lengths; valid human light chains.
* ``unconditional`` (secondary): every diffusion model unprompted at 120 residues (what it makes on its own,
  heavy, light, mouse or chimera), every valid chain judged; IgLM as in ``heavy``.

**Judges** (none made the sequences): IgLM NLL per residue (favours IgLM), V-germline identity (ANARCI),
diversity = 1 − mean pairwise identity over IMGT-aligned chains and position-wise, CDR3 length W1 against the
real repertoire, and **Sapiens humanness** (:mod:`protein_didi.eval.sapiens_judge`: a human-repertoire masked LM
sharing no weights with AntiBERTy, IgLM or IgFold). ``--igfold N`` adds IgFold's mean predicted RMSD; IgFold
embeds with AntiBERTy, the teacher's weights, so it is labelled as not independent. **Reference rows**: real
human chains of the repertoire (VH, Vκ; AbNatiV's OAS held-out set, CC BY-NC-SA) from the split being run.

Every value carries a 95 % bootstrap interval; every target is a difference with its interval, "met" on the
estimate and "met" for the whole interval reported apart. Seeds: validation 1000, test 2000 (banks and
training runs used 0 and 3000). Times come from one interleaved pass (every method once per round, same batch
and threads), with the min–max over rounds and the physical cost (token-forwards, parameters, GFLOP).
Writes ``bench/results/{name}_{split}.json`` and ``.png`` (the test JSON records the commit and the hash of the
validation JSON it follows); generated sets are cached (not committed) under
``bench/results/antibody_frontier_samples/``.
"""

from __future__ import annotations

import argparse
import dataclasses
import math
import statistics
import subprocess
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

from protein_didi.core.checkpoint import file_sha256
from protein_didi.eval.antibody import antibody_table, imgt_identity_matrix, length_distribution_distance
from protein_didi.eval.iglm_judge import load_iglm
from protein_didi.protein.chain_validity import check_chains
from protein_didi.protein.fasta import read_fasta, write_fasta
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.numbering import AntibodyNumbering, number_antibodies
from protein_didi.protein.pretrained import LoadedModel, load_model
from protein_didi.protein.repertoire import CHAIN_NAMES, load_repertoire, sample_lengths
from protein_didi.protein.request import Motif

SPLIT_SEEDS = {"validation": 1000, "test": 2000}
N_BOOT = 1000


@dataclass(frozen=True)
class Task:
    """What every method is asked for, and which of its chains are judged."""

    name: str
    prompt: str  # the diffusion points' fixed prefix ("" = none)
    iglm_prompt: str  # IgLM's residue prompt: the same prefix in the matched tasks, its CLI's EVQ otherwise
    iglm_chain: str  # IgLM's chain tag
    chain_types: tuple[str, ...]  # ANARCI chain types judged (and the reference rows' and lengths' types)
    human_only: bool  # judge only chains ANARCI assigns to human germlines
    fixed_length: int | None = None  # diffusion length; None: drawn from the real length distribution

    @property
    def matched(self) -> bool:
        return self.fixed_length is None


TASKS = {
    "heavy": Task("heavy", "EVQ", "EVQ", "H", ("H",), True),
    "light": Task("light", "DIQ", "DIQ", "L", ("K",), True),
    "unconditional": Task("unconditional", "", "EVQ", "H", ("H", "K", "L"), False, fixed_length=120),
}


@dataclass(frozen=True)
class Point:
    """One model with one sampler setting: a point of the frontier."""

    model: str  # a registered model name, or "IgLM"
    sampler: str  # ancestral | confidence | iglm
    temperature: float = 1.0
    order_temperature: float | None = None  # confidence sampler only
    nfe: int | None = None  # diffusion only
    task: str = "heavy"
    rounds: int = 0  # correction rounds after the nfe steps (core/remask.py): one forward pass each
    corrector: str = ""  # the model that redraws the remasked residues ("" = the model itself)
    fraction: float = 0.15  # ρ: share of the generated residues each round remasks
    corrector_temperature: float = 1.0

    @property
    def forward_passes(self) -> int:
        return (self.nfe or 8) + self.rounds

    @property
    def label(self) -> str:
        task = TASKS[self.task]
        prompt = task.prompt
        if self.model == "IgLM":
            return f"IgLM {task.iglm_chain}+{task.iglm_prompt or 'tags'} T={self.temperature:g}"
        order = f" τ={self.order_temperature:g}" if self.sampler == "confidence" else ""
        given = f" +{prompt}" if prompt else ""
        fix = (f" + {self.rounds}×{self.corrector or 'self'} ρ={self.fraction:g} T={self.corrector_temperature:g}"
               if self.rounds else "")  # fmt: skip
        return f"{self.model}@{self.nfe}{given} {self.sampler}{order} T={self.temperature:g}{fix}"

    @property
    def family(self) -> str:
        return "IgLM" if self.model == "IgLM" else self.model


def parse_floats(text: str) -> list[float]:
    return [float(x) for x in text.split(",") if x.strip()]


def grid(args: argparse.Namespace, task: str) -> list[Point]:
    """The points of one task. ``heavy`` (the headline) charts the teacher (confidence τ = 1), the first student
    under both samplers at every τ and the other students at τ = 1; ``light`` and ``unconditional`` (secondary)
    the first student ancestrally (its own default point is added by the caller), the unconditional task also the
    teacher and the other students ancestrally, as the table it replaces did. IgLM at its temperatures in all."""
    students = [s for s in args.students.split(",") if s]
    temps = parse_floats(args.temperatures)
    points: list[Point] = []
    if task == "heavy":
        points += [Point(args.teacher, "confidence", 1.0, t, args.teacher_nfe, task)
                   for t in parse_floats(args.other_order_temperatures)]  # fmt: skip
        for k, model in enumerate(students):
            taus = parse_floats(args.order_temperatures if k == 0 else args.other_order_temperatures)
            points += [Point(model, "ancestral", t, None, args.student_nfe, task) for t in temps if k == 0]
            points += [Point(model, "confidence", 1.0, tau, args.student_nfe, task) for tau in taus]
    else:
        points += [Point(students[0], "ancestral", t, None, args.student_nfe, task) for t in temps] if students else []
        if task == "unconditional":
            points += [Point(args.teacher, "ancestral", 1.0, None, args.teacher_nfe, task)]
            points += [Point(m, "ancestral", 1.0, None, args.student_nfe, task) for m in students[1:]]
    points += [Point("IgLM", "iglm", t, task=task) for t in parse_floats(args.iglm_temperatures)]
    return points


def sixteen_pass_points(own: Point, corrector: str, spec: str) -> list[Point]:
    """What 16 forward passes buy, however they are split: the first student's own sampler at twice its steps, and
    its steps + correction rounds by ``corrector`` for every ``rounds:ρ:T`` in ``spec`` (issue: the fair question)."""
    points = [dataclasses.replace(own, nfe=2 * (own.nfe or 8))]
    for part in filter(None, (x.strip() for x in spec.split(";"))):
        rounds, fraction, temperature = part.split(":")
        points.append(dataclasses.replace(own, rounds=int(rounds), corrector=corrector, fraction=float(fraction),
                                          corrector_temperature=float(temperature)))  # fmt: skip
    return points


def own_point(loaded: LoadedModel, name: str, task: str, nfe: int) -> Point:
    """What ``sample --model name`` does by default: the model's stored sampler settings, else ancestral T = 1."""
    own = loaded.info.get("sampling") or {}
    sampler = own.get("sampler", "ancestral")
    tau = own.get("order_temperature") if sampler == "confidence" else None
    return Point(name, sampler, own.get("temperature", 1.0), tau, own.get("nfe", nfe), task)


# -- generation --------------------------------------------------------------------------------------------------
def make_set(point: Point, models: dict[str, LoadedModel], num: int, seed: int) -> list[str]:
    """``num`` sequences of ``point`` for its task (seeded): IgLM with its tags and prompt, diffusion models with
    the prompt as a fixed prefix at the task's lengths (one request per length, in drawn order)."""
    task = TASKS[point.task]
    if point.model == "IgLM":
        samples = load_iglm().generate(num, task.iglm_chain, "human", temperature=point.temperature, seed=seed,
                                       prompt=task.iglm_prompt)  # fmt: skip
        return list(samples.sequences)
    lengths = [task.fixed_length] * num if task.fixed_length else sample_lengths(num, task.chain_types, seed)
    motif = Motif.parse(None, task.prompt) if task.prompt else None
    out: dict[int, list[str]] = {}
    for length in sorted(set(lengths)):
        request = ProteinRequest(
            num=lengths.count(length), length=length, motif=motif, nfe=point.nfe or 8, sampler=point.sampler,
            temperature=point.temperature, top_p=1.0, order_temperature=point.order_temperature or 0.0,
            seed=seed * 1000 + length, corrector_steps=point.rounds, corrector_fraction=point.fraction,
            corrector_temperature=point.corrector_temperature, corrector=point.corrector or None,
        )  # fmt: skip
        out[length] = generate(models[point.model], request)
    return [out[length].pop(0) for length in lengths]


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
    """Per-sequence judgements of one set; every summary and interval is computed from these.

    ``kept`` marks the sequences the task judges (valid chains of its chain types, human where it asks);
    ``chimera`` the heavy/light chimeras. Every other array holds the kept sequences only.
    """

    kept: np.ndarray  # (n,) bool
    chimera: np.ndarray  # (n,) bool
    nll: np.ndarray  # IgLM NLL
    v_identity: np.ndarray
    humanness: np.ndarray  # Sapiens mean log-probability per residue (nan: not scored)
    cdr3_lengths: np.ndarray
    imgt: np.ndarray  # IMGT identity matrix of the kept chains (heavy ones only in the unconditional task)
    positional: np.ndarray  # position-wise identity matrix of the kept chains
    heavy_fraction: float
    mean_length: float
    reference_cdr3: np.ndarray  # the real repertoire's CDR3 lengths for this task
    prmsd: np.ndarray | None = None

    def stats(self, rng: np.random.Generator | None = None) -> dict[str, float]:
        """The point's statistics on the data (``rng`` None) or on one bootstrap resample of every part."""

        def pick(n: int) -> np.ndarray:
            return np.arange(n) if rng is None else rng.integers(0, n, n)

        def mean(x: np.ndarray) -> float:
            x = x[pick(len(x))] if len(x) else x
            x = x[np.isfinite(x)]
            return float(x.mean()) if len(x) else math.nan

        out = {
            "kept": mean(self.kept.astype(float)),
            "chimera": mean(self.chimera.astype(float)),
            "iglm_nll": mean(self.nll),
            "v_identity": mean(self.v_identity),
            "humanness": mean(self.humanness),
            "diversity_imgt": 1 - resample_pair_mean(self.imgt, pick(len(self.imgt)))
            if len(self.imgt) > 1
            else math.nan,
            "diversity_positional": 1 - resample_pair_mean(self.positional, pick(len(self.positional)))
            if len(self.positional) > 1
            else math.nan,
            "cdr3_w1": length_distribution_distance(
                self.cdr3_lengths[pick(len(self.cdr3_lengths))], self.reference_cdr3
            )["w1"]
            if len(self.cdr3_lengths)
            else math.nan,
        }
        if self.prmsd is not None and len(self.prmsd):
            out["prmsd"] = mean(self.prmsd)
        return out

    def boot(self, seed: int) -> list[dict[str, float]]:
        rng = np.random.default_rng(seed)
        return [self.stats(rng) for _ in range(N_BOOT)]


def sapiens_humanness(seqs: Sequence[str], chain_types: Sequence[str]) -> np.ndarray:
    """Sapiens humanness of each sequence, or NaN everywhere when its checkpoints cannot be had (one notice)."""
    from protein_didi.eval.sapiens_judge import SapiensCheckpointsMissing, humanness

    if not seqs:
        return np.zeros(0)
    try:
        return humanness(list(seqs), list(chain_types))
    except SapiensCheckpointsMissing as err:
        tqdm.write(f"humanness not scored: {err}")
        return np.full(len(seqs), np.nan)


def judge(seqs: list[str], task: Task, split: str, igfold: int) -> Judged:
    nums: list[AntibodyNumbering] = number_antibodies(seqs)
    checks = check_chains(nums)
    kept = np.array(
        [c.valid and n.chain_type in task.chain_types and (not task.human_only or n.species == "human")
         for n, c in zip(nums, checks, strict=True)]
    )  # fmt: skip
    kept_idx = np.nonzero(kept)[0]
    kept_seqs = [seqs[i] for i in kept_idx]
    kept_nums = [nums[i] for i in kept_idx]
    table = antibody_table(kept_seqs, numbering=kept_nums, iglm=True) if kept_seqs else None
    diverse = [n for n in kept_nums if task.matched or n.chain_type == "H"]
    reference = [c.numbering for c in load_repertoire(split, task.chain_types)]
    prmsd = None
    if igfold:
        from protein_didi.fold.antibody import mean_prmsd  # optional, non-commercial extra

        cache = RESULTS / "antibody_frontier_samples" / "igfold_cache.sqlite"
        values = mean_prmsd(kept_seqs[:igfold], cache_path=cache, num_models=1)  # the first N kept, one model
        prmsd = values[np.isfinite(values)]
    return Judged(
        kept=kept,
        chimera=np.array([c.chimera for c in checks]),
        nll=table["iglm_nll"].to_numpy(float) if table is not None else np.zeros(0),
        v_identity=table["v_identity"].to_numpy(float) if table is not None else np.zeros(0),
        humanness=sapiens_humanness(kept_seqs, [str(n.chain_type) for n in kept_nums]),
        cdr3_lengths=np.array([len(n.region("CDR3")) for n in kept_nums], dtype=int),
        imgt=imgt_identity_matrix(diverse) if len(diverse) > 1 else np.zeros((len(diverse), len(diverse))),
        positional=positional_identity_matrix(kept_seqs) if len(kept_seqs) > 1 else np.zeros((0, 0)),
        heavy_fraction=float(np.mean([n.chain_type == "H" and c.valid for n, c in zip(nums, checks, strict=True)])),
        mean_length=float(np.mean([len(s) for s in seqs])),
        reference_cdr3=np.array([len(r.region("CDR3")) for r in reference], dtype=int),
        prmsd=prmsd,
    )


def interval(values: Sequence[float]) -> list[float]:
    v = np.asarray([x for x in values if math.isfinite(x)])
    return [round(float(np.percentile(v, 2.5)), 3), round(float(np.percentile(v, 97.5)), 3)] if len(v) else []


def summarise(
    label: str, point: Point | None, judged: Judged, seed: int, task: str
) -> tuple[dict[str, Any], list[dict]]:
    point_stats, boots = judged.stats(), judged.boot(seed)
    row: dict[str, Any] = {"set": label, "task": task, "family": point.family if point else "real repertoire"}
    if point is not None:
        row |= {k: v for k, v in asdict(point).items() if k not in ("model", "task")}
    row |= {"n": len(judged.kept), "n_kept": int(judged.kept.sum()), "heavy": round(judged.heavy_fraction, 3),
            "length": round(judged.mean_length, 1)}  # fmt: skip
    for key, value in point_stats.items():
        row[key] = round(value, 3)
        row[f"{key}_ci95"] = interval([b[key] for b in boots])
    return row, boots


# -- claims with intervals -----------------------------------------------------------------------------------------
CLAIMS = (  # (name, metric, kind, bound): "diff" bounds candidate − reference, "value" the candidate's own value
    ("IgLM NLL within 0.3 nats of IgLM's", "iglm_nll", "diff<=", 0.3),
    ("V identity within 0.02 of IgLM's", "v_identity", "diff>=", 0.02),
    ("diversity (IMGT) at least IgLM's", "diversity_imgt", "diff>=", 0.0),
    ("humanness (Sapiens) at least IgLM's minus its interval", "humanness", "diff>=", None),
    ("heavy/light chimera share ≤ 2 %", "chimera", "value<=", 0.02),
    ("share of chains kept by the task's filter at least IgLM's", "kept", "diff>=", 0.0),
)


def claims(candidate: list[dict], reference: list[dict], point_c: dict, point_r: dict) -> list[dict]:
    """Each target with a 95 % interval: ``met`` on the estimate, ``met_interval`` when the whole interval agrees.

    A difference's interval is the percentile interval of the bootstrap differences (candidate and reference
    resampled independently); the humanness margin is half the width of IgLM's own interval.
    """
    out = []
    for name, key, kind, bound in CLAIMS:
        if kind.startswith("value"):
            est, values = point_c[key], [c[key] for c in candidate]
        else:
            est, values = (
                point_c[key] - point_r[key],
                [c[key] - r[key] for c, r in zip(candidate, reference, strict=True)],
            )
        if bound is None:
            lo_r, hi_r = interval([r[key] for r in reference]) or [math.nan, math.nan]
            bound = (hi_r - lo_r) / 2
        lo, hi = interval(values) or [math.nan, math.nan]
        if kind.endswith("<="):
            met, met_interval = est <= bound, hi <= bound
        else:
            met, met_interval = est >= -bound, lo >= -bound
        out.append({"claim": name, "metric": key, "kind": kind, "bound": round(bound, 3), "estimate": round(est, 3),
                    "ci95": [lo, hi], "met": bool(met), "met_interval": bool(met_interval)})  # fmt: skip
    return out


# -- timing ------------------------------------------------------------------------------------------------------
def params(model: Any) -> int:
    return sum(p.numel() for p in model.parameters())


def timing(points: list[Point], models: dict[str, LoadedModel], batch: int, rounds: int) -> list[dict]:
    """Seconds per sequence, every method once per round in turn (same batch, same threads), after a warm-up."""
    iglm = load_iglm()
    per: dict[str, list[float]] = {p.label: [] for p in points}
    made: dict[str, list[str]] = {}
    for r in tqdm(range(rounds + 1), desc="timing rounds"):
        for p in points:
            t0 = time.perf_counter()
            made[p.label] = make_set(p, models, batch, seed=10_000 + r)
            if r:  # round 0 warms up every method
                per[p.label].append((time.perf_counter() - t0) / len(made[p.label]))
    rows = []
    for p in points:
        mean_length = statistics.mean(len(s) for s in made[p.label])
        if p.model == "IgLM":  # one token-forward per generated token with the KV cache (+ tags and end)
            cost, n_params = mean_length + 2 - len(TASKS[p.task].iglm_prompt), params(iglm.model)
        else:  # every step and every correction round runs the whole padded chain (corrector: same size here)
            cost, n_params = p.forward_passes * (mean_length + 2), params(models[p.model].model)
        times = per[p.label]
        rows.append(
            {
                "set": p.label,
                "seconds_per_seq": round(statistics.median(times), 4),
                "seconds_per_seq_min_max": [round(min(times), 4), round(max(times), 4)],
                "per_round": [round(t, 4) for t in times],
                "token_forwards_per_seq": round(cost, 1),
                "parameters": n_params,
                "gflop_per_seq": round(2 * n_params * cost / 1e9, 2),
            }
        )
    return rows


def speedups(rows: list[dict], reference: str) -> dict[str, dict]:
    """Per-round time ratios reference/method (paired by round): median with the min–max over rounds (not an
    interval: a handful of rounds)."""
    ref = next(r for r in rows if r["set"] == reference)["per_round"]
    out = {}
    for r in rows:
        ratios = [a / b for a, b in zip(ref, r["per_round"], strict=True)]
        out[r["set"]] = {
            "median": round(statistics.median(ratios), 2),
            "min_max": [round(min(ratios), 2), round(max(ratios), 2)],
        }
    return out


# -- figure ------------------------------------------------------------------------------------------------------
def plot(rows: list[dict], path: Path, title: str) -> None:
    """One row of panels per task: quality judges against IMGT diversity, every point with its intervals."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    panels = [
        ("iglm_nll", "IgLM NLL (nats/residue, lower better)"),
        ("v_identity", "V-germline identity"),
        ("humanness", "Sapiens humanness (higher = more human)"),
        ("kept", "share kept (valid chains of the task)"),
    ]
    if any("prmsd" in r for r in rows):
        panels.append(("prmsd", "IgFold pRMSD, Å (shares AntiBERTy's embeddings)"))
    tasks = list(dict.fromkeys(r["task"] for r in rows))
    fig, axes = plt.subplots(len(tasks), len(panels), figsize=(4.8 * len(panels), 4.2 * len(tasks)), squeeze=False)
    families = list(dict.fromkeys(r["family"] for r in rows))
    colours = dict(zip(families, plt.cm.tab10.colors, strict=False))
    markers = {"ancestral": "o", "confidence": "s", "iglm": "^"}
    for row_axes, task in zip(axes, tasks, strict=True):
        for ax, (yk, ylabel) in zip(row_axes, panels, strict=True):
            for r in (r for r in rows if r["task"] == task):
                x, y = r.get("diversity_imgt", math.nan), r.get(yk, math.nan)
                if not (math.isfinite(x) and math.isfinite(y)):
                    continue
                xe = [[x - r["diversity_imgt_ci95"][0]], [r["diversity_imgt_ci95"][1] - x]]
                ye = [[y - r[f"{yk}_ci95"][0]], [r[f"{yk}_ci95"][1] - y]]
                ax.errorbar(
                    x, y, xerr=xe, yerr=ye, fmt=markers.get(r.get("sampler", ""), "*"), ms=6,
                    color=colours[r["family"]], ecolor=colours[r["family"]], elinewidth=0.7, capsize=2, alpha=0.85,
                )  # fmt: skip
                tag = r["set"].split(" ", 1)[1] if " " in r["set"] else r["set"]
                ax.annotate(tag.replace("ancestral ", "").replace("confidence ", ""), (x, y), fontsize=6,
                            xytext=(3, 3), textcoords="offset points")  # fmt: skip
            ax.set_xlabel("diversity: 1 − IMGT pair identity")
            ax.set_ylabel(ylabel)
            ax.set_title(f"task: {task}", fontsize=9)
            ax.grid(alpha=0.3)
    handles = [plt.Line2D([], [], color=colours[f], marker="o", ls="", label=f) for f in families]
    handles += [plt.Line2D([], [], color="k", marker=m, ls="", label=s) for s, m in markers.items()]
    axes[0][0].legend(handles=handles, fontsize=7, loc="best")
    fig.suptitle(title, fontsize=10)
    fig.tight_layout()
    fig.savefig(path, dpi=100)


# -- markdown (what the README shows, read from the JSON) ------------------------------------------------------------
COLUMNS = (
    ("kept", "kept"), ("chimera", "chimeras"), ("iglm_nll", "IgLM NLL"), ("v_identity", "V identity"),
    ("humanness", "humanness (Sapiens)"), ("diversity_imgt", "diversity (IMGT)"),
    ("diversity_positional", "diversity (position-wise)"), ("cdr3_w1", "CDR3 length W1 vs real (no interval)"),
    ("prmsd", "IgFold pRMSD Å (not independent)"),
)  # fmt: skip


def markdown(path: Path) -> str:
    """The README's tables from a results JSON: one per task, targets with intervals, interleaved times."""
    import json

    data = json.loads(path.read_text())

    def ci(r: dict, key: str) -> str:
        if key not in r or not isinstance(r[key], float) or not math.isfinite(r[key]):
            return ""
        if key == "cdr3_w1":  # a resampled distance is biased away from 0: its percentile interval misleads
            return f"{r[key]:.2f}"
        lo_hi = r.get(f"{key}_ci95") or []
        return f"{r[key]:.2f} [{lo_hi[0]:.2f}, {lo_hi[1]:.2f}]" if lo_hi else f"{r[key]:.2f}"

    lines: list[str] = []
    for task in dict.fromkeys(r["task"] for r in data["rows"]):
        rows = [r for r in data["rows"] if r["task"] == task]
        has = [(c, h) for c, h in COLUMNS if any(c in r for r in rows)]
        lines += ["", f"Task `{task}` ({data['split']} split, seed {data['seed']}):", ""]
        lines.append("| set | n | kept n | " + " | ".join(h for _, h in has) + " |")
        lines.append("|" + " --- |" * (3 + len(has)))
        for r in rows:
            lines.append(f"| {r['set']} | {r['n']} | {r['n_kept']} | " + " | ".join(ci(r, c) for c, _ in has) + " |")
    for t in data.get("targets", []):
        lines += ["", f"Targets, task `{t['task']}`: `{t['candidate']}` vs `{t['reference']}` (95 % bootstrap "
                  "intervals; differences are candidate − IgLM):", ""]  # fmt: skip
        lines += ["| target | estimate | 95 % interval | bound | met (estimate) | met (whole interval) |",
                  "| --- | --- | --- | --- | --- | --- |"]  # fmt: skip
        for c in t["claims"]:
            lo, hi = c["ci95"]
            lines.append(f"| {c['claim']} | {c['estimate']:+.3f} | [{lo:+.3f}, {hi:+.3f}] | {c['bound']:.3f} | "
                         f"{'yes' if c['met'] else 'no'} | {'yes' if c['met_interval'] else 'no'} |")  # fmt: skip
    if "timing" in data:
        speed = data.get("speedup_vs_teacher", {})
        head = ("| method | s/seq (median; min–max over rounds) | token-forwards/seq | parameters | GFLOP/seq | "
                "speed-up vs teacher (median; min–max) |")  # fmt: skip
        lines += ["", head, "| --- | --- | --- | --- | --- | --- |"]
        for r in data["timing"]:
            sp = speed.get(r["set"], {})
            lo, hi = r["seconds_per_seq_min_max"]
            lines.append(
                f"| {r['set']} | {r['seconds_per_seq']:.3f} ({lo:.3f}–{hi:.3f}) | {r['token_forwards_per_seq']:.0f} | "
                f"{r['parameters'] / 1e6:.1f} M | {r['gflop_per_seq']:.1f} | "
                + (f"{sp['median']:.2f}× ({sp['min_max'][0]:.2f}–{sp['min_max'][1]:.2f})" if sp else "")
                + " |"
            )
    return "\n".join(lines).strip()


# -- main --------------------------------------------------------------------------------------------------------
def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument(
        "--split", choices=list(SPLIT_SEEDS), default="validation", help="validation (choose) or test (report)"
    )
    p.add_argument("--tasks", default="heavy,light,unconditional", help=f"comma-separated, of {', '.join(TASKS)}")
    p.add_argument("--num", type=int, default=128, help="sequences per point (default 128)")
    p.add_argument("--teacher", default="antiberty")
    p.add_argument("--teacher-nfe", type=int, default=32, help="teacher steps (default 32)")
    p.add_argument("--students", default="antibody-student,antibody-student-idlm", help="comma-separated students")
    p.add_argument("--student-nfe", type=int, default=8)
    p.add_argument("--temperatures", default="1.0", help="ancestral value temperatures (students)")
    p.add_argument("--order-temperatures", default="0,0.1,0.3,1", help="confidence τ of the first student")
    p.add_argument("--other-order-temperatures", default="1", help="confidence τ of the teacher and other students")
    p.add_argument("--iglm-temperatures", default="1.0", help="IgLM sampling temperatures")
    p.add_argument(
        "--extra", default="", help="more points: model:sampler:T:tau[;…], e.g. antibody-student:confidence:1:0.7"
    )
    p.add_argument("--corrector", default="antiberty", help="the model of the correction rounds (heavy task)")
    p.add_argument("--remask", default="8:0.15:0.7;8:0.3:0.7;8:0.3:1", help="heavy task: the first student's own "
                   "sampler + correction rounds, rounds:ρ:T[;…] (16-pass points; '' for none)")  # fmt: skip
    p.add_argument("--candidate", default=None, help="point checked against the targets (default: the first "
                   "student's own settings, what sample --model gives)")  # fmt: skip
    p.add_argument(
        "--igfold",
        type=int,
        default=0,
        metavar="N",
        help="IgFold pRMSD of the first N kept sequences of every set, one model (non-commercial [igfold] extra; "
        "IgFold embeds with AntiBERTy, the teacher's weights)",
    )
    p.add_argument("--timing-rounds", type=int, default=3, help="interleaved timing rounds (0: skip timing)")
    p.add_argument("--timing-batch", type=int, default=16, help="sequences per method per timing round")
    p.add_argument("--name", default="antibody_frontier")
    p.add_argument("--markdown", type=Path, default=None, help="only print the README tables of this results JSON")
    return p


def extra_points(spec: str, nfe: dict[str, int], tasks: Sequence[str]) -> list[Point]:
    out = []
    for part in filter(None, (s.strip() for s in spec.split(";"))):
        model, sampler, temp, tau = part.split(":")
        tau_value = float(tau) if sampler == "confidence" else None
        out += [Point(model, sampler, float(temp), tau_value, nfe.get(model, 8), task) for task in tasks]
    return out


def provenance(split: str, name: str) -> dict[str, Any]:
    """The commit the run was made at (and whether the tree had changes), and for the test split the hash of the
    validation JSON whose choices it reports."""

    def git(*cmd: str) -> str:
        done = subprocess.run(["git", *cmd], capture_output=True, text=True, cwd=Path(__file__).parent)
        return done.stdout.strip()

    out: dict[str, Any] = {"commit": git("rev-parse", "HEAD"), "dirty": bool(git("status", "--porcelain", "--", "."))}
    validation = RESULTS / f"{name}_validation.json"
    if split == "test":
        out["validation_json_sha256"] = file_sha256(validation) if validation.is_file() else None
    return out


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    if args.markdown is not None:
        print(markdown(args.markdown))
        return 0
    tasks = [t for t in args.tasks.split(",") if t]
    unknown = sorted(set(tasks) - set(TASKS))
    if unknown:
        raise SystemExit(f"error: unknown tasks {unknown}; choose from {', '.join(TASKS)}")
    seed = SPLIT_SEEDS[args.split]
    folder = RESULTS / "antibody_frontier_samples" / args.split  # shared by every --name: sets are made once
    folder.mkdir(parents=True, exist_ok=True)
    students = [s for s in args.students.split(",") if s]
    models = {name: load_model(name, "cpu") for name in [args.teacher, *students]}
    nfe = {args.teacher: args.teacher_nfe} | dict.fromkeys(students, args.student_nfe)
    points: list[Point] = []
    own: dict[str, Point] = {}
    for task in tasks:
        points += grid(args, task) + extra_points(args.extra, nfe, [task])
        if students:  # what `sample --model <first student>` does by default is always a point, named as such
            own[task] = own_point(models[students[0]], students[0], task, args.student_nfe)
            points.append(own[task])
            if task == "heavy" and args.remask is not None:
                points += sixteen_pass_points(own[task], args.corrector, args.remask)
    points = list(dict.fromkeys(points))

    rows: list[dict[str, Any]] = []
    boots: dict[str, list[dict]] = {}
    for k, point in enumerate(tqdm(points, desc=f"{args.split} points")):
        label = f"{point.task}: {point.label}"
        seqs = cached(folder, f"{label} n{args.num}", lambda p=point: make_set(p, models, args.num, seed))
        row, boots[label] = summarise(point.label, point, judge(seqs, TASKS[point.task], args.split, args.igfold),
                                      seed + k, point.task)  # fmt: skip
        rows.append(row)
        tqdm.write(f"{label}: kept {row['n_kept']}/{row['n']} chim {row['chimera']} NLL {row['iglm_nll']} "
                   f"V {row['v_identity']} div {row['diversity_imgt']} hum {row['humanness']}")  # fmt: skip
    for task in tasks:  # real chains of the split's repertoire, judged the same way
        chain_types = TASKS[task].chain_types[:1] if TASKS[task].matched else ("H", "K", "L")
        pool = load_repertoire(args.split, chain_types)
        picked = np.random.default_rng(seed).choice(len(pool), min(args.num, len(pool)), replace=False)
        label = f"real {'/'.join(CHAIN_NAMES[c] for c in chain_types)} (OAS, {args.split} split)"
        judged = judge([pool[i].sequence for i in sorted(picked)], TASKS[task], args.split, args.igfold)
        row, boots[f"{task}: {label}"] = summarise(label, None, judged, seed - 1, task)
        rows.append(row)

    extra: dict[str, Any] = {"split": args.split, "seed": seed, "args": vars(args), **provenance(args.split, args.name)}
    extra["own_points"] = {task: p.label for task, p in own.items()}
    by_key = {f"{r['task']}: {r['set']}": r for r in rows}
    extra["targets"] = []
    for task in tasks:
        reference = Point("IgLM", "iglm", 1.0, task=task).label
        candidate = args.candidate or (own[task].label if task in own else None)
        ck, rk = f"{task}: {candidate}", f"{task}: {reference}"
        if candidate and ck in by_key and rk in by_key:
            extra["targets"].append({
                "task": task, "candidate": candidate, "reference": reference,
                "claims": claims(boots[ck], boots[rk], by_key[ck], by_key[rk]),
            })  # fmt: skip
    if args.split == "validation" and "heavy" in tasks and students:
        # the first student's sampler per budget of forward passes (its default: the student's own steps):
        # lowest IgLM NLL among its points at least as diverse as IgLM on the heavy task
        ref = by_key.get(f"heavy: {Point('IgLM', 'iglm', 1.0, task='heavy').label}")
        extra["sampler_choice"] = {}
        for budget in (args.student_nfe, 2 * args.student_nfe):
            ok = [r for r in rows if r["task"] == "heavy" and r["family"] == students[0]
                  and r["nfe"] + r["rounds"] == budget and ref is not None
                  and r["diversity_imgt"] >= ref["diversity_imgt"]]  # fmt: skip
            extra["sampler_choice"][f"{budget} passes"] = min(ok, key=lambda r: r["iglm_nll"])["set"] if ok else None
    if args.timing_rounds > 0:
        first = tasks[0]
        timed = [p for p in points if p.task == first and p.temperature == 1.0 and p.order_temperature in (None, 1.0)]
        timed += [own[first]] if first in own else []
        timed += [
            p for p in points if p.task == first and p.forward_passes > args.student_nfe and p.model != args.teacher
        ]
        timed = list(dict.fromkeys(timed))
        extra["timing"] = timing(timed, models, args.timing_batch, args.timing_rounds)
        teacher_point = next((p for p in timed if p.model == args.teacher), timed[0])
        extra["speedup_vs_teacher"] = speedups(extra["timing"], teacher_point.label)
    write_results(f"{args.name}_{args.split}", rows, extra)
    for key in ("targets", "sampler_choice", "timing", "speedup_vs_teacher"):
        if key in extra:
            print(key, extra[key])
    plot(rows, RESULTS / f"{args.name}_{args.split}.png", f"{args.split} split (seed {seed}), {args.num} per point")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
