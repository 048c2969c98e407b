"""Constants, the app state handed to every tab, and small helpers (one-line errors, optional metrics)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import numpy as np
import streamlit as st

from protein_didi.protein.pretrained import LoadedModel

DEFAULT_NUM = 4
DEFAULT_LENGTH = 100
DEFAULT_NFE = 8
MAX_NUM = 256
MAX_NFE = 1024
# sequences × length × NFE allowed per request for a model of REFERENCE_PARAMS parameters (the embedded
# ~2M-parameter models take about a minute for that on 2 CPU cores); bigger models get a proportionally smaller budget
MAX_RESIDUE_STEPS = 1_000_000
REFERENCE_PARAMS = 2_000_000
CHECKPOINT_OPTION = "Checkpoint folder…"
ESMFOLD_ENV = "PROTEIN_DIDI_ESMFOLD"
DEFAULT_ESMFOLD = "facebook/esmfold_v1"
VIEWER_WIDTH, VIEWER_HEIGHT = "100%", 440
MAX_UPLOAD_MB = 20
MODEL_NOTES = {
    "teacher": "embedded teacher",
    "student": "embedded student, DiDi-Instruct",
    "student-idlm": "embedded student, IDLM",
    "antibody-student": "antibody student (DiDi-Instruct), 8 steps",
    "antibody-student-idlm": "antibody student (IDLM), 8 steps",
    "antibody-student-human": "human antibody student (DiDi-Instruct), 8 steps; NON-COMMERCIAL (OAS data)",
    "antiberty": "AntiBERTy antibody teacher",
}
OPTIONAL_MODULES = {
    "stats": "protein_didi.eval.stats",
    "judge": "protein_didi.protein.judge",
    "diversity": "protein_didi.eval.diversity",
}


@dataclass
class AppState:
    """What the sidebar decided, handed to every tab's ``render``."""

    model_name: str
    loaded: LoadedModel | None


def _one_line(err: BaseException) -> str:
    text = str(err).strip().splitlines()
    return text[0] if text else type(err).__name__


def _int(value: Any, what: str, lo: int, hi: int, errors: list[str], why: str = "") -> int:
    try:
        number = int(value)
    except (TypeError, ValueError):
        errors.append(f"{what} must be a whole number")
        return lo
    if number != value or not lo <= number <= hi:
        errors.append(f"{what} must be a whole number from {lo} to {hi}{why}, got {value}")
    return number


def optional(module: str, action: Callable[[Any], Any], notices: list[str], what: str) -> Any:
    """Call ``action(imported_module)``; on a missing module or a failure add a one-line notice and return None."""
    import importlib

    try:
        mod = importlib.import_module(OPTIONAL_MODULES[module])
    except ImportError as err:
        notices.append(f"{what} unavailable: {OPTIONAL_MODULES[module]} cannot be imported ({_one_line(err)})")
        return None
    try:
        return action(mod)
    except Exception as err:  # optional metrics must never take the app down
        notices.append(f"{what} unavailable: {_one_line(err)}")
        return None


def show_notices(notices: list[str]) -> None:
    for notice in notices:
        st.info(notice, icon="ℹ️")


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or not np.isfinite(value) else format(value, spec)
