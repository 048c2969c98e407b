"""Sampling speed on CPU: seconds per sequence and sampler overhead.

    python bench/sampling_speed.py [--quick]

For the embedded tiny teacher and a random-weight DPLM-150M-sized ESM-2
(30 layers, hidden 640), at L = 100/200 and NFE 8/32/128, reports seconds per
sequence and ``overhead = wall time / (steps × one bare forward pass)`` with the
forward-reuse cache off (goal ≤ 1.10: the sampler adds ≤ 10 % to the network)
and the effective speed with the cache on (time-free ESM models skip steps
that unmask nothing, so more steps than residues cost little extra).
"""

from __future__ import annotations

import argparse
import time
from functools import partial

import torch
from _common import write_results  # bench/ is on sys.path when a script here runs

from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.model import EsmDenoiser, esm_config
from protein_didi.protein.pretrained import load_model


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


def main() -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--quick", action="store_true", help="tiny teacher only, NFE 8/32")
    p.add_argument("--batch", type=int, default=8, help="sequences per batch for the tiny teacher (8)")
    args = p.parse_args()
    torch.manual_seed(0)
    nfes = [8, 32] if args.quick else [8, 32, 128]
    rows = bench_model("tiny-teacher", load_model("teacher").model, args.batch, [100, 200], nfes)
    if not args.quick:
        big = EsmDenoiser(esm_config("dplm-150m")).eval()
        rows += bench_model("dplm-150m-random", big, 1, [100, 200], nfes)
    worst = max(r["overhead"] for r in rows)
    write_results("sampling_speed", rows, {"goal_overhead": 1.10, "worst_overhead": worst})
    print(f"worst overhead {worst:.3f} (goal ≤ 1.10)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
