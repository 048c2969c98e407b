"""Calibrate the Sapiens humanness judge: real human V domains vs shuffles, corruptions and mouse germlines.

Why: a judge is only useful if its scale means something, and the two Sapiens scores (``unmasked``: Sapiens' own
one-pass ``predict_scores``; ``pll``: pseudo-log-likelihood) must be compared before one becomes the default. This
prints the mean per-residue log-probability with a 95 % bootstrap interval for

1. 200 real human VH and 200 real human VL from AbNatiV 2.0.9's test CSVs (``input_seq``; OAS human repertoires,
   so possibly seen by Sapiens in training: an upper reference, not a held-out test),
2. the same sequences shuffled (same composition and length, no antibody grammar: the floor), and the real VH read
   by the VL model,
3. the real VH with 10 % of residues corrupted the ways generators fail: random point substitutions, one
   homopolymer run, one tandem copy of the preceding window (length kept),
4. germline V+J joins of ``protein_didi/eval/data/natural_antibodies.fasta``, human and mouse, heavy and light
   (never seen as such by Sapiens; mouse should look less human),

plus, for both scores on the same subsets, the AUROC and Cohen's d of each contrast that matters, their rank
correlation, a few degenerate probes (poly-G, linker repeats) and the time per sequence. The PLL costs one forward
per residue, so it runs on ``--pll-n`` seeded picks of each set (the unmasked score on all of them, and on the same
picks for the side-by-side columns). Writes ``bench/results/sapiens_calibration.json``. About 2 minutes on one
CPU thread (the default: on a shared machine 2 threads are several times slower, as OpenMP waits for a busy core).

    python bench/sapiens_calibration.py [--abnativ-wheel PATH] [--n 200] [--pll-n 16]
"""

from __future__ import annotations

import argparse
import csv
import io
import tempfile
import time
import zipfile
from pathlib import Path

import numpy as np
import torch
from _common import write_results  # bench/ is on sys.path when a script here runs

from protein_didi.core.wheel_files import download_wheel
from protein_didi.eval.antibody import bootstrap_mean
from protein_didi.eval.sapiens_judge import DEFAULT_METHOD, METHODS, RESIDUES, sapiens_scores
from protein_didi.protein.fasta import iter_fasta

NATURAL = Path(__file__).resolve().parents[1] / "protein_didi" / "eval" / "data" / "natural_antibodies.fasta"
ABNATIV = "abnativ==2.0.9"
CSV_PREFIX = "abnativ/model/percentiles/"
MAX_RESIDUES = {"H": 142, "L": 126}
"""Sapiens' VH / VL position tables (``max_positions`` 144 / 128 minus ``<s>``, ``</s>``)."""


def read_abnativ(wheel: Path | None, chain: str, n: int, seed: int) -> list[str]:
    """``n`` seeded picks of ``input_seq`` from AbNatiV's test CSV for VH (``chain`` H) or VL (``chain`` L)."""
    name = f"{CSV_PREFIX}test_{'vh' if chain == 'H' else 'vl'}_v2_abnativ_seq_scores.csv"
    with zipfile.ZipFile(wheel) as zf, zf.open(name) as fh:
        seqs = [row["input_seq"] for row in csv.DictReader(io.TextIOWrapper(fh))]
    seqs = [s for s in seqs if s and len(s) <= MAX_RESIDUES[chain] and set(s) <= set(RESIDUES)]
    return [seqs[i] for i in np.random.default_rng(seed).choice(len(seqs), size=n, replace=False)]


def read_germlines(species: str, light: bool) -> tuple[list[str], list[str]]:
    """(sequences, chains) of the ``germline_vj|anarci:{species}|{chain}|…`` records, heavy or light."""
    seqs, chains = [], []
    for rid, seq in iter_fasta(NATURAL):
        parts = rid.split("|")
        if parts[0] == "germline_vj" and parts[1] == f"anarci:{species}" and (parts[2] != "H") == light:
            seqs.append(seq)
            chains.append(parts[2])
    return seqs, chains


def shuffled(seqs: list[str], seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.permutation(list(s))) for s in seqs]


