"""The protein report's command body: arguments, checks, then sets → evaluation → report files.

``python -m protein_didi.report`` (:mod:`protein_didi.report.cli`) hands its arguments here, or with
``--domain text`` to :mod:`protein_didi.report.text`; both bodies have the same shape (``build_parser``,
``check_arguments`` where there is something to check, ``main``). This body cannot sit in ``protein/`` with the
other protein commands: it builds on :mod:`protein_didi.eval` (scores) and :mod:`protein_didi.fold` (ESMFold,
IgFold), which sit above the domain packages in the import graph (``tests/test_import_graph.py``), so it lives
with the rest of the report it runs, beside the text report.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

from protein_didi.cli import add_device_args
from protein_didi.core.errors import UserError
from protein_didi.eval.stats import composition
from protein_didi.protein.mmseqs import mmseqs_binary
from protein_didi.report.defaults import novelty_source, reference_source
from protein_didi.report.evaluate import Evaluation, evaluate
from protein_didi.report.fanout import make_folder, merge_step, shard_and_device, shard_step
from protein_didi.report.metrics import Options
from protein_didi.report.render import print_summary, write_outputs
from protein_didi.report.sets import distinct_reference_labels, load_set, read_proteins, reference_sets
from protein_didi.report.sweep import run_sweep

DESCRIPTION = """Evaluate generated proteins: ``python -m protein_didi.report --fasta a.fasta [b.fasta ...] --out DIR``.

For every set (one FASTA each) and two reference sets — natural held-out
proteins drawn from the reference at the same lengths, and random proteins
with the reference's amino-acid composition — it measures length, composition
KL, low complexity, judge NLL, ESMFold pLDDT, MMseqs2 cluster diversity and
novelty against a training split, then writes ``metrics.csv`` (one row per
sequence), ``summary.csv`` (one row per set) and a self-contained
``report.html``.

Defaults need no prepared corpus: the reference is a sample of the embedded
teacher's held-out test split shipped in the package, and novelty is measured
against the teacher's training split, rebuilt from its corpus (Debian
mmseqs2-examples) when that is on disk. --reference and --train override.
Proteins of any length are reported; the judge and ESMFold score up to 1022
residues and leave longer ones blank with the reason.

Sets of antibodies (≥ 50 % of a 32-sequence sample numbered by ANARCI, or all
input sets with --antibody; --no-antibody skips the check) also get antibody
metrics: numbered fraction, heavy-chain share, V-gene identity, IgLM NLL (when
the iglm package is installed), CDR-H3 uniqueness and IMGT pairwise identity.

Labels such as ``student-8`` or ``teacher-32-L200`` (``<model>-<nfe>[-L<length>]``)
add pLDDT-vs-NFE curves. ``--sweep`` generates such sets first
(``--models teacher,student --lengths 100,200 --nfe 8,16,32 --num 40``); FASTAs
already written and folds already cached are reused, so an interrupted sweep
resumes where it stopped. Without ESMFold weights the report says
"pLDDT not computed: <reason>" and carries on.

Folding fans out (see protein_didi.fold.fanout):

  one node, one worker process per device (repeat a device for more workers):
    ... --fold-devices cuda:0,cuda:1,cuda:2,cuda:3
  N machines or jobs (same arguments everywhere, I = 0..N-1; under torchrun
  RANK/WORLD_SIZE is the default), each writes OUT/fold_cache.shard-I-of-N.sqlite:
    ... --shard I/N
  then, with every shard file at hand, merge and report without refolding:
    ... --merge-cache OUT/fold_cache.shard-*-of-N.sqlite
  or only merge:  --out OUT --merge-cache SHARD [SHARD ...]

