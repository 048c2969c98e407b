"""protein_didi web UI: ``streamlit run apps/protein_app.py``.

Generate proteins with the embedded teacher/student (or a checkpoint folder),
compare teacher and student at equal NFE, inspect sequence statistics, fold a
sequence with ESMFold (or view an uploaded PDB) and measure batch diversity.
UI only: sampling, statistics, folding and clustering come from ``protein_didi``.
"""

from __future__ import annotations

import os
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import matplotlib

matplotlib.use("Agg")
import matplotlib.pyplot as plt
import numpy as np
import pandas as pd
import streamlit as st

sys.path.append(str(Path(__file__).resolve().parents[1]))  # a checkout without `pip install -e .`

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.core.device import resolve_device
from protein_didi.protein.alphabet import MAX_RESIDUES, InvalidSequenceError
from protein_didi.protein.generate import Motif, generate, sequence_records
from protein_didi.protein.pretrained import CHECKPOINT_DIR, EMBEDDED, LoadedModel, load_model
from protein_didi.viz import PLDDT_BANDS, InvalidStructureError, parse_pdb, structure_html

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
}
OPTIONAL_MODULES = {
    "stats": "protein_didi.eval.stats",
    "judge": "protein_didi.eval.judge",
    "diversity": "protein_didi.eval.diversity",
}


# ---------------------------------------------------------------- models


def available_models() -> list[str]:
    """Embedded models whose weights are in the package (the student ships separately)."""
    return [name for name, folder in EMBEDDED.items() if (CHECKPOINT_DIR / folder / "config.json").is_file()]


@st.cache_resource(max_entries=4, show_spinner="Loading model…")
def _load_cached(name_or_path: str, device: str, stamp: float) -> LoadedModel:
    return load_model(name_or_path, device)


def get_model(name_or_path: str, device: str) -> LoadedModel:
    """Each model is loaded once per server process (again only if its files change, e.g. a retrained student)."""
    folder = CHECKPOINT_DIR / EMBEDDED[name_or_path] if name_or_path in EMBEDDED else Path(name_or_path)
    stamp = max((f.stat().st_mtime for f in folder.glob("*.*")), default=0.0) if folder.is_dir() else 0.0
    return _load_cached(name_or_path, device, stamp)


@st.cache_resource(show_spinner=False)
def device_name() -> str:
    return str(resolve_device("auto"))


def num_params(loaded: LoadedModel) -> int:
    return sum(p.numel() for p in loaded.model.parameters())


def model_picker(label: str, key: str, default: str | None = None) -> tuple[str, LoadedModel | None]:
    """Selectbox of embedded models + a checkpoint folder; shows an inline error and returns None if it fails."""
    options = [*available_models(), CHECKPOINT_OPTION]
    index = options.index(default) if default in options else 0
    choice = st.selectbox(
        label,
        options,
        index=index,
        key=key,
        format_func=lambda n: f"{n} ({MODEL_NOTES[n]})" if n in MODEL_NOTES else n,
        help="Embedded models ship with the package; the list shows those present on this machine.",
    )
    if choice != CHECKPOINT_OPTION:
        target, name = choice, choice
    else:
        text = st.text_input(
            "Checkpoint folder",
            key=f"{key}_path",
            placeholder="/path/to/checkpoint",
            help="A folder written by protein_didi (config.json + model.safetensors) or a transformers ESM/DPLM one.",
        ).strip()
        if not text:
            st.info("Enter the path of a checkpoint folder.")
            return CHECKPOINT_OPTION, None
        path = Path(text).expanduser()
        if not path.is_dir():
            st.error(f"{text} is not a folder; give a checkpoint folder (config.json + model.safetensors).")
            return text, None
        target, name = str(path.resolve()), path.name
    try:
        return name, get_model(target, device_name())
    except CheckpointError as err:
        st.error(str(err))
    except Exception as err:  # a user folder can fail in many ways; show one line, never a traceback
        st.error(f"cannot load {target}: {_one_line(err)}")
    return name, None


