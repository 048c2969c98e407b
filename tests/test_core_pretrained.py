"""The shared model and judge folders of protein_didi/core, filled in by a toy domain; both real domains use them."""

from __future__ import annotations

import shutil

import pytest
import torch
from torch import nn

from protein_didi.core import judge as core_judge
from protein_didi.core import pretrained as core
from protein_didi.core.causal_lm import CausalALiBiLM
from protein_didi.core.checkpoint import CheckpointError, load_json, load_tensors, save_json
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.schedule import LogLinearSchedule


class Toy(nn.Module):
    """A denoiser over 6 tokens with a persistent buffer ``freq`` that it recomputes (like rotary frequencies)."""

    def __init__(self, hidden: int = 8) -> None:
        super().__init__()
        self.arch = {"hidden": hidden}
        self.mask_id, self.hidden_size = 5, hidden
        self.embed = nn.Embedding(6, hidden)
        self.out = nn.Linear(hidden, 6)
        self.register_buffer("freq", torch.arange(hidden).float())

    def features(self, tokens, t=None, soft_tokens=None):
        emb = self.embed(tokens) if soft_tokens is None else soft_tokens @ self.embed.weight
        return emb + self.freq

    def forward(self, tokens, t):
        return self.out(self.features(tokens)).log_softmax(-1)


SHIPPED = {"shipped": "no-such-toy-folder"}


class ToyModels(core.ModelRegistry[Toy]):
    format = "toy/1"
    embedded = SHIPPED
    noun = "toy model"

    def describe(self, model):
        return {"architecture": dict(model.arch)}

    def weights(self, model):
        return model.state_dict()

    def load_weights(self, model, state):
        model.load_state_dict(state)

    def builder(self, path, cfg):
        hidden = int(cfg["architecture"]["hidden"])
        return lambda: Toy(hidden)

    def derived(self, key):
        return key.endswith("freq")


TOYS = ToyModels()
SCHEDULE = LogLinearSchedule()
TOKENS = torch.tensor([[0, 5, 2, 5], [5, 1, 5, 3]])


def fresh(seed: int) -> Toy:
    torch.manual_seed(seed)
    return Toy().eval()


def test_round_trip_with_a_full_discriminator(tmp_path):
    model, disc = fresh(0), Discriminator(fresh(1)).eval()
    out = TOYS.save(tmp_path / "m", model, SCHEDULE, "student-didi", {"a": 1}, {"discriminator": disc.state_dict()},
                    dtype=torch.float32, note="kept")  # fmt: skip
    cfg = load_json(out / "config.json")
    assert cfg["format"] == "toy/1" and cfg["extra"] == ["discriminator"] and cfg["note"] == "kept"
    assert "backbone.freq" not in load_tensors(out / "discriminator.safetensors")  # derived: left out, recomputed
    loaded = TOYS.load(str(out))
    assert (loaded.role, loaded.info, loaded.precision, loaded.schedule.name) == ("student-didi", {"a": 1}, "fp32",
                                                                                  "loglinear")  # fmt: skip
    with torch.no_grad():
        assert torch.equal(loaded.model(TOKENS, torch.ones(2)), model(TOKENS, torch.ones(2)))
        assert torch.equal(loaded.require_discriminator()(TOKENS, torch.ones(2)), disc(TOKENS, torch.ones(2)))


def test_head_only_discriminator_reads_its_teacher_on_first_use(tmp_path):
    teacher = fresh(0)
    teacher_dir = TOYS.save(tmp_path / "teacher", teacher, SCHEDULE, "teacher", dtype=torch.float32)
    disc = Discriminator(teacher, frozen_backbone=True).eval()
    info = {"teacher": str(teacher_dir), "disc_head_only": True}
    student_dir = TOYS.save(tmp_path / "student", fresh(2), SCHEDULE, "student-didi", info,
                            {"discriminator": disc.state_dict()}, dtype=torch.float32)  # fmt: skip
    loaded = TOYS.load(str(student_dir))
    assert loaded.discriminator is None and loaded.has_discriminator
    with torch.no_grad():
        assert torch.equal(loaded.require_discriminator()(TOKENS, torch.ones(2)), disc(TOKENS, torch.ones(2)))
    shutil.rmtree(teacher_dir)
    with pytest.raises(core.ModelNotFoundError, match=r"RGAS with '.*student' reads the teacher's features"):
        TOYS.load(str(student_dir)).require_discriminator()
    bare = core.LoadedModel(teacher, SCHEDULE, "bare")
    assert not bare.has_discriminator
    with pytest.raises(ValueError, match="RGAS needs a discriminator; model 'bare' has none"):
        bare.require_discriminator()


