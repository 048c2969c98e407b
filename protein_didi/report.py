"""Evaluate sets of generated proteins: ``python -m protein_didi.report --fasta a.fasta b.fasta --out DIR``.

For every set (one FASTA each) and two reference sets — natural held-out
proteins drawn from ``--reference`` at the same lengths, and random proteins
with the reference's amino-acid composition — it measures length, composition
KL, low complexity, judge NLL, ESMFold pLDDT, MMseqs2 cluster diversity and
novelty against the training split, then writes ``metrics.csv`` (one row per
sequence), ``summary.csv`` (one row per set) and a self-contained
``report.html``.

Labels such as ``student-8`` or ``teacher-32-L200`` (``<model>-<nfe>[-L<length>]``)
add pLDDT-vs-NFE curves. ``--sweep`` generates such sets first
(``--models teacher,student --lengths 100,200 --nfe 8,16,32 --num 40``); FASTAs
already written and folds already cached are reused, so an interrupted sweep
resumes where it stopped. Without ESMFold weights the report says
"pLDDT not computed: <reason>" and carries on.

Folding fans out (see protein_didi.eval.fanout):

  one node, one worker process per device (repeat a device for more workers):
    ... --fold-devices cuda:0,cuda:1,cuda:2,cuda:3
  N machines or jobs (same arguments everywhere, I = 0..N-1; under torchrun
  RANK/WORLD_SIZE is the default), each writes OUT/fold_cache.shard-I-of-N.sqlite:
    ... --shard I/N
  then, with every shard file at hand, merge and report without refolding:
    ... --merge-cache OUT/fold_cache.shard-*-of-N.sqlite
  or only merge:  --out OUT --merge-cache SHARD [SHARD ...]
"""

from __future__ import annotations

import argparse
import base64
import html
import io
import math
import os
import re
import sys
import time
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from tqdm import tqdm

from protein_didi.cli import DOMAINS, split_domain
from protein_didi.core.checkpoint import CheckpointError, atomic_write
from protein_didi.eval.diversity import DiversityResult, diversity, novelty
from protein_didi.eval.stats import composition, composition_kl, natural_at_lengths, random_sequences, sequence_table
from protein_didi.protein.alphabet import ALPHABET, STANDARD_AA, InvalidSequenceError
from protein_didi.protein.fasta import FastaError, read_fasta, write_fasta
from protein_didi.protein.mmseqs import MMseqsError, mmseqs_binary

LABEL_RE = re.compile(r"^(?P<model>.+?)-(?P<nfe>\d+)(?:-L(?P<length>\d+))?$")
NOT_COMPUTED = "not computed"
CONFIDENT_PLDDT = 70.0


@dataclass
class SequenceSet:
    """One row of the summary: a labelled set of proteins and what it is (generated, natural or random)."""

    label: str
    kind: str
    records: list[tuple[str, str]]
    model: str | None = None
    nfe: int | None = None
    length: int | None = None
    target_lengths: list[int] = field(default_factory=list)

    @property
    def sequences(self) -> list[str]:
        return [s for _, s in self.records]


def parse_label(label: str) -> tuple[str, int, int | None] | None:
    """``teacher-32`` → ("teacher", 32, None); ``student-8-L200`` → ("student", 8, 200); else None."""
    m = LABEL_RE.match(label)
    if m is None:
        return None
    return m["model"], int(m["nfe"]), int(m["length"]) if m["length"] else None


def load_set(path: str | Path, label: str) -> SequenceSet:
    """Read and validate one FASTA; invalid residues become a one-line error naming file and record."""
    records = [(rid, ALPHABET.validate(seq, f"{path}: {rid}")) for rid, seq in read_fasta(path)]
    parsed = parse_label(label)
    model, nfe, length = parsed if parsed else (None, None, None)
    if parsed and length is None and len({len(s) for _, s in records}) == 1:
        length = len(records[0][1])  # one shared length: the set belongs on that length's NFE curve
    return SequenceSet(label, "generated", records, model, nfe, length, [len(s) for _, s in records])


