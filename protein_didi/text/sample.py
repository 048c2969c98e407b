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
import sys
from pathlib import Path

from protein_didi.cli import add_device_args, check_out
from protein_didi.core.checkpoint import atomic_write
from protein_didi.core.device import resolve_device
from protein_didi.core.request import add_sampling_args, sampling_args
from protein_didi.progress import LazyBar
from protein_didi.text.generate import decode_blocks, generate_tokens
from protein_didi.text.pretrained import load_model
from protein_didi.text.request import TextRequest


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
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="samples per forward pass (default 32)")
    add_sampling_args(p, TextRequest)
    add_device_args(p)
    p.add_argument("--out", type=Path, default=None, help="file to write (.jsonl: ids + text; else text)")
    return p


def sampling_request(args: argparse.Namespace) -> TextRequest:
    """The request the flags describe; refuses bad values (and an unwritable ``--out``) before a model loads."""
    check_out(args.out)
    return TextRequest(
        num=args.num, length=args.length, seed=args.seed, batch_size=args.batch_size,
        **sampling_args(args),
    )  # fmt: skip


def main(argv: list[str] | None = None) -> int:
    """Sample and write; errors are raised (``python -m protein_didi.sample --domain text`` prints them as one line)."""
    args = build_parser().parse_args(argv)
    bar = LazyBar()
    try:
        request = sampling_request(args)
        loaded = load_model(args.model, resolve_device(args.device), args.tokenizer, args.precision)
        nfe = request.fitted(loaded).nfe
        bar.desc = f"{args.model} @ {nfe} NFE"
        tokens = generate_tokens(loaded, request, bar)
    finally:
        bar.close()  # before any message, so an error line does not land on the bar's line
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
