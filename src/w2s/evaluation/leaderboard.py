"""The method leaderboard: every loss and weak-to-strong method (w2s.methods) on every dataset and lineage, scored
over seeds, against vanilla xent row by row, and flagged where its score may not mean what it seems.

One row per training (a loss or a method), lineage and dataset, from the summary's student runs:
- PGR and accuracy, mean and standard deviation over seeds; agreement with the supervisor;
- the difference in test accuracy from xent's student of the same lineage, with the seeds' paired bootstrap
  intervals (evaluate resamples the test rows alike for both) combined into one 95% interval of the mean
  difference by a normal approximation: a seed's standard error is its interval's width / 3.92;
- flags: `near_constant` (a seed gave one class to at least NEAR_CONSTANT of the test rows: the majority-answer
  trick), `teacher_unused` (agreement with the supervisor at or below what a predictor independent of it would
  reach with the same class shares, averaged over seeds: the teacher was never used), and
  `selection_within_noise` (the seeds whose chosen L2 strength or checkpoint beat the runner-up by less than one
  binomial standard error of its holdout score).
Then one row per training and lineage over all datasets: the median across datasets of the seed-mean PGR (the
paper's summary statistic), with `datasets` counted and the flags of any dataset. Where a dataset has an
out-of-distribution test split (config ood_test), the same PGR, accuracy and difference from xent on it are the
ood_ columns.
"""

from __future__ import annotations

import math
from typing import Any

from w2s import io

import numpy as np
import pandas as pd

from w2s.evaluation.summary import uses_ground_truth_selection

# A seed whose largest predicted class holds this share of the test rows predicts a near-constant answer.
NEAR_CONSTANT = 0.95
ACROSS_DATASETS = "median across datasets"
REFERENCE = "xent"
# A seed's 95% percentile interval spans about 2 × 1.96 standard errors.
INTERVAL_WIDTH_IN_SE = 2 * 1.96
COLUMNS = (
    "scope", "training", "lineage", "chain_length", "weak_model", "model", "dataset", "datasets", "n_seeds",
    "pgr_median", "pgr_mean", "pgr_sd", "accuracy_mean", "accuracy_sd", "agreement_mean", "chance_agreement_mean",
    "max_predicted_fraction", "vs_xent_accuracy_diff", "vs_xent_ci_low", "vs_xent_ci_high",
    "ood_pgr_median", "ood_pgr_mean", "ood_pgr_sd", "ood_accuracy_mean", "ood_vs_xent_accuracy_diff",
    "ood_vs_xent_ci_low", "ood_vs_xent_ci_high",
    "uses_ground_truth_selection", "near_constant", "teacher_unused", "selection_within_noise",
)
# Scores of a test split, without and with the out-of-distribution prefix.
SCORED = ("pgr", "accuracy", "vs_xent_accuracy_diff", "vs_xent_accuracy_diff_ci_low", "vs_xent_accuracy_diff_ci_high")


def selection_margins(curves: pd.DataFrame) -> pd.DataFrame:
    """Per run and seed (dataset, seed, run): whether its choice of L2 strength or checkpoint is within noise, the
    best holdout score minus the runner-up's below one standard error sqrt(p (1 - p) / n) of the best score p on
    its n held-out rows. Runs that chose among fewer than two scored candidates choose nothing and are left out."""
    rows = []
    scored = curves.dropna(subset=["holdout_accuracy"]) if "holdout_accuracy" in curves else curves.iloc[:0]
    for (dataset, seed, run), group in scored.groupby(["dataset", "seed", "run"], sort=True):
        scores = np.sort(group["holdout_accuracy"].to_numpy(dtype=float))[::-1]
        n = group["selection_rows"].dropna() if "selection_rows" in group else pd.Series(dtype=float)
        if len(scores) < 2 or n.empty:
            continue
        best, runner_up = scores[0], scores[1]
        se = math.sqrt(best * (1 - best) / float(n.iloc[0]))
        rows.append({"dataset": dataset, "seed": seed, "run": run, "selection_margin": best - runner_up,
                     "selection_se": se, "within_noise": bool(best - runner_up < se)})
    return pd.DataFrame(rows, columns=["dataset", "seed", "run", "selection_margin", "selection_se", "within_noise"])


def leaderboard(runs: pd.DataFrame, curves: pd.DataFrame) -> pd.DataFrame:
    """The leaderboard table (COLUMNS) from summarize's per-run table and the training_curves table."""
    students = runs[(runs["kind"] == "student") & runs["data_axis"].isna()].copy() if "data_axis" in runs else \
        runs[runs["kind"] == "student"].copy()
    if students.empty:
        return pd.DataFrame(columns=list(COLUMNS))
    students["uses_ground_truth_selection"] = uses_ground_truth_selection(students)
    for column in ("agreement", "chance_agreement", "max_predicted_fraction",
                   *(prefix + score for prefix in ("", "ood_") for score in SCORED)):
        students[column] = pd.to_numeric(students[column]) if column in students else np.nan
    noise = selection_margins(curves)
    students = students.merge(noise[["dataset", "seed", "run", "within_noise"]], on=["dataset", "seed", "run"],
                              how="left")
    keys = ["loss", "lineage", "dataset"]
    cells = [_cell(key, group) for key, group in students.groupby(keys, sort=True)]
    table = pd.DataFrame(cells)
    summary = [_across(key, group) for key, group in table.groupby(["training", "lineage"], sort=True)]
    return pd.concat([pd.DataFrame(summary), table], ignore_index=True).reindex(columns=list(COLUMNS))