def reference_lengths(sets: Sequence[SequenceSet]) -> list[int]:
    """Lengths for the reference rows: each length as often as the largest set has it, so every set has a match."""
    need: Counter[int] = Counter()
    for s in sets:
        for n, c in Counter(len(q) for q in s.sequences).items():
            need[n] = max(need[n], c)
    return sorted(need.elements())


def reference_sets(
    generated: Sequence[SequenceSet], reference: Sequence[tuple[str, str]], ref_comp: dict[str, float], seed: int
) -> list[SequenceSet]:
    """Natural held-out proteins at the generated lengths and composition-matched random ones.

    When every label names its length (``<model>-<nfe>-L<length>``, as a sweep
    writes them) and there are several lengths, there is one natural and one
    random set per length (``natural-L100`` …), each as large as the generated
    sets, so cluster entropies compare like for like.
    """
    lengths = reference_lengths(generated)
    natural = natural_at_lengths(reference, lengths, seed=seed)  # one draw: no protein repeats across lengths
    rand = [(f"random_{i + 1:04d}", s) for i, s in enumerate(random_sequences(lengths, ref_comp, seed=seed))]
    labelled = [parse_label(s.label) for s in generated]
    per_length = all(p is not None and p[2] is not None for p in labelled) and len({p[2] for p in labelled}) > 1
    groups = sorted(set(lengths)) if per_length else [None]
    out = []
    for kind, records in (("natural", natural), ("random", rand)):
        for n in groups:
            idx = [i for i, m in enumerate(lengths) if n is None or m == n]
            out.append(
                SequenceSet(
                    kind if n is None else f"{kind}-L{n}",
                    kind,
                    [records[i] for i in idx],
                    length=n,
                    target_lengths=[lengths[i] for i in idx],
                )
            )
    return out


@dataclass
class Evaluation:
    metrics: pd.DataFrame
    summary: pd.DataFrame
    notes: list[str]
    reference_composition: dict[str, float]
    plddt_computed: bool


def _judge_scores(seqs: list[str], judge_path: str | None) -> tuple[np.ndarray, str | None]:
    """Judge NLL (nats/residue) or NaN with the reason; the judge is optional and lives in another module."""
    nan = np.full(len(seqs), np.nan)
    try:
        from protein_didi.eval.judge import judge_nll, load_judge
    except ImportError as err:
        return nan, f"judge NLL not computed: judge module unavailable ({err})"
    try:
        if judge_path is not None:
            return np.asarray(load_judge(judge_path).nll(seqs), dtype=np.float64), None
        load_judge()  # raises ModelNotFoundError with the training command when the weights are absent
        return np.asarray(judge_nll(seqs), dtype=np.float64), None
    except Exception as err:  # the judge is a nice-to-have: any failure must not cost the rest of the report
        return nan, f"judge NLL not computed: {' '.join(str(err).split()) or type(err).__name__}"


def _progress_bar(desc: str, total: int | None = None) -> tuple[Any, Any]:
    """A tqdm bar on stderr and the ``progress(done, total)`` callback the folders call."""
    bar = tqdm(total=total, desc=desc, unit="seq", file=sys.stderr)

    def progress(done: int, total: int) -> None:
        bar.total = total
        bar.n = done
        bar.refresh()

    return bar, progress


def _fold_scores(seqs: list[str], folder: Any) -> tuple[np.ndarray, str | None]:
    """Mean pLDDT per sequence with a tqdm bar, or NaN and the one-line reason."""
    from protein_didi.eval.fold import FoldingUnavailable

    nan = np.full(len(seqs), np.nan)
    bar, progress = _progress_bar("folding (ESMFold)", len(set(seqs)))
    try:
        results = folder.fold(seqs, progress=progress)
    except FoldingUnavailable as err:
        return nan, f"pLDDT not computed: {err}"
    finally:
        bar.close()
    return np.array([r.mean_plddt for r in results]), None


