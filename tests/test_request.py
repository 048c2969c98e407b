"""One sampling request for every entry point: checked when made, filled from the model, honoured by each sampler."""

from __future__ import annotations

import dataclasses
import math

import pytest
import torch

from protein_didi.core.draw import draw
from protein_didi.core.request import SAMPLERS, SAMPLING_KEYS, SampleRequest
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein import sample as protein_sample
from protein_didi.protein.alphabet import ALPHABET, InvalidSequenceError
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.pretrained import LoadedModel
from protein_didi.text import sample as text_sample
from protein_didi.text.request import TextRequest


@pytest.mark.parametrize(
    ("fields", "message"),
    [
        ({"num": 0}, "number of sequences must be ≥ 1"),
        ({"nfe": 0}, "NFE (sampling steps) must be ≥ 1"),
        ({"sampler": "gibbs"}, "unknown sampler 'gibbs'"),
        ({"temperature": math.inf}, "temperature must be > 0"),
        ({"top_p": 0.0}, "top-p must be in (0, 1]"),
        ({"order_temperature": -0.5}, "order temperature must be ≥ 0"),
        ({"seed": -1}, "seed must be ≥ 0"),
        ({"batch_size": 0}, "batch size must be ≥ 1"),
        ({"rgas": {"candidatez": 2}}, "unknown RGAS settings"),
    ],
)
def test_every_domain_refuses_the_same_bad_values_when_the_request_is_made(fields, message):
    for request_type in (ProteinRequest, TextRequest):
        with pytest.raises(ValueError, match=message.replace("(", r"\(").replace(")", r"\)")):
            request_type(**fields)


def test_protein_request_checks_lengths_motifs_and_redesign_only_options():
    from protein_didi.protein.request import Motif

    with pytest.raises(ValueError, match="length 2000 is out of range"):
        ProteinRequest(length=2000)
    with pytest.raises(ValueError, match="length 20-10 is out of range"):
        ProteinRequest(length=(20, 10))
    with pytest.raises(InvalidSequenceError, match="motif reaches position 30"):
        ProteinRequest(length=20, motif=Motif.parse("30:W"))
    with pytest.raises(ValueError, match="liability filter applies to CDR redesigns"):
        ProteinRequest(liabilities=("cysteine",))
    with pytest.raises(ValueError, match="max tokens per batch must be ≥ 1"):
        ProteinRequest(max_tokens=0)
    with pytest.raises(ValueError, match="text length must be ≥ 3"):
        TextRequest(length=2)
    ProteinRequest(length="auto")  # the model's training lengths: checked against the model, not here


def test_unset_settings_come_from_the_model_and_set_ones_win():
    stored = {"sampling": {"sampler": "confidence", "order_temperature": 0.2, "nfe": 6}}
    got = ProteinRequest(temperature=0.8).for_model(stored, "student-didi")
    assert (got.sampler, got.order_temperature, got.nfe, got.temperature, got.top_p) == ("confidence", 0.2, 6, 0.8, 1.0)
    assert ProteinRequest(nfe=3).for_model(stored, "student-didi").nfe == 3
    # one rule for the default steps: students 8, teachers the domain's own
    assert ProteinRequest().for_model({}, "student-idlm").nfe == TextRequest().for_model({}, "student").nfe == 8
    assert ProteinRequest().for_model({}, "teacher").nfe == 64
    assert TextRequest().for_model({}, "teacher").nfe == 128
    assert not ProteinRequest().resolved and ProteinRequest().for_model({}, "teacher").resolved


@pytest.mark.parametrize(("command", "request_type"), [(protein_sample, ProteinRequest), (text_sample, TextRequest)])
def test_every_sampler_option_has_a_flag_that_reaches_the_request(command, request_type):
    """A new option added to the request (SAMPLING_KEYS) fails here until each command passes it on."""
    given = {
        "nfe": 5, "sampler": "confidence", "temperature": 0.7, "top_p": 0.9, "order_temperature": 0.3,
        "corrector_steps": 2, "corrector_fraction": 0.3, "corrector_temperature": 0.7, "corrector_pick": "confidence",
    }  # fmt: skip
    assert set(given) == set(SAMPLING_KEYS)
    argv = ["--num", "3", "--seed", "4", "--batch-size", "2"]
    for key, value in given.items():
        argv += [f"--{key.replace('_', '-')}", str(value)]
    request = command.sampling_request(command.build_parser().parse_args(argv))
    assert isinstance(request, request_type)
    assert {k: getattr(request, k) for k in SAMPLING_KEYS} == given
    assert (request.num, request.seed, request.batch_size) == (3, 4, 2)
    assert set(command.build_parser().parse_args([]).__dict__) >= set(SAMPLING_KEYS)


def test_draw_runs_every_sampler_and_keeps_fixed_positions(tiny_model):
    tokens = ALPHABET.masked_template([12, 12])
    fixed = ALPHABET.special_positions(tokens)
    tokens[:, 3], fixed[:, 3] = ALPHABET.esm.get_idx("W"), True
    for sampler in SAMPLERS[:2]:
        request = SampleRequest(sampler=sampler).for_model({}, "student")
        z = draw(request, tiny_model, tokens.clone(), fixed, LogLinearSchedule(), torch.Generator().manual_seed(0))
        assert (z[:, 3] == ALPHABET.esm.get_idx("W")).all() and (z != ALPHABET.mask_id).all()
    with pytest.raises(ValueError, match="RGAS needs the discriminator"):
        draw(SampleRequest(sampler="rgas").for_model({}, "student"), tiny_model, tokens, fixed, LogLinearSchedule(),
             torch.Generator())  # fmt: skip


def test_the_confidence_setting_reaches_the_sampler(tiny_model):
    """Greedy confidence order (τ = 0) and random order (τ = ∞) draw different sequences from one seed."""
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "tiny")
    base = ProteinRequest(num=4, length=20, nfe=4, sampler="confidence", seed=1)
    greedy = generate(loaded, dataclasses.replace(base, order_temperature=0.0))
    assert greedy == generate(loaded, dataclasses.replace(base, order_temperature=0.0))
    assert greedy != generate(loaded, dataclasses.replace(base, order_temperature=math.inf))


def test_generate_checks_the_models_positional_limit_before_any_progress(tiny_model):
    tiny_model.max_residues = 30  # as a BERT-style model with 30 positions says of itself
    loaded = LoadedModel(tiny_model, LogLinearSchedule(), "short")
    calls: list[tuple[int, int]] = []
    with pytest.raises(InvalidSequenceError, match="length 31 exceeds this model's 30 residues"):
        generate(loaded, ProteinRequest(num=2, length=(20, 31), nfe=2), lambda d, n: calls.append((d, n)))
    assert calls == []
    assert len(generate(loaded, ProteinRequest(num=2, length=30, nfe=2))) == 2
