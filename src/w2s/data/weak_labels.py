"""What a supervisor's predictions on one slice of train_w2s become: the student's weak labels, soft and hard
class labels for classification (here) or generations for generative tasks (w2s.data.generations), each with the
hash of the rows they label (w2s.data.splits.rows_sha256), which the student checks before it trains."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from w2s import io
from w2s.data import labels as class_probs
from w2s.data.generations import write_generated_weak_labels
from w2s.data.splits import W2sSlice, rows_sha256

log = logging.getLogger("w2s")


def write_weak_labels(predictions_path: str, train_w2s_path: str, labelled: W2sSlice, out_path: str) -> None:
    """The supervisor's predictions on one slice of train_w2s (`labelled`): id, soft label (its K class probabilities,
    w2s.data.labels) and hard label (the most probable class), and the sha256 of train_w2s's (id, input)
    pairs (`train_w2s_sha256`), which the student checks against its own rows. `train_w2s_path` is the
    split's label-free view: no true label is read or written."""
    preds = pd.read_parquet(predictions_path)
    w2s = preds[preds["split"] == "train_w2s"].reset_index(drop=True)
    train_w2s = pd.read_parquet(train_w2s_path)
    if "generation" in w2s:  # a generative task's predictions: texts on the slices it labels, not probabilities
        write_generated_weak_labels(w2s, train_w2s, labelled.index, labelled.n_slices, predictions_path, out_path)
        return
    if w2s["id"].tolist() != train_w2s["id"].tolist():
        raise ValueError(
            f"{predictions_path}: the supervisor's train_w2s predictions are not of the rows of {train_w2s_path} "
            f"in their order ({len(w2s)} predictions, {len(train_w2s)} rows), so they were made from other data; "
            "delete the predictions and let the supervisor's training rule make them again"
        )
    rows = labelled.of(w2s)
    probs = class_probs.read_column(rows, "probs", predictions_path)
    class_probs.check_probabilities(
        probs, f"{predictions_path}, the supervisor's predictions on train_w2s",
        "its training diverged, so it cannot supervise: lower its lr or use dtype float32, then rerun it",
    )
    hard = class_probs.hard(probs)
    frame = pd.DataFrame({
        "id": rows["id"].to_numpy(),
        "soft_label": class_probs.as_column(probs),
        "hard_label": hard,
        "train_w2s_sha256": rows_sha256(train_w2s),
    })
    log.info("slice %d/%d: %d weak labels of %d classes, class fractions %s", labelled.index, labelled.n_slices,
             len(frame), probs.shape[1],
             [round(f, 3) for f in (np.bincount(hard, minlength=probs.shape[1]) / len(hard))[:10]])
    io.write_parquet(frame, out_path)
