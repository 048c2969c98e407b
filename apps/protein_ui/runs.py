"""One generated batch: validated settings, sampling with a progress bar, scoring, summary metrics.

Protein models are scored with the UniProt judge and the composition statistics; antibody models
(:func:`protein_didi.protein.pretrained.is_antibody_model`) with what an antibody is judged by instead: valid
chains and chimeras, V-gene identity, IgLM NLL, liabilities, the engineers' checks, CDR-H3 uniqueness and
IMGT-aligned identity (:mod:`protein_didi.eval.antibody`), since the protein judge and a UniProt composition say
little about an antibody.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import streamlit as st

from protein_didi.protein.alphabet import MAX_RESIDUES, InvalidSequenceError
from protein_didi.protein.generate import generate, sequence_records
from protein_didi.protein.pretrained import LoadedModel, is_antibody_model
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
    antibody: bool = False  # scored with the antibody metrics instead of the protein judge
    numberings: list[Any] | None = None  # ANARCI's, one per sequence (antibody runs with ANARCI installed)
    account: str | None = None  # the valid-chain filter's account (drawn = kept + refused + surplus)
    checks_line: str | None = None  # the engineers' checks in one line (antibody runs)

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
        default = None if f"{key}_length" in st.session_state else DEFAULT_LENGTH  # the model's length, once set
        return mode, st.number_input("Residues", value=default, step=10, key=f"{key}_length"), None
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


def run_model(
    loaded: LoadedModel, request: ProteinRequest, label: str, valid_only: bool = False
) -> tuple[list[str], float, Any]:
    """Sample with a per-step progress bar; returns sequences, wall time (seconds) and, with ``valid_only`` (antibody
    models, as ``sample`` does), the valid-chain filter's result (chimeras and frame errors resampled), else None."""
    bar = st.progress(0.0, text=f"{label}: sampling…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: step {done}/{total}")

    start = time.perf_counter()
    chains = None
    if valid_only:
        from protein_didi.protein.numbering import AntibodyError, require_anarci
        from protein_didi.protein.valid_chains import generate_valid_chains

        try:
            require_anarci()  # before sampling, in the app's words rather than the CLI's --allow-invalid
        except AntibodyError as err:
            bar.empty()
            raise AntibodyError(f"{_first_line(err)}; or untick 'Valid chains only' to keep every chain") from None
        chains = generate_valid_chains(loaded, request, progress)
        seqs = chains.sequences
    else:
        seqs = generate(loaded, request, progress)
    seconds = time.perf_counter() - start
    bar.progress(1.0, text=f"{label}: {len(seqs)} sequences in {seconds:.2f} s")
    return seqs, seconds, chains


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


def sample_and_score(
    loaded: LoadedModel, label: str, name: str, request: ProteinRequest, judge: bool, valid_only: bool = False
) -> Run:
    """Generate with a progress bar, then score; ``name`` prefixes the sequence ids.

    Antibody models get the antibody metrics (``judge``: IgLM NLL) and, with ``valid_only``, valid chains only;
    other models the protein judge (``judge``) and composition statistics.
    """
    request = request.fitted(loaded)
    antibody = is_antibody_model(loaded.info)
    seqs, seconds, chains = run_model(loaded, request, label, valid_only and antibody)
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "seq"
    ids = [header.split()[0] for header, _ in sequence_records(seqs, prefix)]
    run_id = st.session_state.get("run_counter", 0) + 1
    st.session_state["run_counter"] = run_id
    if antibody:
        with st.spinner("Numbering and checking the chains (ANARCI)…"):
            table, summary, numberings, notices = score_antibodies(seqs, ids, judge, chains)
        checks_line = None
        if numberings is not None:
            from protein_didi.protein.engineer_checks import check_designs, checks_summary

            checks_line = checks_summary(check_designs(numberings))
        return Run(
            run_id, label, loaded.role, prefix, seqs, seconds, request, table, summary, None, None, notices,
            antibody=True, numberings=numberings, account=chains.summary() if chains is not None else None,
            checks_line=checks_line,
        )  # fmt: skip
    reference = reference_composition(loaded)
    with st.spinner("Scoring sequences…"):
        table, summary, composition, notices = score(seqs, ids, reference, judge)
    return Run(
        run_id, label, loaded.role, prefix, seqs, seconds, request, table, summary, composition, reference, notices
    )


NO_IGLM = "IgLM NLL not computed: the iglm package is not installed (pip install -e .[iglm]; non-commercial licence)"


