"""K > 2 classes: every loss, the multinomial probe and the metrics against hand-computed values and
scikit-learn's multinomial logistic regression. The binary cases are in test_losses.py, test_probe.py and
test_metrics.py."""

from __future__ import annotations

import itertools
import math

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.linear_model import LogisticRegression

from w2s.evaluation.metrics import (MAX_AUROC_INTERVAL_CLASSES, accuracy, agreement, auroc, auroc_kind,
                                    bootstrap_intervals, bootstrap_weights, weighted_macro_auroc)
from w2s.training.loss_registry import LOSSES, loss_function
from w2s.training.losses import Batch, entropy, kl, logconf, product, window, xent, xent_hard
from w2s.training.probe import choose_l2, final_sweep, fit_probe
from w2s.training.settings import ProbeSettings

# --------------------------------------------------------------------------- losses

# softmax rows: [e, 1, 1] / (e + 2) = [0.5761, 0.2119, 0.2119]; [1, e², 1] / (e² + 2) = [0.1065, 0.7870, 0.1065];
# and the uniform row [1/3, 1/3, 1/3], whose argmax is class 0 (lowest index among ties).
LOGITS = [[1.0, 0.0, 0.0], [0.0, 2.0, 0.0], [0.0, 0.0, 0.0]]
TARGETS = [[0.5, 0.3, 0.2], [0.1, 0.1, 0.8], [0.2, 0.5, 0.3]]
E = math.e
PROBS = [[E / (E + 2), 1 / (E + 2), 1 / (E + 2)], [1 / (E**2 + 2), E**2 / (E**2 + 2), 1 / (E**2 + 2)], [1 / 3] * 3]


def hand_ce(rows: list[list[float]]) -> list[float]:
    """-sum_k t_k log p_k of every row of PROBS against `rows`."""
    return [-sum(t * math.log(p) for t, p in zip(target, probs)) for target, probs in zip(rows, PROBS)]


def value(loss_fn, targets: list[list[float]] = TARGETS, **kw) -> float:
    return loss_fn(torch.tensor(LOGITS), torch.tensor(targets), 1.0, **kw).item()


def test_xent_and_kl_by_hand() -> None:
    assert value(xent) == pytest.approx(sum(hand_ce(TARGETS)) / 3, rel=1e-6)
    # Row 0 by hand: -(0.5·log 0.5761 + 0.3·log 0.2119 + 0.2·log 0.2119) = 0.2757 + 0.4654 + 0.3103
    assert hand_ce(TARGETS)[0] == pytest.approx(1.0514, abs=1e-4)
    entropies = [-sum(t * math.log(t) for t in row) for row in TARGETS]
    assert value(kl) == pytest.approx((sum(hand_ce(TARGETS)) - sum(entropies)) / 3, rel=1e-5)


def test_xent_hard_takes_the_argmax_of_the_targets_and_the_lowest_class_among_ties() -> None:
    # argmax of the targets: 0, 2, 1
    expected = -(math.log(PROBS[0][0]) + math.log(PROBS[1][2]) + math.log(PROBS[2][1])) / 3
    assert value(xent_hard) == pytest.approx(expected, rel=1e-6)
    tied = [[0.4, 0.4, 0.2], [0.1, 0.45, 0.45], [0.2, 0.5, 0.3]]  # -> classes 0, 1, 1
    expected = -(math.log(PROBS[0][0]) + math.log(PROBS[1][1]) + math.log(PROBS[2][1])) / 3
    assert value(xent_hard, tied) == pytest.approx(expected, rel=1e-6)


def test_logconf_hardens_at_the_students_argmax() -> None:
    # The student's argmax: 0, 1 and 0 (the uniform row's tie); at step_frac 1 the mix is half each.
    hard = [[1, 0, 0], [0, 1, 0], [1, 0, 0]]
    mixed = [[0.5 * t + 0.5 * h for t, h in zip(tr, hr)] for tr, hr in zip(TARGETS, hard)]
    logits, targets = torch.tensor(LOGITS), torch.tensor(TARGETS)
    batch = Batch(3, targets, torch.softmax(logits, dim=-1))
    assert logconf(logits, targets, 1.0, batch=batch).item() == pytest.approx(sum(hand_ce(mixed)) / 3, rel=1e-6)
    # Not the binary form's prior: the same rows under any batch prior harden alike.
    skewed = Batch(3, torch.tensor([[0.0, 0.0, 1.0]] * 3), torch.softmax(logits, dim=-1))
    assert logconf(logits, targets, 1.0, batch=skewed).item() == pytest.approx(sum(hand_ce(mixed)) / 3, rel=1e-6)


