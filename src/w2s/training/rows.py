"""The rows a training job trains on and selects its model with: positions in their split with a soft label
(and a true label where the job may see one), a seeded holdout of them, a data axis's nested subset, and the
labels the held-out rows are scored against. A generative task's rows are w2s.training.generative's."""

from __future__ import annotations

import numpy as np
import pandas as pd

from w2s.data import labels as class_probs
from w2s.data.splits import REMAKE_WEAK_LABELS, rows_sha256, weak_label_positions


def training_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None,
                   oracle_labels_path: str | None = None, n_classes: int = 2) -> pd.DataFrame:
    """Rows to train on, as positions in their split with a soft label (the row's K class
    probabilities), and a true label where the job may see one.

    Ground-truth runs train on train_gt's labels, which are also their true labels. Students train on
    weak labels of rows of train_w2s's label-free view and get no true label; only the opt-in oracle
    of ground_truth_holdout (`oracle_labels_path`, the labelled train_w2s) adds them, joined by id.
    """
    if weak_labels_path is None:
        gt = frames["train_gt"]
        return pd.DataFrame({"row": np.arange(len(gt)),
                             "soft_label": class_probs.as_column(class_probs.one_hot(gt["label"], n_classes)),
                             "true_label": gt["label"].to_numpy()})
    labels = pd.read_parquet(weak_labels_path)
    train_w2s = frames["train_w2s"]
    positions = weak_label_positions(labels, train_w2s, weak_labels_path)
    remake = REMAKE_WEAK_LABELS
    soft = class_probs.read_column(labels, "soft_label", weak_labels_path)
    if soft.shape[1] != n_classes:
        raise ValueError(f"{weak_labels_path}: the weak labels have {soft.shape[1]} classes but this task has "
                         f"{n_classes}, so their supervisor was made for another task; check the dataset's n_classes, "
                         f"then {remake}")
    class_probs.check_probabilities(soft, f"{weak_labels_path}, the soft weak labels", remake)
    rows = pd.DataFrame({"row": positions, "soft_label": class_probs.as_column(soft)})
    if oracle_labels_path is not None:
        oracle = pd.read_parquet(oracle_labels_path)
        if rows_sha256(oracle) != rows_sha256(train_w2s):
            raise ValueError(f"{oracle_labels_path}: the ground-truth oracle's rows are not this job's train_w2s "
                             "rows; rerun prepare_data for this dataset and seed")
        rows["true_label"] = oracle.set_index("id").loc[labels["id"], "label"].to_numpy()
    return rows


def split_holdout(rows: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random `fraction` of the training rows, kept out of training to select the model."""
    n_holdout = int(round(fraction * len(rows)))
    if not 1 <= n_holdout < len(rows):
        raise ValueError(f"holdout_frac {fraction} of {len(rows)} training rows leaves no rows to "
                         "train or to select on; change training.holdout_frac")
    order = np.random.default_rng(seed).permutation(len(rows))
    return rows.iloc[order[n_holdout:]], rows.iloc[order[:n_holdout]]


# The subsample of a data axis draws from its own stream, apart from the holdout's (seeded by `seed` alone).
SUBSAMPLE_STREAM = 1


def nested_subset(rows: pd.DataFrame, n_rows: int, seed: int) -> pd.DataFrame:
    """The first `n_rows` of a seeded permutation of the training rows, in their own order: for one seed and
    one set of rows, a smaller subset is part of every larger one (the data axes, config `axes`)."""
    if not 1 <= n_rows < len(rows):
        raise ValueError(f"a data axis asks for {n_rows} of {len(rows)} training rows; give fewer than "
                         f"{len(rows)} in the config's axes")
    order = np.random.default_rng((seed, SUBSAMPLE_STREAM)).permutation(len(rows))
    return rows.iloc[np.sort(order[:n_rows])]


def selection_labels(holdout: pd.DataFrame, model_selection: str) -> np.ndarray:
    """The class labels held-out rows are scored against: their training labels' most probable class
    (weak ones for a student), or their true labels under the opt-in ground_truth_holdout."""
    if model_selection == "ground_truth_holdout":
        return holdout["true_label"].to_numpy()
    return class_probs.hard(np.stack(holdout["soft_label"].to_numpy()))
