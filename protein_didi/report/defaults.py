"""Where the reference rows and the novelty target come from when the user names none.

A report must work right after the first ``sample`` command, so both defaults
come from the embedded teacher's corpus (UniProt sample of Debian's
``mmseqs2-examples``, split by MMseqs2 clusters; see ``python -m data_prep.reference``):

* reference: a fixed sample of its held-out **test** split, shipped in the
  package (``protein_didi/data/natural_test_sample.fasta.gz``);
* novelty target: its **training** split, rebuilt from the raw corpus the
  teacher's config names (when that file is on this machine) by dropping the
  shipped held-out names. Searching the raw corpus as a whole would find every
  natural reference protein itself and report it as a copy.

Each choice comes with a sentence for the report saying what was used.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass
from pathlib import Path

from data_prep.fasta import chunk
from protein_didi.core.checkpoint import file_sha256
from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError
from protein_didi.protein.fasta import FastaError, iter_fasta
from protein_didi.protein.pretrained import CHECKPOINT_DIR, EMBEDDED

DATA_DIR = Path(__file__).resolve().parents[1] / "data"
SHIPPED_REFERENCE = DATA_DIR / "natural_test_sample.fasta.gz"
HELDOUT_NAMES = DATA_DIR / "heldout_names.txt.gz"
REFERENCE_META = DATA_DIR / "reference.json"
MIN_LENGTH = 10  # data_prep.fasta's default: shorter chunks were dropped from every split


@dataclass
class Source:
    """A FASTA the report uses and the sentence that tells the reader what it is (``path`` None: not available)."""

    path: Path | None
    description: str


def _meta() -> dict:
    return json.loads(REFERENCE_META.read_text()) if REFERENCE_META.is_file() else {}


def reference_source(given: Path | None) -> Source:
    """``--reference`` as given, else the shipped sample of the embedded teacher's test split."""
    if given is not None:
        return Source(given, f"{given} (--reference)")
    if not SHIPPED_REFERENCE.is_file():
        raise FastaError(f"the shipped reference {SHIPPED_REFERENCE} is missing; reinstall or give --reference")
    meta = _meta()
    n, total = meta.get("sample", {}).get("sequences", "?"), meta.get("test_sequences", "?")
    return Source(
        SHIPPED_REFERENCE,
        f"shipped sample of {n} of the {total} held-out test proteins of the embedded teacher's corpus "
        f"({Path(meta.get('source', 'DB.fasta.gz')).name}, MMseqs2 split at 30 % identity / 80 % coverage); "
        "--reference overrides",
    )


def teacher_corpus() -> Path | None:
    """The raw corpus the embedded teacher was trained from, as its config records it."""
    config = CHECKPOINT_DIR / EMBEDDED["teacher"] / "config.json"
    try:
        data = json.loads(config.read_text())["info"]["data"]
    except (OSError, KeyError, ValueError):
        return None
    return Path(data)


def rebuild_train_split(corpus: Path, out: Path) -> int:
    """Write the training split of ``corpus`` to ``out``: every chunk data_prep made that is not held out."""
    with gzip.open(HELDOUT_NAMES, "rt") as fh:
        heldout = {line.strip() for line in fh if line.strip()}
    n = 0
    with open(out, "w") as fh:
        for rid, seq in iter_fasta(corpus):
            try:
                seq = ALPHABET.validate(seq, rid, max_residues=None)
            except InvalidSequenceError:
                continue  # data_prep refuses such records by default, so they are in no split
            pieces = chunk(seq)
            for k, piece in enumerate(pieces):
                name = rid if len(pieces) == 1 else f"{rid}/chunk{k}"
                if len(piece) >= MIN_LENGTH and name not in heldout:
                    fh.write(f">{name}\n{piece}\n")
                    n += 1
    return n


def novelty_source(given: Path | None, reference: Path | None, workdir: Path) -> Source:
    """``--train``; else ``train.fasta`` beside ``--reference``; else the teacher's training split, rebuilt."""
    if given is not None:
        return Source(given, f"{given} (--train)")
    if reference is not None and (reference.parent / "train.fasta").is_file():
        train = reference.parent / "train.fasta"
        return Source(train, f"{train} (train.fasta beside --reference; --train overrides)")
    corpus = teacher_corpus()
    if corpus is None or not corpus.is_file():
        where = corpus or "the embedded teacher's corpus"
        return Source(
            None,
            f"novelty not computed: {where} is not on this machine (Debian: apt-get install mmseqs2-examples) "
            "and no --train was given",
        )
    meta = _meta()
    train = workdir / "teacher_train.fasta"
    n = rebuild_train_split(corpus, train)
    held = meta.get("heldout_names")
    text = (
        f"the embedded teacher's training split: {n:,} sequences of {corpus} without the "
        f"{f'{held:,} ' if isinstance(held, int) else ''}held-out (valid/test) ones, so natural reference rows are "
        "not searched against themselves; --train overrides"
    )
    if meta.get("source_sha256") and file_sha256(corpus) != meta["source_sha256"]:
        text += (
            f" (note: {corpus} differs from the file the split was made from, so held-out proteins may remain; "
            "rerun python -m data_prep.reference)"
        )
    return Source(train, text)
