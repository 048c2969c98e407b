"""Antibody quality vs. sampling steps: AntiBERTy (the teacher), its distilled students, IgLM and natural antibodies.

    python bench/antibody_quality_vs_nfe.py [--num 128] [--teacher-nfe 8,16,32,64,128] [--student-nfe 4,8,16]

Every generated set is judged by models that did not make it: ANARCI (numbered
fraction, chain type, closest V germline identity, mean CDR-H3 length, CDR-H3
uniqueness, mean pairwise identity over IMGT positions),
IgLM's NLL per residue (chain tag from ANARCI; favours IgLM's own samples) and,
on a subset, AntiBERTy's pseudo-log-likelihood (favours the teacher's family).
Means carry 95 % bootstrap intervals. The natural rows are real human chains (VH, Vκ, Vλ) of the
repertoire's validation split (:mod:`protein_didi.protein.repertoire`). Then a CDR-H3 redesign table on real
VH parents of the same split: the student, the teacher and IgLM's own infilling, side by side. This older
benchmark charts steps, unconditioned and unprompted, and is not the held-out one: the README cites
``bench/antibody_frontier.py``.

Generated sets are cached in ``bench/results/antibody_quality_vs_nfe_samples/`` (with their
wall time), so an interrupted run resumes; writes
``bench/results/antibody_quality_vs_nfe.json`` and ``.png``.
"""

from __future__ import annotations

import argparse
import sys
import time
from collections import Counter
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm import tqdm

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import RESULTS, write_results

from protein_didi.cli import int_list
from protein_didi.core.request import plain_sampling
from protein_didi.eval.antibody import antibody_metrics, bootstrap_mean
from protein_didi.eval.iglm_judge import load_iglm
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.fasta import read_fasta, write_fasta
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.numbering import number_antibodies
from protein_didi.protein.pretrained import LoadedModel, load_model
from protein_didi.protein.redesign import plan_redesign, redesign
from protein_didi.protein.repertoire import load_repertoire


def cached(folder: Path, label: str, make: Any) -> list[str]:
    """Sequences of set ``label``, generated once by ``make()`` and kept as FASTA (an interrupted run resumes)."""
    fasta = folder / f"{label}.fasta"
    if fasta.exists():
        return [s for _, s in read_fasta(fasta)]
    seqs = make()
    write_fasta(fasta, [(f"{label}_{i + 1:04d}", s) for i, s in enumerate(seqs)])
    return seqs


def seconds_per_step(loaded: LoadedModel, length: int, sampler: str = "ancestral", batch: int = 32) -> float:
    """Wall seconds per sequence per sampling step (one batch of ``batch`` at 8 steps, after a warm-up batch).

    Sampling cost is NFE × one step (the ancestral sampler adds ≤ 2 % to a forward pass at this size; RGAS adds
    the discriminator's forward and backward), so a set's seconds per sequence is NFE × this; measured in one
    pass at the end so every model is timed under the same load.
    """
    warm = ProteinRequest(num=4, length=length, nfe=2, batch_size=4, **plain_sampling(sampler))
    generate(loaded, warm)
    t0 = time.perf_counter()
    generate(loaded, warm.replace(num=batch, nfe=8, batch_size=batch))
    return (time.perf_counter() - t0) / batch / 8


@torch.no_grad()
def pseudo_log_likelihood(loaded: LoadedModel, seqs: list[str]) -> list[float]:
    """Mean log p(x_i | x_−i) per residue under ``loaded``: every position masked once, one batch per sequence."""
    out = []
    for seq in seqs:
        tokens = ALPHABET.encode([seq])
        n = len(seq)
        batch = tokens.repeat(n, 1)
        pos = torch.arange(n) + 1
        batch[torch.arange(n), pos] = ALPHABET.mask_id
        log_p = loaded.model(batch, torch.ones(n))
        out.append(float(log_p[torch.arange(n), pos, tokens[0, pos]].mean()))
    return out


def judge(label: str, kind: str, seqs: list[str], **extra: Any) -> dict:
    table, summary = antibody_metrics(seqs, iglm=True)
    numbered, *lo_hi = bootstrap_mean(table["numbered"].astype(float).to_numpy())
    return {
        "set": label,
        "kind": kind,
        **extra,
        "n": len(seqs),
        "numbered": round(numbered, 3),
        "numbered_ci95": [round(v, 3) for v in lo_hi],
        "heavy": round(summary["chain_fraction"]["H"], 3),
        "iglm_nll": round(summary["iglm_nll"], 3),
        "iglm_nll_ci95": [round(v, 3) for v in summary["iglm_nll_ci95"]],
        "iglm_nll_all": round(summary["iglm_nll_all"], 3),
        "v_identity": round(summary["v_identity"], 3),
        "v_identity_ci95": [round(v, 3) for v in summary["v_identity_ci95"]],
        "cdrh3_unique": round(summary["cdrh3_unique_fraction"], 3),
        "pairwise_identity_H": round(summary["pairwise_identity"]["H"], 3),
        "cdrh3_length": round(summary["cdr3_length_H"], 1),
    }


