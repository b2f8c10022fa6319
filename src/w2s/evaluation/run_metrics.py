"""Metrics of one run: its test predictions scored against the labelled test split and, for a student or
ft(weak) + lp(gt), against its lineage's predictions; reads predictions, never loads a model. The task's kind
chooses the scorer (SCORERS, the evaluation layer's one registration point of a task kind)."""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import pandas as pd

from w2s import io
from w2s.data import generations
from w2s.data import labels as class_probs
from w2s.data.catalogue import CHESS_DATASETS
from w2s.data.splits import OOD_SPLIT
from w2s.data.preparation import LEFT_OUT_OVER_MAX_MOVES
from w2s.evaluation import metrics
from w2s.evaluation.identity import RunContext
from w2s.tasks import DEFAULT_KIND

log = logging.getLogger("w2s")

# Prediction files a student is compared with, and ft(weak) + lp(gt), the ground-truth probe on a student's
# features, is compared with (the student itself beside the same weak model and ceiling); other runs (ground
# truth, prompting) have only "self".
COMPARED_ROLES = ("supervisor", "weak", "ceiling")
FT_WEAK_LP_GT_ROLES = ("student", "weak", "ceiling")
ROLES_BY_KIND = {"student": COMPARED_ROLES, "ft_weak_lp_gt": FT_WEAK_LP_GT_ROLES}
ALL_ROLES = ("supervisor", "student", "weak", "ceiling")
# A student of another loss or a method is also scored against vanilla xent's student of its lineage (leaderboard).
REFERENCE_ROLE = "reference"


def evaluate(run: str, predictions: dict[str, str], test_path: str, bootstrap_samples: int, seed: int,
             out_path: str, context: RunContext,
             label_balance: dict[str, dict[str, float]] | None = None,
             truncation: dict[str, Any] | None = None, weak_labels_path: str | None = None,
             ood_test_path: str | None = None) -> None:
    """Metrics of one model's test predictions; a student is also scored against its lineage.

    `predictions` maps "self" and, for a student, "supervisor", "weak" and "ceiling" to prediction
    files (and "reference", vanilla xent's student of the same lineage, for any other loss's or method's, which
    is scored against it with a paired interval), which hold no labels: the true labels are joined by id from `test_path`, the labelled
    test split, here and in no training job. `context` carries the run's identity into the JSON;
    its "kind" decides whether the run is a student. Predictions hold K class probabilities per row
    (w2s.data.labels); AUROC is the binary one for K = 2 and the macro one-vs-rest one above, named by
    `auroc_kind`. `label_balance` holds each prepared split's {"n", "class_fractions"} (and, binary,
    "positive_fraction"); it is stored whole and, for a binary task, as one `<split>_positive_fraction`
    key per split. `truncation` (w2s.models.truncation) gives the model's max_length and one
    `<split>_truncated` count of texts longer than it per split. The context's task_kind chooses the
    scorer (SCORERS): a classifier's class probabilities (_score_classes), or a generative task's runs by exact
    match of their generations (_score_generations), whose student also reads the weak labels it learned from
    (`weak_labels_path`). `ood_test_path`, the labelled out-of-distribution test split of a dataset with one,
    scores the run's predictions of it too (_ood_metrics: the ood_ keys).
    """
    job = Evaluation(run, predictions, test_path, bootstrap_samples, seed, out_path, context, label_balance,
                     truncation, weak_labels_path, ood_test_path)
    SCORERS[context.get("task_kind", DEFAULT_KIND)](job)


@dataclass(frozen=True)
class Evaluation:
    """What a task kind's scorer reads: evaluate's arguments, as one value."""

    run: str
    predictions: dict[str, str]
    test_path: str
    bootstrap_samples: int
    seed: int
    out_path: str
    context: RunContext
    label_balance: dict[str, dict[str, Any]] | None = None
    truncation: dict[str, Any] | None = None
    weak_labels_path: str | None = None
    ood_test_path: str | None = None


