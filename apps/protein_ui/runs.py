"""One generated batch: validated settings, sampling with a progress bar, scoring, summary metrics."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from protein_didi.protein.alphabet import MAX_RESIDUES, InvalidSequenceError
from protein_didi.protein.generate import generate, sequence_records
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.protein.request import Length, Motif, ProteinRequest
from protein_ui.common import (
    DEFAULT_LENGTH,
    MAX_RESIDUE_STEPS,
    REFERENCE_PARAMS,
    _int,
    fmt,
    optional,
)
from protein_ui.models import (
    num_params,
    reference_composition,
)


def make_request(errors: list[str], **fields: Any) -> ProteinRequest | None:
    """The request the inputs describe, or None with its one-line reason added to ``errors``.

    The request checks itself (the same checks as the CLI's); inputs already refused are not checked twice.
    """
    if errors:
        return None
    try:
        return ProteinRequest(**fields)
    except (InvalidSequenceError, ValueError) as err:
        errors.append(str(err))
        return None


@dataclass
class Run:
    """One generated batch with its metrics."""

    run_id: int
    model: str
    role: str
    prefix: str
    seqs: list[str]
    seconds: float
    request: ProteinRequest  # as sampled: the model's settings filled in
    table: pd.DataFrame
    summary: dict[str, float | None]
    composition: dict[str, float] | None
    reference: dict[str, float] | None
    notices: list[str] = field(default_factory=list)

    @property
    def records(self) -> list[tuple[str, str]]:
        return sequence_records(self.seqs, self.prefix)

    @property
    def ids(self) -> list[str]:
        return [header.split()[0] for header, _ in self.records]

    @property
    def seconds_per_sequence(self) -> float:
        return self.seconds / max(len(self.seqs), 1)


def length_inputs(key: str, loaded: LoadedModel | None) -> tuple[str, Any, Any]:
    """Length mode radio and its inputs; returns (mode, a, b)."""
    mode = st.radio(
        "Length",
        ["Fixed", "Range", "Auto"],
        horizontal=True,
        key=f"{key}_length_mode",
        help="Fixed: every sequence has this many residues. Range: uniform between min and max. "
        "Auto: drawn from the model's training length distribution.",
    )
    if mode == "Fixed":
        return mode, st.number_input("Residues", value=DEFAULT_LENGTH, step=10, key=f"{key}_length"), None
    if mode == "Range":
        lo_col, hi_col = st.columns(2)
        lo = lo_col.number_input("Min residues", value=50, step=10, key=f"{key}_length_lo")
        hi = hi_col.number_input("Max residues", value=150, step=10, key=f"{key}_length_hi")
        return mode, lo, hi
    if loaded is not None and not loaded.info.get("train_length_histogram"):
        st.caption("This model records no training length distribution; choose Fixed or Range.")
    return mode, None, None


def length_from_inputs(mode: str, a: Any, b: Any, errors: list[str]) -> Length:
    why = f" (ESM's limit: {MAX_RESIDUES + 2} tokens including <cls> and <eos>)"
    if mode == "Fixed":
        return _int(a, "length", 1, MAX_RESIDUES, errors, why)
    if mode == "Range":
        lo = _int(a, "min length", 1, MAX_RESIDUES, errors, why)
        hi = _int(b, "max length", 1, MAX_RESIDUES, errors, why)
        if lo > hi:
            errors.append(f"min length {lo} is larger than max length {hi}")
        return lo, hi
    return "auto"


def parse_motif(enabled: bool, prefix: str, spec: str, errors: list[str]) -> Motif | None:
    if not enabled:
        return None
    prefix, spec = prefix.strip(), spec.strip()
    if not prefix and not spec:
        errors.append("motif is empty: give a prefix (e.g. MKT) and/or POSITION:RESIDUES (e.g. 5:WW,40:C)")
        return None
    try:
        return Motif.parse(spec or None, prefix or None)
    except InvalidSequenceError as err:
        errors.append(str(err))
        return None


def check_budget(request: ProteinRequest, loaded: LoadedModel, errors: list[str]) -> None:
    """Refuse requests that would keep this server busy for minutes."""
    budget = int(MAX_RESIDUE_STEPS * min(1.0, REFERENCE_PARAMS / max(num_params(loaded), 1)))
    request = request.for_model(loaded.info, loaded.role)
    longest = request.longest(loaded.info)
    work = request.num * longest * request.nfe  # type: ignore[operator]
    if work > budget:
        errors.append(
            f"batch too large for this server: {request.num} sequences × {longest} residues × "
            f"{request.nfe} NFE = {work:,} residue-steps; the limit for this model is {budget:,}. "
            f"Reduce the number, length or NFE, or use the CLI: python -m protein_didi.sample"
        )


def run_model(loaded: LoadedModel, request: ProteinRequest, label: str) -> tuple[list[str], float]:
    """Sample with a per-step progress bar; returns sequences and wall time (seconds)."""
    bar = st.progress(0.0, text=f"{label}: sampling…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: step {done}/{total}")

    start = time.perf_counter()
    seqs = generate(loaded, request, progress)
    seconds = time.perf_counter() - start
    bar.progress(1.0, text=f"{label}: {len(seqs)} sequences in {seconds:.2f} s")
    return seqs, seconds


def score(seqs: list[str], ids: list[str], reference: dict[str, float] | None, judge: bool) -> tuple[Any, ...]:
    """Per-sequence table, batch summary and composition (each metric optional)."""
    notices: list[str] = []
    table = pd.DataFrame({"id": ids, "length": [len(s) for s in seqs]})
    stats = optional("stats", lambda m: m.sequence_table(seqs, reference_composition=reference), notices, "statistics")
    if stats is not None:
        for col in stats.reset_index(drop=True).columns:
            if col not in table.columns:
                table[col] = stats[col].to_numpy()
    nll = None
    if judge:
        nll = optional("judge", lambda m: np.asarray(m.judge_nll(seqs), dtype=float), notices, "judge NLL")
    if nll is not None:
        table.insert(2, "judge_nll", nll)
    if "sequence" in table.columns:
        table = table[[c for c in table.columns if c != "sequence"] + ["sequence"]]
    else:
        table["sequence"] = seqs
    summary: dict[str, float | None] = {
        "judge_nll": float(np.mean(nll)) if nll is not None else None,
        "composition_kl": None,
        "low_complexity": optional(
            "stats", lambda m: float(np.mean([m.low_complexity_fraction(s) for s in seqs])), notices, "low complexity"
        ),
    }
    if reference:
        summary["composition_kl"] = optional(
            "stats", lambda m: float(m.composition_kl(seqs, reference)), notices, "composition KL"
        )
    composition = optional("stats", lambda m: dict(m.composition(seqs)), notices, "composition")
    return table, summary, composition, list(dict.fromkeys(notices))


def sample_and_score(loaded: LoadedModel, label: str, name: str, request: ProteinRequest, judge: bool) -> Run:
    """Generate with a progress bar, then score; ``name`` prefixes the sequence ids."""
    request = request.fitted(loaded)
    seqs, seconds = run_model(loaded, request, label)
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "seq"
    reference = reference_composition(loaded)
    ids = [header.split()[0] for header, _ in sequence_records(seqs, prefix)]
    with st.spinner("Scoring sequences…"):
        table, summary, composition, notices = score(seqs, ids, reference, judge)
    run_id = st.session_state.get("run_counter", 0) + 1
    st.session_state["run_counter"] = run_id
    return Run(
        run_id, label, loaded.role, prefix, seqs, seconds, request, table, summary, composition, reference, notices
    )


def fasta_text(run: Run) -> str:
    return "".join(f">{header}\n{seq}\n" for header, seq in run.records)


def show_summary(run: Run, per_row: int = 4) -> None:
    """Time per sequence and the batch's sequence statistics as metrics, ``per_row`` to a row."""
    metrics = [
        ("time / sequence", f"{run.seconds_per_sequence * 1000:.0f} ms", "wall time of sampling only"),
        ("judge NLL (nats/res)", fmt(run.summary["judge_nll"], ".3f"), "lower is more protein-like"),
        ("composition KL", fmt(run.summary["composition_kl"], ".4f"), "KL to the training amino-acid composition"),
        ("low complexity", fmt(run.summary["low_complexity"], ".1%"), "mean fraction in low-complexity windows"),
    ]
    for start in range(0, len(metrics), per_row):
        for col, (label, value, help_text) in zip(st.columns(per_row), metrics[start : start + per_row], strict=False):
            col.metric(label, value, help=help_text)