def evaluate(
    sets: Sequence[SequenceSet],
    ref_comp: dict[str, float],
    train_fasta: str | Path | None,
    folder: Any | None,
    no_fold_reason: str = "disabled with --no-fold",
    threads: int | None = None,
    min_seq_id: float = 0.3,
    coverage: float = 0.8,
    judge: bool = True,
    judge_path: str | None = None,
    cluster: bool = True,
) -> Evaluation:
    """All metrics for every set; optional parts (fold, judge, novelty) degrade to NaN plus a note."""
    notes: list[str] = []
    rows = []
    for s in sets:
        table = sequence_table(s.sequences, ref_comp)
        table.insert(0, "id", [rid for rid, _ in s.records])
        table.insert(0, "kind", s.kind)
        table.insert(0, "set", s.label)
        table["model"] = s.model
        table["nfe"] = s.nfe
        table["set_length"] = s.length
        table["target_length"] = s.target_lengths or table["length"].tolist()
        rows.append(table)
    metrics = pd.concat(rows, ignore_index=True)
    all_seqs = metrics["sequence"].tolist()

    if judge:
        metrics["judge_nll"], note = _judge_scores(all_seqs, judge_path)
        if note:
            notes.append(note)
    else:
        metrics["judge_nll"] = np.nan
        notes.append("judge NLL not computed: disabled with --no-judge")

    if folder is None:
        metrics["plddt"], note = np.nan, f"pLDDT not computed: {no_fold_reason}"
    else:
        metrics["plddt"], note = _fold_scores(all_seqs, folder)
    plddt_computed = note is None
    if note:
        notes.append(note)

    metrics["cluster"] = -1
    div: dict[str, DiversityResult] = {}
    if cluster:
        for s in tqdm(sets, desc="clustering (MMseqs2)", unit="set", file=sys.stderr):
            div[s.label] = diversity(s.sequences, min_seq_id, coverage, threads)
            metrics.loc[metrics["set"] == s.label, "cluster"] = div[s.label].labels
    else:
        notes.append("diversity not computed: disabled with --no-diversity")

    if train_fasta is not None:
        metrics["novelty"] = novelty(all_seqs, train_fasta, threads=threads)
    else:
        metrics["novelty"] = np.nan
        notes.append("novelty not computed: no training FASTA (give --train, e.g. data/uniprot20k/train.fasta)")

    summary_rows = []
    for s in sets:
        m = metrics[metrics["set"] == s.label]
        d = div.get(s.label)
        plddt = m["plddt"].to_numpy(dtype=np.float64)
        summary_rows.append(
            {
                "set": s.label,
                "kind": s.kind,
                "model": s.model,
                "nfe": s.nfe,
                "length": s.length,
                "n": len(m),
                "mean_length": float(m["length"].mean()),
                "judge_nll": float(m["judge_nll"].mean()) if m["judge_nll"].notna().any() else np.nan,
                "composition_kl": composition_kl(s.sequences, ref_comp),
                "low_complexity": float(m["low_complexity"].mean()),
                "plddt_mean": float(np.nanmean(plddt)) if plddt_computed else NOT_COMPUTED,
                "plddt_std": float(np.nanstd(plddt)) if plddt_computed else np.nan,
                "plddt_frac_confident": float(np.mean(plddt > CONFIDENT_PLDDT)) if plddt_computed else np.nan,
                "num_clusters": d.num_clusters if d else np.nan,
                "cluster_entropy": d.entropy if d else np.nan,
                "max_entropy": math.log(len(m)) if len(m) else np.nan,
                "mean_cluster_size": d.mean_size if d else np.nan,
                "novelty": float(m["novelty"].mean()) if m["novelty"].notna().any() else np.nan,
                "novelty_max": float(m["novelty"].max()) if m["novelty"].notna().any() else np.nan,
            }
        )
    summary = pd.DataFrame(summary_rows)
    # integer columns with gaps (reference rows have no NFE) stay integers instead of turning into 8.000
    summary = summary.astype({"nfe": "Int64", "length": "Int64", "num_clusters": "Int64"})
    metrics = metrics.astype({"nfe": "Int64", "set_length": "Int64"})
    return Evaluation(metrics, summary, notes, ref_comp, plddt_computed)


# ---------------------------------------------------------------- HTML


def _png(fig: Any) -> str:
    import matplotlib.pyplot as plt

    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=110, bbox_inches="tight")
    plt.close(fig)
    return f'<img alt="plot" src="data:image/png;base64,{base64.b64encode(buf.getvalue()).decode()}">'