def _score_classes(job: Evaluation) -> None:
    """Metrics of a classifier's test predictions: K class probabilities per row, their accuracy and AUROC and,
    for a student or ft(weak) + lp(gt), its lineage's (evaluate says which)."""
    run, predictions, bootstrap_samples, seed = job.run, job.predictions, job.bootstrap_samples, job.seed
    context, label_balance, truncation = job.context, job.label_balance, job.truncation
    own, probs = _test_predictions(predictions["self"])
    labels = test_labels(job.test_path, own.index, predictions["self"])
    n_classes = probs.shape[1]
    result: dict[str, Any] = dict(context)
    result.update({
        "n_test": int(len(own)),
        "accuracy": metrics.accuracy(probs, labels),
        "auroc": metrics.auroc(probs, labels),
        "auroc_kind": metrics.auroc_kind(n_classes),
    })
    if n_classes == 2:
        result["test_positive_fraction"] = float(labels.mean())
        if label_balance is not None:
            result.update(_label_balance_fields(label_balance, result["test_positive_fraction"]))
    elif label_balance is not None:
        result["label_balance"] = label_balance
    if truncation is not None:
        result["max_length"] = truncation["max_length"]
        result.update({f"{split}_truncated": count for split, count in truncation["truncated"].items()})
    kind = context.get("kind")
    roles = ROLES_BY_KIND.get(kind, ())
    compared = [role for role in ALL_ROLES if role in predictions]
    if kind in ROLES_BY_KIND and set(compared) != set(roles):
        raise ValueError(f"{kind} run {run} needs {list(roles)} predictions, got {compared}")
    if kind not in ROLES_BY_KIND and compared:
        raise ValueError(f"{kind} run {run} is compared with no other model, got {compared}")
    if kind in ROLES_BY_KIND:
        others = {role: _aligned(predictions[role], own.index, n_classes) for role in compared}
        result.update(_lineage_metrics(result["accuracy"], result["auroc"], others, labels))
        if kind == "student":
            result.update(metrics.agreement(probs, others["supervisor"], labels))
            result.update(metrics.prediction_spread(probs, others["supervisor"]))
            if REFERENCE_ROLE in predictions:
                reference = _aligned(predictions[REFERENCE_ROLE], own.index, n_classes)
                result.update(metrics.paired_accuracy_difference(labels, probs, reference, bootstrap_samples, seed))
        else:
            # The finetuned student beside its own ground-truth probe, on the same weak model and ceiling.
            result["student_accuracy"] = metrics.accuracy(others["student"], labels)
            result["student_pgr"] = metrics.pgr(result["student_accuracy"], result["weak_accuracy"],
                                                result["ceiling_accuracy"])[0]
        result.update(metrics.bootstrap_intervals(labels, probs, bootstrap_samples, seed,
                                                  **{role: others[role] for role in compared if role != "student"}))
    else:
        result.update(metrics.bootstrap_intervals(labels, probs, bootstrap_samples, seed))
    if job.ood_test_path is not None and _has_split(predictions["self"], OOD_SPLIT):
        result.update(_ood_metrics(job, n_classes))
    log.info("%s: %s", run, {k: result[k] for k in ("accuracy", "auroc", "pgr", "pgr_auroc", "ood_accuracy", "ood_pgr")
                             if k in result})
    io.write_json(result, job.out_path)


