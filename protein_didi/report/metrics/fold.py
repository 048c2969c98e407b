"""Foldability: ESMFold mean pLDDT (0–100) per sequence, up to 1022 residues, with a progress bar."""

from __future__ import annotations

import html
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.protein.alphabet import MAX_RESIDUES
from protein_didi.report.figures import PRMSD_IS_CONFIDENCE, metric_vs_nfe, png, prmsd_figure
from protein_didi.report.metrics.base import NOT_COMPUTED, Column, MetricFamily, Scoring, fmt_float, fmt_percent
from protein_didi.report.sets import SequenceSet
from protein_didi.report.tables import summary_table

CONFIDENT_PLDDT = 70.0
TOO_LONG = f"longer than {MAX_RESIDUES} residues (ESMFold's ESM-2 limit)"


def progress_bar(desc: str, total: int | None = None, unit: str = "seq") -> tuple[Any, Any]:
    """A tqdm bar on stderr and the ``progress(done, total)`` callback the folders call (the same object): cached
    folds are its starting point, so its rate counts only what folds now (:class:`~protein_didi.fold.progress.
    FoldProgress`). ``total`` is taken from the folder's first call."""
    from protein_didi.fold.progress import FoldProgress

    bar = FoldProgress(desc, unit=unit)
    return bar, bar


def foldable(seqs: list[str]) -> list[str]:
    """The sequences ESMFold is asked to fold (the rest are reported as too long)."""
    return [s for s in seqs if len(s) <= MAX_RESIDUES]


def make_igfold_folder(folder: Any) -> Any:
    """IgFold beside the report's ESMFold folder, on its devices (a pool when there are several; on one CPU, one
    single-threaded worker per core), folding into the machine's shared IgFold cache, outside ``--out``: the
    reference rows and shuffled controls every report shares fold once per machine and IgFold version.

    Raises :class:`~protein_didi.fold.result.FoldingUnavailable` when the extra or AntiBERTy's weights are missing.
    """
    from protein_didi.fold.antibody import make_igfold
    from protein_didi.fold.igfold import shared_igfold_cache

    devices = getattr(folder, "devices", None)
    if devices and len(devices) > 1:
        from protein_didi.fold.fanout import FoldPool, FoldSpec

        return FoldPool(FoldSpec(backend="igfold"), devices, shared_igfold_cache(), threads=1)
    return make_igfold(None, str(getattr(folder, "device", "auto")))


class Foldability(MetricFamily):
    name = "pLDDT"
    summary_columns = (
        Column("plddt_mean", "mean pLDDT (0–100)", fmt_float(1), scored="plddt_scored"),
        Column("plddt_frac_confident", "pLDDT > 70 (% seqs)", fmt_percent(0)),
    )
    sequence_columns = (Column("plddt", "pLDDT (0–100)", fmt_float(1)),)
    hint = "pLDDT = ESMFold's mean predicted lDDT, 0–100; above 70 is a confident fold."

    def score(self, sc: Scoring) -> None:
        m = sc.metrics
        m["plddt"] = np.nan
        sc.computed[self.name] = False
        folder = sc.options.folder
        if folder is None:
            sc.notes.append(f"pLDDT not computed: {sc.options.no_fold_reason}")
            return
        from protein_didi.fold.result import FoldingUnavailable

        fits = m.index[m["length"] <= MAX_RESIDUES]
        sc.skip("plddt", m.index[m["length"] > MAX_RESIDUES], TOO_LONG)
        seqs = m.loc[fits, "sequence"].tolist()
        bar, progress = progress_bar("folding (ESMFold)", len(set(seqs)))
        try:
            results = folder.fold(seqs, progress=progress) if seqs else []
        except FoldingUnavailable as err:
            sc.notes.append(f"pLDDT not computed: {err}")
            return
        finally:
            bar.close()
        m.loc[fits, "plddt"] = [r.mean_plddt for r in results]
        sc.computed[self.name] = True

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed[self.name]:
            return {"plddt_mean": NOT_COMPUTED, "plddt_std": np.nan, "plddt_frac_confident": np.nan, "plddt_scored": 0}
        v = rows["plddt"].dropna().to_numpy(dtype=np.float64)
        if not v.size:
            return {"plddt_mean": np.nan, "plddt_std": np.nan, "plddt_frac_confident": np.nan, "plddt_scored": 0}
        return {
            "plddt_mean": float(v.mean()),
            "plddt_std": float(v.std()),
            "plddt_frac_confident": float(np.mean(v > CONFIDENT_PLDDT)),
            "plddt_scored": int(v.size),
        }

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        if not ev.plddt_computed:
            note = next((n for n in ev.notes if n.startswith("pLDDT")), "pLDDT not computed")
            return [("Foldability: ESMFold pLDDT", f'<p class="warn">{html.escape(note)}</p>')]
        out = [("Foldability: ESMFold pLDDT", distribution(ev))]
        curve = metric_vs_nfe(ev, "plddt", "mean pLDDT")
        if curve:
            out.append(("pLDDT vs NFE", curve))
        return out


