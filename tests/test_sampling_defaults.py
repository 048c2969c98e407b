"""A model's stored sampler settings are what ``sample`` uses when no flag is given; flags override them."""

import dataclasses

import pytest

import protein_didi.protein.sample as sample_cli
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.pretrained import save_model
from protein_didi.protein.request import ProteinRequest
from protein_didi.sample import main as sample_main

recommended_sampling = ProteinRequest.recommended  # the one default rule, with the protein teacher's steps


def test_recommended_sampling_reads_the_checkpoint_and_falls_back_to_role_defaults():
    assert recommended_sampling({}, "student-didi")["nfe"] == 8
    assert recommended_sampling({}, "teacher") == {
        "nfe": 64, "sampler": "ancestral", "temperature": 1.0, "top_p": 1.0, "order_temperature": 0.0,
        "corrector_steps": 0, "corrector_fraction": 0.15, "corrector_temperature": 1.0, "corrector_pick": "random",
    }  # fmt: skip
    stored = {"sampling": {"sampler": "confidence", "order_temperature": 0.5, "nfe": 8, "chosen_on": "validation"}}
    got = recommended_sampling(stored, "student-didi")
    assert (got["sampler"], got["order_temperature"], got["temperature"]) == ("confidence", 0.5, 1.0)
    with pytest.raises(ValueError, match="unknown keys"):
        recommended_sampling({"sampling": {"order_temp": 1}}, "student-didi")


@pytest.fixture
def stored_model(tmp_path, tiny_model):
    info = {"sampling": {"sampler": "confidence", "order_temperature": 0.7, "temperature": 0.9, "nfe": 3}}
    return save_model(tmp_path / "m", tiny_model, LogLinearSchedule(), "student-didi", info)


def run_sample(monkeypatch, argv):
    calls = []

    def fake_generate(loaded, request, *args, **kwargs):
        calls.append(dataclasses.asdict(request.fitted(loaded)))  # the settings generate() samples with
        return ["ACDE"] * request.num

    monkeypatch.setattr(sample_cli, "generate", fake_generate)
    assert sample_main(argv) == 0
    return calls[0]


def test_sample_uses_the_models_stored_settings_and_flags_override(monkeypatch, stored_model, capsys):
    base = ["--model", str(stored_model), "--num", "2", "--length", "12"]
    got = run_sample(monkeypatch, base)
    assert (got["sampler"], got["order_temperature"], got["temperature"], got["nfe"]) == ("confidence", 0.7, 0.9, 3)
    got = run_sample(monkeypatch, [*base, "--sampler", "ancestral", "--nfe", "5", "--temperature", "1.0"])
    assert (got["sampler"], got["nfe"], got["temperature"]) == ("ancestral", 5, 1.0)
    got = run_sample(monkeypatch, [*base, "--order-temperature", "0"])
    assert (got["sampler"], got["order_temperature"]) == ("confidence", 0.0)


def test_confidence_sampling_end_to_end_keeps_a_prefix(stored_model, capsys):
    argv = ["--model", str(stored_model), "--num", "3", "--length", "15", "--prefix", "MKT", "--seed", "1"]
    assert sample_main(argv) == 0
    seqs = [line for line in capsys.readouterr().out.splitlines() if not line.startswith(">")]
    assert len(seqs) == 3 and all(len(s) == 15 and s.startswith("MKT") for s in seqs)


def test_bad_order_temperature_is_one_line(stored_model, capsys):
    assert sample_main(["--model", str(stored_model), "--order-temperature", "-1"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert err[-1].startswith("error: order temperature must be ≥ 0")


def test_liability_filter_without_redesign_is_refused(stored_model, capsys):
    assert sample_main(["--model", str(stored_model), "--liabilities", "all"]) == 2
    assert "--liabilities filters CDR redesigns" in capsys.readouterr().err


def test_shipped_antibody_student_samples_with_its_validated_settings():
    """`sample --model antibody-student` uses the confidence order chosen on the frontier's validation split."""
    from protein_didi.core.checkpoint import load_json
    from protein_didi.protein.pretrained import CHECKPOINT_DIR

    info = load_json(CHECKPOINT_DIR / "antibody-student" / "config.json")["info"]
    got = recommended_sampling(info, "student-didi")
    assert (got["sampler"], got["order_temperature"], got["nfe"]) == ("confidence", 0.1, 8)
    assert "validation" in info["sampling"]["chosen_on"]


def test_cdr_redesign_does_not_take_settings_validated_on_whole_chains() -> None:
    """Stored settings were chosen on whole chains: a redesign request keeps the role defaults (flags still win)."""
    from protein_didi.protein.cdr_plan import RedesignPlan
    from protein_didi.protein.numbering import AntibodyNumbering

    plan = RedesignPlan("p", "ACDEFGHIK", ("H3",), ((3, 6),), ((3, 3),), AntibodyNumbering("ACDEFGHIK", False))
    stored = {"sampling": {"sampler": "confidence", "order_temperature": 0.1, "nfe": 8}}
    chain = ProteinRequest(num=2).for_model(stored, "student-didi")
    design = ProteinRequest(num=2, plan=plan).for_model(stored, "student-didi")
    assert (chain.sampler, chain.order_temperature) == ("confidence", 0.1)
    assert (design.sampler, design.order_temperature, design.nfe) == ("ancestral", 0.0, 8)
    flagged = ProteinRequest(num=2, plan=plan, sampler="confidence", order_temperature=0.3)
    assert flagged.for_model(stored, "student-didi").order_temperature == 0.3


def test_shipped_human_antibody_student_is_a_named_non_commercial_extra() -> None:
    """`antibody-student-human` carries its validated settings, no discriminator (its features' teacher is not
    shipped) and the data's non-commercial licence, in its folder and in `--model` help."""
    from protein_didi.core.checkpoint import load_json
    from protein_didi.protein.pretrained import CHECKPOINT_DIR, is_antibody_model, model_choices

    folder = CHECKPOINT_DIR / "antibody-student-human"
    cfg = load_json(folder / "config.json")
    info = cfg["info"]
    got = recommended_sampling(info, "student-didi")
    assert (got["sampler"], got["order_temperature"], got["nfe"]) == ("confidence", 3.0, 8)
    assert "validation" in info["sampling"]["chosen_on"]
    assert is_antibody_model(info) and "NC" in info["licence"]
    assert cfg["extra"] == [] and not (folder / "discriminator.safetensors").exists()
    assert "NON-COMMERCIAL" in (folder / "LICENSE").read_text()
    assert "antibody-student-human (NON-COMMERCIAL: CC BY-NC-SA 4.0" in model_choices()
