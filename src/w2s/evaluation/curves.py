"""Views of training beside each run's identity: every step of every run's training history (training_curves),
and every probe run's test accuracy at every L2 strength (regularisation_sweep)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd

from w2s import io
from w2s.data import generations
from w2s.data import labels as class_probs
from w2s.evaluation import metrics
from w2s.evaluation.run_metrics import labels_by_id, test_labels


CURVE_COLUMNS = (
    "dataset", "seed", "run", "kind", "model", "loss", "lineage", "model_selection", "step", "epoch",
    "train_loss", "batch_target_accuracy", "holdout_accuracy", "selection_rows", "device",
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
        test = labels_by_id(test_path)
        for (l2, chosen), at in sweep.groupby(["l2", "chosen"], sort=True, dropna=False):
            labels = test_labels(test_path, pd.Index(at["id"]), path, test)
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
