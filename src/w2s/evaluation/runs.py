"""Metrics of trained models and the summary tables; reads predictions, never loads a model."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd

from w2s import io
from w2s.data import generations
from w2s.data import labels as class_probs
from w2s.data.catalogue import CHESS_DATASETS
from w2s.data.preparation import LEFT_OUT_OVER_MAX_MOVES
from w2s.evaluation import metrics, reference
from w2s.tasks import GENERATIVE

log = logging.getLogger("w2s")

# Prediction files a student is compared with, and ft(weak) + lp(gt), the ground-truth probe on a student's
# features, is compared with (the student itself beside the same weak model and ceiling); other runs (ground
# truth, prompting) have only "self".
COMPARED_ROLES = ("supervisor", "weak", "ceiling")
FT_WEAK_LP_GT_ROLES = ("student", "weak", "ceiling")
ROLES_BY_KIND = {"student": COMPARED_ROLES, "ft_weak_lp_gt": FT_WEAK_LP_GT_ROLES}
ALL_ROLES = ("supervisor", "student", "weak", "ceiling")
SUMMARY_OUTPUTS = ("parquet", "csv", "seeds_csv", "losses_csv", "reference_csv")
# Leading columns of the per-run table, present even when no run has them, so readers can rely on them.
IDENTITY_COLUMNS = (
    "dataset", "seed", "run", "kind", "task_kind", "n_classes", "model", "model_rank", "params_b", "hub_id", "mode",
    "model_selection",
    "uses_ground_truth_selection", "shots", "loss", "lineage", "chain_length", "weak_model", "supervisor_run",
    # What supervises the lineage from its root: a model, or a simulated or ensemble supervisor (w2s.data.supervisors).
    "weak_kind", "weak_method", "weak_structure", "weak_like", "weak_members",
    "student_run", "data_axis",
)
IDENTITY_NUMERIC_COLUMNS = ("seed", "n_classes", "model_rank", "params_b", "shots", "chain_length")
NUMERIC_COLUMNS = (
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "auroc", "auroc_ci_low", "auroc_ci_high",
    "weak_accuracy", "ceiling_accuracy", "weak_auroc", "ceiling_auroc",
    "pgr", "pgr_ci_low", "pgr_ci_high", "pgr_auroc", "pgr_auroc_ci_low", "pgr_auroc_ci_high",
    "agreement", "agreement_ci_low", "agreement_ci_high", "agreement_supervisor_right", "agreement_supervisor_wrong",
    "n_test", "test_positive_fraction", "student_accuracy", "student_pgr", "n_gt_rows", "n_weak_labels",
)
TEXT_COLUMNS = ("auroc_kind", "auroc_undefined_reason", "pgr_undefined_reason", "pgr_auroc_undefined_reason")
# Averaged over seeds per dataset and run, each with a bootstrap interval over seeds.
SEED_METRICS = ("accuracy", "auroc", "pgr", "pgr_auroc", "agreement")
SEED_BOOTSTRAP_SAMPLES = 1000
SEED_BOOTSTRAP_RNG_SEED = 0
REFERENCE_COLUMNS = (
    "dataset", "model", "hub_id", "reference_model", "loss", "quantity", "uses_ground_truth_selection",
    "measured", "reference", "approximate", "difference", "basis", "source",
)


def evaluate(run: str, predictions: dict[str, str], test_path: str, bootstrap_samples: int, seed: int,
             out_path: str, context: dict[str, Any],
             label_balance: dict[str, dict[str, float]] | None = None,
             truncation: dict[str, Any] | None = None, weak_labels_path: str | None = None) -> None:
    """Metrics of one model's test predictions; a student is also scored against its lineage.

    `predictions` maps "self" and, for a student, "supervisor", "weak" and "ceiling" to prediction
    files, which hold no labels: the true labels are joined by id from `test_path`, the labelled
    test split, here and in no training job. `context` carries the run's identity into the JSON;
    its "kind" decides whether the run is a student. Predictions hold K class probabilities per row
    (w2s.data.labels); AUROC is the binary one for K = 2 and the macro one-vs-rest one above, named by
    `auroc_kind`. `label_balance` holds each prepared split's {"n", "class_fractions"} (and, binary,
    "positive_fraction"); it is stored whole and, for a binary task, as one `<split>_positive_fraction`
    key per split. `truncation` (w2s.models.truncation) gives the model's max_length and one
    `<split>_truncated` count of texts longer than it per split. A generative task's runs
    (context's task_kind) are scored by exact match of their generations (_evaluate_generations); a
    generative student also reads the weak labels it learned from (`weak_labels_path`).
    """
    if context.get("task_kind") == GENERATIVE:
        _evaluate_generations(run, predictions, test_path, bootstrap_samples, seed, out_path, context, label_balance,
                              weak_labels_path)
        return
    own, probs = _test_predictions(predictions["self"])
    labels = _test_labels(test_path, own.index, predictions["self"])
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
        else:
            # The finetuned student beside its own ground-truth probe, on the same weak model and ceiling.
            result["student_accuracy"] = metrics.accuracy(others["student"], labels)
            result["student_pgr"] = metrics.pgr(result["student_accuracy"], result["weak_accuracy"],
                                                result["ceiling_accuracy"])[0]
        result.update(metrics.bootstrap_intervals(labels, probs, bootstrap_samples, seed,
                                                  **{role: others[role] for role in compared if role != "student"}))
    else:
        result.update(metrics.bootstrap_intervals(labels, probs, bootstrap_samples, seed))
    log.info("%s: %s", run, {k: result[k] for k in ("accuracy", "auroc", "pgr", "pgr_auroc") if k in result})
    io.write_json(result, out_path)


# Why a generative run has no AUROC: the null the metrics JSON holds is labelled with it.
NO_AUROC_GENERATIVE = "AUROC does not apply to a generative task: a generation has no class scores"


def _evaluate_generations(run: str, predictions: dict[str, str], test_path: str, bootstrap_samples: int, seed: int,
                          out_path: str, context: dict[str, Any],
                          label_balance: dict[str, dict[str, Any]] | None, weak_labels_path: str | None) -> None:
    """Metrics of a generative run: accuracy is exact match of the normalised answers (metrics.normalise_answer)
    of its test generations and the test targets; PGR, agreement (the student's answer is its supervisor's)
    and their paired bootstrap intervals follow from each row's match. AUROC is null, with the reason. A
    student's metrics count the weak labels it learned from and the empty ones; chess adds the legal-move
    rate of the generations and of the weak labels, the puzzles left out past max_moves, and accuracy by
    rating band and by theme where the data has them (_chess_metrics)."""
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
    io.write_json(result, out_path)


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


def _test_predictions(path: str) -> tuple[pd.DataFrame, np.ndarray]:
    """A prediction file's test rows (indexed by id) and their (n, K) class probabilities."""
    frame = pd.read_parquet(path)
    test = frame[frame["split"] == "test"].set_index("id")
    probs = class_probs.read_column(test, "probs", path)
    class_probs.check_probabilities(probs, f"{path}, test predictions", "retrain the run that wrote them")
    return test, probs


def _aligned(path: str, ids: pd.Index, n_classes: int) -> np.ndarray:
    """Another model's test probabilities in the order of `ids`, for the same K classes."""
    test, probs = _test_predictions(path)
    if probs.shape[1] != n_classes:
        raise ValueError(f"{path}: its test predictions have {probs.shape[1]} classes but the student's have "
                         f"{n_classes}, so they were made for another task; retrain the run that wrote them")
    positions = test.index.get_indexer(ids)
    if (positions < 0).any():
        raise ValueError(f"{path}: {int((positions < 0).sum())} of the student's test rows have no prediction here, "
                         "so it was made from other data; retrain the run that wrote it")
    return probs[positions]


def _test_labels(test_path: str, ids: pd.Index, predictions_path: str, test: pd.Series | None = None) -> np.ndarray:
    """The true labels of the test rows `ids`, in their order, from the labelled test split (`test`,
    its labels by id, when the caller has read it already)."""
    if test is None:
        test = _labels_by_id(test_path)
    if set(ids) != set(test.index) or ids.has_duplicates:
        raise ValueError(f"{predictions_path}: its test predictions are not one per row of {test_path} "
                         f"({len(ids)} predictions, {len(test)} rows, {len(set(ids) - set(test.index))} ids not in "
                         "the split), so they were made from other data; retrain the run that wrote them")
    return test.loc[ids].to_numpy()


def _labels_by_id(test_path: str) -> pd.Series:
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


# ---------------------------------------------------------------- summary


def summarize(metrics_paths: list[str], outputs: dict[str, str]) -> None:
    """The tables users and the report read, each written to the path `outputs` names.

    parquet, csv: one row per dataset, seed and run with every scalar of its metrics JSON.
    seeds_csv: one row per dataset and run, metrics averaged over seeds with intervals over seeds.
    losses_csv: PGR per loss and lineage length across datasets, median and mean.
    reference_csv: published reference values beside the measured ones that match them.
    """
    missing = [name for name in SUMMARY_OUTPUTS if name not in outputs]
    if missing:
        raise ValueError(f"summarize needs output paths for {missing}")
    runs = run_table([io.read_json(path) for path in metrics_paths])
    io.write_parquet(runs, outputs["parquet"])
    io.write_text(runs.to_csv(index=False), outputs["csv"])
    pairs = pair_means(runs)
    for name, table in (("seeds_csv", seed_summary(runs)), ("losses_csv", loss_summary(pairs)),
                        ("reference_csv", reference_comparison(runs, pairs))):
        io.write_text(table.to_csv(index=False), outputs[name])


def run_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per metrics record: identity columns first, then every other scalar in order of appearance."""
    frame = pd.DataFrame([_flat_scalars(record) for record in records])
    leading = [*IDENTITY_COLUMNS, *NUMERIC_COLUMNS, *TEXT_COLUMNS]
    frame = frame.reindex(columns=[*leading, *(c for c in frame.columns if c not in leading)])
    numeric = [*IDENTITY_NUMERIC_COLUMNS, *NUMERIC_COLUMNS]
    frame[numeric] = frame[numeric].apply(pd.to_numeric)
    return frame.sort_values(["dataset", "seed", "chain_length", "run"]).reset_index(drop=True)


def _flat_scalars(record: dict[str, Any]) -> dict[str, Any]:
    """Scalars as they are, each `<name>_ci` interval as `<name>_ci_low` and `<name>_ci_high`
    (empty when the interval is null); nested values such as label_balance are left out."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key.endswith("_ci") and (value is None or (isinstance(value, list) and len(value) == 2)):
            row[f"{key}_low"], row[f"{key}_high"] = value or (None, None)
        elif value is None or isinstance(value, (str, int, float, bool)):
            row[key] = value
    return row


def uses_ground_truth_selection(frame: pd.DataFrame) -> pd.Series:
    """Whether each run picked its checkpoint with ground-truth labels; False where the metrics predate the flag."""
    if "uses_ground_truth_selection" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["uses_ground_truth_selection"].eq(True)


def seed_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset and run: its identity, n_seeds, and per metric in SEED_METRICS the mean over
    seeds where it is defined, how many those are, and a 95% percentile bootstrap interval of that
    mean over seeds (seeds resampled with replacement; empty with fewer than two seeds)."""
    identity = [c for c in IDENTITY_COLUMNS if c not in ("dataset", "seed", "run")]
    rows = []
    for (dataset, run), group in runs.groupby(["dataset", "run"], sort=True):
        row = {"dataset": dataset, "run": run, **group.iloc[0][identity].to_dict(), "n_seeds": group["seed"].nunique()}
        for metric in SEED_METRICS:
            values = group[metric].dropna().to_numpy(dtype=float)
            low, high = metrics.bootstrap_mean_interval(values, SEED_BOOTSTRAP_SAMPLES,
                                                        SEED_BOOTSTRAP_RNG_SEED) or (None, None)
            row.update({
                f"{metric}_mean": float(values.mean()) if len(values) else None,
                f"{metric}_n_seeds": len(values),
                f"{metric}_seed_ci_low": low,
                f"{metric}_seed_ci_high": high,
            })
        rows.append(row)
    columns = ["dataset", "run", *identity, "n_seeds",
               *(f"{m}_{s}" for m in SEED_METRICS for s in ("mean", "n_seeds", "seed_ci_low", "seed_ci_high"))]
    return pd.DataFrame(rows, columns=columns)


def pair_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Every student's scores averaged over seeds, one row per dataset and run, with PGR and PGR on
    AUROC recomputed from those means: NaN where the mean ceiling is not above the mean weak score."""
    # The data axes' runs vary the data, not the method: they are compared in their own view.
    students = runs[(runs["kind"] == "student") & runs["data_axis"].isna()].assign(
        uses_ground_truth_selection=lambda f: uses_ground_truth_selection(f),
        # Metrics from before simulated and ensemble supervisors were all supervised by a model.
        weak_kind=lambda f: f["weak_kind"].astype(object).fillna("model") if "weak_kind" in f else "model")
    keys = ["dataset", "run", "loss", "chain_length", "weak_model", "weak_kind", "model", "hub_id", "mode",
            "uses_ground_truth_selection"]
    scores = ["accuracy", "weak_accuracy", "ceiling_accuracy", "auroc", "weak_auroc", "ceiling_auroc"]
    means = students.groupby(keys, dropna=False, sort=True)[scores].mean().reset_index()
    means["pgr"] = metrics.gap_recovered(means["accuracy"], means["weak_accuracy"], means["ceiling_accuracy"])
    means["pgr_auroc"] = metrics.gap_recovered(means["auroc"], means["weak_auroc"], means["ceiling_auroc"])
    return means


def _pgr_statistics(pairs: pd.DataFrame) -> dict[str, Any]:
    """Median and mean of PGR and PGR on AUROC over the pairs where they are defined (the reference
    counts only pairs whose ceiling beats the weak model), with how many pairs were counted and excluded."""
    statistics: dict[str, Any] = {}
    for name in ("pgr", "pgr_auroc"):
        counted = pairs[name].dropna()
        statistics.update({
            f"{name}_median": counted.median() if len(counted) else None,
            f"{name}_mean": counted.mean() if len(counted) else None,
            f"{name}_pairs_counted": len(counted),
            f"{name}_pairs_excluded": len(pairs) - len(counted),
        })
    return statistics


def loss_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per loss and lineage length (2: direct weak→strong pairs, more: bootstrap chains), PGR across
    datasets from seed means; runs selected with ground truth, and lineages rooted in a simulated or an
    ensemble supervisor (weak_kind), are kept apart from the others."""
    keys = ["loss", "chain_length", "weak_kind", "uses_ground_truth_selection"]
    rows = [
        {**dict(zip(keys, key)), "lineage": ("direct" if key[1] == 2 else f"chain of {key[1]} models")
         + ("" if key[2] == "model" else f", from {key[2]} supervisors"),
         "datasets": group["dataset"].nunique(), "pairs": len(group), **_pgr_statistics(group)}
        for key, group in pairs.groupby(keys, sort=True)
    ]
    statistics = ("median", "mean", "pairs_counted", "pairs_excluded")
    columns = [*keys, "lineage", "datasets", "pairs", *(f"{n}_{s}" for n in ("pgr", "pgr_auroc") for s in statistics)]
    return pd.DataFrame(rows, columns=columns)


def reference_comparison(runs: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Published reference values beside the measured ones of the same configuration.

    Ground-truth accuracy: a full-finetuning ground-truth run of a model whose hub id the reference
    used, on a dataset of the same name, averaged over seeds. Median PGR: per dataset and loss over
    the direct pairs whose weak and strong models are both such models and fully finetuned,
    from seed means, counting only pairs whose ceiling beats the weak model. Empty when nothing matches.
    """
    rows = []
    ground_truth = runs[(runs["kind"] == "ground_truth") & (runs["mode"] == "full")].assign(
        uses_ground_truth_selection=lambda f: uses_ground_truth_selection(f))
    for (dataset, model, hub_id, selected), group in ground_truth.groupby(
            ["dataset", "model", "hub_id", "uses_ground_truth_selection"], sort=True):
        published = reference.ground_truth_accuracy(dataset, hub_id)
        if published is not None:
            rows.append(_comparison_row(dataset, model, hub_id, None, "ground-truth accuracy", selected,
                                        group["accuracy"].mean(), published, f"{group['seed'].nunique()} seeds"))
    hub_ids = runs.drop_duplicates("model").set_index("model")["hub_id"]
    direct = pairs[(pairs["chain_length"] == 2) & (pairs["mode"] == "full")
                   & pairs["hub_id"].map(reference.reference_model).notna()
                   & pairs["weak_model"].map(hub_ids).map(reference.reference_model).notna()]
    for (dataset, loss, selected), group in direct.groupby(["dataset", "loss", "uses_ground_truth_selection"],
                                                           sort=True):
        published = reference.median_pgr(dataset, loss)
        counted = group["pgr"].dropna()
        if published is not None and len(counted):
            rows.append(_comparison_row(dataset, None, None, loss, "median PGR", selected, counted.median(), published,
                                        f"{len(counted)} of {len(group)} direct pairs (ceiling above weak)"))
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def _comparison_row(dataset: str, model: str | None, hub_id: str | None, loss: str | None, quantity: str,
                    selected: bool, measured: float, published: reference.Published, basis: str) -> dict[str, Any]:
    return {
        "dataset": dataset, "model": model, "hub_id": hub_id, "reference_model": reference.reference_model(hub_id),
        "loss": loss, "quantity": quantity, "uses_ground_truth_selection": bool(selected),
        "measured": float(measured), "reference": published.value, "approximate": published.approximate,
        "difference": float(measured) - published.value, "basis": basis, "source": reference.SOURCE,
    }


# ---------------------------------------------------------------- training curves

CURVE_COLUMNS = (
    "dataset", "seed", "run", "kind", "model", "loss", "lineage", "model_selection", "step", "epoch",
    "train_loss", "batch_target_accuracy", "holdout_accuracy", "device",
    # Probe heads (w2s.training.probe): one row per L2 strength instead of one per step.
    "l2", "iterations", "rounds", "converged", "chosen",
)


def training_curves(history_paths: list[str], runs: list[dict[str, Any]], out_path: str) -> None:
    """Every training step of every run in one long table, each run's history beside its identity.

    `runs[i]` names the run behind `history_paths[i]` (dataset, seed, run, kind, model, loss,
    lineage, model_selection). `holdout_accuracy` is the selection score: accuracy on the held-out
    rows against their training labels (weak labels for students), empty between evaluations and
    for runs without model selection. A probe head's rows are its L2 strengths, with `l2` set,
    `train_loss` the converged fit's loss on every training row and `chosen` marking the one kept.
    """
    if len(history_paths) != len(runs):
        raise ValueError(f"{len(history_paths)} histories for {len(runs)} runs")
    frames = []
    for path, run in zip(history_paths, runs):
        history = pd.read_parquet(path).rename(columns={"loss": "train_loss", "selection_score": "holdout_accuracy"})
        frames.append(history.assign(**run))
    curves = pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()
    io.write_parquet(curves.reindex(columns=list(CURVE_COLUMNS)), out_path)


# ---------------------------------------------------------------- regularisation sweep


def regularisation_sweep(sweep_paths: list[str], test_paths: list[str], runs: list[dict[str, Any]]) -> pd.DataFrame:
    """Test accuracy of every probe run at every L2 strength, beside the run's identity, and PGR
    for direct students: (student at that strength − weak) / (ceiling − weak), the weak and ceiling
    ground-truth models at their chosen strengths (a weak model that is not a probe: its one model,
    with no strength).

    `runs[i]` names the run behind `sweep_paths[i]`, as for training_curves, and `test_paths[i]` is
    its labelled test split: sweeps hold no labels, which are joined by id here. Only drawn: test
    predictions at strengths that were not chosen are never used to choose anything.
    """
    if not len(sweep_paths) == len(test_paths) == len(runs):
        raise ValueError(f"{len(sweep_paths)} sweeps, {len(test_paths)} test splits and {len(runs)} runs")
    rows = []
    for path, test_path, run in zip(sweep_paths, test_paths, runs):
        sweep = pd.read_parquet(path)
        if generations.GENERATION_COLUMN in sweep:  # a generative run: one model, no L2 strengths to sweep
            continue
        test = _labels_by_id(test_path)
        for (l2, chosen), at in sweep.groupby(["l2", "chosen"], sort=True, dropna=False):
            labels = _test_labels(test_path, pd.Index(at["id"]), path, test)
            probs = class_probs.read_column(at, "probs", path)
            rows.append({**run, "l2": float(l2), "chosen": bool(chosen), "accuracy": metrics.accuracy(probs, labels)})
    columns = ["dataset", "seed", "run", "kind", "model", "loss", "lineage", "model_selection", "l2", "chosen",
               "accuracy", "weak_accuracy", "ceiling_accuracy", "pgr"]
    table = pd.DataFrame(rows).reindex(columns=columns)
    if table.empty:
        return table
    chosen_gt = table[(table["kind"] == "ground_truth") & table["chosen"]].set_index(["dataset", "seed", "model"])
    chain = table["lineage"].astype(str).str.split(" → ")
    direct = (table["kind"] == "student") & (chain.str.len() == 2)

    def ground_truth_accuracy(position: int) -> pd.Series:
        keys = zip(table["dataset"], table["seed"], chain.str[position])
        return pd.Series([chosen_gt["accuracy"].get(key, np.nan) for key in keys], index=table.index)

    table["weak_accuracy"] = ground_truth_accuracy(0).where(direct)
    table["ceiling_accuracy"] = ground_truth_accuracy(-1).where(direct)
    table["pgr"] = metrics.gap_recovered(table["accuracy"], table["weak_accuracy"], table["ceiling_accuracy"])
    return table