def _ood_metrics(job: Evaluation, n_classes: int) -> dict[str, Any]:
    """The run scored on the dataset's out-of-distribution test split too, each key prefixed ood_: its accuracy and
    AUROC with their intervals and, for a student, its weak model's and ceiling's accuracy there, PGR, agreement
    with its supervisor and the paired difference from xent's student, where those models predicted the split
    (a simulated or ensemble supervisor, or a prompted model, does not)."""
    assert job.ood_test_path is not None
    own, probs = _test_predictions(job.predictions["self"], OOD_SPLIT)
    labels = test_labels(job.ood_test_path, own.index, job.predictions["self"])
    result: dict[str, Any] = {"ood_n_test": int(len(own)), "ood_accuracy": metrics.accuracy(probs, labels),
                              "ood_auroc": metrics.auroc(probs, labels)}
    others = {role: _aligned(path, own.index, n_classes, OOD_SPLIT) for role, path in job.predictions.items()
              if role in (*ALL_ROLES, REFERENCE_ROLE) and _has_split(path, OOD_SPLIT)}
    intervals = metrics.bootstrap_intervals(labels, probs, job.bootstrap_samples, job.seed,
                                            **{r: others[r] for r in ("weak", "ceiling", "supervisor") if r in others})
    result.update({"ood_accuracy_ci": intervals["accuracy_ci"]})
    if "weak" in others and "ceiling" in others:
        result["ood_weak_accuracy"] = metrics.accuracy(others["weak"], labels)
        result["ood_ceiling_accuracy"] = metrics.accuracy(others["ceiling"], labels)
        result["ood_pgr"], result["ood_pgr_undefined_reason"] = metrics.pgr(
            result["ood_accuracy"], result["ood_weak_accuracy"], result["ood_ceiling_accuracy"])
        result["ood_pgr_ci"] = intervals.get("pgr_ci")
    if "supervisor" in others:
        result["ood_agreement"] = metrics.agreement(probs, others["supervisor"], labels)["agreement"]
    if REFERENCE_ROLE in others:
        difference = metrics.paired_accuracy_difference(labels, probs, others[REFERENCE_ROLE], job.bootstrap_samples,
                                                        job.seed)
        result.update({f"ood_{key}": value for key, value in difference.items()})
    return result


# Why a generative run has no AUROC: the null the metrics JSON holds is labelled with it.
NO_AUROC_GENERATIVE = "AUROC does not apply to a generative task: a generation has no class scores"


def _score_generations(job: Evaluation) -> None:
    """Metrics of a generative run: accuracy is exact match of the normalised answers (metrics.normalise_answer)
    of its test generations and the test targets; PGR, agreement (the student's answer is its supervisor's)
    and their paired bootstrap intervals follow from each row's match. AUROC is null, with the reason. A
    student's metrics count the weak labels it learned from and the empty ones; chess adds the legal-move
    rate of the generations and of the weak labels, the puzzles left out past max_moves, and accuracy by
    rating band and by theme where the data has them (_chess_metrics)."""
    run, predictions, test_path, bootstrap_samples, seed = (job.run, job.predictions, job.test_path,
                                                            job.bootstrap_samples, job.seed)
    context, label_balance, weak_labels_path = job.context, job.label_balance, job.weak_labels_path
    own = generations.test_generations(predictions["self"])
    test = pd.read_parquet(test_path).set_index("id")
    if set(own.index) != set(test.index) or own.index.has_duplicates:
        raise ValueError(f"{predictions['self']}: its test generations are not one per row of {test_path} "
                         f"({len(own)} generations, {len(test)} rows), so they were made from other data; "
                         "retrain the run that wrote them")
    test = test.loc[own.index]
    targets = test["target"].to_numpy()
    student = own.to_numpy()
    result: dict[str, Any] = dict(context)
    result.update({"n_test": int(len(own)), "accuracy": metrics.exact_match(student, targets), "auroc": None,
                   "auroc_kind": None, "auroc_undefined_reason": NO_AUROC_GENERATIVE,
                   "test_empty_generations": int(sum(not metrics.normalise_answer(t) for t in student))})
    if label_balance is not None:
        result["label_balance"] = label_balance
    weak_labels = None if weak_labels_path is None else pd.read_parquet(weak_labels_path)
    if weak_labels is not None:
        result.update({"weak_labels_n": len(weak_labels),
                       "weak_labels_empty": int(sum(not metrics.normalise_answer(t)
                                                    for t in weak_labels[generations.GENERATION_COLUMN]))})
    if context.get("dataset") in CHESS_DATASETS:
        result.update(_chess_metrics(test, student, weak_labels, label_balance))
    is_student = context.get("kind") == "student"
    if is_student:
        others = {role: generations.aligned_generations(predictions[role], own.index) for role in COMPARED_ROLES}
        weak_accuracy = metrics.exact_match(others["weak"], targets)
        ceiling_accuracy = metrics.exact_match(others["ceiling"], targets)
        pgr, pgr_reason = metrics.pgr(result["accuracy"], weak_accuracy, ceiling_accuracy)
        result.update({"weak_accuracy": weak_accuracy, "ceiling_accuracy": ceiling_accuracy, "weak_auroc": None,
                       "ceiling_auroc": None, "pgr": pgr, "pgr_undefined_reason": pgr_reason, "pgr_auroc": None,
                       "pgr_auroc_undefined_reason": NO_AUROC_GENERATIVE})
        result.update(metrics.answer_agreement(student, others["supervisor"], targets))
        result.update(metrics.answer_intervals(targets, student, bootstrap_samples, seed, **others))
    else:
        result.update(metrics.answer_intervals(targets, student, bootstrap_samples, seed))
    log.info("%s: %s", run, {k: result[k] for k in ("accuracy", "pgr", "agreement", "legal_move_rate") if k in result})
    io.write_json(result, job.out_path)


