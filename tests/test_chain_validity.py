"""Chain validity: real chains pass, heavy/light chimeras and broken frames are caught, everywhere it matters.

Every chain is a real one from the shipped repertoire reference (OAS, test split); chimeras are made by
splicing two real chains at their CDR3 (a λ framework up to CDR3 + a heavy CDR3 and FR4), the shape the
antibody students were caught making.
"""

from __future__ import annotations

import json
from collections import Counter

import pytest
from conftest import HAVE_ANARCI, needs_anarci

from protein_didi.core.resample import resample_until, round_seed
from protein_didi.protein.chain_validity import check_chain, check_chains, j_call
from protein_didi.protein.numbering import number_antibodies, numbering_from_record, numbering_record
from protein_didi.protein.repertoire import cdr3_length_range, load_repertoire, sample_lengths


def _first(chain_type: str, n: int = 1):
    return load_repertoire("test", (chain_type,))[:n]


def _splice(light, heavy) -> str:
    """Light chain up to the start of its CDR3 + the heavy chain from the start of its CDR3 (CDR3 + FR4)."""
    cut_l = light.numbering.regions["CDR3"][0]
    cut_h = heavy.numbering.regions["CDR3"][0]
    return light.sequence[:cut_l] + heavy.sequence[cut_h:]


def test_shipped_reference_chains_are_valid_without_anarci() -> None:
    chains = load_repertoire("test", ("H", "K", "L"), paired=None)
    checks = check_chains([c.numbering for c in chains])
    assert len(chains) > 1000
    assert all(c.valid for c in checks), Counter(c.reason for c in checks if not c.valid)
    assert {c.j_class for c, ch in zip(checks, chains, strict=True) if ch.chain_type == "H"} == {"H"}
    assert {c.j_class for c, ch in zip(checks, chains, strict=True) if ch.chain_type in "KL"} == {"L"}


@needs_anarci
def test_a_light_heavy_chimera_is_flagged_and_its_parts_are_not() -> None:
    light, heavy = _first("L")[0], _first("H")[0]
    chimera = _splice(light, heavy)
    nums = number_antibodies([chimera, light.sequence, heavy.sequence])
    check = check_chain(nums[0])
    assert nums[0].chain_type == "L", "ANARCI alone calls the chimera a light chain: the case this check exists for"
    assert not check.valid and check.chimera and check.status == "chimera"
    assert check.chain_class == "L" and check.j_class == "H" and "chimera" in (check.reason or "")
    assert [c.valid for c in check_chains(nums[1:])] == [True, True]


@needs_anarci
def test_broken_frames_are_invalid_with_their_reason() -> None:
    heavy = _first("H")[0]
    cdr3_start = heavy.numbering.regions["CDR3"][0]
    fr1_end = heavy.numbering.regions["FR1"][1]
    stops_in_cdr3 = heavy.sequence[: cdr3_start + 4]
    no_disulfide = heavy.sequence[: fr1_end - 4] + "A" + heavy.sequence[fr1_end - 3 :]  # IMGT 23 sits in FR1's end
    nums = number_antibodies([stops_in_cdr3, no_disulfide, "ACDEFGHIKLMNPQRSTVWY" * 5])
    reasons = [check_chain(n).reason or "" for n in nums]
    assert [check_chain(n).status for n in nums] == ["invalid"] * 3
    assert reasons[0].startswith("no J region")  # a chain that stops inside CDR3 is no chimera
    assert "C23" in reasons[1]
    assert reasons[2] == "not numbered by ANARCI"


def test_j_call_reads_the_j_region() -> None:
    """The J call comes from the J-encoded residues alone: a heavy chain's own J matches best and is heavy."""
    heavy, kappa = _first("H")[0], _first("K")[0]
    assert j_call(heavy.numbering)[0] == "H" and j_call(heavy.numbering)[1] > 0.6
    assert j_call(kappa.numbering)[0] == "L" and j_call(kappa.numbering)[1] > 0.6


def test_numbering_records_round_trip() -> None:
    for chain in _first("H", 3) + _first("L", 3):
        record = json.loads(json.dumps(numbering_record(chain.numbering)))
        assert numbering_from_record(chain.sequence, record) == chain.numbering