def distribution(ev: Any) -> str:
    """Box plot with jittered points of per-sequence pLDDT, one box per set."""
    import matplotlib.pyplot as plt

    labels = list(ev.summary["set"])
    data = [ev.metrics.loc[ev.metrics["set"] == lab, "plddt"].dropna().to_numpy() for lab in labels]
    fig, ax = plt.subplots(figsize=(min(0.6 * len(labels) + 2.5, 10), 3.6))
    ax.boxplot(data, showfliers=False)
    rng = np.random.default_rng(0)
    for i, d in enumerate(data, start=1):
        ax.scatter(i + rng.uniform(-0.15, 0.15, len(d)), d, s=6, alpha=0.5, color="tab:blue")
    ax.axhline(CONFIDENT_PLDDT, color="grey", ls="--", lw=1)
    ax.set_xticks(range(1, len(labels) + 1), labels, rotation=30, ha="right")
    ax.set_ylim(0, 100)
    ax.set_ylabel("mean pLDDT (ESMFold)")
    return png(fig, "distribution of mean pLDDT per set")


# ---------------------------------------------------------------- antibody structures (IgFold)

SHUFFLED_MAX = 16  # shuffled chains per natural-antibody row: enough for a scale, cheap to fold (~3 s each on CPU)
SHUFFLED_KIND = "shuffled antibody"
NATURAL_KIND = "natural antibody"


def _antibody_labels(sc: Scoring) -> set[str]:
    """The sets scored as antibodies: the evaluator's choice (inputs and natural-antibody rows), else the antibody
    family's."""
    labels = set(getattr(sc, "antibody_sets", ()) or ())
    return labels or set(sc.results.get("antibody", {}))


def _cdr_text(name: Any, value: Any) -> str:
    return "–" if not isinstance(name, str) or not name else f"{name} ({value:.2f} Å)"


