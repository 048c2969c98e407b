"""Run a trainer CLI under torchrun for the distributed tests, saving each rank's final weights.

    python -m torch.distributed.run --nproc_per_node 2 tests/ddp_worker.py MODULE OUT [OPTIONS] -- ARGS

MODULE is ``distill`` or ``train_teacher``. Every rank writes ``OUT/rank{R}.pt``
(the trainable modules' state dicts), so a test can check that all replicas
agree; ``--fail-rank R --fail-step K`` makes rank R raise at step K, as a crashing
process would; ``--pause-step K`` makes every rank sleep before step K (a window to kill the job in).
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import time
from pathlib import Path

import torch

torch.set_num_threads(1)


def main() -> int:
    argv = sys.argv[1:]
    split = argv.index("--")
    p = argparse.ArgumentParser()
    p.add_argument("module", choices=["distill", "train_teacher"])
    p.add_argument("out", type=Path)
    p.add_argument("--fail-rank", type=int, default=-1)
    p.add_argument("--fail-step", type=int, default=-1)
    p.add_argument("--pause-step", type=int, default=-1)
    opts = p.parse_args(argv[:split])
    module = importlib.import_module(f"protein_didi.{opts.module}")
    rank = int(os.environ.get("RANK", "0"))
    tasks = []
    from protein_didi.core.loop import run_training

    def spy(task, *args, **kwargs):
        tasks.append(task)
        step_fn = task.train_step

        def train_step(step: int):
            if step == opts.fail_step and rank == opts.fail_rank:
                raise ValueError(f"injected failure at step {step}")
            if step == opts.pause_step:
                time.sleep(120)
            return step_fn(step)

        task.train_step = train_step
        return run_training(task, *args, **kwargs)

    for loaded in list(sys.modules.values()):  # wherever a CLI imported the loop from
        if getattr(loaded, "__name__", "").startswith("protein_didi") and getattr(loaded, "run_training", None):
            loaded.run_training = spy
    code = module.main(argv[split + 1 :])
    if code == 0 and "--fsdp" not in argv:  # FSDP ranks hold shards; train_state.pt has the full weights
        task = tasks[0]
        modules = {"student": task.student, "aux": task.aux} if hasattr(task, "student") else {"model": task.model}
        opts.out.mkdir(parents=True, exist_ok=True)
        torch.save({k: m.state_dict() for k, m in modules.items()}, opts.out / f"rank{rank}.pt")
    return code


if __name__ == "__main__":
    raise SystemExit(main())
