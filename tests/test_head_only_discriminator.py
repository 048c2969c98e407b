"""Head-only discriminator (its head on the frozen teacher); a teacher bank filled from a FASTA of teacher samples."""

from __future__ import annotations

import shutil

import pytest
import torch

from protein_didi.core.didi import DidiConfig, DidiTrainer
from protein_didi.core.discriminator import Discriminator
from protein_didi.core.rgas import reward_gradient
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.distill import read_teacher_samples
from protein_didi.protein.fasta import write_fasta
from protein_didi.protein.generate import ProteinRequest, generate
from protein_didi.protein.pretrained import ModelNotFoundError, load_model, save_model
from protein_didi.protein.prompts import ProteinPrompts

SCHEDULE = LogLinearSchedule()


def head_only_trainer(teacher, **overrides) -> DidiTrainer:
    cfg = DidiConfig(
        batch_size=4, student_nfe=4, teacher_nfe=4, bank_size=8, lr_student=1e-3, lr_aux=1e-2, ema=0.5,
        disc_warmup=0, steps=4, disc_head_only=True, **overrides,
    )  # fmt: skip
    return DidiTrainer(teacher, SCHEDULE, ProteinPrompts([12]), cfg, lambda *a: None)


def test_head_only_d_trains_its_head_on_the_frozen_teacher(tiny_model):
    trainer = head_only_trainer(tiny_model)
    disc = trainer.disc
    assert disc.feature_backbone() is trainer.teacher  # the teacher itself, not a copy
    assert all(k.startswith("head.") for k in disc.state_dict())  # ships without a backbone
    teacher_before = {k: v.clone() for k, v in trainer.teacher.state_dict().items()}
    head_before = {k: v.clone() for k, v in disc.state_dict().items()}
    trainer.train_step(0)
    assert all(torch.equal(v, teacher_before[k]) for k, v in trainer.teacher.state_dict().items())
    assert any(not torch.equal(v, head_before[k]) for k, v in disc.state_dict().items())


def test_head_only_d_still_gives_rgas_its_input_gradient(tiny_model):
    disc = Discriminator(tiny_model, frozen_backbone=True)
    z = ALPHABET.masked_template([12, 12])
    generated = ~ALPHABET.special_positions(z)
    grad = reward_gradient(disc, z, torch.ones(2), generated, ALPHABET.size)
    assert grad[z == ALPHABET.mask_id].abs().sum() > 0
    assert all(p.grad is None for p in tiny_model.parameters())  # the teacher is not trained by it


def save_head_only_student(tmp_path, teacher) -> tuple:
    teacher_dir = save_model(tmp_path / "teacher", teacher, SCHEDULE, "teacher", {}, dtype=torch.float32)
    disc = Discriminator(teacher, frozen_backbone=True)
    torch.manual_seed(5)
    for p in disc.head.parameters():
        p.data.normal_()
    info = {"teacher": str(teacher_dir), "disc_head_only": True}
    student_dir = save_model(
        tmp_path / "student", teacher, SCHEDULE, "student-didi", info, {"discriminator": disc.state_dict()},
        dtype=torch.float32,
    )  # fmt: skip
    return teacher_dir, student_dir, disc.eval()


def test_head_only_student_loads_its_discriminator_on_first_rgas_use(tmp_path, tiny_model):
    _, student_dir, disc = save_head_only_student(tmp_path, tiny_model)
    loaded = load_model(str(student_dir))
    assert loaded.discriminator is None and loaded.has_discriminator  # plain sampling never reads the teacher
    loaded_disc = loaded.require_discriminator()
    z = ALPHABET.masked_template([12, 12])
    t = torch.ones(2)
    with torch.no_grad():
        assert torch.allclose(loaded_disc(z, t), disc(z, t), atol=1e-6)
    assert len(generate(loaded, ProteinRequest(num=2, length=12, nfe=2, sampler="rgas"))) == 2


def test_head_only_student_without_its_teacher_samples_but_refuses_rgas_in_one_line(tmp_path, tiny_model):
    teacher_dir, student_dir, _ = save_head_only_student(tmp_path, tiny_model)
    shutil.rmtree(teacher_dir)
    loaded = load_model(str(student_dir))
    assert len(generate(loaded, ProteinRequest(num=2, length=12, nfe=2))) == 2
    with pytest.raises(ModelNotFoundError, match=r"RGAS with .* reads the teacher's features") as err:
        generate(loaded, ProteinRequest(num=2, length=12, nfe=2, sampler="rgas"))
    assert "\n" not in str(err.value)


def test_model_without_discriminator_refuses_rgas(tiny_model, tmp_path):
    loaded = load_model(str(save_model(tmp_path / "t", tiny_model, SCHEDULE, "teacher", {})))
    assert not loaded.has_discriminator
    with pytest.raises(ValueError, match="RGAS needs a discriminator"):
        generate(loaded, ProteinRequest(num=1, length=12, nfe=2, sampler="rgas"))


# --- teacher bank from a FASTA of teacher samples ----------------------------------------------------------------


def test_bank_serves_the_given_teacher_samples(tiny_model, tmp_path):
    seqs = ["ACDEFGHIKLMN", "PQRSTVWYACDE", "MMMMMMMMMMMM", "WWWWWWWWWWWW"] * 2
    path = write_fasta(tmp_path / "bank.fasta", [(f"s{i}", s) for i, s in enumerate(seqs)])
    samples = read_teacher_samples(path, [12], bank_size=8)
    trainer = head_only_trainer(tiny_model)
    trainer.bank.preload(12, samples[12])
    drawn = ALPHABET.decode(trainer.bank.draw(12, 16, torch.Generator().manual_seed(0)))
    assert set(drawn) <= set(seqs) and len(set(drawn)) > 1


def test_teacher_samples_are_checked_against_lengths_and_bank_size(tmp_path):
    path = write_fasta(tmp_path / "bank.fasta", [("a", "ACDEFGHIKLMN"), ("b", "ACDEFGHIKLMNP")])
    with pytest.raises(ValueError, match=r"lengths \[13\] that are not in --lengths"):
        read_teacher_samples(path, [12], bank_size=1)
    with pytest.raises(ValueError, match="--bank-size 2 needs as many"):
        read_teacher_samples(path, [12, 13], bank_size=2)


def test_shipped_antibody_student_guides_rgas_with_a_head_on_antiberty():
    pytest.importorskip("antiberty")
    loaded = load_model("antibody-student")
    assert loaded.role == "student-didi" and loaded.discriminator is None and loaded.has_discriminator
    disc = loaded.require_discriminator()
    assert disc.frozen_backbone and sum(p.numel() for p in disc.parameters()) < 300_000  # the head alone
    seqs = generate(loaded, ProteinRequest(num=2, length=30, nfe=2, sampler="rgas"))
    assert len(seqs) == 2 and all(len(s) == 30 for s in seqs)
