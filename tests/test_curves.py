"""Training curves: the loop writes RUN/curves.png at every checkpoint; the CLI plots one or several runs."""

from __future__ import annotations

import ast
import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from protein_didi.core import curves
from protein_didi.core.loop import run_training

ROOT = Path(__file__).resolve().parents[1]


class ToyTask:
    """A training task with the metric names the real trainers log (losses, D accuracy, rewards, grad norms)."""

    def __init__(self) -> None:
        self.w = 1.0

    def train_step(self, step: int) -> dict[str, float]:
        self.w *= 0.9
        return {"loss": self.w, "d_loss": 0.7 - 0.01 * step, "d_acc": min(1.0, 0.5 + 0.05 * step),
                "reward_student": -self.w, "s_grad_norm": 2.0 * self.w, "lr": 1e-4}  # fmt: skip

    def state_dict(self) -> dict[str, Any]:
        return {"w": self.w}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.w = state["w"]

    def export(self, out_dir: Path) -> None:
        pass


def _png_size(path: Path) -> tuple[int, int]:
    from PIL import Image

    with Image.open(path) as img:
        img.load()
        assert np.asarray(img.convert("L")).std() > 5, f"{path} looks blank"
        return img.size


def test_training_loop_writes_curves_at_each_checkpoint(tmp_path: Path) -> None:
    run = tmp_path / "run"
    run_training(ToyTask(), run, num_steps=4, checkpoint_every=2, show_progress=False)
    first = (run / "curves.png").stat().st_mtime_ns
    assert _png_size(run / "curves.png")[0] > 200
    run_training(ToyTask(), run, num_steps=8, checkpoint_every=2, resume=True, show_progress=False)
    assert (run / "curves.png").stat().st_mtime_ns > first  # redrawn at the later checkpoints


def test_metric_groups() -> None:
    assert curves.group_of("d_acc") == "discriminator accuracy"
    assert curves.group_of("reward_teacher") == "rewards"
    assert curves.group_of("fake_grad_norm") == curves.group_of("grad_norm") == "gradient norms"
    assert curves.group_of("lr") == "learning rate"
    assert {curves.group_of(k) for k in ("loss", "pg_loss", "kl", "entropy", "valid_nelbo")} == {"losses (nats)"}
    assert curves.group_of("tau_mean") == "other"


def test_cli_plots_several_runs_side_by_side(tmp_path: Path, capsys) -> None:
    for name, steps in (("a", 5), ("b", 9)):
        run_training(ToyTask(), tmp_path / name, num_steps=steps, checkpoint_every=100, show_progress=False)
    with open(tmp_path / "b" / "metrics.jsonl", "a") as fh:
        fh.write('{"step": 9, "loss": 0.')  # a line being written while we read is skipped
    one_w, _ = _png_size(tmp_path / "a" / "curves.png")
    out = tmp_path / "both.png"
    assert curves.main([str(tmp_path / "a"), str(tmp_path / "b"), "--out", str(out), "--labels", "A,B"]) == 0
    assert f"wrote {out}" in capsys.readouterr().out
    assert _png_size(out)[0] > 1.6 * one_w  # two columns


def test_cli_errors_are_one_line(tmp_path: Path, capsys) -> None:
    assert curves.main([str(tmp_path / "nowhere")]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("error: ") and "nowhere not found" in err and "\n" not in err
    (tmp_path / "empty").mkdir()
    assert curves.main([str(tmp_path / "empty")]) == 2
    assert "metrics.jsonl not found" in capsys.readouterr().err
    (tmp_path / "empty" / "metrics.jsonl").write_text("")
    assert curves.main([str(tmp_path / "empty")]) == 2
    assert "no step records yet" in capsys.readouterr().err
    (tmp_path / "empty" / "metrics.jsonl").write_text(json.dumps({"step": 0, "loss": 1.0}) + "\n")
    assert curves.main([str(tmp_path / "empty"), "--labels", "x,y"]) == 2
    assert "2 labels for 1 runs" in capsys.readouterr().err


def test_a_failing_plot_never_stops_training(tmp_path: Path, monkeypatch, capsys) -> None:
    def broken(*args: Any, **kwargs: Any) -> None:
        raise RuntimeError("no fonts")

    monkeypatch.setattr(curves, "plot_runs", broken)
    history = run_training(ToyTask(), tmp_path / "run", num_steps=2, checkpoint_every=1, show_progress=False)
    assert len(history) == 2
    assert "curves.png not written: no fonts" in capsys.readouterr().err


@pytest.mark.parametrize(
    "module",
    [
        "protein_didi/protein/train_teacher.py",
        "protein_didi/text/train_teacher.py",
        "protein_didi/protein/train_judge.py",
        "protein_didi/text/train_judge.py",
        "protein_didi/protein/distill.py",  # DiDi-Instruct and IDLM
        "protein_didi/text/distill.py",
    ],
)
def test_every_trainer_runs_through_the_shared_loop(module: str) -> None:
    """curves.png comes from run_training's checkpoint hook, so every trainer must train through it."""
    calls = {
        n.func.id if isinstance(n.func, ast.Name) else getattr(n.func, "attr", "")
        for n in ast.walk(ast.parse((ROOT / module).read_text()))
        if isinstance(n, ast.Call)
    }
    assert calls & {"run_training", "distill_run"}, f"{module} trains outside core.loop.run_training"
    assert "run_training(" in (ROOT / "protein_didi/core/run_driver.py").read_text()  # distill_run's loop
