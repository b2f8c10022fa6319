"""Accuracy, AUROC, PGR, agreement and the bootstrap, against numbers worked out by hand.

The binary cases give each model's P(label = 1) = p and pass the class probabilities [1 - p, p];
tests/training/test_multiclass.py has the K-class ones."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from w2s.evaluation.metrics import (
    accuracy,
    agreement,
    auroc,
    bootstrap_intervals,
    bootstrap_mean_interval,
    bootstrap_weights,
    gap_recovered,
    paired_accuracy_difference,
    pgr,
    prediction_spread,
    weighted_auroc,
)


def classes(p: object) -> np.ndarray:
    """Binary class probabilities (n, 2), the rows [1 - p, p]."""
    p = np.asarray(p, dtype=float)
    return np.stack([1 - p, p], axis=1)


def test_accuracy_by_hand() -> None:
    probs = np.array([0.9, 0.2, 0.6, 0.4, 0.5])
    labels = np.array([1, 0, 0, 1, 0])
    # predictions (p > 0.5): 1, 0, 1, 0, 0 -> right, right, wrong, wrong, right
    assert accuracy(classes(probs), labels) == pytest.approx(3 / 5)
    assert accuracy(classes([0.51, 0.49]), [1, 0]) == 1.0
    assert accuracy(classes([0.5]), [1]) == 0.0  # exactly 0.5 predicts class 0
    assert isinstance(accuracy(classes(probs), labels), float)


def test_auroc_by_hand() -> None:
    assert auroc(classes([0.1, 0.2, 0.8, 0.9]), [0, 0, 1, 1]) == 1.0
    assert auroc(classes([0.9, 0.8, 0.2, 0.1]), [0, 0, 1, 1]) == 0.0
    # Pairs (positive, negative): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3/4
    assert auroc(classes([0.1, 0.4, 0.35, 0.8]), [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auroc_ties_count_half() -> None:
    # (0.4 vs 0.1) 1, (0.4 vs 0.4) 1/2, (0.8 vs 0.1) 1, (0.8 vs 0.4) 1 -> 3.5 / 4
    assert auroc(classes([0.1, 0.4, 0.4, 0.8]), [0, 0, 1, 1]) == pytest.approx(0.875)
    assert auroc(classes([0.5] * 6), [0, 1, 0, 1, 1, 0]) == pytest.approx(0.5)
    # Ties across and within classes, unsorted input:
    # positives 0.3, 0.3, 0.7; negatives 0.3, 0.1, 0.7
    # 0.3: vs 0.3 1/2, vs 0.1 1, vs 0.7 0 -> 1.5 (twice) ; 0.7: 1 + 1 + 1/2 = 2.5 -> 5.5 / 9
    probs = [0.3, 0.3, 0.1, 0.3, 0.7, 0.7]
    labels = [1, 0, 0, 1, 1, 0]
    assert auroc(classes(probs), labels) == pytest.approx(5.5 / 9)


def brute_force_auroc(probs: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = probs[labels == 1], probs[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise_count_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.integers(0, 5, size=40) / 4  # five distinct values, many ties
    labels = rng.integers(0, 2, size=40)
    assert auroc(classes(probs), labels) == pytest.approx(brute_force_auroc(probs, labels), abs=1e-12)


def test_auroc_undefined_with_one_class() -> None:
    assert auroc(classes([0.1, 0.9, 0.5]), [1, 1, 1]) is None
    assert auroc(classes([0.1, 0.9, 0.5]), [0, 0, 0]) is None


def test_pgr_by_hand() -> None:
    value, reason = pgr(student=0.8, weak=0.6, ceiling=0.9)
    assert value == pytest.approx(2 / 3) and reason is None
    assert pgr(0.9, 0.6, 0.9) == (1.0, None)
    assert pgr(0.6, 0.6, 0.9) == (0.0, None)
    assert pgr(0.5, 0.6, 0.9)[0] == pytest.approx(-1 / 3)  # worse than the supervisor
    assert pgr(1.0, 0.6, 0.9)[0] == pytest.approx(4 / 3)  # better than the ceiling


@pytest.mark.parametrize("weak, ceiling", [(0.7, 0.7), (0.8, 0.7)])
def test_pgr_undefined_when_ceiling_not_above_weak(weak: float, ceiling: float) -> None:
    value, reason = pgr(0.75, weak, ceiling)
    assert value is None
    assert isinstance(reason, str) and "ceiling" in reason and "weak" in reason
    assert f"{ceiling:.4f}" in reason and f"{weak:.4f}" in reason


def test_agreement_by_hand() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    supervisor = np.array([0.9, 0.2, 0.1, 0.7, 0.6, 0.3])  # 1 0 0 1 1 0: right, wrong, right, wrong, right, right
    student = np.array([0.8, 0.9, 0.4, 0.2, 0.3, 0.45])  # 1 1 0 0 0 0: same, diff, same, diff, diff, same
    result = agreement(classes(student), classes(supervisor), labels)
    assert result["agreement"] == pytest.approx(3 / 6)
    # supervisor right on rows 0, 2, 4, 5: same on 0, 2, 5 -> 3/4
    assert result["agreement_supervisor_right"] == pytest.approx(3 / 4)
    # supervisor wrong on rows 1, 3: different on both -> 0
    assert result["agreement_supervisor_wrong"] == pytest.approx(0.0)
    assert set(result) == {"agreement", "agreement_supervisor_right", "agreement_supervisor_wrong"}


def test_agreement_when_the_supervisor_is_never_wrong() -> None:
    labels = np.array([1, 0, 1, 0])
    supervisor = np.array([0.9, 0.1, 0.8, 0.4])
    student = np.array([0.9, 0.6, 0.8, 0.1])
    result = agreement(classes(student), classes(supervisor), labels)
    assert result["agreement"] == pytest.approx(0.75)
    assert result["agreement_supervisor_right"] == pytest.approx(0.75)
    assert result["agreement_supervisor_wrong"] is None


def test_agreement_when_the_supervisor_is_always_wrong() -> None:
    result = agreement(classes([0.9, 0.9]), classes([0.1, 0.9]), [1, 0])
    assert result["agreement"] == pytest.approx(0.5)
    assert result["agreement_supervisor_right"] is None
    assert result["agreement_supervisor_wrong"] == pytest.approx(0.5)


def test_weighted_auroc_by_hand() -> None:
    probs = [0.1, 0.4, 0.35, 0.8]
    labels = [0, 0, 1, 1]
    weights = np.array([
        [1, 1, 1, 1],  # the plain AUROC: 3/4
        [2, 0, 1, 1],  # negatives 0.1, 0.1; positives 0.35, 0.8 beat both -> 4/4
        [1, 1, 2, 1],  # 0.35 twice beats 0.1 only (2 wins), 0.8 beats both (2) -> 4 of 3 x 2 pairs
        [1, 1, 0, 0],  # no positive drawn
    ])
    result = weighted_auroc(probs, labels, weights)
    assert result[:3] == pytest.approx([0.75, 1.0, 4 / 6])
    assert np.isnan(result[3])


@pytest.mark.parametrize("seed", range(3))
def test_weighted_auroc_matches_the_resample_written_out(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.integers(0, 5, size=30) / 4  # many ties within and across classes
    labels = rng.integers(0, 2, size=30)
    weights = bootstrap_weights(30, samples=4, seed=seed)
    for row, value in zip(weights, weighted_auroc(probs, labels, weights)):
        drawn = np.repeat(np.arange(30), row.astype(int))
        assert value == pytest.approx(brute_force_auroc(probs[drawn], labels[drawn]), abs=1e-12)


def test_bootstrap_weights_count_draws() -> None:
    weights = bootstrap_weights(7, samples=50, seed=1)
    assert weights.shape == (50, 7)
    assert (weights.sum(axis=1) == 7).all()
    assert (weights >= 0).all() and (weights == weights.round()).all()
    assert (bootstrap_weights(7, samples=50, seed=1) == weights).all()
    assert (bootstrap_weights(7, samples=50, seed=2) != weights).any()


def test_gap_recovered_elementwise() -> None:
    result = gap_recovered([0.8, 0.5, 0.7, 0.4], [0.6, 0.6, 0.7, 0.5], [0.9, 0.9, 0.7, 0.45])
    assert result[:2] == pytest.approx([2 / 3, -1 / 3])
    assert np.isnan(result[2:]).all()  # ceiling equal to, then below, the weak score


def clear_case(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ceiling always right, weak right on half, student right on three quarters: PGR 0.5."""
    labels = np.tile([0, 1], n // 2)
    right = labels.astype(float) * 0.8 + 0.1  # 0.9 for label 1, 0.1 for label 0
    wrong = 1 - right
    ceiling = right.copy()
    weak = np.where(np.arange(n) % 4 < 2, right, wrong)
    student = np.where(np.arange(n) % 4 < 3, right, wrong)
    return classes(student), classes(weak), classes(ceiling), labels


def test_clear_case_point_estimates() -> None:
    student, weak, ceiling, labels = clear_case()
    accs = [accuracy(p, labels) for p in (student, weak, ceiling)]
    assert accs == [0.75, 0.5, 1.0]
    assert pgr(*accs) == (0.5, None)
    # The ceiling separates the classes completely.
    assert auroc(ceiling, labels) == 1.0


def test_bootstrap_is_reproducible_and_contains_the_estimate() -> None:
    student, weak, ceiling, labels = clear_case()
    a = bootstrap_intervals(labels, student, samples=300, seed=7, weak=weak, ceiling=ceiling, supervisor=weak)
    b = bootstrap_intervals(labels, student, samples=300, seed=7, weak=weak, ceiling=ceiling, supervisor=weak)
    c = bootstrap_intervals(labels, student, samples=300, seed=8, weak=weak, ceiling=ceiling, supervisor=weak)
    assert a == b
    assert a != c
    points = {
        "pgr_ci": 0.5,
        "accuracy_ci": 0.75,
        "auroc_ci": auroc(student, labels),
        "pgr_auroc_ci": pgr(auroc(student, labels), auroc(weak, labels), 1.0)[0],
        **{f"{name}_ci": value for name, value in agreement(student, weak, labels).items()},
    }
    for key, point in points.items():
        low, high = a[key]
        assert low <= point <= high and high - low < 0.4, key
    assert a["pgr_ci_valid_fraction"] == 1.0  # the ceiling is right everywhere, weak on half
    assert a["pgr_auroc_ci_valid_fraction"] == 1.0


def test_paired_resampling_gives_identical_inputs_identical_resamples() -> None:
    student, weak, ceiling, labels = clear_case()
    # Unpaired resamples would give the student and its copy different accuracies, and PGR a spread.
    copy_of_weak = bootstrap_intervals(labels, weak, samples=200, seed=3, weak=weak.copy(), ceiling=ceiling,
                                       supervisor=weak.copy())
    assert copy_of_weak["pgr_ci"] == [0.0, 0.0]
    assert copy_of_weak["pgr_auroc_ci"] == [0.0, 0.0]
    assert copy_of_weak["agreement_ci"] == [1.0, 1.0]
    copy_of_ceiling = bootstrap_intervals(labels, ceiling, samples=200, seed=3, weak=weak, ceiling=ceiling.copy())
    assert copy_of_ceiling["pgr_ci"] == [1.0, 1.0]
    # The student's own intervals do not depend on which other models are resampled beside it.
    alone = bootstrap_intervals(labels, weak, samples=200, seed=3)
    assert alone == {k: copy_of_weak[k] for k in ("accuracy_ci", "auroc_ci")}


def test_bootstrap_pgr_ci_is_none_when_weak_is_about_the_ceiling() -> None:
    n = 200
    labels = np.tile([0, 1], n // 2)
    right = labels.astype(float)
    ceiling = right.copy()
    ceiling[:20] = 1 - ceiling[:20]  # wrong on 20 rows
    weak = ceiling.copy()
    weak[20] = 1 - weak[20]  # ...and weak on one more: gap 1/200
    # The gap is positive only in resamples that draw row 20: 1 - (199/200)^200 = 63% < 95%.
    result = bootstrap_intervals(labels, classes(right), samples=500, seed=0, weak=classes(weak),
                                 ceiling=classes(ceiling))
    assert result["pgr_ci"] is None
    assert 0.5 < result["pgr_ci_valid_fraction"] < 0.75
    assert result["accuracy_ci"] == [1.0, 1.0]

    same = bootstrap_intervals(labels, classes(right), samples=100, seed=0, weak=classes(ceiling),
                               ceiling=classes(ceiling))
    assert same["pgr_ci"] is None and same["pgr_ci_valid_fraction"] == 0.0
    assert same["pgr_auroc_ci"] is None and same["pgr_auroc_ci_valid_fraction"] == 0.0


def test_agreement_interval_is_none_where_the_supervisor_is_never_wrong() -> None:
    student, _, ceiling, labels = clear_case()
    result = bootstrap_intervals(labels, student, samples=100, seed=0, supervisor=ceiling)
    assert result["agreement_supervisor_wrong_ci"] is None
    low, high = result["agreement_supervisor_right_ci"]
    assert low < 0.75 < high  # equal to the student's accuracy, as the supervisor is always right
    assert "pgr_ci" not in result


def test_bootstrap_handles_thousands_of_examples() -> None:
    rng = np.random.default_rng(0)
    labels = rng.integers(0, 2, 3000)
    probs = classes(np.clip(labels * 0.2 + rng.random(3000) * 0.8, 0, 1))
    result = bootstrap_intervals(labels, probs, samples=1000, seed=0)
    low, high = result["auroc_ci"]
    assert low < auroc(probs, labels) < high and high - low < 0.05


def test_seed_interval_needs_two_seeds() -> None:
    assert bootstrap_mean_interval(np.array([0.7]), samples=1000, seed=0) is None
    assert bootstrap_mean_interval(np.array([]), samples=1000, seed=0) is None
    assert bootstrap_mean_interval(np.array([0.4, 0.4]), samples=1000, seed=0) == [0.4, 0.4]


def test_seed_interval_with_three_seeds() -> None:
    # A resample repeats the lowest seed three times with chance 1/27 (3.7%), more than the 2.5% tail,
    # so the percentiles land on the all-lowest and all-highest means: 0.1 and 0.6.
    low, high = bootstrap_mean_interval(np.array([0.2, 0.1, 0.6]), samples=1000, seed=0)
    assert low == pytest.approx(0.1) and high == pytest.approx(0.6)


def test_the_paired_difference_from_xent_by_hand() -> None:
    """Rows 0-3: the student right on 0, 1, 2 and xent on 0, 3: difference 3/4 - 2/4 = 0.25. Every resample
    scores both on the same rows, so a student equal to xent has the interval [0, 0]."""
    labels = np.array([1, 0, 1, 0])
    student = np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    xent = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    result = paired_accuracy_difference(labels, student, xent, 200, 0)
    assert result["vs_xent_accuracy_diff"] == pytest.approx(0.25)
    # Per row the student minus xent is 0, 1, 1, -1, resampled with the run's own bootstrap draws.
    resampled = bootstrap_weights(4, 200, 0) @ np.array([0.0, 1.0, 1.0, -1.0]) / 4
    assert result["vs_xent_accuracy_diff_ci"] == pytest.approx(list(np.percentile(resampled, [2.5, 97.5])))
    assert paired_accuracy_difference(labels, xent, xent, 200, 0)["vs_xent_accuracy_diff_ci"] == [0.0, 0.0]


def test_the_prediction_spread_by_hand() -> None:
    """The student gives class 1 to 3 of 4 rows, the supervisor to 2 of 4: chance agreement 0.25·0.5 + 0.75·0.5."""
    student = np.array([[0.2, 0.8], [0.9, 0.1], [0.4, 0.6], [0.3, 0.7]])
    supervisor = np.array([[0.1, 0.9], [0.2, 0.8], [0.7, 0.3], [0.6, 0.4]])
    assert prediction_spread(student, supervisor) == pytest.approx(
        {"max_predicted_fraction": 0.75, "chance_agreement": 0.5})
    constant = np.tile([0.3, 0.7], (4, 1))
    # A constant answer agrees with its supervisor exactly as often as chance does: kappa 0.
    assert prediction_spread(constant, supervisor) == pytest.approx(
        {"max_predicted_fraction": 1.0, "chance_agreement": 0.5})
