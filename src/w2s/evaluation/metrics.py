"""Accuracy, AUROC, PGR and student-supervisor agreement, with paired bootstrap intervals.

Every model's predictions are class probabilities of shape (n, K), K >= 2, and labels are class
indices 0..K-1. A prediction is the argmax, the lowest class among ties: for K = 2 class 1 exactly
when p1 > 0.5. AUROC is the Mann-Whitney AUROC of column 1 for K = 2 and the macro one-vs-rest AUROC
for K > 2.

A bootstrap resample is held as weights: how many times each test example was drawn. Every
statistic is then a weighted sum over the test set, computed for all resamples at once; the point
estimates of AUROC and agreement are the same computation with every weight 1.
"""

from __future__ import annotations

import re
from typing import Any

import numpy as np

# An interval is reported only when the statistic is defined in at least this share of resamples.
MIN_DEFINED_FRACTION = 0.95
# Above this many classes the bootstrap leaves out the AUROC intervals: each resample costs one binary
# AUROC per class, K times the binary bootstrap, and K = 1000 (ImageNet) would take minutes per run.
MAX_AUROC_INTERVAL_CLASSES = 20


def _class_probs(probs: np.ndarray) -> np.ndarray:
    values = np.asarray(probs, dtype=float)
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"metrics need class probabilities of shape (n, K) with K >= 2, one row per example; got "
                         f"shape {values.shape} (for P(label = 1) = p give the rows [1 - p, p])")
    return values


def predicted_classes(probs: np.ndarray) -> np.ndarray:
    """The argmax of every row of (n, K) class probabilities, the lowest class among ties."""
    return _class_probs(probs).argmax(axis=1)


def accuracy(probs: np.ndarray, labels: np.ndarray) -> float:
    return float(np.mean(predicted_classes(probs) == np.asarray(labels)))


def auroc_kind(n_classes: int) -> str:
    """What `auroc` computes for `n_classes` classes, to label it in reports."""
    return "AUROC" if n_classes == 2 else "macro one-vs-rest AUROC"


def auroc(probs: np.ndarray, labels: np.ndarray) -> float | None:
    """K = 2: Mann-Whitney AUROC of column 1 with ties counted as half; None when a class is absent.
    K > 2: the mean over classes of the binary AUROC of column k against labels == k, over the classes
    with both positives and negatives; None when there is none."""
    return _scalar(weighted_macro_auroc(probs, labels, np.ones((1, len(labels))))[0])