def redesign_rows(
    models: dict[str, tuple[LoadedModel, int]],
    parents: list[tuple[str, str]],
    designs: int,
    cdr_length: tuple[int, int],
) -> list[dict]:
    """CDR-H3 redesign of real heavy chains: diffusion models vs IgLM's own infilling, judged the same way."""
    iglm = load_iglm()
    rows = []
    for pid, parent in tqdm(parents, desc="redesign parents"):
        plan = plan_redesign(parent, "H3", cdr_length, pid)
        start, end = plan.spans[0]
        # IgLM infills first (its own API: one call per design); the diffusion models then design loops of exactly
        # the lengths IgLM chose, one batched call per length, so span NLLs compare loops of matched length
        infills = iglm.infill(parent, (start, end), designs, seed=0)
        outputs: dict[str, tuple[list[str], float]] = {
            "IgLM infill": (list(infills.sequences), infills.seconds_per_sequence)
        }
        kept = len(parent) - (end - start)
        span_lengths = Counter(len(s) - kept for s in infills.sequences)
        for name, (loaded, nfe) in models.items():
            t0, seqs = time.perf_counter(), []
            for length, count in sorted(span_lengths.items()):
                matched = replace(plan, lengths=((length, length),))
                request = ProteinRequest(plan=matched, num=count, nfe=nfe, seed=0, **plain_sampling())
                seqs += [s for _, s in redesign(loaded, request)]
            outputs[f"{name}@{nfe}"] = (seqs, (time.perf_counter() - t0) / len(seqs))
        for method, (seqs, per) in outputs.items():
            nums = number_antibodies(seqs)
            span_nll = []
            for seq, num in zip(seqs, nums, strict=True):
                if num.numbered and num.chain_type == "H":
                    span_nll.append(iglm.span_nll(seq, num.regions["CDR3"], chain="H").per_residue)
            kept_fraction = np.mean([s[:start] == parent[:start] and s.endswith(parent[end:]) for s in seqs])
            rows.append(
                {
                    "parent": pid,
                    "method": method,
                    "designs": len(seqs),
                    "distinct": len(set(seqs)),
                    "framework_kept": round(float(kept_fraction), 3),
                    "loop_lengths": [min(span_lengths), max(span_lengths)],  # IgLM's, matched by every method
                    "numbered_heavy": round(float(np.mean([n.numbered and n.chain_type == "H" for n in nums])), 3),
                    "cdrh3_iglm_nll": round(float(np.mean(span_nll)), 3) if span_nll else None,
                    "seconds_per_design": round(per, 4),
                }
            )
    return rows


