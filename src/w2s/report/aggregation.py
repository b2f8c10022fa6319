"""The summary as every report view reads it: seed means, the ground-truth-selection and supervisor-kind marks
on labels, the weakest-to-strongest model order, and the student and data-axis filters."""

from __future__ import annotations

import numpy as np
import pandas as pd

from w2s.evaluation.summary import uses_ground_truth_selection

CEILING = "ground truth (ceiling)"
# Kinds of weak supervisor that are no trained model (w2s.data.supervisors), named beside them everywhere.
SUPERVISOR_KINDS = ("simulated", "ensemble")
# Appended to every label of a run that picked its checkpoint with ground-truth labels: such a run
# is not plain weak supervision and must never be read as one.
GT_SELECTION = " (GT early stopping)"


def seed_mean(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Mean of `values` over seeds (NaN skipped), with the number of seeds behind each row."""
    grouped = frame.groupby(keys, dropna=False, sort=False)
    means = grouped[values].mean()
    means["seeds"] = grouped["seed"].nunique()
    return means.reset_index()


def with_selection_marked(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with a boolean `gt_selected` column, and the loss of every such student marked,
    so that each figure and table naming a student's loss names its ground-truth selection too; and
    every weak supervisor that is no trained model named with its kind, "(simulated)" or "(ensemble)",
    in every figure's legend and axis (`weak_name` keeps the bare name)."""
    marked = summary.assign(gt_selected=uses_ground_truth_selection(summary))
    marked["loss"] = marked_labels(marked["loss"], marked["gt_selected"] & (marked["kind"] == "student"))
    marked["weak_name"] = marked["weak_model"]
    kinds = marked.get("weak_kind", pd.Series(np.nan, index=marked.index))
    labelled = kinds.isin(SUPERVISOR_KINDS)
    marked.loc[labelled, "weak_model"] = (marked.loc[labelled, "weak_model"].astype(str) + " ("
                                          + kinds[labelled].astype(str) + ")")
    return marked


def marked_labels(labels: pd.Series, gt_selected: pd.Series) -> pd.Series:
    """`labels`, with the ground-truth-selection mark on each one `gt_selected` flags."""
    return labels.where(~gt_selected, labels.astype(str) + GT_SELECTION)


def ceiling_label(gt_selected: pd.Series) -> pd.Series:
    return gt_selected.map({True: CEILING + GT_SELECTION, False: CEILING})


def model_order(summary: pd.DataFrame) -> list[str]:
    """Trained model names from weakest to strongest, the x order of every per-model axis."""
    trained = summary[summary["kind"] != "prompt"]
    return trained.sort_values(["model_rank", "model"]).drop_duplicates("model")["model"].tolist()


def students(summary: pd.DataFrame, direct: bool | None = None) -> pd.DataFrame:
    """Student rows; `direct` picks weak→strong students (True) or bootstrap chain steps (False)."""
    rows = summary[summary["kind"] == "student"]
    if direct is None:
        return rows
    return rows[(rows["chain_length"] == 2) == direct]


def axis_of(summary: pd.DataFrame) -> pd.Series:
    """Each run's data axis (n_gt_rows, n_weak_labels), NaN for a run on every row or a summary from before axes."""
    return summary["data_axis"] if "data_axis" in summary else pd.Series(np.nan, index=summary.index, dtype=object)


def column_or_nan(frame: pd.DataFrame, column: str) -> pd.Series:
    """`frame[column]`, or NaN throughout for a summary written before the column existed."""
    return frame.get(column, pd.Series(np.nan, index=frame.index))