def weighted_macro_auroc(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """`auroc` for each row of per-example weights; NaN where it is undefined.

    K = 2: weighted_auroc of column 1. K > 2: per row the mean of each class's one-vs-rest
    weighted_auroc over the classes it defines, those the row gives positive and negative weight.
    """
    probs, labels = _class_probs(probs), np.asarray(labels)
    if probs.shape[1] == 2:
        return weighted_auroc(probs[:, 1], labels, weights)
    per_class = np.stack([weighted_auroc(probs[:, k], (labels == k).astype(int), weights)
                          for k in range(probs.shape[1])])
    defined = ~np.isnan(per_class)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(defined.any(axis=0), np.where(defined, per_class, 0).sum(axis=0) / defined.sum(axis=0), np.nan)


def weighted_auroc(probs: np.ndarray, labels: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Binary AUROC of scores `probs` (n,) against labels 0/1 for each row of per-example weights; NaN
    where a row gives a class no weight.

    Negatives are sorted once; a running sum of their weights gives, for each positive, the
    negative weight scored strictly below it and that plus its ties, whose mean counts ties as
    half. Each row then costs a few passes over the examples, with no sort per resample.
    """
    probs = np.asarray(probs, dtype=float)
    weights = np.asarray(weights, dtype=float)
    positive = np.asarray(labels) == 1
    negatives = np.flatnonzero(~positive)
    negatives = negatives[np.argsort(probs[negatives], kind="stable")]
    positives = np.flatnonzero(positive)
    negative_weight_below = np.zeros((len(weights), len(negatives) + 1))
    np.cumsum(weights[:, negatives], axis=1, out=negative_weight_below[:, 1:])
    negative_probs = probs[negatives]
    strictly_below = np.searchsorted(negative_probs, probs[positives], "left")
    below_or_tied = np.searchsorted(negative_probs, probs[positives], "right")
    beaten = (negative_weight_below[:, strictly_below] + negative_weight_below[:, below_or_tied]) / 2
    positive_weights = weights[:, positives]
    wins = np.einsum("ij,ij->i", positive_weights, beaten)
    pairs = positive_weights.sum(axis=1) * negative_weight_below[:, -1]
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(pairs > 0, wins / pairs, np.nan)


def pgr(student: float, weak: float, ceiling: float) -> tuple[float | None, str | None]:
    """Performance gap recovered, or None with the reason it is undefined."""
    if ceiling <= weak:
        return None, f"ceiling ({ceiling:.4f}) is not above the weak supervisor ({weak:.4f})"
    return (student - weak) / (ceiling - weak), None


def gap_recovered(student: np.ndarray, weak: np.ndarray, ceiling: np.ndarray) -> np.ndarray:
    """PGR elementwise, NaN wherever the ceiling is not above the weak score (as `pgr` leaves it undefined)."""
    student, weak, ceiling = (np.asarray(x, dtype=float) for x in (student, weak, ceiling))
    gap = ceiling - weak
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(gap > 0, (student - weak) / gap, np.nan)


def agreement(student_probs: np.ndarray, supervisor_probs: np.ndarray, labels: np.ndarray) -> dict[str, float | None]:
    """How often the student predicts what its supervisor predicts, split by the supervisor's correctness."""
    rates = _agreement_rates(student_probs, supervisor_probs, labels, np.ones((1, len(labels))))
    return {name: _scalar(values[0]) for name, values in rates.items()}


def _agreement_rates(student_probs: np.ndarray, supervisor_probs: np.ndarray, labels: np.ndarray,
                     weights: np.ndarray) -> dict[str, np.ndarray]:
    return _answer_agreement_rates(predicted_classes(student_probs), predicted_classes(supervisor_probs), labels,
                                   weights)


def _answer_agreement_rates(student: np.ndarray, supervisor: np.ndarray, labels: np.ndarray,
                            weights: np.ndarray) -> dict[str, np.ndarray]:
    """The agreement rates of predicted classes or of normalised generated answers."""
    same = student == supervisor
    right = supervisor == np.asarray(labels)
    return {
        "agreement": _rate(weights, same),
        "agreement_supervisor_right": _rate(weights, same, among=right),
        "agreement_supervisor_wrong": _rate(weights, same, among=~right),
    }


def _rate(weights: np.ndarray, hits: np.ndarray, among: np.ndarray | None = None) -> np.ndarray:
    """Weighted share of `hits` among the examples `among` selects, per weight row; NaN where none are selected."""
    among = np.ones(len(hits), dtype=bool) if among is None else among
    with np.errstate(invalid="ignore", divide="ignore"):
        return (weights @ (hits & among)) / (weights @ among)


def bootstrap_weights(n: int, samples: int, seed: int) -> np.ndarray:
    """How often each of n examples is drawn in each of `samples` resamples with replacement.

    The same seed draws the same resamples, so every model scored on one test set with one seed is
    resampled example by example alike: the intervals of a student, its weak model and its
    ceiling are paired.
    """
    draws = np.random.default_rng(seed).integers(0, n, size=(samples, n))
    flat = (draws + n * np.arange(samples)[:, None]).ravel()
    return np.bincount(flat, minlength=samples * n).reshape(samples, n).astype(float)


def bootstrap_intervals(labels: np.ndarray, student: np.ndarray, samples: int, seed: int,
                        weak: np.ndarray | None = None, ceiling: np.ndarray | None = None,
                        supervisor: np.ndarray | None = None) -> dict[str, Any]:
    """Percentile 95% intervals over test examples resampled jointly for every model given.

    Every model's probabilities are (n, K). Always accuracy_ci and auroc_ci of `student`; with `weak`
    and `ceiling` also pgr_ci and pgr_auroc_ci (PGR on AUROC), each with the fraction of resamples where
    the ceiling is above the weak score; with `supervisor` the intervals of the three agreement rates.
    An interval is None when its statistic is undefined in more than 5% of resamples. For K > 2 the
    AUROC is the macro one-vs-rest AUROC of each resample (weighted_macro_auroc); above
    MAX_AUROC_INTERVAL_CLASSES classes it costs too much (K binary AUROCs per resample), and auroc_ci,
    pgr_auroc_ci and pgr_auroc_ci_valid_fraction are None.
    """
    labels = np.asarray(labels)
    weights = bootstrap_weights(len(labels), samples, seed)
    with_auroc = _class_probs(student).shape[1] <= MAX_AUROC_INTERVAL_CLASSES

    def resampled_auroc(probs: np.ndarray) -> np.ndarray:
        return weighted_macro_auroc(probs, labels, weights)

    def answers(probs: np.ndarray | None) -> np.ndarray | None:
        return None if probs is None else predicted_classes(probs)

    return _intervals(labels, weights, predicted_classes(student), answers(weak), answers(ceiling),
                      answers(supervisor), (resampled_auroc, student, weak, ceiling) if with_auroc else None)


def _intervals(labels: np.ndarray, weights: np.ndarray, student: np.ndarray, weak: np.ndarray | None,
               ceiling: np.ndarray | None, supervisor: np.ndarray | None,
               auroc: tuple[Any, ...] | None) -> dict[str, Any]:
    """bootstrap_intervals from each model's answers (predicted classes or normalised generations) under
    the resample `weights`; `auroc` is (the resampled AUROC of probabilities, the student's, weak's and
    ceiling's probabilities), or None where no AUROC interval is computed."""
    def resampled_accuracy(answers: np.ndarray) -> np.ndarray:
        return _rate(weights, answers == labels)

    student_accuracy = resampled_accuracy(student)
    result: dict[str, Any] = {"accuracy_ci": _interval(student_accuracy), "auroc_ci": None}
    student_auroc = None
    if auroc is not None:
        resampled_auroc, student_probs, weak_probs, ceiling_probs = auroc
        student_auroc = resampled_auroc(student_probs)
        result["auroc_ci"] = _interval(student_auroc)
    if weak is not None and ceiling is not None:
        result.update(_pgr_interval("pgr", student_accuracy, resampled_accuracy(weak), resampled_accuracy(ceiling)))
        result.update(_pgr_interval("pgr_auroc", student_auroc, None, None) if auroc is None else
                      _pgr_interval("pgr_auroc", student_auroc, resampled_auroc(weak_probs),
                                    resampled_auroc(ceiling_probs)))
    if supervisor is not None:
        for name, rates in _answer_agreement_rates(student, supervisor, labels, weights).items():
            result[f"{name}_ci"] = _interval(rates)
    return result


def _pgr_interval(name: str, student: np.ndarray | None, weak: np.ndarray | None,
                  ceiling: np.ndarray | None) -> dict[str, Any]:
    if student is None or weak is None or ceiling is None:
        return {f"{name}_ci": None, f"{name}_ci_valid_fraction": None}
    recovered = gap_recovered(student, weak, ceiling)
    return {f"{name}_ci": _interval(recovered), f"{name}_ci_valid_fraction": float(np.mean(~np.isnan(recovered)))}


# ---------------------------------------------------------------- generative tasks


# A chess move in SAN followed by its check or mate sign: exact match reads the move without it.
SAN_WITH_SIGN = re.compile(r"((?:[KQRBN]?[a-h]?[1-8]?x?[a-h][1-8](?:=[QRBN])?|O-O(?:-O)?))[+#]")


def normalise_answer(text: str) -> str:
    """The answer a generated or target text gives: its first whitespace-separated word, or "" for a text of
    whitespace only, less the check or mate sign of a chess move in SAN ("Qxf7#" reads "Qxf7"). Exact match
    compares these, so a generation that goes on after its answer (a chess move followed by the game's next
    moves, or no end-of-text token before max_new_tokens) still scores on its answer, leading or trailing
    spaces never decide a match, and a move is right whether or not the model writes that it gives check
    or mate (the move decides that, not the sign). Case and other punctuation are kept: in SAN "Nf3" and
    "nf3" are other strings, and the task's target says which is right."""
    words = str(text).split()
    if not words:
        return ""
    signed = SAN_WITH_SIGN.fullmatch(words[0])
    return signed.group(1) if signed else words[0]


def normalised_answers(texts: Any) -> np.ndarray:
    """normalise_answer of every text, as an array that compares elementwise."""
    return np.array([normalise_answer(text) for text in texts], dtype=object)


def answer_hits(generations: Any, targets: Any) -> np.ndarray:
    """Per row, whether its generation's answer is the target's (normalise_answer). An empty answer is never
    right, not even against an empty weak label: it answers nothing."""
    answers = normalised_answers(generations)
    return (answers == normalised_answers(targets)) & (answers != "")


def exact_match(generations: Any, targets: Any) -> float:
    """The share of rows whose generation's answer is the target's (answer_hits)."""
    return float(np.mean(answer_hits(generations, targets)))


def answer_agreement(student: Any, supervisor: Any, targets: Any) -> dict[str, float | None]:
    """`agreement` for generations: how often the student's answer is its supervisor's, split by whether the
    supervisor's answer is the target's."""
    answers = [normalised_answers(texts) for texts in (student, supervisor, targets)]
    rates = _answer_agreement_rates(*answers, np.ones((1, len(answers[2]))))
    return {name: _scalar(values[0]) for name, values in rates.items()}


def answer_intervals(targets: Any, student: Any, samples: int, seed: int, weak: Any = None, ceiling: Any = None,
                     supervisor: Any = None) -> dict[str, Any]:
    """bootstrap_intervals for generations (texts, normalised here): accuracy_ci is exact match's, pgr_ci and the
    agreement intervals follow from it; auroc_ci and pgr_auroc_ci are None, since a generation has no class
    scores. The same resamples as bootstrap_intervals for the same seed and test size."""
    labels = normalised_answers(targets)
    weights = bootstrap_weights(len(labels), samples, seed)

    def answers(texts: Any) -> np.ndarray | None:
        return None if texts is None else normalised_answers(texts)

    return _intervals(labels, weights, normalised_answers(student), answers(weak), answers(ceiling),
                      answers(supervisor), None)


def bootstrap_mean_interval(values: np.ndarray, samples: int, seed: int) -> list[float] | None:
    """Percentile 95% interval of the mean of `values` resampled with replacement.

    None for fewer than two values: one value says nothing about the spread between them.
    """
    values = np.asarray(values, dtype=float)
    if len(values) < 2:
        return None
    return _interval(bootstrap_weights(len(values), samples, seed) @ values / len(values))


def paired_accuracy_difference(labels: np.ndarray, student: np.ndarray, reference: np.ndarray, samples: int,
                               seed: int) -> dict[str, Any]:
    """The student's test accuracy minus a reference run's on the same rows (vanilla xent's, for the leaderboard),
    with its paired percentile 95% interval: both scored on the same resamples of the test rows (the same
    bootstrap_weights as every other interval of the run)."""
    right = (predicted_classes(student) == labels).astype(float) - (predicted_classes(reference) == labels)
    weights = bootstrap_weights(len(labels), samples, seed)
    return {"vs_xent_accuracy_diff": float(right.mean()), "vs_xent_accuracy_diff_ci": _interval(weights @ right / len(labels))}


def prediction_spread(student: np.ndarray, supervisor: np.ndarray) -> dict[str, float]:
    """How a student spreads its test predictions over the classes, for the leaderboard's flags of degenerate
    methods: the largest share of rows given one class (near 1: a near-constant predictor, the majority-answer
    trick), and the agreement with the supervisor that a predictor independent of it would reach with the same
    class shares, the sum over classes of the two share products (a student that agrees no more than that never
    used its teacher: Cohen's kappa at or below 0)."""
    n_classes = student.shape[1]
    own = np.bincount(predicted_classes(student), minlength=n_classes) / len(student)
    theirs = np.bincount(predicted_classes(supervisor), minlength=n_classes) / len(supervisor)
    return {"max_predicted_fraction": float(own.max()), "chance_agreement": float(own @ theirs)}


def _interval(values: np.ndarray) -> list[float] | None:
    defined = values[~np.isnan(values)]
    if len(defined) == 0 or len(defined) < MIN_DEFINED_FRACTION * len(values):
        return None
    return [float(x) for x in np.percentile(defined, [2.5, 97.5])]


def _scalar(value: float) -> float | None:
    return None if np.isnan(value) else float(value)
