"""Sampling speed on CPU: seconds per sequence, sampler overhead, and what each precision buys.

    python bench/sampling_speed.py [--quick] [--part all|overhead|precision]

For the embedded tiny teacher and a random-weight DPLM-150M-sized ESM-2
(30 layers, hidden 640), at L = 100/200 and NFE 8/32/128, reports seconds per
sequence and ``overhead = wall time / (steps × one bare forward pass)`` with the
forward-reuse cache off (goal ≤ 1.10: the sampler adds ≤ 10 % to the network)
and the effective speed with the cache on (time-free ESM models skip steps
that unmask nothing, so more steps than residues cost little extra).

Precision part (``--part precision``): for the embedded student (teacher and
student-idlm share its 1.8 M-parameter architecture), AntiBERTy (if installed)
and a random DPLM-150M-sized ESM-2, at L = 100/200 and NFE 8, seconds per
sequence and residues/s in fp32, bf16 and int8 at batch 1 and at the batch
with the highest forward throughput ("best batch", searched per precision),
each row with ``speedup_vs_fp32`` (same model, length and batch) and the mean
per-position KL(p_fp32 ‖ p_precision) of one forward at half masking. bf16 on
a CPU without native bf16 is emulated (refused by ``--precision bf16``): it is
timed at batch 1 only, to show why. Quality: 160 student@8 sequences (L = 100,
same seed) per precision, judge NLL (fp32 judge) and composition KL with 95 %
intervals, and the paired judge-NLL change against fp32; plus the judge itself
run in each precision on the fp32 samples; and one DPLM-size fp32 forward with
eager instead of SDPA attention and with 1 thread instead of all (the CPU
settings that could matter). The JSON keeps the part not re-run.
"""

from __future__ import annotations

import argparse
import copy
import importlib.util
import json
import os
import time
from functools import partial

import numpy as np
import pandas as pd
import torch
from _common import RESULTS, write_results  # bench/ is on sys.path when a script here runs

from protein_didi.core.precision import apply_precision, native_bf16
from protein_didi.core.request import plain_sampling
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.eval.stats import composition_kl
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.judge import load_judge
from protein_didi.protein.model import EsmDenoiser, esm_config
from protein_didi.protein.pretrained import load_model, with_precision

PRECISIONS = ("fp32", "bf16", "int8")


def timed(fn, repeats: int = 1) -> float:
    best = float("inf")
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - start)
    return best


@torch.no_grad()
def bench_model(name: str, model, batch: int, lengths: list[int], nfes: list[int]) -> list[dict]:
    rows = []
    sched = LogLinearSchedule()
    for length in lengths:
        z = ALPHABET.masked_template([length] * batch)
        fixed = ALPHABET.special_positions(z)
        t = torch.ones(batch)
        model(z, t)  # warm-up
        forward = timed(partial(model, z, t), repeats=3)
        for nfe in nfes:
            gen = torch.Generator().manual_seed(0)
            plain = SamplerConfig(nfe, suppress=ALPHABET.nonstandard_ids, reuse_unchanged=False)
            cached = SamplerConfig(nfe, suppress=ALPHABET.nonstandard_ids)
            wall = timed(partial(ancestral_sample, model, z, fixed, sched, plain, gen))
            wall_cached = timed(partial(ancestral_sample, model, z, fixed, sched, cached, gen))
            rows.append({
                "model": name, "length": length, "nfe": nfe, "batch": batch,
                "forward_s": round(forward, 4),
                "sec_per_seq": round(wall / batch, 4),
                "overhead": round(wall / (nfe * forward), 3),
                "sec_per_seq_cached": round(wall_cached / batch, 4),
            })  # fmt: skip
            print(rows[-1], flush=True)
    return rows


def converted(model: torch.nn.Module, precision: str) -> torch.nn.Module:
    """A converted deep copy (the fp32 original stays for the next precision)."""
    return apply_precision(copy.deepcopy(model), precision)


def half_masked(batch: int, length: int, seed: int = 0) -> torch.Tensor:
    """Random residues with half of them masked: a mid-trajectory input for comparing predictions."""
    gen = torch.Generator().manual_seed(seed)
    z = ALPHABET.masked_template([length] * batch)
    residues = ALPHABET.standard_ids.nonzero().squeeze(-1)
    fill = residues[torch.randint(len(residues), (batch, length), generator=gen)]
    keep = torch.rand(batch, length, generator=gen) < 0.5
    z[:, 1 : length + 1] = torch.where(keep, fill, z[:, 1 : length + 1])
    return z


@torch.no_grad()
def kl_to_fp32(reference: torch.Tensor, model, z: torch.Tensor) -> float:
    """Mean KL(p_fp32 ‖ p) in nats over masked positions."""
    log_p = model(z, torch.ones(z.shape[0])).double()
    ref = reference.double()
    masked = z == ALPHABET.mask_id
    return float((ref.exp() * (ref - log_p)).sum(-1)[masked].mean())