def reference_composition(loaded: LoadedModel) -> dict[str, float] | None:
    """The model's training composition, else the embedded teacher's."""
    comp = loaded.info.get("train_composition")
    if comp:
        return comp
    if "teacher" in available_models():
        return get_model("teacher", device_name()).info.get("train_composition")
    return None


# ---------------------------------------------------------------- generation


@dataclass
class Settings:
    """Validated generation settings."""

    num: int
    length: int | str | tuple[int, int]
    nfe: int
    sampler: str
    temperature: float
    top_p: float
    seed: int
    batch_size: int
    motif: Motif | None = None

    def longest(self, loaded: LoadedModel) -> int:
        if isinstance(self.length, tuple):
            return self.length[1]
        if self.length == "auto":
            return int(loaded.info.get("max_residues", MAX_RESIDUES))
        return int(self.length)


@dataclass
class Run:
    """One generated batch with its metrics."""

    run_id: int
    model: str
    role: str
    prefix: str
    seqs: list[str]
    seconds: float
    settings: Settings
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


def parse_length(mode: str, a: Any, b: Any, errors: list[str]) -> int | str | tuple[int, int]:
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


def check_budget(settings: Settings, loaded: LoadedModel, errors: list[str]) -> None:
    """Refuse requests that would keep this server busy for minutes."""
    budget = int(MAX_RESIDUE_STEPS * min(1.0, REFERENCE_PARAMS / max(num_params(loaded), 1)))
    work = settings.num * settings.longest(loaded) * settings.nfe
    if work > budget:
        errors.append(
            f"batch too large for this server: {settings.num} sequences × {settings.longest(loaded)} residues × "
            f"{settings.nfe} NFE = {work:,} residue-steps; the limit for this model is {budget:,}. "
            f"Reduce the number, length or NFE, or use the CLI: python -m protein_didi.sample"
        )


def run_model(loaded: LoadedModel, settings: Settings, label: str) -> tuple[list[str], float]:
    """Sample with a per-step progress bar; returns sequences and wall time (seconds)."""
    bar = st.progress(0.0, text=f"{label}: sampling…")

    def progress(done: int, total: int) -> None:
        bar.progress(min(done / max(total, 1), 1.0), text=f"{label}: step {done}/{total}")

    start = time.perf_counter()
    seqs = generate(
        loaded,
        settings.num,
        settings.length,
        settings.nfe,
        settings.sampler,
        settings.temperature,
        settings.top_p,
        settings.seed,
        settings.motif,
        settings.batch_size,
        progress,
    )
    seconds = time.perf_counter() - start
    bar.progress(1.0, text=f"{label}: {len(seqs)} sequences in {seconds:.2f} s")
    return seqs, seconds


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


def sample_and_score(loaded: LoadedModel, label: str, name: str, settings: Settings, judge: bool) -> Run:
    """Generate with a progress bar, then score; ``name`` prefixes the sequence ids."""
    seqs, seconds = run_model(loaded, settings, label)
    prefix = "".join(c if c.isalnum() or c in "-_" else "_" for c in name) or "seq"
    reference = reference_composition(loaded)
    ids = [header.split()[0] for header, _ in sequence_records(seqs, prefix)]
    with st.spinner("Scoring sequences…"):
        table, summary, composition, notices = score(seqs, ids, reference, judge)
    run_id = st.session_state.get("run_counter", 0) + 1
    st.session_state["run_counter"] = run_id
    return Run(
        run_id, label, loaded.role, prefix, seqs, seconds, settings, table, summary, composition, reference, notices
    )


def fasta_text(run: Run) -> str:
    return "".join(f">{header}\n{seq}\n" for header, seq in run.records)


def show_notices(notices: list[str]) -> None:
    for notice in notices:
        st.info(notice, icon="ℹ️")


def fmt(value: float | None, spec: str) -> str:
    return "—" if value is None or not np.isfinite(value) else format(value, spec)


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


# ---------------------------------------------------------------- tabs