def _plddt_distribution(ev: Evaluation) -> str:
    import matplotlib.pyplot as plt

    labels = list(ev.summary["set"])
    data = [ev.metrics.loc[ev.metrics["set"] == lab, "plddt"].dropna().to_numpy() for lab in labels]
    fig, ax = plt.subplots(figsize=(0.6 * len(labels) + 2.5, 3.6))
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=6, alpha=0.5, color="tab:blue")
    ax.axhline(CONFIDENT_PLDDT, color="grey", ls="--", lw=1)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("mean pLDDT (ESMFold)")
    return _png(fig)


def _metric_vs_nfe(ev: Evaluation, column: str, ylabel: str) -> str | None:
    """One panel per length: mean ± s.e. of ``column`` against NFE for each model, reference sets as lines."""
    import matplotlib.pyplot as plt

    gen = ev.metrics[(ev.metrics["kind"] == "generated") & ev.metrics["nfe"].notna()].copy()
    if gen.empty or gen[column].isna().all():
        return None
    gen["panel"] = gen["set_length"].map(lambda v: "all lengths" if pd.isna(v) else f"L = {int(v)}")
    panels = sorted(gen["panel"].unique(), key=lambda p: (p == "all lengths", int(p[4:]) if p[:2] == "L " else 0))
    fig, axes = plt.subplots(1, len(panels), figsize=(3.6 * len(panels) + 0.5, 3.2), squeeze=False, sharey=True)
    for ax, panel in zip(axes[0], panels, strict=True):
        sub = gen[gen["panel"] == panel]
        for model, g in sub.groupby("model"):
            stats = g.groupby("nfe")[column].agg(["mean", "sem"]).sort_index()
            ax.errorbar(
                stats.index.to_numpy(dtype=float),
                stats["mean"],
                yerr=stats["sem"].fillna(0),
                marker="o",
                capsize=3,
                label=model,
            )
        for kind, style in (("natural", "-"), ("random", ":")):
            ref = ev.metrics[ev.metrics["kind"] == kind]
            if panel != "all lengths":
                ref = ref[ref["target_length"] == int(panel[4:])]
            if ref[column].notna().any():
                ax.axhline(ref[column].mean(), color="grey", ls=style, lw=1, label=kind)
        ax.set_xscale("log", base=2)
        ax.ticklabel_format(axis="y", useOffset=False)
        ax.set_title(panel)
        ax.set_xlabel("NFE (sampling steps)")
    axes[0][0].set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="best")
    return _png(fig)


def _composition_bars(ev: Evaluation) -> str:
    import matplotlib.pyplot as plt

    kinds = dict(zip(ev.summary["set"], ev.summary["kind"], strict=True))
    models = dict(zip(ev.summary["set"], ev.summary["model"], strict=True))
    generated = [lab for lab, k in kinds.items() if k == "generated"]
    if len(generated) > 6 and all(isinstance(models[lab], str) for lab in generated):
        # many sets (a sweep): pool each model's sets so the bars stay readable
        groups = {lab: f"{models[lab]} (all sets)" for lab in generated}
    else:
        groups = {lab: lab for lab in generated}
    groups |= {lab: k for lab, k in kinds.items() if k != "generated"}  # reference sets pooled by kind
    pooled: dict[str, list[str]] = {}
    for lab, name in groups.items():
        pooled.setdefault(name, []).extend(ev.metrics.loc[ev.metrics["set"] == lab, "sequence"].tolist())
    series = {name: composition(seqs) for name, seqs in pooled.items()}
    fig, ax = plt.subplots(figsize=(11, 3.6))
    width = 0.85 / len(series)
    x = np.arange(len(STANDARD_AA))
    for i, (name, comp) in enumerate(series.items()):
        ax.bar(x + (i - (len(series) - 1) / 2) * width, [comp[a] for a in STANDARD_AA], width, label=name)
    ref = [ev.reference_composition[a] for a in STANDARD_AA]
    ax.hlines(ref, x - 0.45, x + 0.45, colors="black", lw=1.5, label="reference")
    ax.set_xticks(x, list(STANDARD_AA))
    ax.set_xlim(-0.6, len(STANDARD_AA) - 0.4)
    ax.set_ylabel("frequency")
    ax.legend(fontsize=7, ncol=min(len(series) + 1, 7), loc="lower center", bbox_to_anchor=(0.5, 1.0), frameon=False)
    return _png(fig)