class AntibodyStructure(MetricFamily):
    """IgFold's predicted RMSD (Å) for antibody sets, with natural and shuffled rows for scale."""

    name = "antibody structure"
    table = "structure"
    summary_columns = (
        Column("ab_prmsd_text", "mean pRMSD (Å) [95 % CI]", str, scored="ab_prmsd_scored",
               title=f"{PRMSD_IS_CONFIDENCE}: IgFold's predicted RMSD per residue, averaged per chain, then over "
               "the set; lower = more confident; bootstrap interval"),
        Column("ab_prmsd_share_below_1", "pRMSD < 1 Å (% chains)", fmt_percent(0)),
        Column("ab_worst_cdr_text", "worst CDR (mean pRMSD)", str,
               title="the CDR whose residues IgFold is least sure of, averaged over the set"),
    )  # fmt: skip
    sequence_columns = (
        Column("ab_prmsd", "mean pRMSD (Å)", fmt_float(2), short="pRMSD (Å)", title=PRMSD_IS_CONFIDENCE),
        Column(
            "ab_worst_cdr_text",
            "worst CDR (mean pRMSD)",
            str,
            short="worst CDR",
            css="name",
            title="the CDR IgFold is least sure of",
        ),
    )
    hint = (
        "pRMSD = IgFold's predicted RMSD of each residue's backbone (Å, lower = more confident), averaged over the "
        "chain; natural antibodies score ≈ 0.3 Å, their shuffles > 2 Å. shuffled ref. = the natural-antibody rows' "
        "chains with their residues shuffled (same length and composition). pRMSD is " + PRMSD_IS_CONFIDENCE + ", "
        "and IgFold embeds every chain with AntiBERTy, the antibody teacher's own weights: it shares "
        "the teacher's embeddings and is not an independent judge of designs distilled from it."
    )

    def score(self, sc: Scoring) -> None:
        sc.computed[self.name] = False
        labels = _antibody_labels(sc)
        if not labels:
            return
        m = sc.metrics
        m["ab_prmsd"] = np.nan
        m["ab_worst_cdr_text"] = pd.Series([None] * len(m), index=m.index, dtype=object)
        why = self._unavailable(sc)
        if why is not None:
            sc.notes.append(f"antibody structures (IgFold pRMSD) not computed: {why}")
            return
        from protein_didi.fold.antibody import finish_antibodies
        from protein_didi.fold.result import FoldingUnavailable
        from protein_didi.protein.numbering import AntibodyError

        rows = m.index[m["set"].isin(labels)]
        numbering = sc.results.get("numbering") or {}
        nums = [numbering.get(i) for i in rows]
        bar, progress = progress_bar("folding antibodies (IgFold)", unit="chain")
        try:
            plan = plan_antibodies_rows(m, rows, nums if all(n is not None for n in nums) else None)
            reference = ReferencePlan.build(m, rows, plan)
            units = plan.units + reference.units
            folder = make_igfold_folder(sc.options.folder) if units else None
            results = folder.fold(units, progress=progress) if units else []  # one call: one bar, one worker start
            folds = finish_antibodies(plan, results[: len(plan.units)])
            references = reference.finish(results[len(plan.units) :])
        except (FoldingUnavailable, AntibodyError, ValueError, OSError) as err:
            sc.notes.append(f"antibody structures (IgFold pRMSD) not computed: {' '.join(str(err).split())}")
            return
        finally:
            bar.close()
        reasons: dict[str, list[int]] = {}
        for i, f in zip(rows, folds, strict=True):
            if f.reason is not None:
                reasons.setdefault(f.reason, []).append(int(i))
                continue
            m.at[i, "ab_prmsd"] = f.mean_prmsd
            m.at[i, "ab_worst_cdr_text"] = _cdr_text(f.worst_cdr, f.cdr_prmsd.get(f.worst_cdr or "", np.nan))
        for reason, idx in reasons.items():
            sc.skip("ab_prmsd", idx, reason)
        sc.results[self.name] = {"folds": dict(zip((int(i) for i in rows), folds, strict=True)),
                                 "references": references}  # fmt: skip
        sc.computed[self.name] = True

    @staticmethod
    def _unavailable(sc: Scoring) -> str | None:
        from protein_didi.fold.igfold import igfold_missing

        if sc.options.folder is None:
            return sc.options.no_fold_reason
        return igfold_missing()

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        if not sc.computed.get(self.name) or s.label not in _antibody_labels(sc):
            return {}
        folds = sc.results[self.name]["folds"]
        return structure_summary([folds[int(i)] for i in rows.index])

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        heading = "Antibody structure: IgFold predicted RMSD"
        if not ev.computed.get(self.name):
            note = next((n for n in ev.notes if n.startswith("antibody structures")), None)
            return [(heading, f'<p class="warn">{html.escape(note)}</p>')] if note else []
        import dataclasses

        results = ev.results.get(self.name) if hasattr(ev, "results") else None
        references = results["references"] if results else pd.DataFrame()
        summary = ev.summary[ev.summary["ab_prmsd_text"].notna()] if "ab_prmsd_text" in ev.summary else ev.summary
        extra = []
        for label, part in references.groupby("set", sort=False) if len(references) else []:
            from protein_didi.fold.antibody import prmsd_summary

            stats = prmsd_summary(part["ab_prmsd"].to_numpy(), n_boot=200)
            names = part["worst_cdr"].dropna()
            worst = f"{names.mode().iloc[0]} (most often)" if len(names) else "– (not an antibody)"
            extra.append({"set": label, "kind": part["kind"].iloc[0], "n": len(part), "ab_prmsd_scored": stats["n"],
                          "ab_prmsd_text": _interval_text(stats), "ab_prmsd_share_below_1": stats["share_below_1A"],
                          "ab_worst_cdr_text": worst})  # fmt: skip
        table = pd.concat([summary, pd.DataFrame(extra)], ignore_index=True) if extra else summary
        part = dataclasses.replace(ev, summary=table)
        said = f'<p class="warn">pRMSD is {PRMSD_IS_CONFIDENCE}: a design can be confidently wrong.</p>'
        return [(heading, summary_table(part, self.table) + said + prmsd_figure(ev, references))]

    def tables(self, ev: Any) -> dict[str, pd.DataFrame]:
        """``structure_references.csv``: the reference chains behind the shuffled (and sample) rows, with pRMSD."""
        results = ev.results.get(self.name) if hasattr(ev, "results") else None
        return {"structure_references.csv": results["references"]} if results else {}


def plan_antibodies_rows(m: pd.DataFrame, rows: pd.Index, numberings: Any) -> Any:
    """:func:`~protein_didi.fold.antibody.plan_antibodies` on these rows of the per-sequence frame (ids pair H/L)."""
    from protein_didi.fold.antibody import plan_antibodies

    return plan_antibodies(
        m.loc[rows, "sequence"].tolist(), m.loc[rows, "id"].astype(str).tolist(), numberings=numberings
    )


REFERENCE_COLUMNS = ["set", "kind", "id", "chain", "sequence", "ab_prmsd", "worst_cdr"]