def plot(rows: list[dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, axes = plt.subplots(1, 3, figsize=(14, 4))
    for ax, key, label in zip(
        axes,
        ("numbered", "iglm_nll", "v_identity"),
        ("numbered fraction (ANARCI)", "IgLM NLL (nats/residue)", "V-germline identity"),
        strict=True,
    ):
        for model in sorted({r["set"].rsplit("@", 1)[0] for r in rows if r["kind"] == "diffusion"}):
            pts = sorted(
                (r["nfe"], r[key]) for r in rows if r["kind"] == "diffusion" and r["set"].startswith(model + "@")
            )
            ax.plot([p[0] for p in pts], [p[1] for p in pts], marker="o", label=model)
        for r in rows:
            if r["kind"] != "diffusion":
                ax.axhline(r[key], ls="--", lw=1, color="grey" if r["kind"] == "natural" else "tab:red")
                ax.annotate(r["set"], (0.01, r[key]), xycoords=("axes fraction", "data"), fontsize=7)
        ax.set_xscale("log", base=2)
        ax.set_xlabel("sampling steps (NFE)")
        ax.set_title(label)
    axes[0].legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--num", type=int, default=128, help="sequences per cell (default 128)")
    p.add_argument("--length", type=int, default=120, help="residues of every diffusion sample (default 120, a VH)")
    p.add_argument("--teacher", default="antiberty")
    p.add_argument("--teacher-nfe", type=int_list, default=[8, 16, 32, 64, 128])
    p.add_argument(
        "--students", default="antibody-student,antibody-student-idlm", help="comma-separated student models"
    )
    p.add_argument("--student-nfe", type=int_list, default=[4, 8, 16])
    p.add_argument("--rgas-nfe", type=int_list, default=[8], help="RGAS rows for students with a discriminator")
    p.add_argument("--pll", type=int, default=16, help="sequences per set for AntiBERTy PLL (0: skip)")
    p.add_argument(
        "--igfold",
        type=int,
        default=0,
        metavar="N",
        help="IgFold mean pRMSD (Å) of the first N sequences of every set, one model (non-commercial [igfold] extra)",
    )
    p.add_argument(
        "--pll-nfe", type=int, default=64, help="PLL only for the teacher at this NFE, students at 8, IgLM, natural"
    )
    p.add_argument("--redesign-parents", type=int, default=8, help="real heavy chains to redesign (default 8)")
    p.add_argument("--designs", type=int, default=16, help="CDR-H3 designs per parent and method (default 16)")
    p.add_argument("--seed", type=int, default=0)
    p.add_argument("--iglm-num", type=int, default=None, help="IgLM sequences (default: --num; ~0.3 s each)")
    p.add_argument("--generate-only", action="store_true", help="generate and cache the sets, then stop")
    p.add_argument("--name", default="antibody_quality_vs_nfe", help="results name (JSON, PNG, samples folder)")
    args = p.parse_args(argv)
    torch.set_num_threads(max(1, torch.get_num_threads()))
    samples = RESULTS / f"{args.name}_samples"
    samples.mkdir(parents=True, exist_ok=True)

    natural_records = [(c.id, c.sequence) for c in load_repertoire("validation", ("H", "K", "L"))][: args.num]
    natural = [s for _, s in natural_records]
    teacher = load_model(args.teacher, "cpu")
    students = {name: load_model(name, "cpu") for name in args.students.split(",") if name}
    # (label, model, NFE, sampler); "+rgas" rows: students whose discriminator guides their own steps
    cells = [(args.teacher, teacher, n, "ancestral") for n in args.teacher_nfe]
    cells += [(name, m, n, "ancestral") for name, m in students.items() for n in args.student_nfe]
    cells += [
        (f"{name}+rgas", m, n, "rgas") for name, m in students.items() if m.has_discriminator for n in args.rgas_nfe
    ]
    iglm = load_iglm()
    sets = {
        f"{name}@{nfe}": cached(
            samples,
            f"{name}@{nfe}",
            lambda m=m, nfe=nfe, sampler=sampler: generate(
                m,
                ProteinRequest(num=args.num, length=args.length, nfe=nfe, **plain_sampling(sampler)),
            ),
        )
        for name, m, nfe, sampler in tqdm(cells, desc="generate")
    }
    sets["IgLM"] = cached(
        samples, "IgLM", lambda: list(iglm.generate(args.iglm_num or args.num, "H", "human", seed=args.seed).sequences)
    )
    if args.generate_only:
        return 0

    rows = [judge(f"{name}@{nfe}", "diffusion", sets[f"{name}@{nfe}"], nfe=nfe) for name, _, nfe, _ in cells]
    rows.append(judge("IgLM (heavy, human)", "iglm", sets["IgLM"], nfe=None))
    rows.append(judge("real VH/VL (OAS, validation split)", "natural", natural, nfe=None))
    if args.igfold > 0:
        from protein_didi.fold.antibody import mean_prmsd, prmsd_summary  # optional, non-commercial extra

        cache = RESULTS / f"{args.name}_samples" / "igfold_cache.sqlite"
        for r, seqs in zip(tqdm(rows, desc="IgFold pRMSD"), [*sets.values(), natural], strict=True):
            summary = prmsd_summary(mean_prmsd(seqs[: args.igfold], cache_path=cache, num_models=1))
            r.update(prmsd=round(summary["mean"], 3), prmsd_ci95=[round(v, 3) for v in summary["ci95"]])
            r["prmsd_below_1A"] = round(summary["share_below_1A"], 3)
    for r, seqs in zip(tqdm(rows, desc="AntiBERTy PLL"), [*sets.values(), natural], strict=True):
        # AntiBERTy pseudo-log-likelihood (favours the teacher's family; L forward passes per sequence) on the
        # first --pll of the sets compared three ways: the teacher at --pll-nfe, students at 8, IgLM, natural
        wanted = r["kind"] != "diffusion" or r["nfe"] == (args.pll_nfe if r["set"].startswith(args.teacher) else 8)
        if not wanted or args.pll < 1:
            continue
        mean, lo, hi = bootstrap_mean(pseudo_log_likelihood(teacher, seqs[: args.pll]))
        r.update(antiberty_pll=round(mean, 3), antiberty_pll_ci95=[round(lo, 3), round(hi, 3)])

    # timing, all in one pass under the same load
    per_step = {name: seconds_per_step(m, args.length) for name, m in [(args.teacher, teacher), *students.items()]}
    per_step |= {name: seconds_per_step(m, args.length, "rgas") for name, m, _, sampler in cells if sampler == "rgas"}
    t0 = time.perf_counter()
    iglm.generate(16, "H", "human", seed=args.seed + 1)
    iglm_per_seq = (time.perf_counter() - t0) / 16
    for r in rows:
        if r["kind"] == "diffusion":
            r["seconds_per_seq"] = round(r["nfe"] * per_step[r["set"].rsplit("@", 1)[0]], 4)
        elif r["kind"] == "iglm":
            r["seconds_per_seq"] = round(iglm_per_seq, 4)

    heavy = [(c.id, c.sequence) for c in load_repertoire("validation", ("H",))][: args.redesign_parents]
    models = {name: (m, 8) for name, m in students.items()} | {args.teacher: (teacher, 64)}
    design_rows = redesign_rows(models, heavy, args.designs, (10, 14))

    extra = {"redesign": design_rows, "seconds_per_step": per_step, "args": vars(args)}
    write_results(args.name, rows, extra)
    import pandas as pd

    print(pd.DataFrame(design_rows).to_string(index=False))
    plot(rows, RESULTS / f"{args.name}.png")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
