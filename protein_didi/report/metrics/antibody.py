"""Antibody metrics (ANARCI numbering, V identity, IgLM NLL, CDR-H3 uniqueness) for sets that are antibodies.

A set is scored when ``--antibody`` forces it or when at least half of a small
sample of it (:data:`DETECT_SAMPLE` sequences) numbers with ANARCI, so a
protein-only report pays at most one small hmmscan call per set. The summary
goes into its own table (the "Antibody metrics" section), showing only those sets.
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.protein.repertoire import CHAIN_NAMES
from protein_didi.report.metrics.base import Column, MetricFamily, Options, Scoring, fmt_percent
from protein_didi.report.sets import (
    SequenceSet,
    antibody_reference_sets,
    distinct_reference_labels,
    iglm_rival_set,
)
from protein_didi.report.tables import summary_table

DETECT_SAMPLE = 32
DETECT_FRACTION = 0.5
INSTALL = "pip install -e .[antibody] and apt-get install hmmer"
NO_IGLM_PACKAGE = "the iglm package is not installed (pip install -e .[iglm]; non-commercial licence)"
NO_IGLM = f"IgLM NLL not computed: {NO_IGLM_PACKAGE}"
SEQUENCE_KEYS = ("ab_numbered", "ab_valid", "ab_status", "ab_chain", "ab_v_gene", "ab_v_identity", "ab_cdr3")


def anarci_missing() -> str | None:
    """Why ANARCI cannot run here (package or hmmscan binary missing), or None."""
    import importlib.util
    import shutil

    if importlib.util.find_spec("anarci") is None:
        return "the anarci package is not installed"
    if shutil.which("hmmscan") is None:
        return "the hmmscan binary is not on PATH"
    return None


def detect_sample(sequences: list[str], size: int = DETECT_SAMPLE) -> list[str]:
    """At most ``size`` sequences spread evenly over the set (deterministic)."""
    if len(sequences) <= size:
        return list(sequences)
    return [sequences[i] for i in np.linspace(0, len(sequences) - 1, size).round().astype(int)]


def looks_like_antibodies(sequences: list[str]) -> bool:
    """True when at least :data:`DETECT_FRACTION` of a sample numbers as an antibody V domain."""
    from protein_didi.protein.numbering import number_antibodies

    sample = detect_sample(sequences)
    if not sample:
        return False
    numbered = [n.numbered for n in number_antibodies(sample)]
    return sum(numbered) / len(numbered) >= DETECT_FRACTION


def _yes_no(value: Any) -> str:
    return "yes" if bool(value) else "no"


def choose_antibody_sets(sets: list[SequenceSet], options: Options, notes: list[str]) -> set[str]:
    """Labels of the input sets to score as antibodies (``--antibody`` forces, ``--no-antibody`` skips).

    Missing ANARCI or a broken install costs the antibody metrics only: one note, no labels.
    """
    mode = options.antibody
    if mode is False:
        return set()
    missing = anarci_missing()
    if missing is not None:
        if mode is True or any(s.kind == "generated" for s in sets):
            notes.append(f"antibody metrics not computed: {missing}; {INSTALL}")
        return set()
    from protein_didi.protein.numbering import AntibodyError

    try:
        return {s.label for s in sets if s.kind == "generated" and (mode is True or looks_like_antibodies(s.sequences))}
    except (AntibodyError, OSError) as err:
        notes.append(f"antibody metrics not computed: {' '.join(str(err).split())}")
        return set()


def antibody_references(
    sets: list[SequenceSet], antibody: set[str], options: Options, notes: list[str]
) -> tuple[list[SequenceSet], dict[str, float]]:
    """Real repertoire rows (VH, Vκ, Vλ) as large as the largest antibody input, IgLM's row where installed,
    and the real chains' composition (the composition antibody sets are compared with)."""
    from protein_didi.eval.iglm_judge import iglm_available
    from protein_didi.eval.stats import composition
    from protein_didi.protein.repertoire import load_repertoire

    size = max(len(s.records) for s in sets if s.label in antibody)
    extra = antibody_reference_sets(size, options.seed)
    if options.iglm_rival and not iglm_available():
        notes.append(f"no IgLM rival row: {NO_IGLM_PACKAGE}")
    elif options.iglm_rival:
        try:
            extra.append(iglm_rival_set(size, options.seed))
        except Exception as err:  # IgLM is optional: a failure costs only its row
            notes.append(f"no IgLM rival row: {' '.join(str(err).split()) or type(err).__name__}")
    notices = distinct_reference_labels([s for s in sets if s.kind == "generated"], extra)
    notes.extend(notices)
    return extra, composition(c.sequence for c in load_repertoire("test"))