def corrupted(seqs: list[str], kind: str, frac: float, seed: int) -> list[str]:
    """Each sequence with ``frac`` of its length corrupted: ``point`` substitutions at random positions, one
    homopolymer ``run`` of a random residue, or a tandem ``copy`` of the preceding window over the next one."""
    rng = np.random.default_rng(seed)
    out = []
    for s in seqs:
        k = max(1, round(frac * len(s)))
        if kind == "point":
            chars = list(s)
            for i in rng.choice(len(s), size=k, replace=False):
                chars[i] = rng.choice([a for a in RESIDUES if a != chars[i]])
            out.append("".join(chars))
        elif kind == "run":
            i = int(rng.integers(0, len(s) - k))
            out.append(s[:i] + str(rng.choice(list(RESIDUES))) * k + s[i + k :])
        else:
            i = int(rng.integers(k, len(s) - k))
            out.append(s[:i] + s[i - k : i] + s[i + k :])
    return out


def auroc(pos: np.ndarray, neg: np.ndarray) -> float:
    """P(score of a positive > score of a negative), ties counting half (Mann–Whitney U / (n·m))."""
    diff = pos[:, None] - neg[None, :]
    return float((diff > 0).mean() + 0.5 * (diff == 0).mean())


def cohen_d(pos: np.ndarray, neg: np.ndarray) -> float:
    """Mean gap in pooled standard deviations: how far apart the two sets are on the score's own spread."""
    pooled = np.sqrt(((len(pos) - 1) * pos.var(ddof=1) + (len(neg) - 1) * neg.var(ddof=1)) / (len(pos) + len(neg) - 2))
    return float((pos.mean() - neg.mean()) / pooled)


def spearman(a: np.ndarray, b: np.ndarray) -> float:
    ra, rb = np.argsort(np.argsort(a)), np.argsort(np.argsort(b))
    return float(np.corrcoef(ra, rb)[0, 1])


