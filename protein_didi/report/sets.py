"""What a report compares: the user's labelled sets and the natural/random reference rows built to match them."""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

from protein_didi.eval.stats import natural_at_lengths, random_sequences
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.fasta import read_fasta

LABEL_RE = re.compile(r"^(?P<model>.+?)-(?P<nfe>\d+)(?:-L(?P<length>\d+))?$")
REFERENCE_KINDS = ("natural", "random")
ANTIBODY_KIND = "natural antibody"
RIVAL_KIND = "rival"
REPERTOIRE_SPLIT = "test"
"""Reports read against the repertoire's test split (benchmarks choose on validation, never on it)."""


@dataclass
class SequenceSet:
    """One row of the summary: a labelled set of proteins and what it is (generated, natural or random)."""

    label: str
    kind: str
    records: list[tuple[str, str]]
    model: str | None = None
    nfe: int | None = None
    length: int | None = None
    target_lengths: list[int] = field(default_factory=list)

    @property
    def sequences(self) -> list[str]:
        return [s for _, s in self.records]

    @property
    def is_reference(self) -> bool:
        return self.kind != "generated"


def parse_label(label: str) -> tuple[str, int, int | None] | None:
    """``teacher-32`` → ("teacher", 32, None); ``student-8-L200`` → ("student", 8, 200); else None."""
    m = LABEL_RE.match(label)
    if m is None:
        return None
    return m["model"], int(m["nfe"]), int(m["length"]) if m["length"] else None


def read_proteins(path: str | Path) -> list[tuple[str, str]]:
    """Records of a FASTA, validated letter by letter; any length is accepted (metrics with limits say so)."""
    return [(rid, ALPHABET.validate(seq, f"{path}: {rid}", max_residues=None)) for rid, seq in read_fasta(path)]


def load_set(path: str | Path, label: str) -> SequenceSet:
    """Read and validate one FASTA; invalid residues become a one-line error naming file and record."""
    records = read_proteins(path)
    parsed = parse_label(label)
    model, nfe, length = parsed if parsed else (None, None, None)
    if parsed and length is None and len({len(s) for _, s in records}) == 1:
        length = len(records[0][1])  # one shared length: the set belongs on that length's NFE curve
    return SequenceSet(label, "generated", records, model, nfe, length, [len(s) for _, s in records])


def reference_lengths(sets: Sequence[SequenceSet]) -> list[int]:
    """Lengths for the reference rows: each length as often as the largest set has it, so every set has a match."""
    need: Counter[int] = Counter()
    for s in sets:
        for n, c in Counter(len(q) for q in s.sequences).items():
            need[n] = max(need[n], c)
    return sorted(need.elements())


def reference_sets(
    generated: Sequence[SequenceSet], reference: Sequence[tuple[str, str]], ref_comp: dict[str, float], seed: int
) -> list[SequenceSet]:
    """Natural held-out proteins at the generated lengths and composition-matched random ones.

    When every label names its length (``<model>-<nfe>-L<length>``, as a sweep
    writes them) and there are several lengths, there is one natural and one
    random set per length (``natural-L100`` …), each as large as the generated
    sets, so cluster entropies compare like for like.
    """
    lengths = reference_lengths(generated)
    natural = natural_at_lengths(reference, lengths, seed=seed)  # one draw: no protein repeats across lengths
    rand = [(f"random_{i + 1:04d}", s) for i, s in enumerate(random_sequences(lengths, ref_comp, seed=seed))]
    labelled = [parse_label(s.label) for s in generated]
    per_length = all(p is not None and p[2] is not None for p in labelled) and len({p[2] for p in labelled}) > 1
    groups = sorted(set(lengths)) if per_length else [None]
    out = []
    for kind, records in zip(REFERENCE_KINDS, (natural, rand), strict=True):
        for n in groups:
            idx = [i for i, m in enumerate(lengths) if n is None or m == n]
            out.append(
                SequenceSet(
                    kind if n is None else f"{kind}-L{n}",
                    kind,
                    [records[i] for i in idx],
                    length=n,
                    target_lengths=[lengths[i] for i in idx],
                )
            )
    return out


def distinct_reference_labels(generated: Sequence[SequenceSet], references: Sequence[SequenceSet]) -> list[str]:
    """Relabel reference rows a user's label already uses (``natural`` → ``natural (reference)``); returns notices.

    The user's label is theirs to choose (their natural proteins may well be
    called "natural"), so the reference row moves aside instead.
    """
    taken = {s.label for s in generated}
    notices = []
    for ref in references:
        if ref.label not in taken:
            taken.add(ref.label)
            continue
        new, k = f"{ref.label} (reference)", 2
        while new in taken:
            new, k = f"{ref.label} (reference {k})", k + 1
        notices.append(f"your set is labelled {ref.label!r}, so the reference row is labelled {new!r}")
        ref.label = new
        taken.add(new)
    return notices


def antibody_reference_sets(size: int, seed: int) -> list[SequenceSet]:
    """Real human chains from the repertoire's test split (:mod:`protein_didi.protein.repertoire`): one row each
    for VH, Vκ and Vλ, ``size`` chains each (as many as the largest input), drawn with ``seed``."""
    import numpy as np

    from protein_didi.protein.repertoire import CHAIN_NAMES, load_repertoire

    rng = np.random.default_rng(seed)
    out = []
    for chain_type, name in CHAIN_NAMES.items():
        pool = load_repertoire(REPERTOIRE_SPLIT, (chain_type,))
        picked = [pool[i] for i in sorted(rng.choice(len(pool), min(size, len(pool)), replace=False))]
        records = [(c.id, c.sequence) for c in picked]
        label = f"real {name} (OAS, {REPERTOIRE_SPLIT} split)"
        out.append(SequenceSet(label, ANTIBODY_KIND, records, target_lengths=[len(q) for _, q in records]))
    return out


def iglm_rival_set(size: int, seed: int) -> SequenceSet:
    """IgLM's own samples (human heavy chains), the rival an antibody engineer would reach for.

    Prompted with ``EVQ`` as IgLM's own CLI is: with tags alone it may start anywhere in framework 1.
    """
    from protein_didi.eval.iglm_judge import iglm_generate

    samples = iglm_generate(size, chain="H", species="human", seed=seed, prompt="EVQ")
    records = [(f"iglm_{i + 1:04d}", q) for i, q in enumerate(samples.sequences)]
    return SequenceSet(
        "IgLM (heavy, human, prompt EVQ)",
        RIVAL_KIND,
        records,
        model="IgLM",
        target_lengths=[len(q) for _, q in records],
    )