class AntibodyMetrics(MetricFamily):
    name = "antibody"
    table = "antibody"
    summary_columns = (
        Column("ab_valid_fraction", "valid chains (%)", fmt_percent(0),
               title="one coherent heavy or light chain: numbered, J agreeing with the V call, J motif, disulfide"),
        Column("ab_chimera_fraction", "heavy/light chimeras (%)", fmt_percent(0),
               title="V region of one chain class, J region of the other: not an antibody"),
        Column("ab_heavy_fraction", "valid heavy chains (%)", fmt_percent(0)),
        Column("ab_v_identity", "mean V-gene identity (%)", fmt_percent(1), title="valid chains only"),
        Column("ab_iglm_nll", "IgLM NLL (nats/residue)", title="valid chains; lower = more antibody-like"),
        Column("ab_cdrh3_unique", "unique CDR-H3 (%)", fmt_percent(0),
               title="distinct CDR-H3 strings / valid heavy chains"),
        Column("ab_cdrh3_w1", "CDR-H3 length W1 vs real VH",
               title="Wasserstein-1 in residues between the set's CDR-H3 lengths and the real repertoire's (test "
               "split); 0 = the same distribution"),
        Column("ab_pairwise_identity", "mean pairwise identity (%)", fmt_percent(1),
               title="IMGT-aligned identity within valid heavy and within valid light chains; lower = more diverse"),
    )  # fmt: skip
    sequence_columns = (
        Column("ab_chain", "chain type (ANARCI)", lambda c: CHAIN_NAMES.get(c, c), short="chain", css="name"),
        Column("ab_status", "chain check", str, short="validity", css="txt",
               title="valid, chimera (heavy/light) or invalid, with the reason"),
        Column("ab_v_gene", "closest germline V gene", str, short="V gene", css="name"),
        Column("ab_v_identity", "identity to that V gene (%)", fmt_percent(0), short="V id. (%)"),
        Column("ab_cdr3", "CDR3 (IMGT 105–117)", str, short="CDR3", css="mono"),
        Column("ab_iglm_nll", "IgLM NLL (nats/residue)", short="IgLM NLL", title="lower = more antibody-like"),
    )  # fmt: skip
    hint = (
        "antibody metrics (sets detected as antibodies, or all with --antibody): IMGT numbering by ANARCI; a chain "
        "is valid when it is one coherent heavy or light chain (its J region matches a germline J of the class ANARCI "
        "calls its V region, J motif W/F-G-x-G, Cys 23 and 104, a real CDR3 length); heavy/light chimeras and frame "
        "errors are counted and enter no average. V identity = identity to the closest germline V gene; CDR-H3 "
        "uniqueness and pairwise identity measure diversity where antibodies vary. natural antibody ref. = real human "
        "chains of the OAS repertoire (AbNatiV's held-out set, test split, CC BY-NC-SA), one row per chain type, as "
        "many as the largest antibody input; rival (IgLM) = IgLM's own human heavy chains, shown when the optional "
        "iglm package is installed."
    )

    def score(self, sc: Scoring) -> None:
        sc.computed[self.name] = False
        sc.results[self.name] = {}
        chosen = [s for s in sc.sets if s.label in sc.antibody_sets]
        if not chosen:
            return
        from protein_didi.eval.antibody import antibody_metrics
        from protein_didi.protein.numbering import AntibodyError, number_antibodies
        from protein_didi.protein.repertoire import load_repertoire

        m = sc.metrics
        try:
            rows = m.index[m["set"].isin(sc.antibody_sets)]
            numbering = dict(zip(rows, number_antibodies(m.loc[rows, "sequence"].tolist()), strict=True))
            for key in SEQUENCE_KEYS:
                m[key] = pd.Series([None] * len(m), index=m.index, dtype=object)
            real = [c.numbering for c in load_repertoire("test")]
            for s in chosen:
                part = m.index[m["set"] == s.label]
                nums = [numbering[i] for i in part]
                table, summary = antibody_metrics(
                    m.loc[part, "sequence"].tolist(), reference=real, iglm=False, n_boot=200, numbering=nums
                )
                self._fill(m, part, table)
                sc.results[self.name][s.label] = summary
        except (AntibodyError, OSError) as err:  # a broken install must cost this family only
            sc.notes.append(f"antibody metrics not computed: {' '.join(str(err).split())}")
            sc.results[self.name] = {}
            return
        sc.results["numbering"] = numbering  # row index → ANARCI numbering, for the liability and region families
        m["ab_v_identity"] = pd.to_numeric(m["ab_v_identity"], errors="coerce")
        self._score_iglm(sc)
        sc.computed[self.name] = True

    def _score_iglm(self, sc: Scoring) -> None:
        """IgLM NLL of the valid chains IgLM can take; a note when the optional package is absent."""
        from protein_didi.eval.iglm_judge import iglm_available, iglm_nll, load_iglm

        m = sc.metrics
        m["ab_iglm_nll"] = np.nan
        if not iglm_available():
            sc.notes.append(NO_IGLM)
            return
        numbered = m.index[m["ab_valid"].eq(True)]
        try:
            limit = load_iglm().max_tokens - 3
            fits = [i for i in numbered if m.at[i, "length"] <= limit]
            sc.skip("ab_iglm_nll", [i for i in numbered if i not in set(fits)], f"longer than IgLM's {limit} residues")
            if fits:
                scores = iglm_nll(m.loc[fits, "sequence"].tolist())
                m.loc[fits, "ab_iglm_nll"] = [s.nll for s in scores]
        except Exception as err:  # IgLM is optional: any failure costs only its column
            sc.notes.append(f"IgLM NLL not computed: {' '.join(str(err).split()) or type(err).__name__}")

    @staticmethod
    def _fill(m: pd.DataFrame, rows: pd.Index, table: pd.DataFrame) -> None:
        values = {
            "ab_numbered": table["numbered"].astype(bool).tolist(),
            "ab_valid": table["valid"].astype(bool).tolist(),
            "ab_status": [  # a chimera's reason already says so
                {"valid": st, "chimera": why}.get(st, f"{st}: {why}")
                for st, why in zip(table["status"], table["validity"], strict=True)
            ],
            "ab_chain": table["chain_type"].tolist(),
            "ab_v_gene": table["v_gene"].tolist(),
            "ab_v_identity": table["v_identity"].tolist(),
            "ab_cdr3": table["cdr3"].tolist(),
        }
        for key, column in values.items():
            for i, value in zip(rows, column, strict=True):
                m.at[i, key] = value

    def summarize(self, sc: Scoring, s: SequenceSet, rows: pd.DataFrame) -> dict[str, Any]:
        summary = sc.results.get(self.name, {}).get(s.label)
        if summary is None:
            return {}
        iglm = rows.loc[rows["ab_valid"].eq(True), "ab_iglm_nll"].dropna()
        return {
            "ab_valid_fraction": summary["valid_fraction"],
            "ab_chimera_fraction": summary["chimera_fraction"],
            "ab_numbered_fraction": summary["numbered_fraction"],
            "ab_heavy_fraction": summary["chain_fraction"]["H"],
            "ab_cdrh3_w1": summary["cdr3_length_distance_H"]["w1"],
            "ab_v_identity": summary["v_identity"],
            "ab_iglm_nll": float(iglm.mean()) if len(iglm) else np.nan,
            "ab_cdrh3_unique": summary["cdrh3_unique_fraction"],
            "ab_pairwise_identity": summary["pairwise_identity"]["all"],
        }

    def figures(self, ev: Any) -> list[tuple[str, str]]:
        """The antibody summary table, for the antibody sets only."""
        if not ev.computed.get(self.name) or "ab_valid_fraction" not in ev.summary:
            return []
        part = dataclasses.replace(ev, summary=ev.summary[ev.summary["ab_valid_fraction"].notna()])
        return [("Antibody metrics (ANARCI, IMGT)", summary_table(part, "antibody"))]
