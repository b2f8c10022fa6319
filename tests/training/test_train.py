"""The training loop: schedule, step count, minibatching and learning on separable data."""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from helpers import training_schedule
from w2s.training.loss_registry import LOSSES, loss_function
from w2s.training.losses import logconf, xent
from w2s.models.text import ProbeClassifier
from w2s.models.devices import supported_dtype
from w2s.training.loop import Selection, fit, lr_factor, make_optimizer, predict

CPU = torch.device("cpu")


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
    history = fit(model, lambda rows: {"features": features[rows]}, targets, xent, training_schedule(epochs=1.5), CPU)
    assert len(history) == math.ceil(1.5 * 60 / 8)
    assert history[-1]["loss"] < history[0]["loss"]
    probs = predict(model, lambda rows: {"features": features[rows]}, np.arange(60), 16, CPU)
    assert probs.shape == (len(labels), 2)
    assert float(np.mean(probs.argmax(axis=1) == labels)) >= 0.95


@pytest.mark.parametrize("loss", [loss_function(name) for name in LOSSES], ids=LOSSES.keys())
def test_minibatches_give_the_same_model_as_whole_batches(loss) -> None:
    """Accumulated minibatch gradients equal the whole batch's, for every loss: logconf's batch
    threshold comes from a pass over the whole batch, so it does not depend on minibatching."""
    features, targets, _ = separable(32)
    weights = []
    for minibatch in (8, 2):
        model = ProbeClassifier(4)
        torch.nn.init.normal_(model.head.weight, generator=torch.Generator().manual_seed(1))
        fit(model, lambda rows: {"features": features[rows]}, targets, loss,
            training_schedule(minibatch_size=minibatch), CPU, needs_batch_probs=loss is logconf)
        weights.append(model.head.weight.detach().clone())
    assert torch.allclose(weights[0], weights[1], atol=1e-6)


def test_selection_restores_the_best_scored_weights() -> None:
    """Scores rise, then fall: the weights of the best-scored step come back after training."""
    features, targets, _ = separable(32)
    model = ProbeClassifier(4)
    snapshots: list[torch.Tensor] = []
    scores = iter([0.5, 0.9, 0.7, 0.6])

    def score() -> float:
        snapshots.append(model.head.weight.detach().clone())
        return next(scores)

    history = fit(model, lambda rows: {"features": features[rows]}, targets, xent, training_schedule(epochs=2),
                  CPU, selection=Selection(score, every=2))
    assert len(history) == 8
    assert [h.get("selection_score") for h in history[1::2]] == [0.5, 0.9, 0.7, 0.6]
    assert torch.equal(model.head.weight, snapshots[1])
    assert not torch.equal(snapshots[1], snapshots[3])


def test_equal_scores_keep_the_earliest_weights() -> None:
    features, targets, _ = separable(16)
    model = ProbeClassifier(4)
    snapshots: list[torch.Tensor] = []

    def score() -> float:
        snapshots.append(model.head.weight.detach().clone())
        return 1.0

    fit(model, lambda rows: {"features": features[rows]}, targets, xent, training_schedule(epochs=1), CPU,
        selection=Selection(score, every=1))
    assert torch.equal(model.head.weight, snapshots[0])


def test_adafactor_is_selectable_and_learns() -> None:
    features, targets, labels = separable(64)
    model = ProbeClassifier(4)
    fit(model, lambda rows: {"features": features[rows]}, targets, xent,
        training_schedule(optimizer="adafactor", lr=0.05, epochs=3), CPU)
    probs = predict(model, lambda rows: {"features": features[rows]}, np.arange(64), 16, CPU)
    assert probs.shape == (len(labels), 2)
    assert float(np.mean(probs.argmax(axis=1) == labels)) >= 0.95
    with pytest.raises(ValueError, match="unknown optimizer 'sgd'; use adamw or adafactor"):
        make_optimizer("sgd", list(model.parameters()), 0.1, 0.0)