class ReferencePlan:
    """Reference chains for scale, planned before anything folds so the report folds everything in one call: each
    natural-antibody row's chains (at most :data:`SHUFFLED_MAX`) shuffled and folded as the same chain type;
    without natural-antibody rows, a shipped natural sample and its shuffles. All of them land in the shared cache,
    so only the first report on a machine folds them."""

    def __init__(
        self, sample: Any | None, sample_ids: list[tuple[str, Any]], label: str, shuffles: list[dict[str, Any]]
    ) -> None:
        from protein_didi.fold.igfold import encode_chains

        self.sample, self.sample_ids, self.sample_label, self.shuffles = sample, sample_ids, label, shuffles

        own = sample.units if sample is not None else []
        self.units = own + [encode_chains({r["chain"]: r["sequence"]}) for r in shuffles]

    @classmethod
    def build(cls, m: pd.DataFrame, rows: pd.Index, plan: Any) -> ReferencePlan:
        from protein_didi.fold.antibody import natural_reference, plan_antibodies, shuffled

        by_set: dict[str, list[tuple[str, Any]]] = {}
        for i, f in zip(rows, plan.folds, strict=True):
            if str(m.at[i, "kind"]).startswith("natural") and f.chain and f.reason is None:
                by_set.setdefault(str(m.at[i, "set"]), []).append((str(m.at[i, "id"]), f))
        sample, label = None, "real antibodies (OAS test split sample)"
        if not by_set:  # no natural-antibody rows in this report: bring a sample of the shipped set
            records = natural_reference(SHUFFLED_MAX)
            sample = plan_antibodies([q for _, q in records], [rid for rid, _ in records])
            ids = [rid for rid, _ in records]
            by_set[label] = [(ids[k], f) for k, f in enumerate(sample.folds) if f.reason is None]
        shuffles = [
            {"set": f"shuffled {lab}", "kind": SHUFFLED_KIND, "id": f"shuffled_{rid}", "chain": f.chain,
             "sequence": shuffled(f.sequence, seed=k)}
            for lab, items in by_set.items() for k, (rid, f) in enumerate(items[:SHUFFLED_MAX])
        ]  # fmt: skip
        return cls(sample, by_set[label] if sample is not None else [], label, shuffles)

    def finish(self, results: list) -> pd.DataFrame:
        """The reference frame (``structure_references.csv``) from the folded units, in :attr:`units` order."""
        from protein_didi.fold.antibody import finish_antibodies

        records: list[dict[str, Any]] = []
        n_own = len(self.sample.units) if self.sample is not None else 0
        if self.sample is not None:
            finish_antibodies(self.sample, results[:n_own])
            for rid, f in self.sample_ids:
                row = {"set": self.sample_label, "kind": NATURAL_KIND, "id": rid, "chain": f.chain,
                       "sequence": f.sequence}  # fmt: skip
                records.append(row | {"ab_prmsd": f.mean_prmsd, "worst_cdr": f.worst_cdr})
        shuffles = [dict(r) for r in self.shuffles]
        for r, res in zip(shuffles, results[n_own:], strict=True):
            r.update(ab_prmsd=float(np.mean(res.per_residue)), worst_cdr=None)
        return pd.DataFrame(records + shuffles, columns=REFERENCE_COLUMNS)


def _interval_text(stats: dict[str, Any]) -> str:
    lo, hi = stats["ci95"]
    return "–" if not np.isfinite(stats["mean"]) else f"{stats['mean']:.2f} [{lo:.2f}, {hi:.2f}]"


def structure_summary(folds: list) -> dict[str, Any]:
    """One set's summary columns: mean pRMSD with its interval, share < 1 Å, the CDR with the highest mean pRMSD."""
    from protein_didi.fold.antibody import prmsd_summary

    stats = prmsd_summary([f.mean_prmsd for f in folds], n_boot=500)
    cdrs: dict[str, list[float]] = {}
    for f in folds:
        for name, value in f.cdr_prmsd.items():
            cdrs.setdefault(name, []).append(value)
    means = {name: float(np.mean(v)) for name, v in cdrs.items()}
    worst = max(means, key=means.__getitem__) if means else None
    return {
        "ab_prmsd_mean": stats["mean"],
        "ab_prmsd_lo": stats["ci95"][0],
        "ab_prmsd_hi": stats["ci95"][1],
        "ab_prmsd_text": _interval_text(stats),
        "ab_prmsd_share_below_1": stats["share_below_1A"],
        "ab_prmsd_scored": stats["n"],
        "ab_worst_cdr": worst,
        "ab_worst_cdr_text": _cdr_text(worst, means.get(worst or "", np.nan)),
    }