TRASTUZUMAB_VH = (
    "EVQLVESGGGLVQPGGSLRLSCAASGFNIKDTYIHWVRQAPGKGLEWVARIYPTNGYTRYADSVKGRFTISADTSKNTAYLQMNSLRAEDTAVYYCSRWGGDGFYAMDYWG"
    "QGTLVTVSS"
)
PROBES = {
    "trastuzumab VH": TRASTUZUMAB_VH,
    "trastuzumab VH, FR3 -> 32 x S": TRASTUZUMAB_VH[:66] + "S" * 32 + TRASTUZUMAB_VH[98:],
    "poly-G (120)": "G" * 120,
    "(GGGGS) x 24": "GGGGS" * 24,
}
"""Degenerate heavy chains, to show how each score ranks the self-consistent junk generators can emit."""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument(
        "--abnativ-wheel",
        type=Path,
        default=Path("/tmp/wheels/abnativ-2.0.9-py3-none-any.whl"),
        help=f"a local {ABNATIV} wheel (downloaded with pip when the path does not exist)",
    )
    parser.add_argument("--n", type=int, default=200, help="real VH and VL sequences each")
    parser.add_argument("--pll-n", type=int, default=16, help="sequences per set also scored by the PLL")
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--threads", type=int, default=1, help="torch threads (1 is fastest on a shared machine)")
    args = parser.parse_args()
    torch.set_num_threads(args.threads)

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.abnativ_wheel if args.abnativ_wheel.is_file() else download_wheel(ABNATIV, Path(tmp))
        real_vh = read_abnativ(wheel, "H", args.n, args.seed)
        real_vl = read_abnativ(wheel, "L", args.n, args.seed)
    sets: dict[str, tuple[list[str], list[str] | str]] = {
        "real human VH": (real_vh, "H"),
        "shuffled VH": (shuffled(real_vh, args.seed), "H"),
        "real human VH, VL model": ([s for s in real_vh if len(s) <= MAX_RESIDUES["L"]], "L"),
        "VH, 10% point substitutions": (corrupted(real_vh, "point", 0.1, args.seed), "H"),
        "VH, 10% homopolymer run": (corrupted(real_vh, "run", 0.1, args.seed), "H"),
        "VH, 10% tandem copy": (corrupted(real_vh, "copy", 0.1, args.seed), "H"),
        "real human VL": (real_vl, "L"),
        "shuffled VL": (shuffled(real_vl, args.seed), "L"),
    }
    rng = np.random.default_rng(args.seed)
    for species in ("human", "mouse"):
        for light in (False, True):
            seqs, chains = read_germlines(species, light)
            order = rng.permutation(len(seqs))  # the PLL picks (the first --pll-n) span the V gene families
            sets[f"germline {species} {'VL' if light else 'VH'}"] = (
                [seqs[i] for i in order],
                [chains[i] for i in order],
            )

    scores: dict[str, dict[str, np.ndarray]] = {}
    seconds = {m: 0.0 for m in METHODS}
    counted = {m: 0 for m in METHODS}
    sapiens_scores(real_vh[:2], "H")  # load both models before timing
    sapiens_scores(real_vl[:2], "L")
    for name, (seqs, chains) in sets.items():
        scores[name] = {}
        for method in METHODS:
            k = len(seqs) if method == "unmasked" else min(args.pll_n, len(seqs))
            start = time.perf_counter()
            scores[name][method] = sapiens_scores(seqs[:k], chains if isinstance(chains, str) else chains[:k], method)
            seconds[method] += time.perf_counter() - start
            counted[method] += k

    rows = []
    for name, by_method in scores.items():
        row: dict[str, object] = {"set": name, "n": len(by_method["unmasked"])}
        for method in METHODS:
            mean, lo, hi = bootstrap_mean(by_method[method], seed=args.seed)
            row[method] = f"{mean:.3f} [{lo:.3f}, {hi:.3f}]"
        row["n_pll"] = len(by_method["pll"])
        rows.append(row)

    pairs = {
        "real vs shuffled VH": ("real human VH", "shuffled VH"),
        "real vs shuffled VL": ("real human VL", "shuffled VL"),
        "VH: VH model vs VL model": ("real human VH", "real human VH, VL model"),  # (≤ 126 residues for VL)
        "VH vs 10% point substitutions": ("real human VH", "VH, 10% point substitutions"),
        "VH vs 10% homopolymer run": ("real human VH", "VH, 10% homopolymer run"),
        "VH vs 10% tandem copy": ("real human VH", "VH, 10% tandem copy"),
        "germline VH: human vs mouse": ("germline human VH", "germline mouse VH"),
        "germline VL: human vs mouse": ("germline human VL", "germline mouse VL"),
    }
    separations = {}
    for label, (pos, neg) in pairs.items():
        a, b = scores[pos], scores[neg]
        entry = {"auroc unmasked (all)": auroc(a["unmasked"], b["unmasked"])}
        entry["d unmasked (all)"] = cohen_d(a["unmasked"], b["unmasked"])
        for method in METHODS:  # the same PLL-sized picks for both scores
            kp, kn = len(a["pll"]), len(b["pll"])
            entry[f"auroc {method} (picks)"] = auroc(a[method][:kp], b[method][:kn])
            entry[f"d {method} (picks)"] = cohen_d(a[method][:kp], b[method][:kn])
        separations[label] = {k: round(v, 3) for k, v in entry.items()}
    pooled_u = np.concatenate([s["unmasked"][: len(s["pll"])] for s in scores.values()])
    pooled_p = np.concatenate([s["pll"] for s in scores.values()])
    probes = {
        m: dict(zip(PROBES, np.round(sapiens_scores(list(PROBES.values()), "H", m), 3).tolist(), strict=True))
        for m in METHODS
    }
    ms_per_seq = {m: round(1000 * seconds[m] / counted[m], 2) for m in METHODS}

    print("Separations (higher set first; AUROC and Cohen's d; 'picks' = the same PLL-sized subsets for both):")
    for label, entry in separations.items():
        print(f"  {label:31s} " + "  ".join(f"{k}={v:.3f}" for k, v in entry.items()))
    print(f"Spearman(unmasked, pll) over the picks: {spearman(pooled_u, pooled_p):.3f}")
    print(f"Degenerate probes (heavy-chain model): {probes}")
    print(f"ms per sequence ({args.threads} threads): {ms_per_seq}")
    write_results(
        "sapiens_calibration",
        rows,
        {
            "score": "mean per-residue log p(own residue), nats; higher = more human",
            "default_method": DEFAULT_METHOD,
            "settings": {"n": args.n, "pll_n": args.pll_n, "seed": args.seed, "abnativ": ABNATIV},
            "means": {
                name: {m: {"mean_ci95": list(bootstrap_mean(v[m], seed=args.seed)), "n": len(v[m])} for m in METHODS}
                for name, v in scores.items()
            },
            "separations": separations,
            "spearman_unmasked_pll": round(spearman(pooled_u, pooled_p), 4),
            "probes": probes,
            "ms_per_sequence": ms_per_seq,
        },
    )


if __name__ == "__main__":
    main()