@torch.no_grad()
def best_batch(model, length: int, candidates: list[int]) -> tuple[int, dict[int, float]]:
    """The batch size with the most residues per second in one forward pass (best of 2 after a warm-up)."""
    rates = {}
    for b in candidates:
        z = ALPHABET.masked_template([length] * b)
        t = torch.ones(b)
        model(z, t)
        rates[b] = b * length / timed(partial(model, z, t), repeats=2)
    return max(rates, key=rates.get), rates


@torch.no_grad()
def time_sampling(model, length: int, batch: int, nfe: int) -> float:
    """Seconds for one ancestral run of ``batch`` sequences (the sampler's defaults, reuse cache on)."""
    z = ALPHABET.masked_template([length] * batch)
    fixed = ALPHABET.special_positions(z)
    config = SamplerConfig(nfe, suppress=ALPHABET.nonstandard_ids)
    gen = torch.Generator().manual_seed(0)
    model(z, torch.ones(batch))  # warm-up at this shape
    return timed(partial(ancestral_sample, model, z, fixed, LogLinearSchedule(), config, gen))


def precision_speed(name: str, model, lengths: list[int], batches: list[int], nfe: int = 8) -> list[dict]:
    """Rows (model, precision, length, batch) with seconds per sequence, residues/s and the speed-up vs fp32."""
    native = native_bf16("cpu")
    models = {p: model if p == "fp32" else converted(model, p) for p in PRECISIONS}
    rows = []
    for length in lengths:
        z = half_masked(2, length)
        with torch.no_grad():
            reference = models["fp32"](z, torch.ones(2))
        kl = {p: kl_to_fp32(reference, m, z) for p, m in models.items()}
        best = {}
        for p in PRECISIONS:
            if p == "bf16" and not native:
                continue  # emulated bf16 is several times slower than fp32 at every batch size
            best[p], rates = best_batch(models[p], length, batches)
            print(f"{name} L={length} {p}: forward residues/s by batch { ({b: round(r) for b, r in rates.items()}) }")
        sizes = sorted({1, *best.values()})
        walls = {}
        for p in PRECISIONS:
            for b in sizes if p in best else [1]:
                walls[p, b] = time_sampling(models[p], length, b, nfe)
                rows.append({
                    "model": name, "precision": p, "length": length, "nfe": nfe, "batch": b,
                    "best_batch": best.get(p) == b, "bf16_native": native if p == "bf16" else None,
                    "sec_per_seq": round(walls[p, b] / b, 4),
                    "residues_per_s": round(b * length / walls[p, b], 1),
                    "speedup_vs_fp32": round(walls["fp32", b] / walls[p, b], 3),
                    "kl_vs_fp32": round(kl[p], 6),
                    "threads": torch.get_num_threads(),
                })  # fmt: skip
                print(rows[-1], flush=True)
    return rows


@torch.no_grad()
def levers(model, length: int = 200) -> list[dict]:
    """One fp32 forward at batch 1 under the CPU settings that could matter: threads and attention kernel."""
    z = ALPHABET.masked_template([length])
    t = torch.ones(1)
    threads = torch.get_num_threads()
    rows = []
    for setting, n_threads, attn in (("default (sdpa)", threads, "sdpa"), ("eager attention", threads, "eager"),
                                     ("1 thread", 1, "sdpa")):  # fmt: skip
        torch.set_num_threads(n_threads)
        model.mlm.set_attn_implementation(attn)
        model(z, t)
        rows.append({"setting": setting, "threads": n_threads, "attention": attn, "length": length,
                     "forward_s": round(timed(partial(model, z, t), repeats=3), 4)})  # fmt: skip
        print(rows[-1], flush=True)
    torch.set_num_threads(threads)
    model.mlm.set_attn_implementation("sdpa")
    return rows


def interval(values: np.ndarray) -> tuple[float, float, float]:
    """Mean and its normal-approximation 95 % interval."""
    half = 1.96 * values.std(ddof=1) / np.sqrt(len(values))
    return float(values.mean()), float(values.mean() - half), float(values.mean() + half)


def kl_interval(seqs: list[str], reference: dict, rng: np.random.Generator, draws: int = 1000) -> tuple:
    """Set-level composition KL and its 95 % bootstrap interval over sequences."""
    boot = [composition_kl([seqs[i] for i in rng.integers(0, len(seqs), len(seqs))], reference) for _ in range(draws)]
    return composition_kl(seqs, reference), *np.percentile(boot, [2.5, 97.5])