def _table(df: pd.DataFrame) -> str:
    return df.to_html(index=False, na_rep="–", float_format=lambda v: f"{v:.3f}", border=0, classes="tbl")


def render_html(ev: Evaluation, title: str, context: dict[str, str]) -> str:
    """The report page; plots are PNGs embedded as base64, so the file works offline and when mailed around."""
    import matplotlib

    matplotlib.use("Agg")
    parts = [f"<h1>{html.escape(title)}</h1>"]
    parts.append("<p>" + "<br>".join(f"<b>{html.escape(k)}</b>: {html.escape(v)}" for k, v in context.items()) + "</p>")
    if ev.notes:
        parts.append('<ul class="notes">' + "".join(f"<li>{html.escape(n)}</li>" for n in ev.notes) + "</ul>")
    parts.append("<h2>Summary</h2>" + _table(ev.summary))
    parts.append(
        "<p class=hint>natural = held-out proteins from the reference at the same lengths; random = residues drawn "
        "i.i.d. from the reference composition. composition_kl = KL(set ‖ reference) in nats; low_complexity = "
        "fraction of residues in 12-residue windows below 2.2 bits (SEG-like); novelty = max identity to any "
        "training protein over the query length (1 = copy).</p>"
    )
    parts.append("<h2>Foldability: ESMFold pLDDT</h2>")
    if ev.plddt_computed:
        parts.append(_plddt_distribution(ev))
        curve = _metric_vs_nfe(ev, "plddt", "mean pLDDT")
        if curve:
            parts.append("<h3>pLDDT vs NFE</h3>" + curve)
    else:
        parts.append(f"<p class=warn>{html.escape(next(n for n in ev.notes if n.startswith('pLDDT')))}</p>")
    judge_curve = _metric_vs_nfe(ev, "judge_nll", "judge NLL (nats/residue)")
    if judge_curve:
        parts.append("<h3>Judge NLL vs NFE</h3>" + judge_curve)
    diversity_cols = ["set", "n", "num_clusters", "cluster_entropy", "max_entropy", "mean_cluster_size", "novelty"]
    table13 = ev.summary[diversity_cols].rename(
        columns={
            "n": "#seq",
            "num_clusters": "#clusters",
            "cluster_entropy": "cluster entropy (nats)",
            "max_entropy": "ln #seq (max)",
            "mean_cluster_size": "mean cluster size",
            "novelty": "mean max-identity to train",
        }
    )
    parts.append("<h2>Diversity (MMseqs2 easy-cluster, as Table 13)</h2>" + _table(table13))
    parts.append("<h2>Amino-acid composition vs reference</h2>" + _composition_bars(ev))
    style = (
        "body{font-family:system-ui,sans-serif;margin:2em;max-width:1200px}"
        ".tbl{border-collapse:collapse;font-size:13px}.tbl td,.tbl th{padding:3px 8px;border-bottom:1px solid #ddd;"
        "text-align:right}.warn{color:#a40}.notes li{color:#a40}.hint{color:#555;font-size:12px}img{max-width:100%}"
    )
    return (
        f'<!doctype html>\n<html><head><meta charset="utf-8"><title>{html.escape(title)}</title>'
        f"<style>{style}</style></head><body>\n" + "\n".join(parts) + "\n</body></html>\n"
    )


def write_outputs(ev: Evaluation, out: Path, context: dict[str, str]) -> None:
    out.mkdir(parents=True, exist_ok=True)
    atomic_write(out / "metrics.csv", lambda p: ev.metrics.to_csv(p, index=False))
    atomic_write(out / "summary.csv", lambda p: ev.summary.to_csv(p, index=False))
    page = render_html(ev, "protein_didi evaluation report", context)
    atomic_write(out / "report.html", lambda p: p.write_text(page, encoding="utf-8"))


# ---------------------------------------------------------------- sweep


