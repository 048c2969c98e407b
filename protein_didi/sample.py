"""Sample proteins: ``python -m protein_didi.sample --model teacher --num 8 --length 100 --nfe 32 --out s.fasta``.

``--model`` is a registered name (teacher, student, student-idlm, dplm-150m) or
a checkpoint folder. Output is deterministic for a given ``--seed``.

``--domain text`` samples the text models instead and prints decoded text
(``python -m protein_didi.sample --domain text --model student --nfe 8 --num 4 --length 128``;
options: ``python -m protein_didi.sample --domain text --help``).
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from protein_didi.cli import DOMAINS, split_domain
from protein_didi.core.checkpoint import CheckpointError
from protein_didi.core.device import resolve_device
from protein_didi.progress import LazyBar
from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.fasta import write_fasta
from protein_didi.protein.generate import SAMPLERS, Motif, check_request, generate, sequence_records
from protein_didi.protein.pretrained import load_model


def parse_length(text: str) -> int | str | tuple[int, int]:
    """``100``, ``50-200`` (uniform range) or ``auto`` (training length distribution)."""
    if text == "auto":
        return text
    try:
        if "-" in text:
            lo, hi = (int(x) for x in text.split("-", 1))
            if not 1 <= lo <= hi:
                raise ValueError
            return lo, hi
        return int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"length {text!r} must be N, LO-HI or auto") from None


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.sample", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument("--domain", choices=DOMAINS, default="protein", help="proteins (default) or text")
    p.add_argument("--model", default="student", help="teacher, student, student-idlm, dplm-150m or a folder")
    p.add_argument("--num", type=int, default=8, help="number of sequences (default 8)")
    p.add_argument("--length", type=parse_length, default=100, help="residues: N, LO-HI or auto (default 100)")
    p.add_argument("--nfe", type=int, default=None, help="sampling steps (default: 8 for students, 64 for teachers)")
    p.add_argument("--sampler", choices=SAMPLERS, default="ancestral", help="ancestral or rgas (reward-guided)")
    p.add_argument("--temperature", type=float, default=1.0, help="softmax temperature (default 1.0)")
    p.add_argument("--top-p", type=float, default=1.0, help="nucleus sampling mass (default 1.0 = off)")
    p.add_argument("--prefix", default=None, help="residues fixed at the N-terminus, e.g. MKT")
    p.add_argument("--motif", default=None, help="residues fixed at 1-based positions, e.g. 5:WW,40:C")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    p.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda, mps")
    p.add_argument("--out", type=Path, default=None, help="FASTA file to write (default: print to stdout)")
    return p


def main(argv: list[str] | None = None) -> int:
    domain, rest = split_domain(argv)
    if domain == "text":
        from protein_didi.text.sample import main as sample_text

        return sample_text(rest)
    args = build_parser().parse_args(argv)
    bar = LazyBar("")
    try:
        motif = Motif.parse(args.motif, args.prefix)
        # every argument is checked before the model loads or any progress is drawn (--nfe: the default's too)
        check_request(args.num, args.length, 1 if args.nfe is None else args.nfe, args.sampler, args.temperature,
                      args.top_p, motif, args.batch_size)  # fmt: skip
        loaded = load_model(args.model, resolve_device(args.device))
        nfe = args.nfe if args.nfe is not None else (8 if loaded.role.startswith("student") else 64)
        bar.desc = f"{args.model} @ {nfe} NFE"
        seqs = generate(
            loaded,
            args.num,
            args.length,
            nfe,
            args.sampler,
            args.temperature,
            args.top_p,
            args.seed,
            motif,
            args.batch_size,
            bar,
        )
    except (CheckpointError, InvalidSequenceError, ValueError) as err:
        bar.close()
        print(f"error: {err}", file=sys.stderr)
        return 2
    bar.close()
    records = sequence_records(seqs, f"{Path(str(args.model)).name}_nfe{nfe}_seed{args.seed}")
    if args.out is not None:
        write_fasta(args.out, records)
        print(f"wrote {len(records)} sequences to {args.out}", file=sys.stderr)
    else:
        for rid, seq in records:
            print(f">{rid}\n{seq}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