def precision_quality(num: int = 160, length: int = 100, nfe: int = 8) -> list[dict]:
    """Student@8 samples per precision (same seed) under the fp32 judge; the judge in each precision too."""
    judge = load_judge("judge")
    base = load_model("student")
    reference = base.info["train_composition"]
    rows, fp32_nll, fp32_seqs = [], None, None
    for p in PRECISIONS:
        loaded = with_precision(copy.deepcopy(base), p)  # bypasses the native-bf16 check: quality, not speed
        start = time.perf_counter()
        seqs = generate(
            loaded,
            ProteinRequest(num=num, length=length, nfe=nfe, batch_size=32, **plain_sampling()),
        )
        wall = time.perf_counter() - start
        nll = judge.nll(seqs)
        fp32_nll, fp32_seqs = (nll, seqs) if p == "fp32" else (fp32_nll, fp32_seqs)
        mean, lo, hi = interval(nll)
        kl, kl_lo, kl_hi = kl_interval(seqs, reference, np.random.default_rng(0))
        d_mean, d_lo, d_hi = interval(nll - fp32_nll)
        judged = judge if p == "fp32" else load_judge("judge", precision="fp32")
        if p != "fp32":
            apply_precision(judged.model, p)
        rows.append({
            "model": "student", "precision": p, "length": length, "nfe": nfe, "num": num,
            "judge_nll": round(mean, 4), "judge_nll_95": [round(lo, 4), round(hi, 4)],
            "paired_change_vs_fp32": round(d_mean, 4), "paired_change_95": [round(d_lo, 4), round(d_hi, 4)],
            "identical_to_fp32": sum(a == b for a, b in zip(seqs, fp32_seqs, strict=True)),
            "composition_kl": round(kl, 4), "composition_kl_95": [round(float(kl_lo), 4), round(float(kl_hi), 4)],
            "judge_in_precision_nll_change": round(float((judged.nll(fp32_seqs) - fp32_nll).mean()), 5),
            "generate_s": round(wall, 2),
        })  # fmt: skip
        print(rows[-1], flush=True)
    return rows


def decide(speed: list[dict], quality: list[dict]) -> dict:
    """Which precisions keep judge NLL and composition KL inside the fp32 intervals, and what ``auto`` does here."""
    ref = next(r for r in quality if r["precision"] == "fp32")
    inside = {
        r["precision"]: bool(
            ref["judge_nll_95"][0] <= r["judge_nll"] <= ref["judge_nll_95"][1]
            and ref["composition_kl_95"][0] <= r["composition_kl"] <= ref["composition_kl_95"][1]
        )
        for r in quality
    }
    big = [r for r in speed if r["model"] == "dplm-150m-random" and r["best_batch"]]
    best_speedup = {
        p: max((r["speedup_vs_fp32"] for r in big if r["precision"] == p), default=None) for p in PRECISIONS
    }
    auto = "bf16" if native_bf16("cpu") else "fp32"
    return {
        "quality_inside_fp32_interval": inside,
        "dplm150m_best_batch_speedup_vs_fp32": best_speedup,
        "auto_resolves_here_to": auto,
        "default": "auto" if inside.get("bf16") else "fp32",
        "rule": "default --precision auto (bf16 only where native, else fp32) if bf16 keeps quality inside the fp32 "
        "intervals; int8 stays opt-in (CPU only)",
    }


def previous() -> dict:
    path = RESULTS / "sampling_speed.json"
    return json.loads(path.read_text()) if path.is_file() else {}


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny models only, NFE 8/32, 40 quality sequences")
    p.add_argument("--batch", type=int, default=8, help="sequences per batch for the tiny teacher (8)")
    p.add_argument("--part", choices=("all", "overhead", "precision"), default="all", help="what to measure")
    args = p.parse_args()
    torch.manual_seed(0)
    load0 = os.getloadavg()[0]  # other work on the machine slows every row alike; recorded to judge the numbers
    old = previous()
    kept = ("goal_overhead", "worst_overhead", "cpu_levers_dplm150m")
    rows, extra = old.get("rows", []), {k: old[k] for k in kept if k in old}
    if args.part in ("all", "overhead"):
        nfes = [8, 32] if args.quick else [8, 32, 128]
        rows = bench_model("tiny-teacher", load_model("teacher").model, args.batch, [100, 200], nfes)
        if not args.quick:
            big = EsmDenoiser(esm_config("dplm-150m")).eval()
            rows += bench_model("dplm-150m-random", big, 1, [100, 200], nfes)
        extra = {"goal_overhead": 1.10, "worst_overhead": max(r["overhead"] for r in rows)}
        print(f"worst overhead {extra['worst_overhead']:.3f} (goal ≤ 1.10)")
    speed, quality = old.get("precision_rows", []), old.get("quality_rows", [])
    if args.part in ("all", "precision"):
        speed = precision_speed("student", load_model("student").model, [100, 200], [1, 8, 32, 64])
        if importlib.util.find_spec("antiberty") is not None and not args.quick:
            speed += precision_speed("antiberty", load_model("antiberty").model, [100, 200], [1, 4, 16])
        if not args.quick:
            big = EsmDenoiser(esm_config("dplm-150m")).eval()
            speed += precision_speed("dplm-150m-random", big, [100, 200], [1, 2, 4, 8])
            extra["cpu_levers_dplm150m"] = levers(big)
        quality = precision_quality(40 if args.quick else 160)
    extra |= {"precision_rows": speed, "quality_rows": quality, "load_average_start_end": [load0, os.getloadavg()[0]]}
    if speed and quality:
        extra["precision_decision"] = decide(speed, quality)
    write_results("sampling_speed", rows, extra)
    for table in (speed, quality):
        print(pd.DataFrame(table).to_string(index=False))
    if "precision_decision" in extra:
        print(json.dumps(extra["precision_decision"], indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
