"""Generative tasks' predictions and weak labels: texts where classification stores class probabilities.

Predictions hold (split, id, generation): a model's greedy generation for each prompt of test and of the
slices of train_w2s it labels for students (w2s.training.generative; a model that supervises nobody generates
on test only). Weak labels hold (id, prompt, generation, empty, train_w2s_sha256): the supervisor's generations
on its slice of train_w2s with the prompts they answer, which the student checks against its own split before
it trains on the generations as targets. An empty generation stays a weak label, flagged in `empty`: weak
supervision as it came, which exact match scores wrong (w2s.evaluation.metrics) and the student's metrics count.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from w2s import io
from w2s.data.splits import REMAKE_WEAK_LABELS, rows_sha256, w2s_slice, weak_label_positions

log = logging.getLogger("w2s")
GENERATION_COLUMN = "generation"
# The weak-label column that flags a generation with no answer (empty, or whitespace only).
EMPTY_COLUMN = "empty"


def prediction_frame(ids: dict[str, pd.Series], generations: dict[str, list[str]]) -> pd.DataFrame:
    """Every predicted split's (split, id, generation) rows, in the splits' order."""
    return pd.concat([pd.DataFrame({"split": split, "id": ids[split].to_numpy(), GENERATION_COLUMN: generations[split]})
                      for split in ids], ignore_index=True)


def write_generated_weak_labels(w2s: pd.DataFrame, train_w2s: pd.DataFrame, slice_index: int, n_slices: int,
                                predictions_path: str, out_path: str) -> None:
    """The supervisor's generations `w2s` (its train_w2s predictions: the slices it labels) on slice
    `slice_index` of `n_slices` of train_w2s, in the slice's order, with each row's prompt, whether it is
    empty and the hash of train_w2s's (id, prompt) pairs.

    A generation with no answer (empty or whitespace only: the supervisor ended its text at once) is kept as
    "" and counted; a supervisor that generated nothing for some of the slice's rows was trained to label
    another slice, and is refused with the ids it lacks.
    """
    rows = w2s_slice(train_w2s, slice_index, n_slices)
    generated = w2s.set_index("id")[GENERATION_COLUMN]
    lacking = rows.loc[~rows["id"].isin(generated.index), "id"].tolist()
    if lacking:
        raise ValueError(
            f"{predictions_path}: the supervisor generated nothing for {len(lacking)} of the {len(rows)} prompts of "
            f"train_w2s slice {slice_index}/{n_slices} (ids {', '.join(map(str, lacking[:5]))}"
            f"{', ...' if len(lacking) > 5 else ''}), so it was trained to label another slice; delete its predictions "
            "and let its training rule make them again")
    texts = generated.loc[rows["id"]].fillna("").astype(str)
    empty = ~texts.str.strip().astype(bool)
    frame = pd.DataFrame({"id": rows["id"].to_numpy(), "prompt": rows["prompt"].to_numpy(),
                          GENERATION_COLUMN: texts.where(~empty, "").to_numpy(), EMPTY_COLUMN: empty.to_numpy(),
                          "train_w2s_sha256": rows_sha256(train_w2s)})
    if empty.any():
        shown = ", ".join(map(str, frame.loc[frame[EMPTY_COLUMN], "id"][:5]))
        log.warning("%s: the supervisor generated no text for %d of the %d prompts of slice %d/%d (ids %s); they stay "
                    "weak labels, the end-of-text token alone as the student's target", predictions_path,
                    int(empty.sum()), len(frame), slice_index, n_slices, shown)
    log.info("slice %d/%d: %d generated weak labels, %d distinct, %d empty", slice_index, n_slices, len(frame),
             frame[GENERATION_COLUMN].nunique(), int(empty.sum()))
    io.write_parquet(frame, out_path)


def training_targets(weak_labels_path: str, train_w2s: pd.DataFrame) -> pd.DataFrame:
    """A student's rows (position in train_w2s, target = the supervisor's generation) from a weak-label file,
    once its prompts are shown to be this split's: each row's prompt must be the one train_w2s has under
    its id, and the file's hash must be train_w2s's."""
    labels = pd.read_parquet(weak_labels_path)
    if GENERATION_COLUMN not in labels or "prompt" not in labels:
        raise ValueError(f"{weak_labels_path}: weak labels of a generative task hold id, prompt and generation, "
                         f"this file has {', '.join(labels.columns)}, so its supervisor was made for another task; "
                         f"{REMAKE_WEAK_LABELS}")
    ours = train_w2s.set_index("id")["prompt"]
    known = labels["id"].isin(ours.index)
    differ = labels[known & (labels["prompt"].to_numpy() != ours.reindex(labels["id"]).to_numpy())]
    if len(differ):
        first = differ.iloc[0]
        raise ValueError(f"{weak_labels_path}: the prompts of {len(differ)} weak labels are not the prompts train_w2s "
                         f"has under their ids (id {first['id']}: the weak label answers {first['prompt']!r}, "
                         f"train_w2s asks {ours[first['id']]!r}), so the generations answer other questions; "
                         f"{REMAKE_WEAK_LABELS}")
    positions = weak_label_positions(labels, train_w2s, weak_labels_path)
    return pd.DataFrame({"row": positions, "target": labels[GENERATION_COLUMN].to_numpy()})


def test_generations(path: str) -> pd.Series:
    """A prediction file's test generations, indexed by id."""
    frame = pd.read_parquet(path)
    if GENERATION_COLUMN not in frame:
        raise ValueError(f"{path}: predictions of a generative task hold generations, this file has "
                         f"{', '.join(frame.columns)}, so it was made for another task; retrain the run that wrote it")
    return frame[frame["split"] == "test"].set_index("id")[GENERATION_COLUMN].fillna("")


def aligned_generations(path: str, ids: pd.Index) -> np.ndarray:
    """Another model's test generations in the order of `ids`."""
    test = test_generations(path)
    positions = test.index.get_indexer(ids)
    if (positions < 0).any():
        raise ValueError(f"{path}: {int((positions < 0).sum())} of the student's test rows have no generation here, "
                         "so it was made from other data; retrain the run that wrote it")
    return test.to_numpy()[positions]
