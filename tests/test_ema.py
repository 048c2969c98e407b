import pytest
import torch

from protein_didi.core.ema import EMA, relative_distance


def _model(value: float) -> torch.nn.Module:
    m = torch.nn.Linear(2, 1, bias=False)
    with torch.no_grad():
        m.weight.fill_(value)
    return m


def test_bias_corrected_ema_averages_only_the_trained_iterates():
    """With the paper's decay 0.9999 a plain EMA started at the teacher keeps ~95 % of it after 500 updates.

    The bias-corrected average forgets the initial weights at the first update and weighs the trained
    iterates as an EMA does (nearly uniformly while n ≪ 1/(1 − d)).
    """
    model = _model(0.0)  # the "teacher"
    ema = EMA(model, decay=0.9999)
    iterates = [float(k) for k in range(1, 501)]
    for value in iterates:
        with torch.no_grad():
            model.weight.fill_(value)
        ema.update(model)
    d = 0.9999
    n = len(iterates)
    weights = [(1 - d) * d ** (n - 1 - k) for k in range(n)]
    expected = sum(w * v for w, v in zip(weights, iterates, strict=True)) / (1 - d**n)
    assert ema.weights()["weight"][0, 0].item() == pytest.approx(expected, rel=1e-4)
    assert expected > 0.99 * sum(iterates) / n  # nowhere near the initial 0


def test_first_update_copies_the_model_and_state_round_trips():
    model = _model(1.0)
    ema = EMA(model, decay=0.99)
    with torch.no_grad():
        model.weight.fill_(3.0)
    ema.update(model)
    assert torch.equal(ema.weights()["weight"], model.weight.detach())
    restored = EMA(_model(1.0), decay=0.99)
    restored.load_state_dict(ema.state_dict())
    assert restored.num_updates == 1 and torch.equal(restored.weights()["weight"], ema.weights()["weight"])
    with torch.no_grad():
        model.weight.fill_(5.0)
    ema.update(model)
    restored.update(model)
    assert torch.equal(restored.weights()["weight"], ema.weights()["weight"])


def test_relative_distance():
    a, b = {"w": torch.tensor([3.0, 4.0])}, {"w": torch.tensor([0.0, 4.0])}
    assert relative_distance(a, b) == pytest.approx(3.0 / 4.0)
    assert relative_distance(b, b) == 0.0