def test_repertoire_lengths_come_from_the_train_split() -> None:
    lengths = sample_lengths(500, ("H",), seed=3)
    assert lengths == sample_lengths(500, ("H",), seed=3)
    assert min(lengths) >= 105 and max(lengths) <= 140 and 115 <= sum(lengths) / len(lengths) <= 130
    lo, hi = cdr3_length_range(("H",))
    assert 3 <= lo <= 8 and 20 <= hi <= 30
    lo, hi = cdr3_length_range(("K",))
    assert lo >= 4 and hi <= 14


def test_resample_until_keeps_the_first_draw_and_accounts_for_every_draw() -> None:
    draws: list[tuple[int, int]] = []

    def draw(size: int, seed: int) -> list[int]:
        draws.append((size, seed))
        return [seed % 97 + k for k in range(size)]

    result = resample_until(10, draw, lambda x: "odd" if x % 2 else None, seed=4, limit=200)
    assert draws[0] == (10, 4) and draws[1][1] == round_seed(4, 1) != 4
    first = [4 % 97 + k for k in range(10)]
    assert result.kept[:5] == [x for x in first if x % 2 == 0]
    assert len(result.kept) == 10 and all(x % 2 == 0 for x in result.kept)
    assert result.drawn == len(result.kept) + len(result.refused) + result.surplus
    never = resample_until(3, draw, lambda x: "no", seed=0, limit=20)
    assert never.kept == [] and never.drawn == 20


@needs_anarci
def test_sampling_an_antibody_model_refuses_chimeras(monkeypatch: pytest.MonkeyPatch) -> None:
    """``generate_valid_chains`` keeps valid chains of the first draw, resamples the rest, and says so."""
    from protein_didi.protein import valid_chains
    from protein_didi.protein.request import ProteinRequest

    light, heavy = _first("L")[0], _first("H", 3)
    chimera = _splice(light, heavy[0])

    def fake_generate(loaded, request, progress=None):  # round 0: one chimera among three; later: valid chains
        return (
            [chimera, heavy[1].sequence, heavy[2].sequence] if request.seed == 7 else [heavy[0].sequence] * request.num
        )

    monkeypatch.setattr(valid_chains, "generate", fake_generate)
    result = valid_chains.generate_valid_chains(None, ProteinRequest(num=3, seed=7))  # type: ignore[arg-type]
    assert result.sequences == [heavy[1].sequence, heavy[2].sequence, heavy[0].sequence]
    assert result.refused == Counter({"chimera": 1}) and result.drawn == 3 + 1 + result.surplus
    assert "1 heavy/light chimera refused" in result.summary()


def test_sampling_without_anarci_fails_at_once_with_the_fix(monkeypatch: pytest.MonkeyPatch) -> None:
    """No hmmscan: one line naming the install and --allow-invalid, before any sequence is drawn."""
    from protein_didi.protein import numbering, valid_chains
    from protein_didi.protein.numbering import AntibodyError
    from protein_didi.protein.request import ProteinRequest

    monkeypatch.setattr(numbering.shutil, "which", lambda name: None)
    monkeypatch.setattr(valid_chains, "generate", lambda *a, **k: pytest.fail("sampled before checking ANARCI"))
    with pytest.raises(AntibodyError, match=r"--allow-invalid"):
        valid_chains.generate_valid_chains(None, ProteinRequest(num=2))  # type: ignore[arg-type]


@needs_anarci
def test_chain_mix_counts_each_kind_once() -> None:
    from protein_didi.protein.chain_validity import chain_mix

    heavy, kappa, lam = _first("H", 2), _first("K")[0], _first("L")[0]
    seqs = [heavy[0].sequence, heavy[1].sequence, kappa.sequence, lam.sequence, _splice(lam, heavy[0]), "ACDEFGHIKL"]
    mix = chain_mix(seqs)
    assert mix == pytest.approx({"mix_heavy": 2 / 6, "mix_kappa": 1 / 6, "mix_lambda": 1 / 6, "mix_human": 4 / 6,
                                 "mix_chimera": 1 / 6, "mix_invalid": 1 / 6})  # fmt: skip


def test_anarci_availability_follows_hmmscan(monkeypatch: pytest.MonkeyPatch) -> None:
    """Optional antibody extras (a distillation's chain-mix log) switch off, rather than fail, without hmmscan."""
    import protein_didi.protein.numbering as numbering

    monkeypatch.setattr(numbering.shutil, "which", lambda name, *a, **k: None)
    assert numbering.anarci_available() is False
    monkeypatch.undo()
    assert numbering.anarci_available() is HAVE_ANARCI
