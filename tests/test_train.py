"""The training loop: schedule, step count, minibatching and learning on separable data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from w2s.losses import logconf, xent
from w2s.models import ProbeClassifier
from w2s.train import Schedule, fit, lr_factor, predict

CPU = torch.device("cpu")


def schedule(**overrides: float) -> Schedule:
    values = dict(lr=0.1, epochs=2, batch_size=8, minibatch_size=8, weight_decay=0.0,
                  warmup_frac=0.0, max_grad_norm=10.0, seed=0)
    values.update(overrides)
    return Schedule(**values)  # type: ignore[arg-type]


def separable(n: int = 64) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (n,), generator=generator)
    features = torch.randn(n, 4, generator=generator) + 3 * (2 * labels[:, None].float() - 1)
    targets = torch.stack([1 - labels.float(), labels.float()], dim=1)
    return features, targets, labels.numpy()


def test_lr_factor_warms_up_linearly_then_decays_as_a_cosine() -> None:
    assert [lr_factor(s, 10, 0.2) for s in (0, 1)] == [0.5, 1.0]
    assert lr_factor(2, 10, 0.2) == 1.0
    assert lr_factor(6, 10, 0.2) == pytest.approx(0.5)
    assert lr_factor(9, 10, 0.0) == pytest.approx(0.5 * (1 + math.cos(math.pi * 0.9)))


def test_fit_takes_ceil_epochs_times_rows_over_batch_steps_and_learns() -> None:
    features, targets, labels = separable(60)
    model = ProbeClassifier(4)
    history = fit(model, lambda rows: {"features": features[rows]}, targets, xent, schedule(epochs=1.5), CPU)
    assert len(history) == math.ceil(1.5 * 60 / 8)
    assert history[-1]["loss"] < history[0]["loss"]
    probs = predict(model, lambda rows: {"features": features[rows]}, np.arange(60), 16, CPU)
    assert float(np.mean((probs > 0.5) == labels)) >= 0.95


@pytest.mark.parametrize("loss", [xent, logconf])
def test_minibatches_give_the_same_model_as_whole_batches(loss) -> None:
    """The loss sees the whole batch, so logconf's batch threshold does not depend on minibatching."""
    features, targets, _ = separable(32)
    weights = []
    for minibatch in (8, 2):
        model = ProbeClassifier(4)
        torch.nn.init.normal_(model.head.weight, generator=torch.Generator().manual_seed(1))
        fit(model, lambda rows: {"features": features[rows]}, targets, loss, schedule(minibatch_size=minibatch), CPU)
        weights.append(model.head.weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)
