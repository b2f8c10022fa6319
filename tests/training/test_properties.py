"""Property-based tests (hypothesis) of the losses and metrics: identities that must hold for every
input, not only for the rows worked out by hand in test_losses.py and test_metrics.py."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

from w2s.training.loss_registry import LOSSES, loss_function
from w2s.training.losses import Batch, kl, logconf, xent
from w2s.evaluation.metrics import (accuracy, agreement, auroc, bootstrap_intervals, bootstrap_mean_interval,
                         gap_recovered, pgr)

# Small and quick: each property runs at most 50 examples, none may take more than a second, and no
# example database is written into the checkout.
settings.register_profile("w2s", max_examples=50, deadline=1000, database=None)
settings.load_profile("w2s")

finite = st.floats(-20, 20, allow_nan=False, width=32)
probability = st.floats(0, 1, allow_nan=False)


def class_rows(draw: st.DrawFn, n: int, n_classes: int) -> np.ndarray:
    """(n, K) rows of class probabilities: [1 - p, p] for K = 2, normalised draws otherwise (uniform
    where every draw is 0)."""
    if n_classes == 2:
        soft = draw(arrays(np.float64, n, elements=probability))
        return np.stack([1 - soft, soft], axis=1)
    raw = draw(arrays(np.float64, (n, n_classes), elements=probability))
    raw[raw.sum(axis=1) == 0] = 1.0
    return raw / raw.sum(axis=1, keepdims=True)


@st.composite
def logits_and_targets(draw: st.DrawFn, min_rows: int = 1) -> tuple[torch.Tensor, torch.Tensor]:
    """(n, K) logits and (n, K) soft targets whose rows sum to 1, for K from 2 to 5."""
    n, n_classes = draw(st.integers(min_rows, 12)), draw(st.integers(2, 5))
    logits = draw(arrays(np.float32, (n, n_classes), elements=finite))
    return torch.tensor(logits), torch.tensor(class_rows(draw, n, n_classes), dtype=torch.float32)


@st.composite
def scored_test_sets(draw: st.DrawFn, models: int) -> tuple[np.ndarray, list[np.ndarray]]:
    """Labels 0..K-1 of a test set and `models` models' class probabilities (n, K) on it, K from 2 to 4."""
    n, n_classes = draw(st.integers(1, 30)), draw(st.integers(2, 4))
    labels = draw(arrays(np.int64, n, elements=st.integers(0, n_classes - 1)))
    probs = [class_rows(draw, n, n_classes) for _ in range(models)]
    return labels, probs


def whole_batch(logits: torch.Tensor, targets: torch.Tensor) -> Batch:
    return Batch(len(logits), targets, torch.softmax(logits, dim=-1))


# --------------------------------------------------------------------------- losses