def generate_tab(loaded: LoadedModel | None, label: str) -> None:
    st.subheader("Generate")
    if loaded is None:
        st.warning("Choose a model that loads (sidebar) to generate.")
        return
    c1, c2, c3 = st.columns(3)
    with c1:
        num = st.number_input("Number of sequences", value=DEFAULT_NUM, step=1, key="gen_num")
        mode, a, b = length_inputs("gen", loaded)
        trained, longest = loaded.info.get("max_residues"), {"Fixed": a, "Range": b}.get(mode)
        if trained and isinstance(longest, (int, float)) and longest > int(trained):
            st.caption(f"'{label}' was trained on proteins of ≤ {trained} residues; longer ones may be poor.")
    with c2:
        nfe = st.number_input("NFE (sampling steps)", value=DEFAULT_NFE, step=1, key="gen_nfe")
        has_disc = loaded.discriminator is not None
        if not has_disc and st.session_state.get("gen_sampler") == "rgas":
            st.session_state["gen_sampler"] = "ancestral"  # the previous model had a discriminator, this one not
        sampler = st.radio(
            "Sampler",
            ["ancestral", "rgas"],
            horizontal=True,
            key="gen_sampler",
            disabled=not has_disc,
            format_func=lambda s: "ancestral" if s == "ancestral" else "RGAS (reward-guided)",
            help="RGAS needs a distilled student with a discriminator.",
        )
        if not has_disc:
            st.caption(f"RGAS is off: model '{label}' has no discriminator (only distilled students do).")
        temperature = st.slider("Temperature", 0.1, 2.0, 1.0, 0.05, key="gen_temperature")
        seed = st.number_input("Seed", value=0, step=1, key="gen_seed")
    with c3:
        fix = st.checkbox("Fix residues (prefix / motif)", key="gen_fix")
        prefix = spec = ""
        if fix:
            prefix = st.text_input("Prefix (N-terminus)", key="gen_prefix", placeholder="MKT")
            spec = st.text_input("Motif (1-based POSITION:RESIDUES)", key="gen_motif", placeholder="5:WW,40:C")
        judge = st.checkbox("Score with the judge model (NLL)", value=True, key="gen_judge")
        with st.expander("Advanced"):
            top_p = st.slider("Top-p (nucleus)", 0.05, 1.0, 1.0, 0.05, key="gen_top_p")
            batch_size = st.number_input("Batch size", value=32, step=1, key="gen_batch_size")

    if st.button("Generate", type="primary", key="gen_run"):
        errors: list[str] = []
        settings = Settings(
            num=_int(num, "number of sequences", 1, MAX_NUM, errors),
            length=parse_length(mode, a, b, errors),
            nfe=_int(nfe, "NFE", 1, MAX_NFE, errors),
            sampler=sampler if has_disc else "ancestral",
            temperature=float(temperature),
            top_p=float(top_p),
            seed=_int(seed, "seed", 0, 2**32 - 1, errors),
            batch_size=_int(batch_size, "batch size", 1, MAX_NUM, errors),
            motif=parse_motif(fix, prefix, spec, errors),
        )
        if not errors:
            check_budget(settings, loaded, errors)
        for error in errors:
            st.error(error)
        if not errors:
            try:
                st.session_state["run"] = sample_and_score(loaded, label, label, settings, judge)
            except (InvalidSequenceError, ValueError) as err:
                st.error(_one_line(err))
            except RuntimeError as err:  # e.g. out of memory
                st.error(f"sampling failed: {_one_line(err)}")

    run: Run | None = st.session_state.get("run")
    if run is not None:
        results_section(run)


