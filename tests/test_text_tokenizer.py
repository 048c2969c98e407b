"""Tokenizers: byte-level BPE round trip, special ids, GPT-2 folder loading, fingerprint checks."""

from __future__ import annotations

import json

import pytest
from test_text_data import SENTENCES

from protein_didi.core.checkpoint import CheckpointError
from protein_didi.text.tokenizer import EOS, TextTokenizer, TokenizerError, load_gpt2, load_tokenizer_file, train_bpe

ROUND_TRIP = [
    "Hello, world!",
    "  leading spaces\tand tabs\nnew lines\r\n",
    "café naïve 東京 🙂 — “quotes”",
    "def f(x):\n    return x ** 2  # code too",
    "",
]


@pytest.fixture(scope="module")
def bpe() -> TextTokenizer:
    return train_bpe(SENTENCES * 3, vocab_size=400, source="test sentences")


def test_byte_level_bpe_round_trips_any_text(bpe):
    for text in [*SENTENCES, *ROUND_TRIP]:
        assert bpe.decode(bpe.encode(text)) == text
    assert bpe.encode_batch(ROUND_TRIP) == [bpe.encode(t) for t in ROUND_TRIP]


def test_special_ids_follow_mdlm(bpe):
    assert bpe.eos_id == bpe.bos_id == bpe.tokenizer.token_to_id(EOS)
    assert bpe.mask_id == bpe.tokenizer.get_vocab_size() and bpe.vocab_size == bpe.mask_id + 1
    ids = bpe.encode(f"one{EOS}two")
    assert ids.count(bpe.eos_id) == 1 and bpe.decode(ids) == f"one{EOS}two"
    assert bpe.decode([*bpe.encode("a b"), bpe.mask_id]) == "a b[MASK]"


def test_saved_tokenizer_reloads_identically_and_checks_fingerprint(bpe, tmp_path):
    bpe.save(tmp_path)
    again = load_tokenizer_file(tmp_path, bpe.record())
    assert again.sha256 == bpe.sha256 and again.kind == "bpe" and again.encode("for x in y") == bpe.encode("for x in y")
    with pytest.raises(CheckpointError, match="differs from the tokenizer recorded"):
        load_tokenizer_file(tmp_path, {**bpe.record(), "sha256": "0" * 64})
    with pytest.raises(CheckpointError, match="not found"):
        load_tokenizer_file(tmp_path / "nowhere")


def test_gpt2_style_folder_with_vocab_and_merges_loads(bpe, tmp_path):
    """GPT-2's own files are vocab.json + merges.txt; a BPE saved that way loads through the same path."""
    bpe.tokenizer.model.save(str(tmp_path))
    vocab = json.loads((tmp_path / "vocab.json").read_text())
    assert EOS in vocab
    tok = load_gpt2(str(tmp_path))
    assert tok.kind == "gpt2" and tok.encode("The class statement") == bpe.encode("The class statement")


def test_bad_tokenizer_sources_are_one_line_errors(tmp_path):
    with pytest.raises(TokenizerError, match=r"neither tokenizer\.json nor vocab\.json"):
        load_gpt2(str(tmp_path))
    with pytest.raises(TokenizerError, match="must be ≥ 300"):
        train_bpe(["abc"], vocab_size=10)


def test_real_gpt2_tokenizer_when_cached(tmp_path):
    transformers = pytest.importorskip("transformers")
    try:
        hf = transformers.AutoTokenizer.from_pretrained("gpt2", local_files_only=True)
    except OSError:
        pytest.skip("GPT-2's tokenizer is not in the local Hugging Face cache (no hub access here)")
    hf.save_pretrained(str(tmp_path))
    tok = load_gpt2(str(tmp_path))
    assert tok.eos_id == 50256 and tok.mask_id == 50257 and tok.decode(tok.encode("Hello world")) == "Hello world"