@given(logits_and_targets(), st.floats(0, 1), st.floats(0, 1))
def test_logconf_with_aux_coef_zero_is_xent(case: tuple[torch.Tensor, torch.Tensor], step_frac: float,
                                            warmup_frac: float) -> None:
    logits, targets = case
    batch = whole_batch(logits, targets)
    mixed = logconf(logits, targets, step_frac, batch=batch, aux_coef=0.0, warmup_frac=warmup_frac)
    assert mixed.item() == pytest.approx(xent(logits, targets, step_frac).item(), rel=1e-6, abs=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
@given(case=logits_and_targets(), step_frac=st.floats(0, 1))
def test_every_loss_is_finite_and_non_negative(name: str, case: tuple[torch.Tensor, torch.Tensor],
                                               step_frac: float) -> None:
    logits, targets = case
    batch = whole_batch(logits, targets) if LOSSES[name].needs_batch_probs else None
    value = loss_function(name)(logits, targets, step_frac, batch=batch).item()
    assert np.isfinite(value)
    assert value >= -1e-5  # KL is 0 at its minimum, so allow float rounding below it


@given(logits_and_targets(), st.floats(-3, 3))
def test_xent_is_smallest_when_the_prediction_is_the_target(case: tuple[torch.Tensor, torch.Tensor],
                                                            shift: float) -> None:
    """Logits whose softmax equals the soft target give the least cross-entropy; any shift of the
    first class's logit gives at least as much."""
    _, targets = case
    clipped = targets.clamp(1e-4, 1 - 1e-4)
    clipped = clipped / clipped.sum(dim=1, keepdim=True)
    at_target = torch.log(clipped)
    shifted = at_target.clone()
    shifted[:, 0] += shift
    assert xent(at_target, clipped, 0.0).item() <= xent(shifted, clipped, 0.0).item() + 1e-5
    assert kl(at_target, clipped, 0.0).item() == pytest.approx(0.0, abs=1e-5)


@given(logits_and_targets(min_rows=2), st.integers(1, 11), st.floats(0, 1))
def test_minibatch_shares_add_up_to_the_batch_loss(case: tuple[torch.Tensor, torch.Tensor], cut: int,
                                                   step_frac: float) -> None:
    logits, targets = case
    cut = min(cut, len(logits) - 1)
    for name in ("xent", "kl", "logconf", "window"):
        batch = whole_batch(logits, targets)
        shares = sum(loss_function(name)(logits[part], targets[part], step_frac, batch=batch).item()
                     for part in (slice(0, cut), slice(cut, None)))
        whole = loss_function(name)(logits, targets, step_frac, batch=batch).item()
        assert shares == pytest.approx(whole, rel=1e-5, abs=1e-5), name


# --------------------------------------------------------------------------- metrics


@given(scored_test_sets(models=1))
def test_accuracy_and_auroc_are_in_the_unit_interval(case: tuple[np.ndarray, list[np.ndarray]]) -> None:
    labels, (probs,) = case
    assert 0.0 <= accuracy(probs, labels) <= 1.0
    area = auroc(probs, labels)
    if len(set(labels.tolist())) < 2:
        assert area is None
    else:
        assert area is not None and 0.0 <= area <= 1.0
        assert auroc(-probs, labels) == pytest.approx(1 - area)  # reversing the order swaps the classes


@given(st.floats(0, 1), st.floats(0, 1), st.floats(0, 1))
def test_pgr_is_one_at_the_ceiling_and_zero_at_the_weak_model(student: float, weak: float, ceiling: float) -> None:
    value, reason = pgr(ceiling, weak, ceiling)
    if ceiling > weak:
        assert (value, reason) == (pytest.approx(1.0), None)
        assert pgr(weak, weak, ceiling) == (0.0, None)
        assert gap_recovered(student, weak, ceiling) == pytest.approx((student - weak) / (ceiling - weak))
    else:
        assert value is None and "not above" in reason
        assert np.isnan(gap_recovered(student, weak, ceiling))


@given(scored_test_sets(models=2))
def test_agreement_is_symmetric_and_a_rate(case: tuple[np.ndarray, list[np.ndarray]]) -> None:
    labels, (student, supervisor) = case
    forward, backward = agreement(student, supervisor, labels), agreement(supervisor, student, labels)
    assert forward["agreement"] == pytest.approx(backward["agreement"])
    assert 0.0 <= forward["agreement"] <= 1.0
    assert agreement(student, student, labels)["agreement"] == 1.0


@given(scored_test_sets(models=3), st.integers(0, 2**16))
def test_bootstrap_intervals_are_ordered_and_collapse_for_a_perfect_model(
    case: tuple[np.ndarray, list[np.ndarray]], seed: int
) -> None:
    """Every interval is ordered and within the statistic's range; the accuracy interval of a model
    that is right (or wrong) on every example collapses to its point estimate."""
    labels, (student, weak, ceiling) = case
    intervals = bootstrap_intervals(labels, student, 20, seed, weak=weak, ceiling=ceiling, supervisor=weak)
    for name in ("accuracy_ci", "agreement_ci"):
        low, high = intervals[name]
        assert 0.0 <= low <= high <= 1.0
    perfect = np.eye(student.shape[1])[labels]
    assert bootstrap_intervals(labels, perfect, 20, seed)["accuracy_ci"] == [1.0, 1.0]


@given(arrays(np.float64, st.integers(2, 20), elements=st.floats(-10, 10)), st.integers(0, 2**16))
def test_bootstrap_mean_interval_lies_within_the_values(values: np.ndarray, seed: int) -> None:
    low, high = bootstrap_mean_interval(values, 50, seed)
    assert values.min() - 1e-9 <= low <= high <= values.max() + 1e-9