def results_section(run: Run) -> None:
    st.divider()
    s = run.settings
    st.subheader(f"Results: {len(run.seqs)} sequences from {run.model}")
    st.caption(
        f"NFE {s.nfe} · {s.sampler} · temperature {s.temperature:g} · top-p {s.top_p:g} · seed {s.seed} · "
        f"{run.seconds:.2f} s total"
    )
    show_summary(run)
    show_notices(run.notices)
    st.dataframe(
        run.table,
        hide_index=True,
        key=f"results_table_{run.run_id}",
        column_config={
            "sequence": st.column_config.TextColumn("sequence", width="large"),
            "judge_nll": st.column_config.NumberColumn("judge NLL", format="%.3f"),
        },
    )
    c1, c2, _ = st.columns([1, 1, 3])
    c1.download_button(
        "Download FASTA", fasta_text(run), f"{run.prefix}_sequences.fasta", "text/plain", on_click="ignore"
    )
    c2.download_button(
        "Download CSV", run.table.to_csv(index=False), f"{run.prefix}_sequences.csv", "text/csv", on_click="ignore"
    )
    st.code(fasta_text(run), language=None, wrap_lines=True)


def compare_tab() -> None:
    st.subheader("Compare teacher and student")
    st.caption("Both models sample at the same settings and seed; the speed/quality trade-off at a glance.")
    models = available_models()
    student = next((m for m in models if m.startswith("student")), None)
    left, right = st.columns(2)
    with left:
        name_a, model_a = model_picker("Model A", "cmp_a", "teacher")
    with right:
        name_b, model_b = model_picker("Model B", "cmp_b", student or "teacher")
        if student is None:
            st.caption("No embedded student on this machine yet; pick a checkpoint folder to compare against.")
    c1, c2, c3, c4 = st.columns(4)
    num = c1.number_input("Sequences per model", value=DEFAULT_NUM, step=1, key="cmp_num")
    length = c2.number_input("Residues", value=DEFAULT_LENGTH, step=10, key="cmp_length")
    nfe = c3.number_input("NFE (both models)", value=DEFAULT_NFE, step=1, key="cmp_nfe")
    seed = c4.number_input("Seed", value=0, step=1, key="cmp_seed")
    own_nfe = st.checkbox("Give model A its own NFE (e.g. the teacher at many steps)", key="cmp_own_nfe")
    nfe_a = st.number_input("NFE for model A", value=64, step=1, key="cmp_nfe_a") if own_nfe else nfe
    judge = st.checkbox("Score with the judge model (NLL)", value=True, key="cmp_judge")

    if st.button("Compare", type="primary", key="cmp_run"):
        errors: list[str] = []
        if model_a is None or model_b is None:
            errors.append("both models must load before comparing (see the errors above)")
        common = {
            "num": _int(num, "number of sequences", 1, MAX_NUM, errors),
            "length": _int(length, "length", 1, MAX_RESIDUES, errors),
            "sampler": "ancestral",
            "temperature": 1.0,
            "top_p": 1.0,
            "seed": _int(seed, "seed", 0, 2**32 - 1, errors),
            "batch_size": 32,
        }
        nfes = (_int(nfe_a, "NFE for model A", 1, MAX_NFE, errors), _int(nfe, "NFE", 1, MAX_NFE, errors))
        pairs = [(f"A: {name_a}", name_a, model_a, nfes[0]), (f"B: {name_b}", name_b, model_b, nfes[1])]
        if not errors:
            for _, _, loaded, n in pairs:
                check_budget(Settings(nfe=n, **common), loaded, errors)
        for error in dict.fromkeys(errors):
            st.error(error)
        if not errors:
            runs = []
            try:
                for _, _, loaded, _ in pairs:  # warm up, so one-off setup is not timed against model A
                    generate(loaded, 1, 8, 1, seed=0)
                for label, name, loaded, n in pairs:
                    runs.append(sample_and_score(loaded, label, name, Settings(nfe=n, **common), judge))
            except (InvalidSequenceError, ValueError, RuntimeError) as err:
                st.error(_one_line(err))
            else:
                st.session_state["compare"] = runs

    runs: list[Run] | None = st.session_state.get("compare")
    if runs:
        comparison_section(runs)


