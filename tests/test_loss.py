import math

import torch

from protein_didi.core.denoiser import subs_log_probs
from protein_didi.core.loss import masked_diffusion_loss
from protein_didi.core.schedule import LogLinearSchedule

K, MASK = 6, 5


class TableDenoiser:
    """Predicts fixed per-position logits: an oracle (knows x) or a uniform model."""

    mask_id, vocab_size, time_conditioned = MASK, K, False

    def __init__(self, logits: torch.Tensor) -> None:
        self.logits = logits

    def __call__(self, tokens, t):
        return subs_log_probs(self.logits.expand(tokens.shape[0], -1, -1).clone(), tokens, MASK)


def test_elbo_of_a_model_that_knows_the_data_is_lower_than_uniform():
    x = torch.tensor([[0, 1, 2, 3, 4, 0, 1, 2]]).repeat(16, 1)
    maskable = torch.ones_like(x, dtype=torch.bool)
    sched = LogLinearSchedule()
    oracle = TableDenoiser(torch.nn.functional.one_hot(x[0], K).float()[None] * 8)
    uniform = TableDenoiser(torch.zeros(1, 8, K))
    gen = torch.Generator().manual_seed(0)
    l_oracle = masked_diffusion_loss(oracle, x, maskable, sched, generator=gen).loss
    l_uniform = masked_diffusion_loss(uniform, x, maskable, sched, generator=gen).loss
    assert l_oracle < 0.05
    assert l_oracle < l_uniform


def test_context_free_model_elbo_equals_its_cross_entropy():
    # ∫ω(t)(1−α_t)dt = 1, so a model ignoring context scores exactly its cross-entropy per token
    probs = torch.tensor([0.4, 0.3, 0.2, 0.05, 0.05])
    logits = torch.cat([probs.log(), torch.tensor([0.0])])
    model = TableDenoiser(logits.view(1, 1, K).expand(1, 400, K))
    gen = torch.Generator().manual_seed(0)
    x = torch.multinomial(probs, 400 * 64, replacement=True, generator=gen).view(64, 400)
    maskable = torch.ones_like(x, dtype=torch.bool)
    losses = [
        float(masked_diffusion_loss(model, x, maskable, LogLinearSchedule(), generator=gen).loss) for _ in range(20)
    ]
    cross_entropy = float(-(probs * probs.log()).sum())
    assert math.isclose(sum(losses) / len(losses), cross_entropy, rel_tol=0.03)


def test_subs_parameterisation():
    logits = torch.randn(2, 4, K)
    tokens = torch.tensor([[MASK, 1, MASK, 3], [0, MASK, MASK, MASK]])
    lp = subs_log_probs(logits, tokens, MASK)
    probs = lp.exp()
    assert torch.allclose(probs.sum(-1), torch.ones(2, 4))
    assert (probs[..., MASK] == 0).all()  # zero mask logit
    assert probs[0, 1, 1] == 1 and probs[1, 0, 0] == 1  # carry-over unmasking