def _scores(group: pd.DataFrame, training: str, prefix: str) -> dict[str, Any]:
    """PGR and accuracy over seeds, and the difference from xent with the seeds' intervals combined, on test (prefix
    "") or on the out-of-distribution test split ("ood_")."""
    pgr, accuracy = group[f"{prefix}pgr"].dropna(), group[f"{prefix}accuracy"].dropna()
    diff = group[f"{prefix}vs_xent_accuracy_diff"].dropna()
    se = ((group[f"{prefix}vs_xent_accuracy_diff_ci_high"] - group[f"{prefix}vs_xent_accuracy_diff_ci_low"])
          / INTERVAL_WIDTH_IN_SE).dropna()
    low = high = np.nan
    if len(diff) and len(se) == len(diff):
        half = 1.96 * math.sqrt(float((se ** 2).sum())) / len(se)
        low, high = float(diff.mean()) - half, float(diff.mean()) + half
    reference = 0.0 if len(accuracy) else np.nan
    return {
        f"{prefix}pgr_mean": float(pgr.mean()) if len(pgr) else np.nan,
        f"{prefix}pgr_sd": float(pgr.std(ddof=1)) if len(pgr) > 1 else np.nan,
        f"{prefix}accuracy_mean": float(accuracy.mean()) if len(accuracy) else np.nan,
        f"{prefix}vs_xent_accuracy_diff": reference if training == REFERENCE else (float(diff.mean()) if len(diff)
                                                                                  else np.nan),
        f"{prefix}vs_xent_ci_low": low, f"{prefix}vs_xent_ci_high": high,
    }


def _cell(key: tuple[Any, ...], group: pd.DataFrame) -> dict[str, Any]:
    training, lineage, dataset = key
    first = group.iloc[0]
    agreement, chance = group["agreement"].mean(), group["chance_agreement"].mean()
    return {
        "scope": "dataset", "training": training, "lineage": lineage, "chain_length": int(first["chain_length"]),
        "weak_model": first["weak_model"], "model": first["model"], "dataset": dataset, "datasets": 1,
        "n_seeds": int(group["seed"].nunique()), "pgr_median": np.nan, "ood_pgr_median": np.nan,
        **_scores(group, training, ""), **_scores(group, training, "ood_"),
        "accuracy_sd": float(group["accuracy"].std(ddof=1)) if len(group) > 1 else np.nan,
        "agreement_mean": agreement, "chance_agreement_mean": chance,
        "max_predicted_fraction": group["max_predicted_fraction"].max(),
        "uses_ground_truth_selection": bool(group["uses_ground_truth_selection"].any()),
        "near_constant": bool((group["max_predicted_fraction"] >= NEAR_CONSTANT).any()),
        "teacher_unused": bool(pd.notna(agreement) and pd.notna(chance) and agreement <= chance),
        "selection_within_noise": int(group["within_noise"].fillna(False).astype(bool).sum()),
    }


def _across(key: tuple[Any, ...], cells: pd.DataFrame) -> dict[str, Any]:
    training, lineage = key
    first = cells.iloc[0]
    medians = {}
    for prefix in ("", "ood_"):
        pgr = cells[f"{prefix}pgr_mean"].dropna()
        medians.update({f"{prefix}pgr_median": float(pgr.median()) if len(pgr) else np.nan,
                        f"{prefix}pgr_mean": float(pgr.mean()) if len(pgr) else np.nan,
                        f"{prefix}accuracy_mean": cells[f"{prefix}accuracy_mean"].mean(),
                        f"{prefix}vs_xent_accuracy_diff": cells[f"{prefix}vs_xent_accuracy_diff"].mean()})
    return {
        "scope": ACROSS_DATASETS, "training": training, "lineage": lineage, "chain_length": first["chain_length"],
        "weak_model": first["weak_model"], "model": first["model"], "dataset": ACROSS_DATASETS,
        "datasets": len(cells), "n_seeds": int(cells["n_seeds"].max()), **medians,
        "agreement_mean": cells["agreement_mean"].mean(), "chance_agreement_mean": cells["chance_agreement_mean"].mean(),
        "max_predicted_fraction": cells["max_predicted_fraction"].max(),
        "uses_ground_truth_selection": bool(cells["uses_ground_truth_selection"].any()),
        "near_constant": bool(cells["near_constant"].any()), "teacher_unused": bool(cells["teacher_unused"].any()),
        "selection_within_noise": int(cells["selection_within_noise"].sum()),
    }


def write_leaderboard(summary_path: str, curves_path: str, out_path: str) -> None:
    """results/leaderboard.csv from results/summary.parquet and results/training_curves.parquet."""
    table = leaderboard(pd.read_parquet(summary_path), pd.read_parquet(curves_path))
    io.write_text(table.to_csv(index=False), out_path)
