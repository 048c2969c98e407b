import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from protein_didi.protein.alphabet import ALPHABET, EXTRA_AA, MAX_RESIDUES, STANDARD_AA, InvalidSequenceError

residues = st.text(alphabet=STANDARD_AA + EXTRA_AA, min_size=1, max_size=200)


@settings(max_examples=200, deadline=None)
@given(st.lists(residues, min_size=1, max_size=5))
def test_encode_decode_round_trip(seqs):
    tokens = ALPHABET.encode(seqs)
    assert ALPHABET.decode(tokens) == seqs
    assert (tokens[:, 0] == ALPHABET.cls_id).all()


def test_uses_the_esm_alphabet():
    assert ALPHABET.size == 33 and ALPHABET.mask_id == 32 and ALPHABET.esm.get_idx("L") == 4


def test_invalid_residue_names_sequence_and_position():
    with pytest.raises(InvalidSequenceError, match=r"sp\|P1: invalid residue 'J' at position 4"):
        ALPHABET.validate("MKTJAA", "sp|P1")


def test_lowercase_is_accepted_and_empty_rejected():
    assert ALPHABET.validate("mkt", "x") == "MKT"
    with pytest.raises(InvalidSequenceError, match="empty sequence"):
        ALPHABET.validate("  ", "x")


def test_too_long():
    with pytest.raises(InvalidSequenceError, match="exceeds 1022"):
        ALPHABET.validate("A" * (MAX_RESIDUES + 1), "long")
    with pytest.raises(InvalidSequenceError, match="out of range"):
        ALPHABET.masked_template([1025])
