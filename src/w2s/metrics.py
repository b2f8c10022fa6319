"""Accuracy, AUROC, PGR and student-supervisor agreement, with paired bootstrap intervals."""

from __future__ import annotations

from typing import Any

import numpy as np


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean((np.asarray(probs) > 0.5) == np.asarray(labels)))


def auroc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """Mann-Whitney AUROC with ties counted as half; None when a class is absent."""
    probs, labels = np.asarray(probs, dtype=float), np.asarray(labels)
    positives, negatives = probs[labels == 1], probs[labels == 0]
    if len(positives) == 0 or len(negatives) == 0:
        return None
    order = np.argsort(np.concatenate([negatives, positives]), kind="mergesort")
    values = np.concatenate([negatives, positives])[order]
    ranks = np.empty(len(values))
    # Average ranks over ties.
    _, first, counts = np.unique(values, return_index=True, return_counts=True)
    for start, count in zip(first, counts):
        ranks[start : start + count] = start + (count + 1) / 2
    positive_ranks = ranks[np.argsort(order)][len(negatives) :]
    u = positive_ranks.sum() - len(positives) * (len(positives) + 1) / 2
    return float(u / (len(positives) * len(negatives)))


def pgr(student: float, weak: float, ceiling: float) -> tuple[float | None, str | None]:
    """Performance gap recovered, or None with the reason it is undefined."""
    if ceiling <= weak:
        return None, f"ceiling ({ceiling:.4f}) is not above the weak supervisor ({weak:.4f})"
    return (student - weak) / (ceiling - weak), None


def agreement(student_probs: np.ndarray, supervisor_probs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """How often the student predicts what its supervisor predicts, split by the supervisor's correctness."""
    student = np.asarray(student_probs) > 0.5
    supervisor = np.asarray(supervisor_probs) > 0.5
    same = student == supervisor
    right = supervisor == np.asarray(labels)

    def mean(mask: np.ndarray) -> float | None:
        return float(same[mask].mean()) if mask.any() else None

    return {
        "agreement": float(same.mean()),
        "agreement_supervisor_right": mean(right),
        "agreement_supervisor_wrong": mean(~right),
    }


def _resampled_accuracies(probs: np.ndarray, labels: np.ndarray, samples: int, seed: int) -> np.ndarray:
    """Accuracy on each of `samples` bootstrap resamples of the test set; the same seed draws the
    same resamples, so models evaluated with one seed are paired example by example."""
    correct = (np.asarray(probs) > 0.5) == np.asarray(labels)
    draws = np.random.default_rng(seed).integers(0, len(correct), size=(samples, len(correct)))
    return correct[draws].mean(axis=1)


def _interval(values: np.ndarray) -> list[float]:
    return [float(x) for x in np.percentile(values, [2.5, 97.5])]


def bootstrap_accuracy(probs: np.ndarray, labels: np.ndarray, samples: int, seed: int) -> list[float]:
    """Percentile 95% interval of accuracy over resampled test examples."""
    return _interval(_resampled_accuracies(probs, labels, samples, seed))


def bootstrap_pgr(
    student: np.ndarray, weak: np.ndarray, ceiling: np.ndarray, labels: np.ndarray, samples: int, seed: int
) -> dict[str, Any]:
    """Percentile 95% intervals, resampling test examples jointly for all three models."""
    acc = {name: _resampled_accuracies(p, labels, samples, seed)
           for name, p in (("student", student), ("weak", weak), ("ceiling", ceiling))}
    gap = acc["ceiling"] - acc["weak"]
    valid = gap > 0
    result: dict[str, Any] = {
        "accuracy_ci": _interval(acc["student"]),
        "pgr_ci": None,
        "pgr_ci_valid_fraction": float(valid.mean()),
    }
    if valid.mean() >= 0.95:
        result["pgr_ci"] = _interval((acc["student"][valid] - acc["weak"][valid]) / gap[valid])
    return result