def comparison_section(runs: list[Run]) -> None:
    st.divider()
    cols = st.columns(len(runs))
    for col, run in zip(cols, runs, strict=True):
        with col:
            st.markdown(f"#### {run.model}")
            st.caption(f"role: {run.role} · NFE {run.settings.nfe} · seed {run.settings.seed}")
            show_summary(run, per_row=2)
            st.dataframe(run.table, hide_index=True, height=180, key=f"cmp_table_{run.run_id}")
    show_notices(list(dict.fromkeys(n for run in runs for n in run.notices)))
    summary = pd.DataFrame(
        [
            {
                "model": r.model,
                "role": r.role,
                "NFE": r.settings.nfe,
                "ms / sequence": r.seconds_per_sequence * 1000,
                "judge NLL": r.summary["judge_nll"],
                "composition KL": r.summary["composition_kl"],
                "low complexity": r.summary["low_complexity"],
            }
            for r in runs
        ]
    )
    st.dataframe(
        summary,
        hide_index=True,
        key="cmp_summary",
        column_config={
            "ms / sequence": st.column_config.NumberColumn(format="%.1f"),
            "judge NLL": st.column_config.NumberColumn(format="%.3f"),
            "composition KL": st.column_config.NumberColumn(format="%.4f"),
            "low complexity": st.column_config.NumberColumn(format="percent"),
        },
    )
    fast, slow = sorted(runs, key=lambda r: r.seconds_per_sequence)[:: len(runs) - 1]
    if fast is not slow and fast.seconds_per_sequence > 0:
        ratio = slow.seconds_per_sequence / fast.seconds_per_sequence
        st.caption(f"{fast.model} takes {1 / ratio:.2f}× the time per sequence of {slow.model} ({ratio:.1f}× faster).")
    comps = {r.model: r.composition for r in runs if r.composition}
    if comps:
        reference = runs[0].reference
        frame = pd.DataFrame(comps)
        if reference:
            frame.insert(0, "training", pd.Series(reference))
        st.markdown("**Amino-acid composition**")
        st.bar_chart(frame, stack=False, x_label="amino acid", y_label="frequency", height=280)


def esmfold_setting() -> str:
    return st.session_state.get("esmfold_path") or os.environ.get(ESMFOLD_ENV) or DEFAULT_ESMFOLD


@st.cache_resource(max_entries=1, show_spinner="Loading ESMFold…")
def get_folder(model: str, device: str) -> Any:
    from protein_didi.eval.fold import Folder

    return Folder(model=model, device=device)


def fold_sequence(seq: str) -> dict[str, Any] | None:
    """Fold with ESMFold; on missing weights show how to provide them and return None."""
    weights = esmfold_setting()
    try:
        from protein_didi.eval.fold import FoldingUnavailable
    except ImportError as err:
        st.warning(f"Folding is unavailable in this install: protein_didi.eval.fold ({_one_line(err)}).")
        return None
    try:
        with st.spinner("Folding with ESMFold (minutes on a CPU)…"):
            result = get_folder(weights, device_name()).fold([seq])[0]
    except (FoldingUnavailable, CheckpointError, OSError) as err:
        st.warning(
            f"ESMFold weights are not available: {_one_line(err)}\n\n"
            f"In this app: download them where the hub is reachable (`huggingface-cli download {DEFAULT_ESMFOLD} "
            "--local-dir DIR`, about 8 GB), copy DIR to this machine and put its path in **ESMFold weights** in "
            f"the sidebar (or start the app with `{ESMFOLD_ENV}=DIR`). Meanwhile *Upload a PDB file* shows any "
            "structure, and the rest of the app works as usual."
        )
        return None
    except Exception as err:
        st.error(f"folding failed: {_one_line(err)}")
        return None
    return {
        "pdb": result.pdb,
        "plddt": np.asarray(result.plddt, dtype=float),
        "mean_plddt": float(result.mean_plddt),
        "name": "",
        "source": f"ESMFold ({weights})",
    }


def plddt_figure(values: np.ndarray, ylabel: str) -> plt.Figure:
    fig, ax = plt.subplots(figsize=(10, 2.4), dpi=100)
    for band in PLDDT_BANDS:
        ax.axhspan(band.low, band.high, color=band.color, alpha=0.18, lw=0)
    ax.plot(np.arange(1, len(values) + 1), values, color="#262730", lw=1.2)
    ax.set(xlim=(1, max(len(values), 2)), ylim=(0, 100), xlabel="residue", ylabel=ylabel)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    return fig


