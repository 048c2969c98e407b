"""``--sweep``: generate a model × length × NFE grid of FASTAs before reporting (resumable)."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from tqdm import tqdm

from protein_didi.core.checkpoint import atomic_write
from protein_didi.protein.fasta import write_fasta


def run_sweep(args: argparse.Namespace) -> list[tuple[Path, str]]:
    """Generate ``<model>-<nfe>-L<length>.fasta`` for the grid; files already there are reused (resume)."""
    from protein_didi.core.device import resolve_device
    from protein_didi.core.request import plain_sampling
    from protein_didi.protein.generate import generate, sequence_records
    from protein_didi.protein.pretrained import load_model
    from protein_didi.protein.request import ProteinRequest

    out_dir = args.out / "sweep"
    grid = [(m, n, nfe) for m in args.models for n in args.lengths for nfe in args.nfe]
    files = []
    device = resolve_device(args.device)
    loaded = {}
    for model, length, nfe in tqdm(grid, desc="generating (sweep)", unit="set", file=sys.stderr):
        label = f"{Path(model).name}-{nfe}-L{length}"
        path = out_dir / f"{label}.fasta"
        if not path.is_file():
            if model not in loaded:
                loaded[model] = load_model(model, device, getattr(args, "precision", "fp32"))
            # plain ancestral sampling at T = 1, whatever sampling settings the model ships: the grid measures NFE
            request = ProteinRequest(
                num=args.num, length=length, nfe=nfe, **plain_sampling(),
                seed=args.seed, batch_size=args.batch_size,
            )  # fmt: skip
            seqs = generate(loaded[model], request)
            records = sequence_records(seqs, f"{label}_seed{args.seed}")
            atomic_write(path, lambda p, r=records: write_fasta(p, r))
        files.append((path, label))
    return files
