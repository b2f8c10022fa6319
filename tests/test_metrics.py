"""Accuracy, AUROC, PGR, agreement and the bootstrap, against numbers worked out by hand."""

from __future__ import annotations

import itertools

import numpy as np
import pytest

from w2s.metrics import accuracy, agreement, auroc, bootstrap_pgr, pgr


def test_accuracy_by_hand() -> None:
    probs = np.array([0.9, 0.2, 0.6, 0.4, 0.5])
    labels = np.array([1, 0, 0, 1, 0])
    # predictions (p > 0.5): 1, 0, 1, 0, 0 -> right, right, wrong, wrong, right
    assert accuracy(probs, labels) == pytest.approx(3 / 5)
    assert accuracy([0.51, 0.49], [1, 0]) == 1.0
    assert accuracy([0.5], [1]) == 0.0  # exactly 0.5 predicts class 0
    assert isinstance(accuracy(probs, labels), float)


def test_auroc_by_hand() -> None:
    assert auroc([0.1, 0.2, 0.8, 0.9], [0, 0, 1, 1]) == 1.0
    assert auroc([0.9, 0.8, 0.2, 0.1], [0, 0, 1, 1]) == 0.0
    # Pairs (positive, negative): (0.35 > 0.1), (0.35 < 0.4), (0.8 > 0.1), (0.8 > 0.4) -> 3/4
    assert auroc([0.1, 0.4, 0.35, 0.8], [0, 0, 1, 1]) == pytest.approx(0.75)


def test_auroc_ties_count_half() -> None:
    # (0.4 vs 0.1) 1, (0.4 vs 0.4) 1/2, (0.8 vs 0.1) 1, (0.8 vs 0.4) 1 -> 3.5 / 4
    assert auroc([0.1, 0.4, 0.4, 0.8], [0, 0, 1, 1]) == pytest.approx(0.875)
    assert auroc([0.5] * 6, [0, 1, 0, 1, 1, 0]) == pytest.approx(0.5)
    # Ties across and within classes, unsorted input:
    # positives 0.3, 0.3, 0.7; negatives 0.3, 0.1, 0.7
    # 0.3: vs 0.3 1/2, vs 0.1 1, vs 0.7 0 -> 1.5 (twice) ; 0.7: 1 + 1 + 1/2 = 2.5 -> 5.5 / 9
    probs = [0.3, 0.3, 0.1, 0.3, 0.7, 0.7]
    labels = [1, 0, 0, 1, 1, 0]
    assert auroc(probs, labels) == pytest.approx(5.5 / 9)


def brute_force_auroc(probs: np.ndarray, labels: np.ndarray) -> float:
    pos, neg = probs[labels == 1], probs[labels == 0]
    wins = sum(1.0 if p > n else 0.5 if p == n else 0.0 for p, n in itertools.product(pos, neg))
    return wins / (len(pos) * len(neg))


@pytest.mark.parametrize("seed", range(5))
def test_auroc_matches_pairwise_count_with_many_ties(seed: int) -> None:
    rng = np.random.default_rng(seed)
    probs = rng.integers(0, 5, size=40) / 4  # five distinct values, many ties
    labels = rng.integers(0, 2, size=40)
    assert auroc(probs, labels) == pytest.approx(brute_force_auroc(probs, labels), abs=1e-12)


def test_auroc_undefined_with_one_class() -> None:
    assert auroc([0.1, 0.9, 0.5], [1, 1, 1]) is None
    assert auroc([0.1, 0.9, 0.5], [0, 0, 0]) is None


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
    result = agreement(student, supervisor, labels)
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
    result = agreement(student, supervisor, labels)
    assert result["agreement"] == pytest.approx(0.75)
    assert result["agreement_supervisor_right"] == pytest.approx(0.75)
    assert result["agreement_supervisor_wrong"] is None


def test_agreement_when_the_supervisor_is_always_wrong() -> None:
    result = agreement([0.9, 0.9], [0.1, 0.9], [1, 0])
    assert result["agreement"] == pytest.approx(0.5)
    assert result["agreement_supervisor_right"] is None
    assert result["agreement_supervisor_wrong"] == pytest.approx(0.5)


def clear_case(n: int = 400) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Ceiling always right, weak right on half, student right on three quarters: PGR 0.5."""
    labels = np.tile([0, 1], n // 2)
    right = labels.astype(float) * 0.8 + 0.1  # 0.9 for label 1, 0.1 for label 0
    wrong = 1 - right
    ceiling = right.copy()
    weak = np.where(np.arange(n) % 4 < 2, right, wrong)
    student = np.where(np.arange(n) % 4 < 3, right, wrong)
    return student, weak, ceiling, labels


def test_clear_case_point_estimates() -> None:
    student, weak, ceiling, labels = clear_case()
    accs = [accuracy(p, labels) for p in (student, weak, ceiling)]
    assert accs == [0.75, 0.5, 1.0]
    assert pgr(*accs) == (0.5, None)


def test_bootstrap_is_reproducible_and_contains_the_estimate() -> None:
    student, weak, ceiling, labels = clear_case()
    a = bootstrap_pgr(student, weak, ceiling, labels, samples=300, seed=7)
    b = bootstrap_pgr(student, weak, ceiling, labels, samples=300, seed=7)
    c = bootstrap_pgr(student, weak, ceiling, labels, samples=300, seed=8)
    assert a == b
    assert a != c
    lo, hi = a["pgr_ci"]
    assert lo < 0.5 < hi and hi - lo < 0.4
    lo, hi = a["accuracy_ci"]
    assert lo < 0.75 < hi and hi - lo < 0.2
    assert a["pgr_ci_valid_fraction"] == 1.0  # the ceiling is right everywhere, weak on half


def test_bootstrap_pgr_ci_is_none_when_weak_is_about_the_ceiling() -> None:
    n = 200
    labels = np.tile([0, 1], n // 2)
    right = labels.astype(float)
    ceiling = right.copy()
    ceiling[:20] = 1 - ceiling[:20]  # wrong on 20 rows
    weak = ceiling.copy()
    weak[20] = 1 - weak[20]  # ...and weak on one more: gap 1/200
    # The gap is positive only in resamples that draw row 20: 1 - (199/200)^200 = 63% < 95%.
    result = bootstrap_pgr(right, weak, ceiling, labels, samples=500, seed=0)
    assert result["pgr_ci"] is None
    assert 0.5 < result["pgr_ci_valid_fraction"] < 0.75
    assert result["accuracy_ci"] == [1.0, 1.0]

    same = bootstrap_pgr(right, ceiling, ceiling, labels, samples=100, seed=0)
    assert same["pgr_ci"] is None and same["pgr_ci_valid_fraction"] == 0.0


def test_bootstrap_accuracy_matches_the_paired_resampling_of_bootstrap_pgr() -> None:
    from w2s.metrics import bootstrap_accuracy, bootstrap_pgr

    rng = np.random.default_rng(3)
    labels = rng.integers(0, 2, 200)
    probs = np.where(rng.random(200) < 0.8, labels, 1 - labels).astype(float)
    interval = bootstrap_accuracy(probs, labels, samples=300, seed=5)
    assert interval == bootstrap_pgr(probs, probs, probs, labels, samples=300, seed=5)["accuracy_ci"]
    point = float(np.mean((probs > 0.5) == labels))
    assert interval[0] < point < interval[1]
    assert interval[1] - interval[0] < 0.15