def structure_tab() -> None:
    st.subheader("Structure")
    source = st.radio(
        "Structure source",
        ["Fold a generated sequence (ESMFold)", "Upload a PDB file"],
        horizontal=True,
        key="fold_source",
    )
    structure: dict[str, Any] | None = None
    if source.startswith("Fold"):
        run: Run | None = st.session_state.get("run")
        if run is None:
            st.info("Generate sequences first (Generate tab), or upload a PDB file.")
            return
        pick = st.selectbox("Sequence", range(len(run.seqs)), format_func=lambda i: run.ids[i], key="fold_pick")
        seq = run.seqs[pick]
        st.code(seq, language=None, wrap_lines=True)
        st.caption(f"ESMFold weights: `{esmfold_setting()}` (change in the sidebar)")
        folded: dict[str, dict[str, Any]] = st.session_state.setdefault("folded", {})
        if st.button("Fold with ESMFold", key="fold_run"):
            result = fold_sequence(seq)
            if result is not None:
                folded[seq] = result | {"name": run.ids[pick]}
        structure = folded.get(seq)
    else:
        upload = st.file_uploader("PDB file", type=["pdb", "ent"], key="fold_upload", max_upload_size=MAX_UPLOAD_MB)
        if upload is None:
            st.info("Upload a .pdb file (e.g. from ESMFold, AlphaFold DB or the PDB) to view it.")
            return
        structure = {"pdb": upload.getvalue(), "plddt": None, "mean_plddt": None, "name": upload.name}
        structure["source"] = "uploaded file"
    if structure is not None:
        show_structure(structure)


def show_structure(structure: dict[str, Any]) -> None:
    try:
        parsed = parse_pdb(structure["pdb"])
    except InvalidStructureError as err:
        st.error(f"cannot show this structure: {err}")
        return
    plddt = structure["plddt"]
    if plddt is not None and len(plddt) != len(parsed.residues):
        plddt = None  # fall back to the PDB's B-factor column, which ESMFold fills with pLDDT
    uploaded = structure["source"] == "uploaded file"
    values = parsed.bfactors if plddt is None else np.asarray(plddt, dtype=float)
    values = values * 100 if values.size and values.max() <= 1 and values.min() >= 0 else values
    plausible = bool(values.size) and values.min() >= 0 and values.max() <= 100
    c1, c2 = st.columns(2)
    color_options = ["plddt", "spectrum", "chain"]
    color_by = c1.radio(
        "Colour by",
        color_options,
        index=0 if plausible else 1,
        horizontal=True,
        key="fold_color",
        format_func={"plddt": "pLDDT (B-factor)", "spectrum": "rainbow N→C", "chain": "chain"}.get,
    )
    style = c2.radio("Style", ["cartoon", "stick", "sphere", "line"], horizontal=True, key="fold_style")
    if uploaded and color_by == "plddt":
        st.caption(
            "The B-factor column holds pLDDT only for predicted structures (ESMFold, AlphaFold); "
            "for experimental structures it is a temperature factor."
        )
    mean = structure["mean_plddt"]
    title = structure["name"] + (f" · mean pLDDT {mean:.1f}" if mean is not None else "")
    note = "B-factor column of the uploaded file" if uploaded else "ESMFold pLDDT"
    html = structure_html(parsed, color_by, plddt, style, VIEWER_WIDTH, VIEWER_HEIGHT, title=title, plddt_source=note)
    st.iframe(html, height=VIEWER_HEIGHT + 90, alt=f"3D structure of {structure['name']}")
    st.caption(f"{len(parsed.residues)} residues · {parsed.num_atoms} atoms · source: {structure['source']}")
    if plausible:
        fig = plddt_figure(values, "B-factor (as pLDDT)" if uploaded else "pLDDT")
        st.pyplot(fig, width="stretch")
        plt.close(fig)
    elif color_by == "plddt":
        st.caption("B-factors lie outside 0–100, so they are not pLDDT; pick rainbow or chain colouring.")
    pdb_bytes = structure["pdb"] if isinstance(structure["pdb"], bytes) else structure["pdb"].encode()
    name = Path(structure["name"] or "structure").stem + ".pdb"
    st.download_button("Download PDB", pdb_bytes, name, "chemical/x-pdb", on_click="ignore", key="fold_download")


