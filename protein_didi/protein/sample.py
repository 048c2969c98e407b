"""Sample proteins: ``python -m protein_didi.sample --model teacher --num 8 --length 100 --nfe 32 --out s.fasta``.

``--model`` is a registered name (``--help`` lists them) or a checkpoint folder. Output is deterministic for a
given ``--seed``.

Antibody models (``antibody-student``, ``antiberty``, …) return valid chains only: heavy/light chimeras and
chains without a functional J are refused and resampled, and the account is printed (``--allow-invalid``
turns this off; needs ANARCI: ``pip install -e .[antibody]``, Debian ``hmmer``). Every design's engineer's checks
(Cys23/Trp41/Cys104, the J motif, FR4 and V identity to germline, IMGT CDR lengths against the real repertoire)
follow on stderr: one summary line, then a row per design.

CDR redesign (antibody models, needs ``pip install -e .[antibody]``): number the parent with
ANARCI, keep every residue outside the chosen CDRs and generate those::

    python -m protein_didi.sample --model antibody-student --parent p.fasta --redesign H3 --cdr-length 10-14

A parent FASTA may hold a VH and a VL: the records of the CDR's chain are redesigned. H3 is IMGT 105–117 unless
``--cdr-scheme kabat`` (or ``chothia``: H95–H102, keeping IMGT 105–106); a length the real repertoire has not seen
is refused. The parent's own loop is printed first, scored like its designs (loop NLL, liabilities, checks).

``--domain text`` samples the text models instead (:mod:`protein_didi.text.sample`;
options: ``python -m protein_didi.sample --domain text --help``).
"""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

from protein_didi.cli import add_device_args, check_out
from protein_didi.core.device import resolve_device
from protein_didi.core.request import add_sampling_args, sampling_args
from protein_didi.progress import LazyBar
from protein_didi.protein.alphabet import InvalidSequenceError
from protein_didi.protein.fasta import read_fasta, write_fasta
from protein_didi.protein.generate import generate, sequence_records
from protein_didi.protein.liabilities import LIABILITY_CLASSES
from protein_didi.protein.pretrained import LoadedModel, is_antibody_model, load_model, model_choices
from protein_didi.protein.request import Motif, ProteinRequest

if TYPE_CHECKING:  # numbering imports ANARCI lazily; only antibody runs need it
    from protein_didi.protein.numbering import AntibodyNumbering


DEFAULT_LENGTH = 100
ANTIBODY_LENGTH = 120
"""An antibody model's chain length when ``--length`` is not given: a V domain is ~107–130 residues (VH ~120); at
100 the CDRs are squeezed out (antibody-student's CDR-H2s came out 0–4 residues long, 103 of 112 chains refused)."""


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
    p.add_argument("--model", default="student", help=model_choices())
    p.add_argument("--num", type=int, default=8, help="number of sequences (default 8)")
    p.add_argument(
        "--length",
        type=parse_length,
        default=None,
        help=f"residues: N, LO-HI or auto (default {DEFAULT_LENGTH}; antibody models {ANTIBODY_LENGTH})",
    )
    add_sampling_args(p, ProteinRequest)
    p.add_argument(
        "--corrector",
        default=None,
        metavar="MODEL",
        help="model that redraws the residues each correction round remasks, e.g. antiberty (needs "
        "--corrector-steps N; default: the sampling model itself)",
    )
    p.add_argument("--prefix", default=None, help="residues fixed at the N-terminus, e.g. MKT")
    p.add_argument("--motif", default=None, help="residues fixed at 1-based positions, e.g. 5:WW,40:C")
    p.add_argument("--seed", type=int, default=0, help="random seed (default 0)")
    p.add_argument("--batch-size", type=int, default=32, help="sequences per forward pass (default 32)")
    p.add_argument("--max-tokens", type=int, default=8192, help="cap on padded tokens per forward pass (default 8192)")
    p.add_argument(
        "--allow-invalid",
        action="store_true",
        help="antibody models: keep heavy/light chimeras and chains without a functional J (default: resample them)",
    )
    add_device_args(p)
    p.add_argument("--out", type=Path, default=None, help="FASTA file to write (default: print to stdout)")
    ab = p.add_argument_group("CDR redesign (antibodies)")
    ab.add_argument("--parent", default=None, help="parent antibody: a sequence or a FASTA file (each record a parent)")
    ab.add_argument("--redesign", default=None, help="CDRs to regenerate: H1, H2, H3, L1, L2, L3 (e.g. H3 or H1,H3)")
    ab.add_argument("--cdr-length", default=None, help="residues per redesigned CDR: N or LO-HI (default: parent's)")
    ab.add_argument(
        "--cdr-scheme",
        default="imgt",
        choices=("imgt", "kabat", "chothia"),
        help="CDR definition of the loops regenerated (default imgt: H3 = IMGT 105-117, which includes Kabat/Chothia "
        "H93-H94; kabat or chothia H3 = H95-H102 keeps those two residues)",
    )
    ab.add_argument(
        "--liabilities",
        default=None,
        help="refuse and resample designs with these liabilities in the redesigned CDRs: all, or a comma list of "
        f"{', '.join(LIABILITY_CLASSES)} (counts go to stderr)",
    )
    return p