def run_sweep(args: argparse.Namespace) -> list[tuple[Path, str]]:
    """Generate ``<model>-<nfe>-L<length>.fasta`` for the grid; files already there are reused (resume)."""
    from protein_didi.core.device import resolve_device
    from protein_didi.protein.generate import generate, sequence_records
    from protein_didi.protein.pretrained import load_model

    out_dir = args.out / "sweep"
    grid = [(m, n, nfe) for m in args.models for n in args.lengths for nfe in args.nfe]
    files = []
    device = resolve_device(args.device)
    loaded = {}
    for model, length, nfe in tqdm(grid, desc="generating (sweep)", unit="set", file=sys.stderr):
        label = f"{Path(model).name}-{nfe}-L{length}"
        path = out_dir / f"{label}.fasta"
        if not path.is_file():
            if model not in loaded:
                loaded[model] = load_model(model, device)
            seqs = generate(loaded[model], args.num, length, nfe, seed=args.seed, batch_size=args.batch_size)
            records = sequence_records(seqs, f"{label}_seed{args.seed}")
            atomic_write(path, lambda p, r=records: write_fasta(p, r))
        files.append((path, label))
    return files


# ---------------------------------------------------------------- CLI


def _csv_list(kind: type) -> Any:
    def parse(text: str) -> list:
        try:
            items = [kind(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {kind.__name__}") from None
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.report", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--domain", choices=DOMAINS, default="protein", help="text: hand over to the text report (see --domain text -h)"
    )
    p.add_argument("--fasta", nargs="+", type=Path, default=[], help="generated sets, one FASTA each")
    p.add_argument("--labels", type=_csv_list(str), default=None, help="comma-separated labels (default: file names)")
    p.add_argument(
        "--reference", type=Path, default=None, help="held-out natural proteins (e.g. test.fasta); required to report"
    )
    p.add_argument(
        "--train", type=Path, default=None, help="training FASTA for novelty (default: train.fasta next to --reference)"
    )
    p.add_argument("--out", type=Path, required=True, help="output folder for metrics.csv, summary.csv, report.html")
    p.add_argument(
        "--esmfold",
        default=None,
        help="ESMFold folder or hub id (default: $PROTEIN_DIDI_ESMFOLD or facebook/esmfold_v1)",
    )
    p.add_argument("--no-fold", action="store_true", help="skip ESMFold pLDDT")
    p.add_argument("--fold-cache", type=Path, default=None, help="sqlite fold cache (default: OUT/fold_cache.sqlite)")
    p.add_argument("--chunk-size", type=int, default=64, help="ESMFold axial-attention chunk (memory vs speed)")
    p.add_argument(
        "--fold-devices",
        type=_csv_list(str),
        default=None,
        metavar="DEV,DEV",
        help="fold in one worker process per device, e.g. cuda:0,cuda:1 or cpu,cpu (default: in-process on --device)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="fold only job I's slice of N (I from 0) into FOLD_CACHE.shard-I-of-N.sqlite and exit "
        "(default under torchrun: RANK/WORLD_SIZE)",
    )
    p.add_argument(
        "--merge-cache",
        nargs="+",
        type=Path,
        default=[],
        metavar="DB",
        help="merge these fold caches (the --shard files) into --fold-cache first (idempotent); "
        "without --fasta/--sweep, only merge",
    )
    p.add_argument("--offline", action="store_true", help="never try to download ESMFold weights")
    p.add_argument("--no-judge", action="store_true", help="skip the judge NLL")
    p.add_argument("--judge", default=None, help="judge checkpoint folder (default: the shipped judge)")
    p.add_argument("--threads", type=int, default=None, help="threads for MMseqs2 and torch (default: all cores)")
    p.add_argument("--no-diversity", action="store_true", help="skip MMseqs2 clustering (~3 s per set)")
    p.add_argument("--min-seq-id", type=float, default=0.3, help="clustering identity threshold (default 0.3)")
    p.add_argument("--coverage", type=float, default=0.8, help="clustering coverage (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="seed for reference rows and sweep generation")
    p.add_argument("--device", default="auto", help="auto, cpu, cuda, mps (folding and sweep generation)")
    p.add_argument("--sweep", action="store_true", help="generate a model × length × NFE grid first, then report")
    p.add_argument("--models", type=_csv_list(str), default=["teacher", "student"], help="sweep models")
    p.add_argument("--lengths", type=_csv_list(int), default=[100, 200, 300, 400, 500], help="sweep lengths")
    p.add_argument("--nfe", type=_csv_list(int), default=[8, 16, 32], help="sweep NFEs")
    p.add_argument("--num", type=int, default=40, help="sequences per sweep cell (default 40)")
    p.add_argument("--batch-size", type=int, default=32, help="sweep generation batch size")
    return p


# ---------------------------------------------------------------- fold fan-out


def _make_folder(args: argparse.Namespace, cache_path: Path, device: str) -> Any:
    """A :class:`Folder` on ``device``, or a :class:`FoldPool` when ``--fold-devices`` names several devices."""
    from protein_didi.eval.fold import Folder, default_model

    model = args.esmfold or default_model()
    devices = args.fold_devices or [device]
    if len(devices) == 1:
        return Folder(model, devices[0], cache_path, args.chunk_size, allow_download=not args.offline)
    from protein_didi.eval.fanout import FoldPool, FoldSpec

    spec = FoldSpec(model, args.chunk_size, allow_download=not args.offline)
    return FoldPool(spec, devices, cache_path, threads=args.threads)


def _shard_and_device(args: argparse.Namespace) -> tuple[tuple[int, int] | None, str]:
    """``--shard I/N``, else RANK/WORLD_SIZE under torchrun (then each rank folds on its own GPU), else None."""
    if args.shard is not None or ("WORLD_SIZE" in os.environ and not args.merge_cache):
        from protein_didi.eval.fanout import parse_shard, shard_from_env

        if args.shard is not None:
            return parse_shard(args.shard), args.device
        shard = shard_from_env(os.environ)
        if shard is not None:
            import torch

            if args.device == "auto" and "LOCAL_RANK" in os.environ and torch.cuda.is_available():
                args.device = f"cuda:{int(os.environ['LOCAL_RANK'])}"
            print(f"torchrun: folding shard {shard[0]}/{shard[1]} (RANK/WORLD_SIZE) on {args.device}", file=sys.stderr)
        return shard, args.device
    return None, args.device


def _merge_step(args: argparse.Namespace, dst: Path, folder: Any | None) -> None:
    """Merge ``--merge-cache`` files into ``dst`` and say what is missing or keyed by another model id."""
    from protein_didi.eval.fanout import merge_caches, merge_notes

    srcs = args.merge_cache
    model_id = None
    if args.fasta or args.sweep:  # a report follows: check that it will find the merged folds
        if folder is not None:
            model_id = getattr(folder, "model_id", None)
        elif not args.no_fold:
            from protein_didi.eval.fold import _backend_of, default_model, model_cache_id

            model = args.esmfold or default_model()
            model_id = model_cache_id(model, _backend_of(model, "auto"))
    notes = merge_notes(srcs, model_id)  # also checks every file before anything is written
    added = merge_caches(dst, srcs)
    print(f"merged {len(srcs)} fold cache(s) into {dst}: {added} new fold(s)")
    for note in notes:
        print(f"note: {note}")


def _shard_step(
    args: argparse.Namespace, sets: Sequence[SequenceSet], shard: tuple[int, int], cache_path: Path, device: str
) -> int:
    """Fold this job's slice of every set's sequences (reference rows included) into its shard cache."""
    from protein_didi.eval.fanout import fold_shard, shard_cache_path

    index, count = shard
    folder = _make_folder(args, shard_cache_path(cache_path, index, count), device)
    bar, progress = _progress_bar(f"folding shard {index}/{count}")
    try:
        run = fold_shard(folder, [q for s in sets for q in s.sequences], index, count, cache_path, progress)
    finally:
        bar.close()
    print(
        f"shard {index}/{count}: {run.slice_size} of {run.total} unique sequences, {run.folded} folded now, "
        f"in {run.path}"
    )
    merge = shard_cache_path(cache_path, "*", count)
    print(f"when all {count} jobs are done, rerun without --shard and with --merge-cache {merge}")
    return 0


def main(argv: list[str] | None = None, folder: Any | None = None) -> int:
    """CLI entry; ``folder`` injects a ready :class:`~protein_didi.eval.fold.Folder` (tests, the app).

    An injected folder replaces ``--esmfold``/``--device``/``--fold-devices``; ``--shard`` builds its own.
    ``--domain text`` hands over to the text report (judge perplexity and token entropy).
    """
    domain, rest = split_domain(argv)
    if domain == "text":
        from protein_didi.text.report import main as report_text

        return report_text(rest)
    args = build_parser().parse_args(rest)
    start = time.time()
    try:
        if args.threads is not None:
            import torch

            torch.set_num_threads(args.threads)
        shard, device = _shard_and_device(args)
        cache_path = args.fold_cache or args.out / "fold_cache.sqlite"
        if args.merge_cache:
            if shard is not None:
                raise ValueError("--shard folds one slice and --merge-cache combines them: run them as separate steps")
            _merge_step(args, cache_path, folder)
            if not args.fasta and not args.sweep:
                return 0
        if args.reference is None:
            raise ValueError("--reference is required: held-out natural proteins, e.g. data/uniprot20k/test.fasta")
        if shard is not None and args.no_fold:
            raise ValueError("--shard only folds, so it cannot run with --no-fold")
        if shard is not None and folder is not None:
            raise ValueError("--shard builds its own folder from --esmfold; do not pass one to main()")
        if shard is None:
            mmseqs_binary()  # fail before any expensive step
        if not args.fasta and not args.sweep:
            raise ValueError("nothing to evaluate: give --fasta FILE [FILE ...] and/or --sweep")
        labels = args.labels or [p.stem for p in args.fasta]
        if len(labels) != len(args.fasta):
            raise ValueError(f"{len(labels)} labels for {len(args.fasta)} FASTA files; give one label per file")
        if len(set(labels)) != len(labels):
            raise ValueError(f"labels must be unique, got {','.join(labels)}")
        inputs = list(zip(args.fasta, labels, strict=True))
        if args.sweep:
            inputs += run_sweep(args)
        generated = [load_set(path, label) for path, label in inputs]
        reference = [
            (rid, ALPHABET.validate(s, f"{args.reference}: {rid}", None)) for rid, s in read_fasta(args.reference)
        ]
        ref_comp = composition(s for _, s in reference)
        sets = generated + reference_sets(generated, reference, ref_comp, args.seed)
        clash = sorted({s.label for s in sets[len(generated) :]} & set(labels))
        if clash:
            raise ValueError(f"label {clash[0]!r} is reserved for reference rows; rename that set")
        if shard is not None:
            return _shard_step(args, sets, shard, cache_path, device)
        train = args.train
        if train is None and (args.reference.parent / "train.fasta").is_file():
            train = args.reference.parent / "train.fasta"
        no_fold_reason = "disabled with --no-fold"
        if folder is None and not args.no_fold:
            try:
                folder = _make_folder(args, cache_path, device)
            except ValueError as err:
                folder, no_fold_reason = None, str(err)
        if args.no_fold:
            folder = None
        ev = evaluate(
            sets,
            ref_comp,
            train,
            folder,
            no_fold_reason,
            args.threads,
            args.min_seq_id,
            args.coverage,
            judge=not args.no_judge,
            judge_path=args.judge,
            cluster=not args.no_diversity,
        )
        context = {
            "sets": ", ".join(f"{s.label} ({len(s.records)})" for s in generated),
            "reference": str(args.reference),
            "training split (novelty)": str(train) if train else "none",
            "ESMFold": "off" if folder is None else str(getattr(folder, "model_id", folder)),
            "clustering": f"mmseqs easy-cluster --min-seq-id {args.min_seq_id} -c {args.coverage}",
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        write_outputs(ev, args.out, context)
    except (FastaError, InvalidSequenceError, MMseqsError, CheckpointError, ValueError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    for note in ev.notes:
        print(note)
    with pd.option_context("display.width", 200, "display.max_columns", 30):
        print(ev.summary.drop(columns=["model", "nfe", "length"]).to_string(index=False, float_format="%.3f"))
    print(f"wrote {args.out / 'report.html'}, metrics.csv, summary.csv in {time.time() - start:.0f} s", file=sys.stderr)
    return 0


if __name__ == "__main__":
    os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")
    raise SystemExit(main())