--domain text reports on generated text instead (judge perplexity and token
entropy; options: python -m protein_didi.report --domain text --help).
"""


def _csv_list(kind: type) -> Any:
    def parse(text: str) -> list:
        try:
            items = [kind(x.strip()) for x in text.split(",") if x.strip()]
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a comma-separated list of {kind.__name__}") from None
        if not items:
            raise argparse.ArgumentTypeError("empty list")
        return items

    return parse


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m protein_didi.report",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    p.add_argument("--fasta", nargs="+", type=Path, default=[], help="generated sets, one FASTA each")
    p.add_argument("--labels", type=_csv_list(str), default=None, help="comma-separated labels (default: file names)")
    p.add_argument(
        "--reference",
        type=Path,
        default=None,
        help="held-out natural proteins for the natural/random rows (default: the shipped sample of the embedded "
        "teacher's test split)",
    )
    p.add_argument(
        "--train",
        type=Path,
        default=None,
        help="training FASTA for novelty (default: train.fasta next to --reference, else the embedded teacher's "
        "training split where its corpus is on disk)",
    )
    p.add_argument("--out", type=Path, required=True, help="output folder for metrics.csv, summary.csv, report.html")
    p.add_argument(
        "--esmfold",
        default=None,
        help="ESMFold folder or hub id (default: $PROTEIN_DIDI_ESMFOLD or facebook/esmfold_v1)",
    )
    p.add_argument("--no-fold", action="store_true", help="skip ESMFold pLDDT")
    p.add_argument("--fold-cache", type=Path, default=None, help="sqlite fold cache (default: OUT/fold_cache.sqlite)")
    p.add_argument("--chunk-size", type=int, default=64, help="ESMFold axial-attention chunk (memory vs speed)")
    p.add_argument(
        "--fold-devices",
        type=_csv_list(str),
        default=None,
        metavar="DEV,DEV",
        help="fold in one worker process per device, e.g. cuda:0,cuda:1 or cpu,cpu (default: in-process on --device)",
    )
    p.add_argument(
        "--shard",
        default=None,
        metavar="I/N",
        help="fold only job I's slice of N (I from 0) into FOLD_CACHE.shard-I-of-N.sqlite and exit "
        "(default under torchrun: RANK/WORLD_SIZE)",
    )
    p.add_argument(
        "--merge-cache",
        nargs="+",
        type=Path,
        default=[],
        metavar="DB",
        help="merge these fold caches (the --shard files) into --fold-cache first (idempotent); "
        "without --fasta/--sweep, only merge",
    )
    p.add_argument("--offline", action="store_true", help="never try to download ESMFold weights")
    p.add_argument("--no-judge", action="store_true", help="skip the judge NLL")
    p.add_argument("--judge", default=None, help="judge checkpoint folder (default: the shipped judge)")
    p.add_argument("--threads", type=int, default=None, help="threads for MMseqs2 and torch (default: all cores)")
    ab = p.add_mutually_exclusive_group()
    ab.add_argument(
        "--antibody",
        dest="antibody",
        action="store_const",
        const=True,
        default=None,
        help="antibody metrics (ANARCI numbering, V identity, IgLM NLL, CDR-H3 uniqueness) for every input set "
        "(default: for sets where ≥ 50 %% of a 32-sequence sample numbers as antibodies)",
    )
    ab.add_argument("--no-antibody", dest="antibody", action="store_const", const=False, help="skip antibody metrics")
    p.add_argument("--no-diversity", action="store_true", help="skip MMseqs2 clustering (~3 s per set)")
    p.add_argument("--min-seq-id", type=float, default=0.3, help="clustering identity threshold (default 0.3)")
    p.add_argument("--coverage", type=float, default=0.8, help="clustering coverage (default 0.8)")
    p.add_argument("--seed", type=int, default=0, help="seed for reference rows and sweep generation")
    add_device_args(
        p,
        precision_default="fp32",
        precision_help="judge and sweep-generation precision: fp32 (default: a report measures, so it does not "
        "depend on the machine), auto, bf16, int8 (CPU)",
    )
    p.add_argument("--sweep", action="store_true", help="generate a model × length × NFE grid first, then report")
    p.add_argument("--models", type=_csv_list(str), default=["teacher", "student"], help="sweep models")
    p.add_argument("--lengths", type=_csv_list(int), default=[100, 200, 300, 400, 500], help="sweep lengths")
    p.add_argument("--nfe", type=_csv_list(int), default=[8, 16, 32], help="sweep NFEs")
    p.add_argument("--num", type=int, default=40, help="sequences per sweep cell (default 40)")
    p.add_argument("--batch-size", type=int, default=32, help="sweep generation batch size")
    return p


def check_arguments(args: argparse.Namespace) -> list[str]:
    """Labels and numbers, before anything slow runs; returns the labels."""
    if not args.fasta and not args.sweep:
        raise ValueError("nothing to evaluate: give --fasta FILE [FILE ...] and/or --sweep")
    labels = args.labels or [p.stem for p in args.fasta]
    if len(labels) != len(args.fasta):
        raise ValueError(f"{len(labels)} labels for {len(args.fasta)} FASTA files; give one label per file")
    if len(set(labels)) != len(labels):
        raise ValueError(f"labels must be unique, got {','.join(labels)}")
    for name, lo, hi in (("min_seq_id", 0.0, 1.0), ("coverage", 0.0, 1.0)):
        value = getattr(args, name)
        if not lo < value <= hi:
            raise ValueError(f"--{name.replace('_', '-')} must be in ({lo:g}, {hi:g}], got {value}")
    for name in ("threads", "num", "batch_size", "chunk_size"):
        value = getattr(args, name)
        if value is not None and value < 1:
            raise ValueError(f"--{name.replace('_', '-')} must be ≥ 1, got {value}")
    if args.sweep and any(n < 1 for n in args.nfe):
        raise ValueError(f"--nfe values must be ≥ 1, got {args.nfe}")
    from protein_didi.core.device import resolve_device
    from protein_didi.core.precision import resolve_precision

    resolve_precision(args.precision, resolve_device(args.device))  # a one-line PrecisionError before any work
    return labels


def main(argv: list[str] | None = None, folder: Any | None = None) -> int:
    """Entry point of ``python -m protein_didi.report`` for proteins (argv without ``--domain``); errors are raised.

    ``folder`` injects a ready :class:`~protein_didi.fold.esmfold.Folder` (tests, the app): it replaces
    ``--esmfold``/``--device``/``--fold-devices``; ``--shard`` builds its own.
    """
    args = build_parser().parse_args(argv)
    start = time.time()
    try:
        if args.threads is not None and args.threads >= 1:
            import torch

            torch.set_num_threads(args.threads)
        shard, device = shard_and_device(args)
        cache_path = args.fold_cache or args.out / "fold_cache.sqlite"
        if args.merge_cache:
            if shard is not None:
                raise ValueError("--shard folds one slice and --merge-cache combines them: run them as separate steps")
            merge_step(args, cache_path, folder)
            if not args.fasta and not args.sweep:
                return 0
        if shard is not None and args.no_fold:
            raise ValueError("--shard only folds, so it cannot run with --no-fold")
        if shard is not None and folder is not None:
            raise ValueError("--shard builds its own folder from --esmfold; do not pass one to main()")
        labels = check_arguments(args)
        if shard is None:
            mmseqs_binary()  # fail before any expensive step
        reference_from = reference_source(args.reference)
        reference = read_proteins(reference_from.path)
        inputs = list(zip(args.fasta, labels, strict=True))
        if args.sweep:
            inputs += run_sweep(args)
        generated = [load_set(path, label) for path, label in inputs]
        ref_comp = composition(s for _, s in reference)
        references = reference_sets(generated, reference, ref_comp, args.seed)
        notices = distinct_reference_labels(generated, references)
        sets = generated + references
        if shard is not None:
            return shard_step(args, sets, shard, cache_path, device)
        no_fold_reason = "disabled with --no-fold"
        if folder is None and not args.no_fold:
            try:
                folder = make_folder(args, cache_path, device)
            except ValueError as err:
                folder, no_fold_reason = None, str(err)
        if args.no_fold:
            folder = None
        with tempfile.TemporaryDirectory(prefix="protein_didi-report-") as work:
            train_from = novelty_source(args.train, args.reference, Path(work))
            options = Options(
                folder=folder,
                no_fold_reason=no_fold_reason,
                threads=args.threads,
                min_seq_id=args.min_seq_id,
                coverage=args.coverage,
                judge=not args.no_judge,
                judge_path=args.judge,
                judge_precision=args.precision,
                cluster=not args.no_diversity,
                train_fasta=str(train_from.path) if train_from.path else None,
                no_train_reason=train_from.description,
                antibody=args.antibody,
            )
            ev: Evaluation = evaluate(sets, ref_comp, options)
        ev.notes[:0] = notices
        context = {
            "sets": ", ".join(f"{s.label} ({len(s.records)})" for s in generated),
            "reference (natural rows)": reference_from.description,
            "novelty target": train_from.description if train_from.path else "none (see notes)",
            "ESMFold": "off" if folder is None else str(getattr(folder, "model_id", folder)),
            "clustering": f"mmseqs easy-cluster --min-seq-id {args.min_seq_id} -c {args.coverage}",
            "written": time.strftime("%Y-%m-%d %H:%M:%S"),
        }
        write_outputs(ev, args.out, context)
    except OSError as err:  # a path the user named cannot be read or written: theirs to fix, as a ValueError is
        raise UserError(str(err)) from err
    print(f"reference: {reference_from.description}")
    print(f"novelty target: {train_from.description}")
    for note in ev.notes:
        print(note)
    print_summary(ev)
    print(f"wrote {args.out / 'report.html'}, metrics.csv, summary.csv in {time.time() - start:.0f} s", file=sys.stderr)
    return 0