def read_parents(text: str) -> list[tuple[str, str]]:
    """``--parent``: a FASTA file's records, or one sequence given on the command line (id ``parent``)."""
    path = Path(text)
    if path.is_file():
        records = read_fasta(path)
        if not records:
            raise InvalidSequenceError(f"{path} holds no FASTA records; give a parent antibody sequence")
        return [(rid.split()[0], seq) for rid, seq in records]
    if len(text) > 1 and not set(text.upper()) <= set("ACDEFGHIKLMNPQRSTVWYXBZUO"):
        raise InvalidSequenceError(f"--parent {text!r} is neither a file nor a protein sequence")
    return [("parent", text)]


def sampling_request(args: argparse.Namespace) -> ProteinRequest:
    """The request the flags describe (CDR plans are added per parent); refuses bad values before a model loads."""
    redesigning = args.parent is not None or args.redesign is not None
    if redesigning:
        if args.redesign is None or args.parent is None:
            raise ValueError("CDR redesign needs both --parent SEQ_OR_FASTA and --redesign CDR (e.g. H3)")
        if args.motif is not None or args.prefix is not None:
            raise ValueError("--motif/--prefix do not combine with --redesign: the parent's framework is kept as is")
    elif args.liabilities is not None:
        raise ValueError("--liabilities filters CDR redesigns; add --parent SEQ_OR_FASTA --redesign CDR, or drop it")
    length = DEFAULT_LENGTH if args.length is None else args.length  # antibody models: ANTIBODY_LENGTH, once loaded
    return ProteinRequest(
        num=args.num, length=length, motif=None if redesigning else Motif.parse(args.motif, args.prefix),
        seed=args.seed, batch_size=args.batch_size, max_tokens=args.max_tokens, corrector=args.corrector,
        **sampling_args(args),
    )  # fmt: skip


def redesign_requests(args: argparse.Namespace, request: ProteinRequest) -> list[ProteinRequest]:
    """One request per parent record of the CDRs' chain (the VL of a VH/VL file is passed over for H3, and said so),
    all numbered with ANARCI and planned before the model loads."""
    from protein_didi.protein.cdr_plan import plan_parents
    from protein_didi.protein.liabilities import parse_liability_classes
    from protein_didi.protein.redesign import parse_cdr_length

    lengths = parse_cdr_length(args.cdr_length)
    classes = parse_liability_classes(args.liabilities) if args.liabilities is not None else ()
    parents = plan_parents(read_parents(args.parent), args.redesign, lengths, scheme=args.cdr_scheme)
    for line in parents.notes():  # e.g. the VL of a VH/VL file given --redesign H3
        print(line, file=sys.stderr)
    return [request.replace(plan=plan, liabilities=classes) for plan in parents.plans]