def test_names_paths_and_one_line_errors(tmp_path):
    registry = ToyModels()
    registry.register("named", lambda name, device: core.LoadedModel(fresh(0), SCHEDULE, name, {"from": "loader"}))
    assert registry.load("named").info == {"from": "loader"} and "named" not in TOYS.loaders
    with pytest.raises(core.ModelNotFoundError, match=r"embedded toy model 'shipped' is missing from .*; train it"):
        registry.load("shipped")
    with pytest.raises(core.ModelNotFoundError, match="no toy model 'nowhere': give a model folder"):
        registry.load("nowhere")
    (tmp_path / "empty").mkdir()
    with pytest.raises(CheckpointError, match="is not a toy model folder"):
        registry.load(str(tmp_path / "empty"))
    out = registry.save(tmp_path / "m", fresh(0), SCHEDULE, "teacher")
    save_json(out / "config.json", load_json(out / "config.json") | {"architecture": {"hidden": 4}})
    with pytest.raises(CheckpointError, match=r"model\.safetensors does not match its config\.json") as err:
        registry.load(str(out))
    assert "\n" not in str(err.value)
    (out / "config.json").write_text('{"format": "toy/1"}')
    with pytest.raises(CheckpointError, match="has no 'architecture'"):
        registry.load(str(out))


def test_both_domains_fill_in_the_one_base():
    from protein_didi.protein import pretrained as protein
    from protein_didi.text import pretrained as text

    assert protein.ModelNotFoundError is text.ModelNotFoundError is core.ModelNotFoundError
    assert issubclass(protein.LoadedModel, core.LoadedModel) and issubclass(text.LoadedModel, core.LoadedModel)
    assert isinstance(protein.MODELS, core.ModelRegistry) and isinstance(text.MODELS, core.ModelRegistry)
    assert protein.CHECKPOINT_DIR == text.CHECKPOINT_DIR == core.CHECKPOINT_DIR


def test_judge_folder_round_trip(tmp_path):
    from protein_didi.protein import judge as protein_judge
    from protein_didi.text import judge as text_judge

    assert issubclass(protein_judge.JudgeConfig, core_judge.JudgeConfig)
    assert text_judge.JudgeConfig is core_judge.JudgeConfig
    assert protein_judge.ARCHITECTURES["test"].hidden_size == text_judge.ARCHITECTURES["test"]["hidden_size"] == 32

    torch.manual_seed(0)
    model = CausalALiBiLM(core_judge.JudgeConfig(vocab_size=7, **core_judge.SIZES["test"])).eval()
    core_judge.save_judge(tmp_path / "run" / "model", model, "toy.judge/1", {"data": "x"}, extra="kept")
    path = core_judge.judge_folder(str(tmp_path / "run"), tmp_path / "shipped")  # a run folder: its model/
    assert path == tmp_path / "run" / "model" and core_judge.judge_folder("judge", tmp_path) == tmp_path
    cfg = load_json(path / "config.json")
    assert cfg["format"] == "toy.judge/1" and cfg["extra"] == "kept"
    build = lambda arch: CausalALiBiLM(core_judge.JudgeConfig(**arch))  # noqa: E731
    loaded = core_judge.read_judge(path, cfg, build)
    tokens = torch.tensor([[1, 2, 3, 4]])
    with torch.no_grad():
        torch.testing.assert_close(loaded(tokens), model(tokens), atol=2e-2, rtol=0)  # half-precision weights
    with pytest.raises(CheckpointError, match=r"no valid 'architecture'.*re-export the judge"):
        core_judge.read_judge(path, {"architecture": {"vocab_size": 7, "colour": 1}}, build)