def test_product_by_hand() -> None:
    q = [[t * p for t, p in zip(tr, pr)] for tr, pr in zip(TARGETS, PROBS)]
    q = [[v / sum(row) for v in row] for row in q]
    assert value(product) == pytest.approx(sum(hand_ce(q)) / 3, rel=1e-6)


def test_entropy_by_hand() -> None:
    student_entropy = [-sum(p * math.log(p) for p in row) for row in PROBS]
    expected = (0.5 * sum(hand_ce(TARGETS)) + 0.5 * sum(student_entropy)) / 3
    assert value(entropy) == pytest.approx(expected, rel=1e-6)


def test_window_keeps_rows_whose_top_class_is_below_half_plus_radius() -> None:
    ce = hand_ce(TARGETS)
    # max p: 0.576 (in at 0.65), 0.787 (out), 1/3 (in)
    assert value(window) == pytest.approx((ce[0] + ce[2]) / 3, rel=1e-6)
    # radius 0 keeps the uniform row, whose top class has less than half the probability
    assert value(window, radius=0.0) == pytest.approx(ce[2] / 3, rel=1e-6)


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_loss_pulls_a_k_class_student_with_a_gradient_whose_rows_sum_to_zero(name: str) -> None:
    """Softmax logits: shifting a row's logits changes nothing, so each row's gradient sums to 0."""
    logits = torch.tensor(LOGITS, requires_grad=True)
    targets = torch.tensor(TARGETS)
    batch = Batch(3, targets, torch.softmax(logits.detach(), dim=-1))
    loss_function(name)(logits, targets, 1.0, batch=batch).backward()
    assert logits.grad.abs().max() > 1e-3
    torch.testing.assert_close(logits.grad.sum(dim=1), torch.zeros(3), atol=1e-6, rtol=0)


# --------------------------------------------------------------------------- the multinomial probe

N, D = 300, 6