def score_antibodies(
    seqs: list[str], ids: list[str], iglm: bool, chains: Any = None
) -> tuple[pd.DataFrame, dict[str, float | None], list[Any] | None, list[str]]:
    """Per-chain table, batch summary, ANARCI numberings and notices for an antibody batch.

    Reuses :func:`protein_didi.eval.antibody.antibody_metrics` (validity, V identity, IgLM, CDR-H3 uniqueness,
    IMGT identity), :func:`protein_didi.protein.liabilities.find_liabilities` and the engineers' checks
    (:mod:`protein_didi.protein.engineer_checks`). ``chains`` (the valid-chain filter's result) turns the valid and
    chimera fractions into fractions of every chain drawn, so resampling does not hide a model's chimeras.
    """
    from protein_didi.protein.numbering import AntibodyError, number_antibodies, require_anarci

    notices: list[str] = []
    table = pd.DataFrame({"id": ids, "length": [len(s) for s in seqs]})
    try:
        require_anarci()
    except AntibodyError as err:
        table["sequence"] = seqs
        return table, dict.fromkeys(ANTIBODY_SUMMARY), None, [f"antibody metrics unavailable: {_first_line(err)}"]
    from protein_didi.eval.antibody import antibody_metrics
    from protein_didi.eval.iglm_judge import iglm_available
    from protein_didi.protein.engineer_checks import check_designs, checks_frame
    from protein_didi.protein.liabilities import find_liabilities

    use_iglm = iglm and iglm_available()
    if iglm and not use_iglm:
        notices.append(NO_IGLM)
    nums = number_antibodies(seqs)
    ab, summary = antibody_metrics(seqs, iglm=use_iglm, n_boot=200, numbering=nums)
    found = [[x for x in find_liabilities(s, n) if x.counts] for s, n in zip(seqs, nums, strict=True)]
    checks = check_designs(nums)
    frame = checks_frame(checks).reset_index(drop=True)
    status = zip(ab["status"], ab["validity"], strict=True)
    table["chain check"] = [{"valid": st_, "chimera": why}.get(st_, f"{st_}: {why}") for st_, why in status]
    table["chain"] = ab["chain_type"].to_numpy()
    table["V gene"] = ab["v_gene"].to_numpy()
    table["V identity"] = ab["v_identity"].to_numpy()
    table["CDR3"] = ab["cdr3"].to_numpy()
    if use_iglm:
        table["IgLM NLL"] = ab["iglm_nll"].to_numpy()
    table["liabilities"] = [len(f) for f in found]
    table["liability sites"] = ["; ".join(x.describe() for x in f) or "none" for f in found]
    for column in ("canonical", "CDR lengths", "checks"):
        table[column] = frame[column].to_numpy()
    table["sequence"] = seqs
    valid = ab["valid"].astype(bool)
    values: dict[str, float | None] = {
        "valid_fraction": summary["valid_fraction"],
        "chimera_fraction": summary["chimera_fraction"],
        "v_identity": _finite(summary["v_identity"]),
        "iglm_nll": _finite(summary["iglm_nll"]) if use_iglm else None,
        "liabilities": float(np.mean([len(f) for f in found])) if found else None,
        "cdrh3_unique": _finite(summary["cdrh3_unique_fraction"]),
        "pairwise_identity": _finite(summary["pairwise_identity"]["all"]),
        "checks_ok": float(np.mean([c.ok for c in checks])) if checks else None,
    }
    if chains is not None and chains.drawn:
        values["valid_fraction"] = (len(chains.sequences) + chains.surplus) / chains.drawn
        values["chimera_fraction"] = chains.refused.get("chimera", 0) / chains.drawn
    if not valid.any():
        notices.append("no valid antibody chain in this batch: V identity, CDR-H3 and identity are over none")
    return table, values, nums, notices


ANTIBODY_SUMMARY = (
    "valid_fraction", "chimera_fraction", "v_identity", "iglm_nll", "liabilities", "cdrh3_unique",
    "pairwise_identity", "checks_ok",
)  # fmt: skip


def _first_line(err: BaseException) -> str:
    return (str(err).strip().splitlines() or [type(err).__name__])[0]


def _finite(value: Any) -> float | None:
    return float(value) if value is not None and np.isfinite(value) else None


def fasta_text(run: Run) -> str:
    return "".join(f">{header}\n{seq}\n" for header, seq in run.records)


def show_summary(run: Run, per_row: int = 4) -> None:
    """Time per sequence and the batch's statistics (antibody metrics for antibody runs) as metrics, ``per_row`` to
    a row."""
    metrics = summary_metrics(run)
    for start in range(0, len(metrics), per_row):
        for col, (label, value, help_text) in zip(st.columns(per_row), metrics[start : start + per_row], strict=False):
            col.metric(label, value, help=help_text)


def summary_metrics(run: Run) -> list[tuple[str, str, str]]:
    """(label, value, help) of every summary metric of ``run``."""
    from protein_didi.protein.liabilities import LIABILITY_CLASSES

    s = run.summary
    if not run.antibody:
        return [
            ("time / sequence", f"{run.seconds_per_sequence * 1000:.0f} ms", "wall time of sampling only"),
            ("judge NLL (nats/res)", fmt(s["judge_nll"], ".3f"), "lower is more protein-like"),
            ("composition KL", fmt(s["composition_kl"], ".4f"), "KL to the training amino-acid composition"),
            ("low complexity", fmt(s["low_complexity"], ".1%"), "mean fraction in low-complexity windows"),
        ]
    drawn = " of every chain drawn (chimeras and frame errors were resampled)" if run.account else ""
    return [
        ("time / sequence", f"{run.seconds_per_sequence * 1000:.0f} ms",
         "wall time of sampling" + (", chain checks and resampling" if run.account else " only")),
        ("valid chains", fmt(s["valid_fraction"], ".0%"),
         "one coherent heavy or light chain (ANARCI: J agreeing with the V call, J motif, disulfide)" + drawn),
        ("heavy/light chimeras", fmt(s["chimera_fraction"], ".0%"), "V region of one chain class, J of the other"
         + drawn),
        ("V-gene identity", fmt(s["v_identity"], ".1%"), "identity to the closest germline V gene (valid chains)"),
        ("IgLM NLL (nats/res)", fmt(s["iglm_nll"], ".3f"), "valid chains; lower is more antibody-like"),
        ("liabilities / chain", fmt(s["liabilities"], ".2f"),
         f"{', '.join(LIABILITY_CLASSES)} sites, each counted where it matters (see the table)"),
        ("unique CDR-H3", fmt(s["cdrh3_unique"], ".0%"), "distinct CDR-H3 strings / valid heavy chains"),
        ("IMGT pairwise identity", fmt(s["pairwise_identity"], ".1%"),
         "IMGT-aligned identity within heavy and within light chains; lower is more diverse"),
        ("engineers' checks passed", fmt(s["checks_ok"], ".0%"),
         "canonical Cys23, Trp41, Cys104, J motif and CDR lengths the real repertoire has"),
    ]  # fmt: skip