def test_reduced_precision_only_where_the_device_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    cuda = torch.device("cuda")
    monkeypatch.setattr("w2s.models.devices.cpu_has_bf16", lambda: False)
    assert supported_dtype(CPU, "bfloat16") == "float32"
    monkeypatch.setattr("w2s.models.devices.cpu_has_bf16", lambda: True)
    assert supported_dtype(CPU, "bfloat16") == "bfloat16"
    assert supported_dtype(CPU, "float16") == "float32"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: False)
    assert supported_dtype(cuda, "bfloat16") == "float32"
    assert supported_dtype(cuda, "float16") == "float16"
    monkeypatch.setattr(torch.cuda, "is_bf16_supported", lambda: True)
    assert supported_dtype(cuda, "bfloat16") == "bfloat16"


class SavedActivationMeter:
    """Bytes of tensors autograd holds for backward, live and at their peak, counted through
    saved_tensors_hooks: what grows when a graph spans more rows."""

    def __init__(self) -> None:
        self.live = 0
        self.peak = 0

    def pack(self, tensor: torch.Tensor) -> "_Held":
        return _Held(tensor, self)

    @staticmethod
    def unpack(held: "_Held") -> torch.Tensor:
        return held.tensor


class _Held:
    def __init__(self, tensor: torch.Tensor, meter: SavedActivationMeter) -> None:
        self.tensor, self.meter = tensor, meter
        meter.live += tensor.nbytes
        meter.peak = max(meter.peak, meter.live)

    def __del__(self) -> None:
        self.meter.live -= self.tensor.nbytes


class HiddenLayerClassifier(torch.nn.Module):
    """A probe with a hidden layer, so that the graph holds activations per row."""

    def __init__(self) -> None:
        super().__init__()
        self.layers = torch.nn.Sequential(torch.nn.Linear(4, 64), torch.nn.Tanh(), torch.nn.Linear(64, 2))

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.layers(features)


def peak_saved_bytes(batch_size: int, minibatch_size: int, loss) -> int:
    features, targets, _ = separable(64)
    meter = SavedActivationMeter()
    with torch.autograd.graph.saved_tensors_hooks(meter.pack, meter.unpack):
        fit(HiddenLayerClassifier(), lambda rows: {"features": features[rows]}, targets, loss,
            training_schedule(batch_size=batch_size, minibatch_size=minibatch_size, epochs=1), CPU,
            needs_batch_probs=loss is logconf)
    return meter.peak


@pytest.mark.parametrize("loss", [xent, logconf])
def test_graph_memory_follows_the_minibatch_not_the_batch(loss) -> None:
    at_minibatch_4 = [peak_saved_bytes(batch, 4, loss) for batch in (8, 16, 32)]
    assert at_minibatch_4[0] > 0 and len(set(at_minibatch_4)) == 1, at_minibatch_4
    # The meter sees graph size: one minibatch of the whole batch holds more.
    assert peak_saved_bytes(32, 32, loss) > at_minibatch_4[0]


def test_rows_of_a_batch_reach_the_model_sorted_by_length() -> None:
    features, targets, _ = separable(32)
    lengths = np.random.default_rng(0).integers(1, 500, size=32)
    calls: dict[bool, list[np.ndarray]] = {False: [], True: []}
    for bucketed in (False, True):
        def batcher(rows: np.ndarray, seen: list[np.ndarray] = calls[bucketed]) -> dict[str, torch.Tensor]:
            seen.append(np.array(rows))
            return {"features": features[rows]}
        fit(ProbeClassifier(4), batcher, targets, xent, training_schedule(epochs=1, minibatch_size=2), CPU,
            lengths=lengths if bucketed else None)
    plain, bucketed = (np.concatenate(calls[b]).reshape(4, 8) for b in (False, True))
    # Same batches, rows reordered within each: every batch of 8 arrives in ascending length.
    assert [sorted(b) for b in plain.tolist()] == [sorted(b) for b in bucketed.tolist()]
    assert all((np.diff(lengths[b]) >= 0).all() for b in bucketed)
    assert not all((np.diff(lengths[b]) >= 0).all() for b in plain)