def run(args: argparse.Namespace, bar: LazyBar) -> list[tuple[str, str]]:
    """Check every argument, load the model, sample: FASTA records (generated proteins or CDR designs)."""
    from protein_didi.protein.redesign import redesign

    check_out(args.out)
    request = sampling_request(args)
    redesigns = redesign_requests(args, request) if args.parent is not None else []
    loaded = load_model(args.model, resolve_device(args.device), args.precision)
    if args.length is None and not redesigns and is_antibody_model(loaded.info):
        request = request.replace(length=ANTIBODY_LENGTH)
    fitted = request.fitted(loaded)
    rounds = f" + {fitted.corrector_steps} corrector rounds" if fitted.corrector_steps else ""
    bar.desc = f"{args.model} @ {fitted.nfe} NFE{rounds}" + (f", {args.redesign}" if redesigns else "")
    if not redesigns:
        name = f"{Path(str(args.model)).name}_nfe{fitted.nfe}_seed{args.seed}"
        if not is_antibody_model(loaded.info):
            return sequence_records(generate(loaded, request, bar), name)
        if args.allow_invalid:
            records = sequence_records(generate(loaded, request, bar), name)
            bar.close()
            print_design_checks(records, None)
            return records
        from protein_didi.protein.valid_chains import generate_valid_chains

        chains = generate_valid_chains(loaded, request, bar)
        bar.close()
        print(chains.summary(), file=sys.stderr)
        records = sequence_records(chains.sequences, name)
        print_design_checks(records, chains.numberings)
        return records
    for each in redesigns:
        each.fitted(loaded)  # every parent checked against the model before the first is sampled

    def say(line: str) -> None:  # the liability account, on its own line below the finished bar
        bar.close()
        print(line, file=sys.stderr)

    out = []
    for each in redesigns:
        records = redesign(loaded, each, bar, report=say)
        bar.close()
        print(redesign_summary(loaded, each, records, args.model), file=sys.stderr)
        out += records
    return out


def redesign_summary(loaded: LoadedModel, request: ProteinRequest, records: list[tuple[str, str]], model: str) -> str:
    """The parent as the baseline row, then every design: loops (IMGT, with Kabat/Chothia), the sampling model's
    loop NLL, liabilities in the loops (the classes filtered, else all) and the engineer's checks."""
    from protein_didi.protein.redesign import loop_nll, loop_table

    plan = request.plan
    assert plan is not None

    def scorer(designs):
        return loop_nll(loaded, plan, designs)

    name = f"{Path(str(model)).name} loop NLL (nats/res.)"
    table = loop_table(plan, records, request.liabilities or LIABILITY_CLASSES, scorer, name)
    return table.text()


MAX_CHECK_ROWS = 50
"""Designs listed one per line under the engineer's checks summary (the summary line counts them all)."""


def design_checks_text(records: Sequence[tuple[str, str]], numberings: Sequence[AntibodyNumbering]) -> str:
    """The engineer's checks of antibody designs: one summary line (how many pass, the most common flags), then one
    row per design named by its FASTA id (:mod:`protein_didi.protein.engineer_checks`)."""
    from protein_didi.protein.engineer_checks import check_designs, checks_frame, checks_summary, plain_table

    checks = check_designs(numberings)
    frame = checks_frame(checks)
    frame.insert(0, "id", [rid.split()[0] for rid, _ in records])
    lines = [checks_summary(checks)]
    if len(frame):
        lines.append(plain_table(frame.head(MAX_CHECK_ROWS)))
    if len(frame) > MAX_CHECK_ROWS:
        lines.append(f"… and {len(frame) - MAX_CHECK_ROWS} more designs (python -m protein_didi.report lists them all)")
    return "\n".join(lines)


def print_design_checks(
    records: Sequence[tuple[str, str]], numberings: Sequence[AntibodyNumbering] | None = None
) -> None:
    """Print the engineer's checks to stderr, numbering the sequences first when no numbering is given (skipped,
    with one line saying why, when ANARCI cannot run: ``--allow-invalid`` promises sampling without it)."""
    from protein_didi.protein.numbering import AntibodyError, number_antibodies

    if numberings is None:
        try:
            numberings = number_antibodies([seq for _, seq in records])
        except AntibodyError as err:
            print(f"engineer's checks skipped: {err}", file=sys.stderr)
            return
    print(design_checks_text(records, numberings), file=sys.stderr)


def main(argv: list[str] | None = None) -> int:
    """Sample and write; errors are raised (``python -m protein_didi.sample`` prints them as one line)."""
    args = build_parser().parse_args(argv)
    bar = LazyBar("")
    try:
        records = run(args, bar)
    finally:
        bar.close()  # before any message, so an error line does not land on the bar's line
    return emit(records, args.out)


def emit(records: list[tuple[str, str]], out: Path | None) -> int:
    """Write ``records`` to ``out`` (FASTA) or print them; exit code 0."""
    if out is not None:
        write_fasta(out, records)
        print(f"wrote {len(records)} sequences to {out}", file=sys.stderr)
    else:
        for rid, seq in records:
            print(f">{rid}\n{seq}")
    return 0
