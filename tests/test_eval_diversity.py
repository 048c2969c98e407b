"""MMseqs2 diversity and novelty on real UniProt sequences (Debian mmseqs2 + its example data)."""

from __future__ import annotations

import itertools
import math
import os
import shutil
import tempfile
from pathlib import Path

import numpy as np
import pytest

from protein_didi.eval.diversity import (
    DiversityResult,
    cluster_entropy,
    cluster_sequences,
    diversity,
    mean_cluster_size,
    novelty,
)
from protein_didi.protein.fasta import FastaError, iter_fasta, write_fasta
from protein_didi.protein.mmseqs import MMseqsError, search_fasta

DB = Path("/usr/share/doc/mmseqs2/example-data/DB.fasta.gz")
needs_mmseqs = pytest.mark.skipif(
    shutil.which("mmseqs") is None or not DB.is_file(), reason="mmseqs2 and its example data are not installed"
)


@pytest.fixture(scope="module")
def uniprot() -> list[tuple[str, str]]:
    """The first 60 UniProt records of MMseqs2's example database, 50–400 residues long."""
    records = itertools.islice(iter_fasta(DB), 400)
    return [r for r in records if 50 <= len(r[1]) <= 400][:60]


def test_cluster_entropy_and_mean_size_on_hand_made_labels() -> None:
    assert cluster_entropy(list(range(40))) == pytest.approx(math.log(40))
    assert cluster_entropy(list(range(40))) == pytest.approx(3.69, abs=0.005)  # Table 13's value for 40 singletons
    assert cluster_entropy([0, 0, 1, 1]) == pytest.approx(math.log(2))
    assert cluster_entropy([7] * 10) == 0.0
    assert cluster_entropy([0, 0, 0, 1]) == pytest.approx(-(0.75 * math.log(0.75) + 0.25 * math.log(0.25)))
    assert cluster_entropy([]) == 0.0
    assert mean_cluster_size(list(range(40))) == 1.0
    assert mean_cluster_size([0, 0, 0, 1]) == 2.0
    assert math.isnan(mean_cluster_size([]))


@needs_mmseqs
def test_easy_cluster_groups_identical_not_unrelated(uniprot, tmp_path, monkeypatch) -> None:
    monkeypatch.setattr(tempfile, "tempdir", str(tmp_path))  # where the wrapper's temporary folder must vanish from
    seqs = [s for _, s in uniprot[:8]]
    seqs = [*seqs, seqs[2], seqs[5]]  # two exact duplicates
    result = diversity(seqs, threads=1)
    assert isinstance(result, DiversityResult)
    labels = result.labels
    assert len(labels) == len(seqs)
    assert labels[8] == labels[2] and labels[9] == labels[5]
    assert labels[2] != labels[5]
    assert result.num_clusters == len(set(labels)) <= 8
    assert result.entropy == pytest.approx(cluster_entropy(labels))
    assert result.mean_size == pytest.approx(len(seqs) / result.num_clusters)
    assert labels[0] == 0  # labels are numbered in order of first appearance
    assert os.listdir(tmp_path) == []
    assert cluster_sequences([]) == []


@needs_mmseqs
def test_novelty_is_one_for_a_training_sequence(uniprot, tmp_path) -> None:
    train = write_fasta(tmp_path / "train.fasta", uniprot[:40])
    rng = np.random.default_rng(0)
    random_protein = "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), 120))
    member = uniprot[3][1]
    half_copy = member[: len(member) // 2] + "".join(rng.choice(list("ACDEFGHIKLMNPQRSTVWY"), len(member) // 2))
    scores = novelty([member, random_protein, half_copy], train, threads=1)
    assert scores.shape == (3,)
    assert scores[0] == pytest.approx(1.0)
    assert scores[1] == 0.0  # no hit at all
    assert 0.3 < scores[2] < 0.8  # identity over the query length: a half copy is not a copy
    local = novelty([half_copy], train, threads=1, mode="alignment")
    assert local[0] > scores[2]  # over the aligned stretch only, the copied half looks identical
    with pytest.raises(FastaError, match="not found"):
        novelty([member], tmp_path / "missing.fasta")
    with pytest.raises(ValueError, match="novelty mode"):
        novelty([member], train, mode="global")


@needs_mmseqs
def test_mmseqs_failure_carries_stderr(uniprot, tmp_path) -> None:
    fasta = write_fasta(tmp_path / "q.fasta", uniprot[:2])
    with pytest.raises(MMseqsError) as err:
        search_fasta(fasta, fasta, threads=1, extra_args=["--no-such-option"])
    message = str(err.value)
    assert "mmseqs easy-search failed" in message and "\n" not in message
    assert "no-such-option" in message


def test_missing_binary_names_the_debian_package(monkeypatch, tmp_path) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # an empty folder: no mmseqs anywhere
    with pytest.raises(MMseqsError) as err:
        cluster_sequences(["MKTAYIAKQR", "MKTAYIAKQR"])
    assert "mmseqs2" in str(err.value) and "\n" not in str(err.value)
