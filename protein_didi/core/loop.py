"""The training loop every trainer shares: progress bar, JSONL metrics, atomic checkpoints, exact resume.

A trainer implements :class:`TrainTask`; the loop owns nothing model-specific.
Exact resume works because tasks draw all randomness from generators seeded
by ``(seed, step)``, so step k sees the same batch and noise whether or not the
run was interrupted before it.

Under ``torchrun`` every rank runs this loop; metrics are averaged over ranks
(so a non-finite loss on any rank stops all of them at the same step), and
only rank 0 logs, checkpoints and exports (under FSDP all ranks take part in
gathering the full state; rank 0 still writes alone). Every rank resumes from the same
``train_state.pt``, so ``--out`` must be on a filesystem all nodes see.

A task may also have ``evaluate() -> dict[str, float]`` (held-out numbers of its
current weights, ``{}`` for none). The loop calls it before the first step of a
fresh run and at every checkpoint, and logs a non-empty result as its own line
``{"step": n, "eval": true, ...}``, where n counts the optimiser steps taken (so
step 0 is the initial weights, and a training line of step n was computed on the
same weights). The line is written before the checkpoint is, so a run resumed
from that checkpoint keeps it.
"""

from __future__ import annotations

import json
import math
import time
from contextlib import nullcontext
from pathlib import Path
from typing import Any, Protocol

from tqdm import tqdm

from protein_didi.core.checkpoint import CheckpointError, load_state, save_json, save_state
from protein_didi.core.curves import write_curves
from protein_didi.core.distributed import SINGLE, Context, DistributedError
from protein_didi.core.errors import UserError


class TrainingDiverged(RuntimeError, UserError):
    """A loss became NaN/inf; the last good checkpoint is left untouched."""


class TrainTask(Protocol):
    def train_step(self, step: int) -> dict[str, float]: ...

    def state_dict(self) -> dict[str, Any]: ...

    def load_state_dict(self, state: dict[str, Any]) -> None: ...

    def export(self, out_dir: Path) -> None: ...


def step_seed(seed: int, step: int, stream: int = 0) -> int:
    """A 63-bit seed unique to (seed, step, stream), for per-step generators."""
    x = (seed * 1_000_003 + step) * 1_000_033 + stream
    x ^= x >> 31
    x = (x * 0x9E3779B97F4A7C15) & ((1 << 64) - 1)
    return x >> 1


STATE_FILE = "train_state.pt"
METRICS_FILE = "metrics.jsonl"
EVAL_KEY = "eval"  # marks the lines of ``task.evaluate()`` in metrics.jsonl (a bool, so curves skip it)


def run_training(
    task: TrainTask,
    out_dir: str | Path,
    num_steps: int,
    resume: bool = False,
    checkpoint_every: int = 200,
    desc: str = "train",
    show_progress: bool = True,
    ctx: Context = SINGLE,
) -> list[dict[str, float]]:
    """Run ``task`` from its last checkpoint (if ``resume``) to ``num_steps``; export at the end.

    Returns the metrics (averaged over ranks) of the steps run in this call.
    """
    out = Path(out_dir)
    state_path, metrics_path = out / STATE_FILE, out / METRICS_FILE
    main = ctx.is_main
    if main:
        out.mkdir(parents=True, exist_ok=True)
    start, elapsed = 0, 0.0
    if resume and ctx.any_true(state_path.exists()):
        if not state_path.exists():
            raise CheckpointError(f"{state_path} is not visible on rank {ctx.rank}; put --out on a shared filesystem")
        state = load_state(state_path)
        try:
            task.load_state_dict(state["task"])
        except (KeyError, RuntimeError) as err:
            reason = str(err).splitlines()[0][:200]
            raise CheckpointError(
                f"{state_path} does not fit this run ({reason}); use the same model and settings, or a new --out"
            ) from None
        start, elapsed = int(state["step"]), float(state.get("elapsed_s", 0.0))
        if main:
            _truncate_metrics(metrics_path, start)
    elif main and not resume and metrics_path.exists():
        metrics_path.unlink()
    ctx.barrier()  # nobody starts before every rank has read the checkpoint and rank 0 has reset the log

    history: list[dict[str, float]] = []
    clock = time.perf_counter()
    bar = tqdm(range(start, num_steps), desc=desc, initial=start, total=num_steps, disable=not (show_progress and main))
    with open(metrics_path, "a") if main else nullcontext() as log:
        if start == 0 and num_steps > 0:
            _log_evaluation(task, 0, log, ctx)  # the initial weights, so the gain is visible
        for step in bar:
            try:
                metrics = ctx.all_mean(task.train_step(step))
            except RuntimeError as err:
                if not ctx.lost_peer(err):
                    raise
                raise DistributedError(
                    f"another rank stopped during step {step} (its error is above); "
                    f"last checkpoint kept at {state_path}, continue with --resume"
                ) from None
            bad = [k for k, v in metrics.items() if isinstance(v, float) and not math.isfinite(v)]
            if bad:
                raise TrainingDiverged(
                    f"{', '.join(bad)} became non-finite at step {step}; last good checkpoint kept at {state_path} "
                    f"(step {start if not history else history[-1]['step'] + 1}); lower the learning rate and --resume"
                )
            record = {"step": step, **metrics}
            history.append(record)
            done = step + 1
            if main:
                log.write(json.dumps(record) + "\n")
                log.flush()
                bar.set_postfix({k: f"{v:.3g}" for k, v in list(metrics.items())[:4]})
            if done % checkpoint_every == 0 or done == num_steps:
                # under FSDP gathering the state is a collective, so every rank builds it; rank 0 writes it
                _log_evaluation(task, done, log, ctx)  # before the state: resuming from it keeps the line
                task_state = task.state_dict() if main or ctx.sharded else None
                if main:
                    now = time.perf_counter()
                    elapsed, clock = elapsed + now - clock, now
                    state = {"step": done, "task": task_state, "elapsed_s": elapsed, "world_size": ctx.world_size}
                    write_curves(out)  # before the state: a run killed while plotting resumes from the last one
                    save_state(state_path, state)
    if main:
        save_json(out / "timing.json", {"steps": num_steps, "train_wall_time_s": round(elapsed, 1)})
    if main or ctx.sharded:
        task.export(out)  # under FSDP every rank helps gather the weights; rank 0 writes
    ctx.barrier()  # the job ends together, after rank 0's export
    return history


def _log_evaluation(task: TrainTask, step: int, log: Any, ctx: Context) -> None:
    """Write ``task.evaluate()`` (if the task has it and it says anything) as the evaluation line of ``step``.

    Every rank calls it under FSDP (the task may gather weights); otherwise rank 0 alone evaluates.
    """
    evaluate = getattr(task, "evaluate", None)
    if evaluate is None or not (ctx.is_main or ctx.sharded):
        return
    result = evaluate()
    if ctx.is_main and result:
        log.write(json.dumps({"step": step, EVAL_KEY: True, **result}) + "\n")
        log.flush()


def _truncate_metrics(path: Path, step: int) -> None:
    """Drop log lines from steps that will be re-run after resuming at ``step``.

    The evaluation line of ``step`` itself stays: it was written just before the checkpoint resumed from.
    """
    if not path.exists():
        return
    keep = []
    for line in path.read_text().splitlines():
        if not line:
            continue
        row = json.loads(line)
        if row["step"] < step or (row["step"] == step and row.get(EVAL_KEY)):
            keep.append(line)
    path.write_text("".join(line + "\n" for line in keep))