def noisy_data(n_classes: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Labels drawn from a softmax of linear scores: noisy, not separable."""
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)) + 0.3
    scores = x @ rng.normal(size=(D, n_classes))
    probs = np.exp(scores - scores.max(axis=1, keepdims=True))
    probs /= probs.sum(axis=1, keepdims=True)
    return x, np.array([rng.choice(n_classes, p=row) for row in probs])


def sklearn_fit(x: np.ndarray, labels: np.ndarray, l2: float, weights: np.ndarray | None = None) -> LogisticRegression:
    # lbfgs with K > 2 classes is multinomial; sum of weights = N, so C = 1 / (N·λ) (see test_probe.py).
    return LogisticRegression(C=1 / (N * l2), tol=1e-10, max_iter=100_000).fit(x, labels, sample_weight=weights)


SETTINGS = ProbeSettings((1e-3,), tolerance=1e-8, max_iter=2000, max_rounds=50)


@pytest.mark.parametrize("n_classes", [3, 4])
@pytest.mark.parametrize("l2", [1e-3, 1e-1])
def test_xent_probe_is_scikit_learns_multinomial_logistic_regression(n_classes: int, l2: float) -> None:
    x, labels = noisy_data(n_classes)
    fit = fit_probe(torch.tensor(x), np.eye(n_classes)[labels], "xent", {}, l2, SETTINGS)
    reference = sklearn_fit(x, labels, l2)
    assert fit.converged and fit.n_classes == n_classes and fit.weight.shape == (D, n_classes)
    np.testing.assert_allclose(fit.weight.numpy(), reference.coef_.T, atol=1e-5, rtol=0)
    # The intercepts are defined up to a common shift; both solutions are centred, compared centred.
    bias = fit.bias.numpy()
    np.testing.assert_allclose(bias - bias.mean(), reference.intercept_ - reference.intercept_.mean(), atol=1e-5)
    probs = fit.probs(torch.tensor(x))
    np.testing.assert_allclose(probs, reference.predict_proba(x), atol=1e-5, rtol=0)
    assert (probs.argmax(axis=1) == reference.predict(x)).all()


def test_k_class_soft_labels_are_scikit_learn_on_rows_repeated_once_per_class_and_weighted() -> None:
    x, _ = noisy_data(3, seed=1)
    soft = np.random.default_rng(2).dirichlet(np.ones(3), size=N)
    fit = fit_probe(torch.tensor(x), soft, "xent", {}, 1e-2, SETTINGS)
    reference = sklearn_fit(np.concatenate([x] * 3), np.repeat(np.arange(3), N), 1e-2, soft.T.ravel())
    np.testing.assert_allclose(fit.weight.numpy(), reference.coef_.T, atol=1e-5, rtol=0)
    p = reference.predict_proba(x)
    assert fit.loss == pytest.approx(-np.mean((soft * np.log(p)).sum(axis=1)), abs=1e-7)


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_fits_a_three_class_probe(loss: str) -> None:
    x, labels = noisy_data(3, seed=4)
    soft = 0.7 * np.eye(3)[labels] + 0.1
    fit = fit_probe(torch.tensor(x), soft, loss, {}, 1e-2, ProbeSettings((1e-2,), 1e-6, 1000, 10))
    probs = fit.probs(torch.tensor(x))
    assert probs.shape == (N, 3) and np.allclose(probs.sum(axis=1), 1)
    assert np.isfinite(fit.loss) and (probs.argmax(axis=1) == labels).mean() > 0.6
    if loss == "logconf":
        assert fit.converged and fit.rounds >= 2  # argmax-hardened self-predictions differ from the xent start


def test_soft_labels_must_be_rows_of_class_probabilities() -> None:
    with pytest.raises(ValueError, match=r"shape \(n, K\) with K >= 2.*got shape \(5,\).*rows \[1 - p, p\]"):
        fit_probe(torch.zeros(5, 2), np.full(5, 0.5))


def test_the_head_state_gives_the_probes_logits_in_an_nn_linear() -> None:
    x, labels = noisy_data(3)
    fit = fit_probe(torch.tensor(x), np.eye(3)[labels], "xent", {}, 1e-2, SETTINGS)
    head = torch.nn.Linear(D, 3)
    head.load_state_dict(fit.head_state())
    features = torch.tensor(x, dtype=torch.float32)
    with torch.no_grad():
        np.testing.assert_allclose(torch.softmax(head(features), -1).numpy(), fit.probs(features), atol=1e-5)


def test_choose_l2_scores_by_argmax_and_maps_the_weights_back_to_the_raw_features() -> None:
    x, labels = noisy_data(3)
    x = x * np.array([1, 10, 100, 1, 1, 1]) + 5  # scales the standardisation must undo
    x[:, 0] += 8 * labels  # a wide margin: both strengths classify the held-out rows perfectly
    held = np.arange(250, N)
    points, chosen = choose_l2(torch.tensor(x), np.eye(3)[labels], held, labels[held], "xent", {},
                               ProbeSettings((1e-4, 1e-3), 1e-8, 2000, 5))
    assert [p.holdout_score for p in points] == [1.0, 1.0] and chosen == 1
    standardised = (x - x.mean(0)) / x.std(0, ddof=1)
    direct = fit_probe(torch.tensor(standardised), np.eye(3)[labels], "xent", {}, 1e-3, SETTINGS)
    np.testing.assert_allclose(points[1].fit.probs(torch.tensor(x)), direct.probs(torch.tensor(standardised)),
                               atol=1e-6)


def test_final_sweep_holds_one_array_of_class_probabilities_per_row(tmp_path) -> None:
    probs = np.array([[0.2, 0.5, 0.3], [0.6, 0.3, 0.1]])
    sweep = final_sweep(pd.DataFrame({"id": ["a", "b"]}), probs)
    assert list(sweep.columns) == ["l2", "chosen", "id", "probs"]
    sweep.to_parquet(tmp_path / "sweep.parquet", index=False)
    read = pd.read_parquet(tmp_path / "sweep.parquet")
    assert read["l2"].isna().all() and read["chosen"].all() and read["id"].tolist() == ["a", "b"]
    np.testing.assert_array_equal(np.stack(read["probs"].to_list()), probs)
    with pytest.raises(ValueError, match=r"final_sweep needs class probabilities of shape \(2, K\)"):
        final_sweep(pd.DataFrame({"id": ["a", "b"]}), np.array([0.2, 0.6]))


# --------------------------------------------------------------------------- metrics

STUDENT = np.array([[0.7, 0.2, 0.1], [0.2, 0.5, 0.3], [0.1, 0.3, 0.6], [0.4, 0.4, 0.2], [0.3, 0.3, 0.4]])
LABELS = np.array([0, 1, 2, 1, 0])


def test_accuracy_takes_the_argmax_and_the_lowest_class_among_ties() -> None:
    # predictions 0, 1, 2, 0 (tie of 0 and 1), 2: right, right, right, wrong, wrong
    assert accuracy(STUDENT, LABELS) == pytest.approx(3 / 5)
    with pytest.raises(ValueError, match=r"shape \(n, K\) with K >= 2.*got shape \(2,\)"):
        accuracy(np.array([0.4, 0.6]), [0, 1])


def test_macro_one_vs_rest_auroc_by_hand() -> None:
    # class 0: positives 0.7, 0.3 against 0.2, 0.1, 0.4 -> 3 + 2 = 5/6
    # class 1: positives 0.5, 0.4 against 0.2, 0.3, 0.3 -> 6/6; class 2: 0.6 against 0.1, 0.3, 0.2, 0.4 -> 4/4
    assert auroc(STUDENT, LABELS) == pytest.approx((5 / 6 + 1 + 1) / 3)
    # Without class 2 among the labels it has no positives and is left out of the mean:
    # class 1: positives 0.5, 0.3, 0.4 against 0.2, 0.3 -> 2 + 1.5 + 2 = 5.5/6
    assert auroc(STUDENT, np.array([0, 1, 1, 1, 0])) == pytest.approx((5 / 6 + 5.5 / 6) / 2)
    assert auroc(STUDENT, np.array([2, 2, 2, 2, 2])) is None


def test_auroc_kind_names_what_auroc_computes() -> None:
    assert auroc_kind(2) == "AUROC"
    assert auroc_kind(3) == auroc_kind(1000) == "macro one-vs-rest AUROC"


def test_agreement_by_argmax() -> None:
    supervisor = np.array([[0.1, 0.8, 0.1], [0.2, 0.6, 0.2], [0.3, 0.3, 0.4], [0.5, 0.25, 0.25], [0.6, 0.2, 0.2]])
    # supervisor 1, 1, 2, 0, 0 (right on rows 1, 2, 4); student 0, 1, 2, 0, 2 (same on rows 1, 2, 3)
    result = agreement(STUDENT, supervisor, LABELS)
    assert result == {"agreement": pytest.approx(3 / 5), "agreement_supervisor_right": pytest.approx(2 / 3),
                      "agreement_supervisor_wrong": pytest.approx(1 / 2)}


def brute_force_macro_auroc(probs: np.ndarray, labels: np.ndarray) -> float:
    areas = []
    for k in range(probs.shape[1]):
        pos, neg = probs[labels == k, k], probs[labels != k, k]
        if len(pos) and len(neg):
            wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
            areas.append(wins / (len(pos) * len(neg)))
    return float(np.mean(areas)) if areas else math.nan


@pytest.mark.parametrize("seed", range(3))
def test_weighted_macro_auroc_matches_the_resample_written_out(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.dirichlet(np.ones(4), size=25).round(1)  # ties within and across classes
    labels = rng.integers(0, 4, size=25)
    weights = bootstrap_weights(25, samples=5, seed=seed)
    for row, area in zip(weights, weighted_macro_auroc(probs, labels, weights)):
        drawn = np.repeat(np.arange(25), row.astype(int))
        assert area == pytest.approx(brute_force_macro_auroc(probs[drawn], labels[drawn]), abs=1e-12)


def k_class_case(n_classes: int, n: int = 300) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ceiling always right, weak right on half the rows, student on three quarters (PGR 0.5)."""
    labels = np.arange(n) % n_classes
    right = np.full((n, n_classes), 0.1 / (n_classes - 1))
    right[np.arange(n), labels] = 0.9
    wrong = np.roll(right, 1, axis=1)
    position = (np.arange(n) // n_classes) % 4
    student = np.where((position < 3)[:, None], right, wrong)
    weak = np.where((position < 2)[:, None], right, wrong)
    return student, weak, right, labels


def test_k_class_bootstrap_intervals_contain_their_estimates() -> None:
    student, weak, ceiling, labels = k_class_case(3)
    result = bootstrap_intervals(labels, student, 300, 0, weak=weak, ceiling=ceiling, supervisor=weak)
    assert accuracy(student, labels) == 0.75 and accuracy(weak, labels) == 0.5
    points = {"accuracy_ci": 0.75, "pgr_ci": 0.5, "auroc_ci": auroc(student, labels),
              "pgr_auroc_ci": (auroc(student, labels) - auroc(weak, labels)) / (1 - auroc(weak, labels)),
              **{f"{name}_ci": rate for name, rate in agreement(student, weak, labels).items()}}
    for key, point in points.items():
        low, high = result[key]
        assert low <= point <= high and high - low < 0.4, key
    assert result["pgr_auroc_ci_valid_fraction"] == 1.0


def test_auroc_intervals_stop_above_the_class_limit() -> None:
    at_limit = k_class_case(MAX_AUROC_INTERVAL_CLASSES, n=400)
    above = k_class_case(MAX_AUROC_INTERVAL_CLASSES + 1, n=420)
    kept = bootstrap_intervals(at_limit[3], at_limit[0], 50, 0, weak=at_limit[1], ceiling=at_limit[2])
    dropped = bootstrap_intervals(above[3], above[0], 50, 0, weak=above[1], ceiling=above[2])
    assert kept["auroc_ci"] is not None and kept["pgr_auroc_ci"] is not None
    assert dropped["auroc_ci"] is None and dropped["pgr_auroc_ci"] is None
    assert dropped["pgr_auroc_ci_valid_fraction"] is None
    assert set(dropped) == set(kept)
    low, high = dropped["pgr_ci"]
    assert low <= 0.5 <= high