def diversity_tab() -> None:
    st.subheader("Diversity")
    run: Run | None = st.session_state.get("run")
    if run is None:
        st.info("Generate sequences first (Generate tab).")
        return
    st.caption(f"Batch: {len(run.seqs)} sequences from {run.model} (MMseqs2 clustering)")
    c1, c2 = st.columns(2)
    min_seq_id = c1.slider("Minimum sequence identity", 0.1, 1.0, 0.3, 0.05, key="div_id")
    coverage = c2.slider("Coverage", 0.1, 1.0, 0.8, 0.05, key="div_cov")
    if st.button("Cluster with MMseqs2", key="div_run"):
        notices: list[str] = []
        with st.spinner("Clustering…"):
            result = optional(
                "diversity", lambda m: m.diversity(run.seqs, min_seq_id, coverage, threads=1), notices, "diversity"
            )
        show_notices(notices)
        if result is not None:
            st.session_state["diversity"] = (run.run_id, min_seq_id, coverage, result)
    stored = st.session_state.get("diversity")
    if stored is None or stored[0] != run.run_id:
        return
    _, min_seq_id, coverage, result = stored
    m1, m2, m3 = st.columns(3)
    m1.metric("clusters", f"{result.num_clusters}")
    m2.metric("cluster entropy", f"{result.entropy:.3f}", help="higher means a more diverse batch")
    m3.metric("mean cluster size", f"{result.mean_size:.2f}", help="1.0 means every sequence is unique")
    labels = pd.Series(np.asarray(result.labels), name="cluster")
    sizes = labels.value_counts().sort_values(ascending=False).reset_index(drop=True)
    chart = pd.DataFrame({"cluster (by size)": np.arange(1, len(sizes) + 1), "sequences": sizes.to_numpy()})
    st.bar_chart(chart, x="cluster (by size)", y="sequences", height=260, sort=False)
    st.dataframe(pd.DataFrame({"id": run.ids, "cluster": labels.to_numpy()}), hide_index=True, key="div_table")
    st.caption(f"min identity {min_seq_id:g}, coverage {coverage:g}")


def sidebar() -> tuple[str, LoadedModel | None]:
    with st.sidebar:
        st.header("protein_didi")
        name, loaded = model_picker("Model", "gen_model", "student" if "student" in available_models() else None)
        if loaded is not None:
            st.caption(f"role: {loaded.role} · {num_params(loaded) / 1e6:.1f}M parameters · device {device_name()}")
        st.divider()
        st.text_input(
            "ESMFold weights",
            key="esmfold_path",
            placeholder=os.environ.get(ESMFOLD_ENV) or DEFAULT_ESMFOLD,
            help=f"A local folder with ESMFold weights (or a hub id). Default: ${ESMFOLD_ENV} or {DEFAULT_ESMFOLD}.",
        )
        st.caption(
            f"Limits: ≤ {MAX_NUM} sequences, ≤ {MAX_RESIDUES} residues, and sequences × residues × NFE "
            f"≤ {MAX_RESIDUE_STEPS:,} for a {REFERENCE_PARAMS / 1e6:.0f}M-parameter model (less for bigger ones)."
        )
    return name, loaded


def main() -> None:
    st.set_page_config(page_title="protein_didi", page_icon="🧬", layout="wide")
    st.title("protein_didi: few-step protein generation")
    name, loaded = sidebar()
    gen, cmp, fold, div = st.tabs(["Generate", "Compare", "Structure", "Diversity"])
    with gen:
        generate_tab(loaded, name)
    with cmp:
        compare_tab()
    with fold:
        structure_tab()
    with div:
        diversity_tab()


main()
