import gzip
import itertools

import numpy as np
import pytest

from data_prep.fasta import DEFAULT_FASTA, chunk, main, prepare
from protein_didi.protein.alphabet import ALPHABET, MAX_RESIDUES
from protein_didi.protein.fasta import FastaError, iter_fasta, read_fasta
from protein_didi.protein.mmseqs import MMseqsError
from protein_didi.protein.shards import ProteinShards, ShardError, read_meta


@pytest.fixture(scope="module")
def small_real_fasta(tmp_path_factory):
    """300 real UniProt records from mmseqs2-examples, plus an exact duplicate and a 2,500-residue protein."""
    path = tmp_path_factory.mktemp("raw") / "small.fasta.gz"
    records = list(itertools.islice(iter_fasta(DEFAULT_FASTA), 300))
    records.append(("dup_of_third", records[2][1]))
    records.append(("very_long", (records[1][1] * 10)[:2500]))
    with gzip.open(path, "wt") as fh:
        for rid, seq in records:
            fh.write(f">{rid}\n{seq}\n")
    return path, records


@pytest.fixture(scope="module")
def prepared(small_real_fasta, tmp_path_factory):
    out = tmp_path_factory.mktemp("prepared")
    meta = prepare(small_real_fasta[0], out, valid_frac=0.2, test_frac=0.2, threads=1)
    return out, meta


def test_chunking():
    pieces = chunk("A" * 2500)
    assert [len(p) for p in pieces] == [MAX_RESIDUES, MAX_RESIDUES, 2500 - 2 * MAX_RESIDUES]


def test_shards_round_trip(small_real_fasta, prepared):
    out, meta = prepared
    originals = {rid: seq for rid, seq in small_real_fasta[1]}
    expected = sum(len([p for p in chunk(seq) if len(p) >= 10]) for _, seq in small_real_fasta[1])
    total = 0
    for split in ("train", "valid", "test"):
        shards = ProteinShards.open(out, split)
        fasta = read_fasta(out / f"{split}.fasta")
        assert len(shards) == len(fasta) == meta["splits"][split]["sequences"]
        for i, (rid, seq) in enumerate(fasta):
            assert ALPHABET.decode(ALPHABET.pack([shards[i]]))[0] == seq
            if "/chunk" not in rid:
                assert originals[rid] == seq
        total += len(shards)
    assert total == expected and expected > 302  # long proteins became several chunks


def test_split_is_by_cluster(small_real_fasta, prepared):
    out, _ = prepared
    where = {rid: s for s in ("train", "valid", "test") for rid, _ in read_fasta(out / f"{s}.fasta")}
    third = small_real_fasta[1][2][0]
    assert where["dup_of_third"] == where[third]  # identical sequences share a cluster, hence a split
    assert {"very_long/chunk0", "very_long/chunk1", "very_long/chunk2"} <= set(where)
    meta = read_meta(out)
    assert meta["split"]["min_seq_id"] == 0.3 and meta["split"]["coverage"] == 0.8
    assert abs(sum(meta["splits"]["train"]["composition"].values()) - 1) < 1e-6


def test_bad_fasta_errors(tmp_path):
    with pytest.raises(FastaError, match="not found"):
        list(iter_fasta(tmp_path / "nope.fasta"))
    (tmp_path / "empty.fasta").write_text("")
    with pytest.raises(FastaError, match="empty"):
        list(iter_fasta(tmp_path / "empty.fasta"))
    (tmp_path / "text.fasta").write_text("hello\n")
    with pytest.raises(FastaError, match="does not look like FASTA"):
        list(iter_fasta(tmp_path / "text.fasta"))


def test_invalid_residue_is_a_one_line_cli_error(tmp_path, capsys):
    (tmp_path / "bad.fasta").write_text(">ok\nMKTAYIAK\n>bad1\nMK*TA\n")
    assert main(["--fasta", str(tmp_path / "bad.fasta"), "--out", str(tmp_path / "o")]) == 2
    err = capsys.readouterr().err.strip().splitlines()[-1]
    assert err == "error: bad1: invalid residue '*' at position 3; use the 20 standard amino acids (or X/B/Z/U/O)"


def test_missing_mmseqs_names_the_package(tmp_path, monkeypatch, capsys):
    monkeypatch.setattr("shutil.which", lambda name: None)
    (tmp_path / "ok.fasta").write_text(">a\nMKTAYIAKQRQISFVKSHFSRQ\n")
    assert main(["--fasta", str(tmp_path / "ok.fasta"), "--out", str(tmp_path / "o")]) == 2
    assert "apt-get install mmseqs2" in capsys.readouterr().err
    with pytest.raises(MMseqsError):
        from protein_didi.protein.mmseqs import mmseqs_binary

        mmseqs_binary()


def test_unprepared_folder(tmp_path):
    with pytest.raises(ShardError, match=r"run `python -m data_prep\.fasta"):
        ProteinShards.open(tmp_path)


def test_lengths_are_consistent(prepared):
    out, meta = prepared
    lengths = ProteinShards.open(out, "train").lengths()
    hist = np.asarray(meta["splits"]["train"]["length_histogram"])
    assert hist.sum() == len(lengths) and (np.bincount(lengths, minlength=hist.size) == hist).all()
