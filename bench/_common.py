"""Helpers shared by the benchmark scripts: result files and table printing."""

from __future__ import annotations

import json
import platform
import time
from pathlib import Path
from typing import Any

import pandas as pd
import torch

RESULTS = Path(__file__).resolve().parent / "results"


def machine() -> dict[str, Any]:
    return {
        "python": platform.python_version(),
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "cpu": platform.processor() or platform.machine(),
        "date": time.strftime("%Y-%m-%d"),
    }


def write_results(name: str, rows: list[dict[str, Any]], extra: dict[str, Any] | None = None) -> Path:
    """Print ``rows`` as a table and write ``bench/results/{name}.json``."""
    RESULTS.mkdir(parents=True, exist_ok=True)
    print(pd.DataFrame(rows).to_string(index=False))
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps({"machine": machine(), **(extra or {}), "rows": rows}, indent=2) + "\n")
    print(f"\nwrote {path}")
    return path
