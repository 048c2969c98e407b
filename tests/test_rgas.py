"""RGAS: guidance sign, equivalence to ancestral sampling, and gradients through ESM's token dropout."""

import torch
import torch.nn.functional as F

from protein_didi.core.discriminator import Discriminator, mean_masked_logit
from protein_didi.core.rgas import RGASConfig, reward_gradient, rgas_sample
from protein_didi.core.sampler import SamplerConfig, ancestral_sample
from protein_didi.core.schedule import LogLinearSchedule
from protein_didi.protein.alphabet import ALPHABET
from protein_didi.protein.model import EsmDenoiser, esm_config

ALA = ALPHABET.esm.get_idx("A")


class AlanineDetector(torch.nn.Module):
    """A stub discriminator: "student-like" (R > 0) in proportion to the alanine content of the whole sequence."""

    def __init__(self, strength: float = 30.0) -> None:
        super().__init__()
        self.strength, self.mask_id = strength, ALPHABET.mask_id

    def forward(self, tokens, t, soft_tokens=None):
        soft = soft_tokens if soft_tokens is not None else F.one_hot(tokens, ALPHABET.size).float()
        ala = soft[..., ALA].mean(-1, keepdim=True)
        return (self.strength * ala).expand(tokens.shape)

    def reward(self, tokens, t, generated, soft_tokens=None):
        return mean_masked_logit(self(tokens, t, soft_tokens), tokens, generated, self.mask_id)


def _alanines(tokens: torch.Tensor) -> int:
    return int((tokens == ALA).sum())


def test_rgas_steers_away_from_what_the_discriminator_calls_student_like(tiny_model):
    """Guidance follows teacher-likeness −R: a residue D penalises gets rarer than under ancestral sampling."""
    z = ALPHABET.masked_template([30] * 48)
    fixed = ALPHABET.special_positions(z)
    cfg = SamplerConfig(8, suppress=ALPHABET.nonstandard_ids)
    plain = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(1))
    guided = rgas_sample(
        tiny_model, AlanineDetector(), z, fixed, LogLinearSchedule(), RGASConfig(cfg), torch.Generator().manual_seed(1)
    )
    assert _alanines(plain) > 20  # enough alanines to see the effect
    assert _alanines(guided) < 0.5 * _alanines(plain)
    # the late-step reranking alone (no tilt) also selects against alanine
    rerank = RGASConfig(cfg, guidance_start=0.0, guidance_end=0.0, tilt_fraction=0.0, candidates=8)
    reranked = rgas_sample(
        tiny_model, AlanineDetector(), z, fixed, LogLinearSchedule(), rerank, torch.Generator().manual_seed(1)
    )
    assert _alanines(reranked) < _alanines(plain)


def test_rgas_tilts_through_esm_token_dropout():
    """ESM-2/DPLM configs set token_dropout=True, which zeroes [MASK] embeddings; the tilt is taken there."""
    torch.manual_seed(0)
    model = EsmDenoiser(esm_config("test", token_dropout=True)).eval()
    z = ALPHABET.masked_template([16, 16])
    z[:, 3:6] = ALA  # a few revealed residues, so the rescaling sees a partial mask ratio
    generated = ~ALPHABET.special_positions(z)
    soft = F.one_hot(z, ALPHABET.size).float()
    # the soft path reproduces ESM's own forward (token dropout included) on one-hot input
    assert torch.allclose(model.features(z), model.features(z, soft_tokens=soft), atol=1e-5)
    disc = Discriminator(model).eval()
    grad = reward_gradient(disc, z, torch.ones(2), generated, ALPHABET.size)
    masked = z == ALPHABET.mask_id
    residues = torch.from_numpy(ALPHABET.residue_ids)
    assert grad[masked][:, residues].abs().sum(-1).min() > 1e-6


def test_rgas_with_one_candidate_and_no_tilt_equals_ancestral(tiny_model):
    disc = Discriminator(tiny_model).eval()
    z = ALPHABET.masked_template([14, 14, 14])
    fixed = ALPHABET.special_positions(z)
    cfg = SamplerConfig(6, suppress=ALPHABET.nonstandard_ids)
    plain = ancestral_sample(tiny_model, z, fixed, LogLinearSchedule(), cfg, torch.Generator().manual_seed(5))
    guided = rgas_sample(
        tiny_model,
        disc,
        z,
        fixed,
        LogLinearSchedule(),
        RGASConfig(cfg, guidance_start=0.0, guidance_end=0.0, candidates=1),
        torch.Generator().manual_seed(5),
    )
    assert torch.equal(plain, guided)


def test_rgas_guided_sampling_is_valid(tiny_model):
    disc = Discriminator(tiny_model).eval()
    z = ALPHABET.masked_template([14, 14])
    fixed = ALPHABET.special_positions(z)
    out = rgas_sample(
        tiny_model, disc, z, fixed, LogLinearSchedule(), RGASConfig(SamplerConfig(4)), torch.Generator().manual_seed(0)
    )
    assert not (out == ALPHABET.mask_id).any() and torch.equal(out[fixed], z[fixed])
    assert RGASConfig(SamplerConfig(8)).guidance(0) == 30.0 and RGASConfig(SamplerConfig(8)).guidance(3) == 40.0
    assert RGASConfig(SamplerConfig(8)).guidance(4) == 0.0 and RGASConfig(SamplerConfig(8)).num_candidates(4) == 4
