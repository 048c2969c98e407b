"""Sample text: ``python -m protein_didi.sample --domain text --model student --nfe 8 --num 4 --length 128``.

``--model`` is ``teacher``, ``student``, one of our model folders or an MDLM/DUO
checkpoint (``--tokenizer`` names a local GPT-2 tokenizer folder for those).
``--length`` counts the fixed ``<bos>``/``<eos>`` ends, as MDLM's blocks do.
Output is deterministic for a given ``--seed``; ``--out x.jsonl`` writes token
ids and text, any other ``--out`` plain text.
"""

from __future__ import annotations

import argparse
import json
import math
import sys
from pathlib import Path

from protein_didi.cli import add_device_args, check_out
from protein_didi.core.checkpoint import CheckpointError, atomic_write
from protein_didi.core.device import resolve_device
from protein_didi.progress import LazyBar
from protein_didi.text.generate import SAMPLERS, decode_blocks, generate_tokens
from protein_didi.text.pretrained import load_model
from protein_didi.text.tokenizer import TokenizerError


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.sample --domain text",
        description=__doc__,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--model", default="student", help="teacher, student, a model folder or an MDLM/DUO .ckpt")
    p.add_argument("--tokenizer", default=None, help="GPT-2 tokenizer folder for MDLM/DUO checkpoints")
    p.add_argument("--num", type=int, default=4, help="number of samples (default 4)")
    p.add_argument("--length", type=int, default=None, help="tokens per sample incl. <bos>/<eos> (default: training)")
    p.add_argument("--nfe", type=int, default=None, help="sampling steps (default: 8 for students, 128 for teachers)")
    p.add_argument("--sampler", choices=SAMPLERS, default="ancestral", help="ancestral or rgas (reward-guided)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0 = off)")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="samples per forward pass (default 32)")
    add_device_args(p)
    p.add_argument("--out", type=Path, default=None, help="file to write (.jsonl: ids + text; else text)")
    return p


def check_arguments(args: argparse.Namespace) -> None:
    """Every model-independent check, before the model loads or any progress is drawn."""
    for name in ("num", "nfe", "batch_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {value}")
    if args.length is not None and args.length < 3:
        raise ValueError(f"--length must be ≥ 3 tokens (<bos>, text, <eos>), got {args.length}")
    if not (math.isfinite(args.temperature) and args.temperature > 0):
        raise ValueError(f"--temperature must be > 0, got {args.temperature}")
    if not 0 < args.top_p <= 1:
        raise ValueError(f"--top-p must be in (0, 1], got {args.top_p}")
    check_out(args.out)


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    bar = LazyBar()
    try:
        check_arguments(args)
        loaded = load_model(args.model, resolve_device(args.device), args.tokenizer, args.precision)
        nfe = args.nfe if args.nfe is not None else (8 if loaded.role.startswith("student") else 128)
        bar.desc = f"{args.model} @ {nfe} NFE"
        tokens = generate_tokens(
            loaded, args.num, args.length, nfe, args.sampler, args.temperature, args.top_p, args.seed,
            args.batch_size, bar,
        )  # fmt: skip
    except (CheckpointError, TokenizerError, ValueError) as err:
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar.close()
    texts = decode_blocks(loaded, tokens)
    header = f"{Path(str(args.model)).name} · {nfe} NFE · {tokens.shape[1]} tokens · seed {args.seed}"
    if args.out is not None:
        if args.out.suffix == ".jsonl":
            lines = [json.dumps({"text": t, "tokens": r.tolist()}) for t, r in zip(texts, tokens, strict=True)]
            atomic_write(args.out, lambda p: p.write_text("".join(line + "\n" for line in lines)))
        else:
            atomic_write(args.out, lambda p: p.write_text("".join(f"=== {header} #{i + 1}\n{t}\n\n" for i, t in
                                                                   enumerate(texts))))  # fmt: skip
        print(f"wrote {len(texts)} samples to {args.out}", file=sys.stderr)
    else:
        for i, text in enumerate(texts):
            print(f"=== {header} #{i + 1}\n{text}\n")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
