"""Text data: reST cleaning, MDLM-style block packing, data_prep.text on a tiny corpus, batches.

``build_tiny_corpus`` is shared with the other text tests: a few dozen English
documents written into ``tmp_path`` and prepared with a small byte-level BPE,
so everything runs without network or Debian packages.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from data_prep.text import PYDOC_GLOB, main, prepare, pydoc_documents, rst_to_prose, split_of
from protein_didi.text.data import TextBatches, TextCorpus, TextDataError, content_mask, document_stream, pack_blocks

SENTENCES = [
    "The for statement in Python differs a bit from what you may be used to in C or Pascal.",
    "A function definition associates the function name with the function object in the current symbol table.",
    "Lists are mutable sequences, typically used to store collections of homogeneous items.",
    "The interpreter acts as a simple calculator: you can type an expression at it and it will write the value.",
    "Strings can be enclosed in single quotes or double quotes with the same result.",
    "If you need to modify the sequence you are iterating over while inside the loop, make a copy first.",
    "Errors detected during execution are called exceptions and are not unconditionally fatal.",
    "Modules can import other modules, and it is customary to place all import statements at the beginning.",
    "A class provides a means of bundling data and functionality together.",
    "The garbage collector reclaims memory that is no longer reachable from the running program.",
    "Dictionaries are indexed by keys, which can be any immutable type; strings and numbers can always be keys.",
    "The standard library offers a wide range of facilities, from file formats to networking — café, naïve, 東京.",
]


def build_tiny_corpus(root: Path, n_docs: int = 60, vocab_size: int = 400, seed: int = 0) -> Path:
    """Write ``n_docs`` shuffled-sentence documents and prepare them into ``root/prepared``."""
    rng = np.random.default_rng(seed)
    src = root / "src"
    src.mkdir(parents=True, exist_ok=True)
    for i in range(n_docs):
        paras = [" ".join(rng.choice(SENTENCES, size=4)) for _ in range(3)]
        (src / f"doc{i:03d}.txt").write_text("\n\n".join(paras))
    prepare(str(src), root / "prepared", "bpe", vocab_size, valid_frac=0.15, test_frac=0.15)
    return root / "prepared"


@pytest.fixture(scope="module")
def corpus_dir(tmp_path_factory) -> Path:
    return build_tiny_corpus(tmp_path_factory.mktemp("text"))


def test_pack_blocks_wraps_like_mdlm():
    stream = np.arange(10, 31)  # 21 tokens → blocks of 5 inner tokens, remainder (1 token) dropped
    blocks = pack_blocks(stream, 7, bos_id=0, eos_id=1)
    assert blocks.shape == (4, 7)
    assert (blocks[:, 0] == 0).all() and (blocks[:, -1] == 1).all()
    np.testing.assert_array_equal(blocks[:, 1:-1].ravel(), np.arange(10, 30))
    assert pack_blocks(np.arange(3), 7, 0, 1).shape == (0, 7)
    with pytest.raises(TextDataError, match="block length must be ≥ 3"):
        pack_blocks(stream, 2, 0, 1)


def test_document_stream_separates_documents_with_eos():
    np.testing.assert_array_equal(document_stream([[5, 6], [7]], eos_id=0), [5, 6, 0, 7, 0])
    assert document_stream([], 0).size == 0


def test_content_mask_fixes_block_ends():
    mask = content_mask(torch.zeros(2, 5, dtype=torch.long))
    assert mask.tolist() == [[False, True, True, True, False]] * 2


def test_rst_to_prose_keeps_prose_and_drops_markup():
    rst = """.. _tut-if:

:keyword:`!if` Statements
=========================

Perhaps the most well-known statement type is the :keyword:`if` statement, see :ref:`tut-match`.  For
example::

   >>> x = int(input("Please enter an integer: "))

.. function:: abs(x)

   Return the absolute value of a number, as ``abs(-1)`` shows.

.. code-block:: python

   print("never shown")

Visit `the site <https://example.org>`_ for more.
"""
    prose = rst_to_prose(rst)
    paras = prose.split("\n\n")
    assert paras[0] == "if Statements"
    assert paras[1] == "Perhaps the most well-known statement type is the if statement, see tut-match. For example:"
    assert "Return the absolute value of a number, as abs(-1) shows." in paras
    assert paras[-1] == "Visit the site for more."
    assert "input" not in prose and "never shown" not in prose and ".." not in prose


def test_split_is_stable_per_document_name():
    names = [f"library/mod{i}.rst.txt" for i in range(2000)]
    splits = [split_of(n, 0.05, 0.05) for n in names]
    assert splits == [split_of(n, 0.05, 0.05) for n in names]
    assert 0.03 < splits.count("valid") / len(names) < 0.07


def test_prepare_writes_streams_that_decode_to_the_documents(corpus_dir):
    corpus = TextCorpus(corpus_dir)
    meta = corpus.meta
    assert meta["tokenizer"]["kind"] == "bpe" and corpus.tokenizer.mask_id == meta["tokenizer"]["vocab_size"]
    assert sum(s["documents"] for s in meta["splits"].values()) == 60
    stream = np.asarray(corpus.stream("train"))
    assert (
        stream.dtype == np.uint16 and (stream == corpus.tokenizer.eos_id).sum() == meta["splits"]["train"]["documents"]
    )
    first_doc = corpus.tokenizer.decode(stream[: int(np.argmax(stream == corpus.tokenizer.eos_id))].tolist())
    assert any(first_doc.startswith(s) for s in SENTENCES)
    counts = corpus.unigram_counts()
    assert counts.shape == (corpus.tokenizer.vocab_size,) and counts.sum() == len(stream) and counts[-1] == 0


def test_batches_are_a_pure_function_of_seed_and_position(corpus_dir):
    blocks = TextCorpus(corpus_dir).blocks("train", 32)
    a, b = TextBatches(blocks, seed=1), TextBatches(blocks, seed=1)
    assert torch.equal(a.batch(3, 4), b.batch(3, 4)) and not torch.equal(a.batch(3, 4), a.batch(7, 4))
    assert torch.equal(a.batch(3, 4), torch.cat([a.batch(3, 2), a.batch(5, 2)]))  # any split of the stream
    assert a.batch(0, 4).shape == (4, 32) and a.batch(0, 4).dtype == torch.long


def test_corpus_errors_are_one_line(tmp_path, corpus_dir):
    with pytest.raises(TextDataError, match="not a prepared text folder"):
        TextCorpus(tmp_path)
    with pytest.raises(TextDataError, match="shorter than one block"):
        TextCorpus(corpus_dir).blocks("valid", 100_000)


def test_cli_reports_bad_sources(tmp_path, capsys):
    assert main(["--source", str(tmp_path / "missing"), "--out", str(tmp_path / "o")]) == 2
    assert capsys.readouterr().err.startswith("error: --source")
    (tmp_path / "empty").mkdir()
    assert main(["--source", str(tmp_path / "empty"), "--out", str(tmp_path / "o")]) == 2
    assert "holds no .txt/.rst/.md files" in capsys.readouterr().err


@pytest.mark.skipif(
    not list(Path("/").glob(PYDOC_GLOB.lstrip("/"))),
    reason="Debian package python3.11-doc is not installed (apt-get install python3.11-doc)",
)
def test_python_doc_corpus_is_english_prose():
    docs = dict(pydoc_documents())
    assert len(docs) > 400
    tutorial = docs["tutorial/controlflow.rst.txt"]
    assert "Besides the while statement just introduced" in tutorial and ":keyword:" not in tutorial
