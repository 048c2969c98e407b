"""Evaluate generated text: ``python -m protein_didi.report --domain text --models teacher,student --nfe 8,128``.

For every (model, NFE) it samples ``--num`` blocks of ``--length`` tokens (or
reads ``--samples`` JSONL files written by ``sample --domain text --out x.jsonl``)
and measures the paper's two text metrics:

* generative perplexity under an independent judge (``--judge auto``: GPT-2 Large
  when it is on this machine, else the shipped corpus-trained judge), token-weighted
  over the set, after re-tokenising the decoded text with the judge's tokenizer;
* unigram token entropy per sample (nats, on the generating model's token ids),
  averaged over the set — low entropy flags repetitive text that a judge rewards.

``--data DIR`` adds a reference row of held-out test blocks of the same length.
Writes ``OUT/samples/<label>.jsonl`` (reused on a rerun with the same settings),
``OUT/metrics.csv`` (one row per sample), ``OUT/summary.csv`` and ``OUT/summary.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from protein_didi.cli import int_list
from protein_didi.core.checkpoint import atomic_write, save_json
from protein_didi.core.device import resolve_device
from protein_didi.text.data import TextCorpus
from protein_didi.text.evaluate import token_entropy
from protein_didi.text.generate import TextRequest, decode_blocks, generate_tokens
from protein_didi.text.judge import TextScorer, load_judge, perplexity
from protein_didi.text.pretrained import load_model


@dataclass
class SampleSet:
    """One row of the summary: labelled texts and, when known, the token ids that produced them."""

    label: str
    texts: list[str]
    tokens: list[list[int]] | None = None  # content ids (without <bos>/<eos>) in the generating tokenizer
    model: str | None = None
    nfe: int | None = None
    sec_per_sample: float | None = None


def score_set(sample_set: SampleSet, judge: TextScorer) -> tuple[dict[str, Any], pd.DataFrame]:
    """Summary row (judge PPL, entropy) and per-sample metrics of one set."""
    nll, count = judge.score(sample_set.texts)
    ids = sample_set.tokens
    entropy_on = "model tokens"
    if ids is None:  # external text: entropy on the judge's re-tokenisation
        tok = getattr(judge, "tokenizer", None)
        if tok is None:
            raise ValueError(f"{sample_set.label}: samples carry no token ids and the judge has no tokenizer")
        ids, entropy_on = tok.encode_batch(sample_set.texts), "judge tokens"
    entropy = np.array([token_entropy(r) for r in ids])
    per = pd.DataFrame(
        {
            "label": sample_set.label,
            "sample": np.arange(len(sample_set.texts)),
            "judge_nll_per_token": nll / np.maximum(count, 1),
            "judge_tokens": count,
            "entropy": entropy,
            "text": sample_set.texts,
        }
    )
    row = {
        "label": sample_set.label,
        "model": sample_set.model,
        "nfe": sample_set.nfe,
        "num": len(sample_set.texts),
        "gen_ppl": round(perplexity(nll, count), 3),
        "judge_nll_per_token": round(float(nll.sum() / max(count.sum(), 1)), 4),
        "entropy": round(float(entropy.mean()), 4),
        "entropy_std": round(float(entropy.std()), 4),
        "entropy_on": entropy_on,
        "sec_per_sample": None if sample_set.sec_per_sample is None else round(sample_set.sec_per_sample, 4),
    }
    return row, per


def sample_model(
    name: str, label: str, nfe: int, num: int, length: int | None, seed: int, batch_size: int, device: str,
    cache_dir: Path | None = None,
) -> SampleSet:  # fmt: skip
    """Generate (or reuse from ``cache_dir``) ``num`` samples of model ``name`` at ``nfe`` steps."""
    key = {"model": name, "nfe": nfe, "num": num, "length": length, "seed": seed}
    cache = cache_dir / f"{label}.jsonl" if cache_dir is not None else None
    if cache is not None and cache.is_file():
        lines = [json.loads(line) for line in cache.read_text().splitlines() if line]
        if lines and lines[0].get("key") == key:
            body = lines[1:]
            return SampleSet(label, [r["text"] for r in body], [r["tokens"] for r in body], name, nfe,
                             lines[0].get("sec_per_sample"))  # fmt: skip
    loaded = load_model(name, resolve_device(device))
    start = time.perf_counter()
    tokens = generate_tokens(loaded, TextRequest(num=num, length=length, nfe=nfe, seed=seed, batch_size=batch_size))
    sec = (time.perf_counter() - start) / num
    texts = decode_blocks(loaded, tokens)
    content = [r[1:-1].tolist() for r in tokens]
    if cache is not None:
        head = json.dumps({"key": key, "sec_per_sample": sec})
        body = "".join(json.dumps({"text": t, "tokens": c}) + "\n" for t, c in zip(texts, content, strict=True))
        atomic_write(cache, lambda p: p.write_text(head + "\n" + body))
    return SampleSet(label, texts, content, name, nfe, sec)


def reference_set(data: Path, num: int, length: int, seed: int, split: str = "test") -> SampleSet:
    """``num`` random held-out blocks of ``length`` tokens: what real text of that length scores."""
    corpus = TextCorpus(data)
    blocks = corpus.blocks(split, length)
    idx = np.sort(np.random.default_rng(seed).permutation(len(blocks))[:num])
    content = [blocks[i, 1:-1].tolist() for i in idx]
    texts = [corpus.tokenizer.decode(c) for c in content]
    return SampleSet(f"data ({split} split)", texts, content)


def read_samples(path: Path) -> SampleSet:
    """A JSONL file of ``{"text": …, "tokens": […]}`` lines (``tokens`` optional, header lines skipped)."""
    if not path.is_file():
        raise ValueError(f"samples file {path} not found")
    rows = []
    for k, line in enumerate(path.read_text().splitlines()):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            raise ValueError(
                f"{path}:{k + 1} is not JSON; give JSONL written by sample --domain text --out x.jsonl"
            ) from None
        if "text" in row:
            rows.append(row)
    if not rows:
        raise ValueError(f"{path} holds no samples (JSONL lines with a 'text' field)")
    tokens = [r["tokens"] for r in rows] if all("tokens" in r for r in rows) else None
    return SampleSet(path.stem, [r["text"] for r in rows], tokens)


def parse_models(text: str) -> list[tuple[str, str]]:
    """``label=name_or_path,…`` (a bare name is its own label)."""
    return [tuple(item.split("=", 1)) if "=" in item else (item, item) for item in text.split(",") if item]


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.report --domain text",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--models", default="", help="label=model pairs to sample, e.g. teacher,student")
    p.add_argument("--nfe", type=int_list, default=[8, 32, 128], help="sampling steps per model (default 8,32,128)")
    p.add_argument("--num", type=int, default=32, help="samples per (model, NFE) (default 32)")
    p.add_argument("--length", type=int, default=None, help="tokens per sample incl. <bos>/<eos> (default: model's)")
    p.add_argument("--samples", type=Path, nargs="*", default=[], help="JSONL sample files to score as well")
    p.add_argument("--data", type=Path, default=None, help="prepared corpus: add held-out test blocks as reference")
    p.add_argument("--judge", default="auto", help="auto, judge (shipped), gpt2-large, or a judge folder")
    p.add_argument("--seed", type=int, default=0, help="sampling seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="samples per forward pass (default 32)")
    p.add_argument("--device", default="cpu", help="device for sampling (default cpu)")
    p.add_argument("--out", type=Path, required=True, help="output folder")
    return p


def main(argv: list[str] | None = None) -> int:
    """Entry point for ``python -m protein_didi.report --domain text`` (argv without ``--domain``)."""
    args = build_parser().parse_args(argv)
    models = parse_models(args.models)
    if not models and not args.samples and args.data is None:
        raise ValueError("nothing to evaluate: give --models, --samples or --data")
    if any(n < 1 for n in args.nfe):
        raise ValueError(f"--nfe values must be ≥ 1, got {args.nfe}")
    judge = load_judge(args.judge)
    sets: list[SampleSet] = []
    for label, name in models:
        for nfe in args.nfe:
            sets.append(sample_model(name, f"{label}-{nfe}", nfe, args.num, args.length, args.seed,
                                     args.batch_size, args.device, args.out / "samples"))  # fmt: skip
    sets += [read_samples(p) for p in args.samples]
    if args.data is not None:
        length = args.length or (load_model(models[0][1]).block_length if models else 128)
        sets.append(reference_set(args.data, args.num, length, args.seed))
    rows, per = [], []
    for s in sets:
        row, metrics = score_set(s, judge)
        rows.append(row)
        per.append(metrics)
    args.out.mkdir(parents=True, exist_ok=True)
    summary = pd.DataFrame(rows)
    atomic_write(args.out / "summary.csv", lambda p: summary.to_csv(p, index=False))
    atomic_write(args.out / "metrics.csv", lambda p: pd.concat(per).to_csv(p, index=False))
    save_json(args.out / "summary.json", {"judge": judge.info, "settings": _settings(args), "rows": rows})
    print(summary.drop(columns=["entropy_on"]).to_string(index=False))
    print(f"\njudge: {judge.info.get('judge')}; wrote {args.out / 'summary.csv'}", file=sys.stderr)
    return 0


def _settings(args: argparse.Namespace) -> dict[str, Any]:
    return {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items() if k != "samples"} | {
        "samples": [str(p) for p in args.samples]
    }