# A chess run's metrics break accuracy down by the themes most frequent in the test split, this many, as flat
# columns of the summary (accuracy_theme_<theme>); accuracy_by_theme holds every theme.
SUMMARY_THEMES = 5


def _chess_metrics(test: pd.DataFrame, student: np.ndarray, weak_labels: pd.DataFrame | None,
                   label_balance: dict[str, dict[str, Any]] | None) -> dict[str, Any]:
    """A chess run's share of legal moves among its test generations (w2s.data.chess.legal_move_rate) and, for a
    student, among its weak labels; the puzzles preparation left out past max_moves (puzzles_over_max_moves,
    where it set one); and where the test split keeps the Lichess CSV's rating and themes, exact match per
    rating band and per theme ({"n", "accuracy"} each), the bands and the most frequent themes also as flat
    accuracy_rating_<band> and accuracy_theme_<theme>."""
    from w2s.data import chess  # python-chess loads for chess runs only

    result: dict[str, Any] = {"legal_move_rate": chess.legal_move_rate(test["prompt"], student)}
    if weak_labels is not None:
        result["weak_labels_legal_move_rate"] = chess.legal_move_rate(
            weak_labels["prompt"], weak_labels[generations.GENERATION_COLUMN])
    counts = [split[LEFT_OUT_OVER_MAX_MOVES] for split in (label_balance or {}).values()
              if LEFT_OUT_OVER_MAX_MOVES in split]
    if counts:
        result["puzzles_over_max_moves"] = int(sum(counts))
    right = metrics.answer_hits(student, test["target"])
    if "rating" in test:
        bands = pd.Series([chess.rating_band(r) for r in test["rating"]], index=test.index)
        order = sorted(bands.unique(), key=lambda band: test["rating"][bands == band].min())
        result["accuracy_by_rating_band"] = {band: _share(right[(bands == band).to_numpy()]) for band in order}
        result.update({f"accuracy_rating_{band}": share["accuracy"]
                       for band, share in result["accuracy_by_rating_band"].items()})
    if "themes" in test:
        themes = test["themes"].fillna("").str.split()
        counted = themes.explode().dropna().value_counts(sort=True)
        by_theme = {theme: _share(right[themes.map(lambda names, t=theme: t in names).to_numpy()])
                    for theme in counted.index}
        result["accuracy_by_theme"] = by_theme
        result.update({f"accuracy_theme_{theme}": by_theme[theme]["accuracy"]
                       for theme in counted.index[:SUMMARY_THEMES]})
    return result


def _share(hits: np.ndarray) -> dict[str, Any]:
    return {"n": int(len(hits)), "accuracy": float(np.mean(hits))}


def _test_predictions(path: str, split: str = "test") -> tuple[pd.DataFrame, np.ndarray]:
    """A prediction file's rows of `split` (test, or ood_test), indexed by id, and their (n, K) class probabilities."""
    frame = pd.read_parquet(path)
    test = frame[frame["split"] == split].set_index("id")
    probs = class_probs.read_column(test, "probs", path)
    class_probs.check_probabilities(probs, f"{path}, {split} predictions", "retrain the run that wrote them")
    return test, probs


def _has_split(path: str, split: str) -> bool:
    return bool((pd.read_parquet(path, columns=["split"])["split"] == split).any())


