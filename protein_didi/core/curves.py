"""Training curves as a picture: ``python -m protein_didi.curves RUN [RUN ...] [--out curves.png]``.

Every training run (teacher, DiDi-Instruct, IDLM, judge; protein or text) logs
one JSON line per step to ``RUN/metrics.jsonl``; someone watching a run for
hours wants the curves, not the log. The training loop calls
:func:`write_curves` at every checkpoint, so ``RUN/curves.png`` is never older
than the last checkpoint; this CLI draws one or several runs side by side (one
column per run, one row per kind of metric, shared y-axes per row) for
comparisons. Each metric is drawn raw (faint) and smoothed (exponential moving
average), because per-step losses of small batches are noisy.

``--tensorboard DIR`` also writes TensorBoard event files when the
``tensorboard`` package is installed (it is optional).
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from collections.abc import Sequence
from pathlib import Path

from protein_didi.core.checkpoint import atomic_write

# In core because the training loop draws with it at every checkpoint; protein_didi/curves.py is the command.

METRICS_FILE = "metrics.jsonl"
CURVES_FILE = "curves.png"
SKIP = {"step", "epoch"}  # x-axis candidates, not curves
GROUPS: tuple[tuple[str, tuple[str, ...]], ...] = (
    # (panel title, substrings of metric names), first match wins; the rest go to "other"
    # (teacher training's held-out NELBO per mask-rate band, logged at step 0 and every checkpoint; drawn under
    # the losses, apart from the per-step training loss, whose noise would hide the bands' checkpoint-to-checkpoint
    # changes)
    ("held-out NELBO by mask rate (nats)", ("heldout",)),
    ("discriminator accuracy", ("acc",)),
    ("student samples (shares)", ("mix",)),
    ("rewards", ("reward",)),
    ("gradient norms", ("grad_norm",)),
    ("learning rate", ("lr",)),
    ("losses (nats)", ("loss", "nll", "elbo", "kl", "entropy", "nelbo")),
)
OTHER = "other"


class CurvesError(ValueError):
    """A run folder without a usable metrics log (one line naming the fix)."""


def read_metrics(run: str | Path) -> list[dict[str, float]]:
    """The step records of ``run`` (a folder holding metrics.jsonl, or the file itself); torn last lines skipped."""
    path = Path(run)
    if not path.exists():
        raise CurvesError(f"{path} not found; give a training run folder (the --out of train_teacher, distill, …)")
    path = path / METRICS_FILE if path.is_dir() else path
    if not path.is_file():
        raise CurvesError(f"{path} not found; is {run} a training run folder (the --out of a training command)?")
    records = []
    for line in path.read_text().splitlines():
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue  # a line being written while we read
        if isinstance(row, dict) and "step" in row:
            records.append(row)
    if not records:
        raise CurvesError(f"{path} holds no step records yet; wait for the first training step")
    return records


def group_of(name: str) -> str:
    """Panel a metric belongs to (``d_acc`` → discriminator accuracy, ``s_grad_norm`` → gradient norms, …)."""
    lowered = name.lower()
    for title, keys in GROUPS:
        if any(k == lowered or k in lowered.split("_") or (len(k) > 3 and k in lowered) for k in keys):
            return title
    return OTHER


def series(records: Sequence[dict[str, float]]) -> dict[str, tuple[list[float], list[float]]]:
    """``name → (steps, values)`` for every numeric, finite metric of the log."""
    out: dict[str, tuple[list[float], list[float]]] = {}
    for row in records:
        for k, v in row.items():
            if k in SKIP or isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v):
                continue
            steps, values = out.setdefault(k, ([], []))
            steps.append(float(row["step"]))
            values.append(float(v))
    return out


def smooth(values: Sequence[float], span: int) -> list[float]:
    """Bias-corrected exponential moving average over about ``span`` steps."""
    alpha, avg, weight, out = 2.0 / (span + 1), 0.0, 0.0, []
    for v in values:
        avg = (1 - alpha) * avg + alpha * v
        weight = (1 - alpha) * weight + alpha
        out.append(avg / weight)
    return out


def plot_runs(runs: Sequence[str | Path], out: str | Path, labels: Sequence[str] | None = None) -> Path:
    """Draw the runs side by side into ``out`` (PNG) and return its path."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure  # no pyplot: safe inside a training process, any backend

    data = [series(read_metrics(r)) for r in runs]
    names = list(labels) if labels else [Path(r).name or str(r) for r in runs]
    order = [GROUPS[-1][0]] + [title for title, _ in GROUPS[:-1]] + [OTHER]  # losses on top
    panels = [g for g in order if any(group_of(k) == g for d in data for k in d)]
    if not panels:
        raise CurvesError(f"{runs[0]}: the metrics log has no numeric metrics to plot")
    fig = Figure(figsize=(4.6 * len(runs) + 0.6, 2.5 * len(panels) + 0.4), dpi=100)
    FigureCanvasAgg(fig)
    axes = fig.subplots(len(panels), len(runs), squeeze=False, sharex="col", sharey="row")
    for col, (d, name) in enumerate(zip(data, names, strict=True)):
        last = max((max(s) for s, _ in d.values()), default=0)
        axes[0][col].set_title(f"{name} (step {int(last)})", fontsize=10)
        for row, panel in enumerate(panels):
            ax = axes[row][col]
            for i, (metric, (steps, values)) in enumerate(sorted((k, v) for k, v in d.items() if group_of(k) == panel)):
                color = f"C{i % 10}"
                span = max(1, len(values) // 50)
                if span > 1:
                    ax.plot(steps, values, color=color, alpha=0.25, lw=0.8)
                ax.plot(steps, smooth(values, span), color=color, lw=1.4, label=metric)
            if panel == "learning rate":
                ax.ticklabel_format(axis="y", style="sci", scilimits=(-2, 3))
            if ax.has_data():
                ax.legend(fontsize=7, loc="best")
            ax.grid(alpha=0.3)
            if col == 0:
                ax.set_ylabel(panel, fontsize=9)
            if row == len(panels) - 1:
                ax.set_xlabel("step")
    fig.tight_layout()
    out = Path(out)
    atomic_write(out, lambda p: fig.savefig(p, format="png"))
    return out


def write_curves(run_dir: str | Path) -> Path | None:
    """``RUN/curves.png`` from ``RUN/metrics.jsonl``; the training loop's checkpoint hook.

    Never raises: a picture must not cost a training run, so a failure prints
    one line and returns None.
    """
    run_dir = Path(run_dir)
    try:
        return plot_runs([run_dir], run_dir / CURVES_FILE)
    except Exception as err:  # plotting is a convenience; training goes on
        print(f"note: {run_dir / CURVES_FILE} not written: {' '.join(str(err).split())[:200]}", file=sys.stderr)
        return None


def write_tensorboard(runs: Sequence[str | Path], log_dir: str | Path, labels: Sequence[str] | None = None) -> Path:
    """TensorBoard event files (one subfolder per run) from the metrics logs; needs the ``tensorboard`` package."""
    try:
        from torch.utils.tensorboard import SummaryWriter
    except ImportError:
        raise CurvesError("--tensorboard needs the tensorboard package: pip install tensorboard") from None
    names = list(labels) if labels else [Path(r).name or str(r) for r in runs]
    for run, name in zip(runs, names, strict=True):
        with SummaryWriter(str(Path(log_dir) / name)) as writer:
            for row in read_metrics(run):
                for k, v in row.items():
                    if k != "step" and isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v):
                        writer.add_scalar(f"{group_of(k)}/{k}", v, int(row["step"]))
    return Path(log_dir)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.curves", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("runs", nargs="+", type=Path, help="training run folders (each holds metrics.jsonl)")
    p.add_argument("--labels", default=None, help="comma-separated column titles (default: folder names)")
    p.add_argument("--out", type=Path, default=None, help="PNG to write (default: RUN/curves.png for one run, "
                   "else curves.png here)")  # fmt: skip
    p.add_argument("--tensorboard", type=Path, default=None, metavar="DIR", help="also write TensorBoard logs here")
    args = p.parse_args(argv)
    labels = [x.strip() for x in args.labels.split(",")] if args.labels else None
    try:
        if labels is not None and len(labels) != len(args.runs):
            raise CurvesError(f"{len(labels)} labels for {len(args.runs)} runs; give one label per run")
        out = args.out or (args.runs[0] / CURVES_FILE if len(args.runs) == 1 else Path(CURVES_FILE))
        path = plot_runs(args.runs, out, labels)
        print(f"wrote {path}")
        if args.tensorboard is not None:
            print(f"wrote TensorBoard logs to {write_tensorboard(args.runs, args.tensorboard, labels)}")
    except (CurvesError, OSError) as err:
        print(f"error: {' '.join(str(err).split())}", file=sys.stderr)
        return 2
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