def _aligned(path: str, ids: pd.Index, n_classes: int, split: str = "test") -> np.ndarray:
    """Another model's probabilities of `split` in the order of `ids`, for the same K classes."""
    test, probs = _test_predictions(path, split)
    if probs.shape[1] != n_classes:
        raise ValueError(f"{path}: its test predictions have {probs.shape[1]} classes but the student's have "
                         f"{n_classes}, so they were made for another task; retrain the run that wrote them")
    positions = test.index.get_indexer(ids)
    if (positions < 0).any():
        raise ValueError(f"{path}: {int((positions < 0).sum())} of the student's test rows have no prediction here, "
                         "so it was made from other data; retrain the run that wrote it")
    return probs[positions]


def test_labels(test_path: str, ids: pd.Index, predictions_path: str, test: pd.Series | None = None) -> np.ndarray:
    """The true labels of the test rows `ids`, in their order, from the labelled test split (`test`,
    its labels by id, when the caller has read it already)."""
    if test is None:
        test = labels_by_id(test_path)
    if set(ids) != set(test.index) or ids.has_duplicates:
        raise ValueError(f"{predictions_path}: its test predictions are not one per row of {test_path} "
                         f"({len(ids)} predictions, {len(test)} rows, {len(set(ids) - set(test.index))} ids not in "
                         "the split), so they were made from other data; retrain the run that wrote them")
    return test.loc[ids].to_numpy()


def labels_by_id(test_path: str) -> pd.Series:
    return pd.read_parquet(test_path, columns=["id", "label"]).set_index("id")["label"]


def _label_balance_fields(label_balance: dict[str, dict[str, float]], test_positive_fraction: float) -> dict[str, Any]:
    """The balance as stored, plus a flat positive fraction per split; test keeps the fraction measured
    on the predictions the metrics come from, with a warning if the prepared split disagrees."""
    prepared_test = label_balance.get("test", {}).get("positive_fraction")
    if prepared_test is not None and not math.isclose(prepared_test, test_positive_fraction, abs_tol=1e-9):
        log.warning("test predictions have positive fraction %.4f, the prepared test split %.4f",
                    test_positive_fraction, prepared_test)
    fields: dict[str, Any] = {"label_balance": label_balance}
    fields.update({f"{split}_positive_fraction": balance["positive_fraction"]
                   for split, balance in label_balance.items()})
    fields["test_positive_fraction"] = test_positive_fraction
    return fields


def _lineage_metrics(student_accuracy: float, student_auroc: float | None, others: dict[str, np.ndarray],
                     labels: np.ndarray) -> dict[str, Any]:
    """Scores of the lineage's weak model and ceiling, and PGR on accuracy and on AUROC."""
    weak_accuracy = metrics.accuracy(others["weak"], labels)
    ceiling_accuracy = metrics.accuracy(others["ceiling"], labels)
    weak_auroc, ceiling_auroc = metrics.auroc(others["weak"], labels), metrics.auroc(others["ceiling"], labels)
    pgr, pgr_reason = metrics.pgr(student_accuracy, weak_accuracy, ceiling_accuracy)
    if None in (student_auroc, weak_auroc, ceiling_auroc):
        pgr_auroc, pgr_auroc_reason = None, "AUROC is undefined: the test split has one class"
    else:
        pgr_auroc, pgr_auroc_reason = metrics.pgr(student_auroc, weak_auroc, ceiling_auroc)
    return {
        "weak_accuracy": weak_accuracy, "ceiling_accuracy": ceiling_accuracy,
        "weak_auroc": weak_auroc, "ceiling_auroc": ceiling_auroc,
        "pgr": pgr, "pgr_undefined_reason": pgr_reason,
        "pgr_auroc": pgr_auroc, "pgr_auroc_undefined_reason": pgr_auroc_reason,
    }


# The evaluation layer's registration point of a task kind (w2s.tasks.KINDS): the scorer of its runs.
SCORERS: dict[str, Callable[[Evaluation], None]] = {
    "text_classification": _score_classes,
    "image_classification": _score_classes,
    "generative": _score_generations,
}
