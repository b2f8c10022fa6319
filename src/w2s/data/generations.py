"""Generative tasks' predictions and weak labels: texts where classification stores class probabilities.

Predictions hold (split, id, generation): a model's greedy generation for each prompt of test and train_w2s
(w2s.training.generative). Weak labels hold (id, prompt, generation, train_w2s_sha256): the supervisor's
generations on its slice of train_w2s with the prompts they answer, which the student checks against its
own split before it trains on the generations as targets.
"""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd

from w2s import io
from w2s.data.sources import REMAKE_WEAK_LABELS, rows_sha256, w2s_slice, weak_label_positions

log = logging.getLogger("w2s")
GENERATION_COLUMN = "generation"


class EmptyGenerationError(ValueError):
    """A supervisor generated no text for a prompt, so a student would have no target to learn."""


def prediction_frame(ids: dict[str, pd.Series], generations: dict[str, list[str]]) -> pd.DataFrame:
    """Every predicted split's (split, id, generation) rows, in the splits' order."""
    return pd.concat([pd.DataFrame({"split": split, "id": ids[split].to_numpy(), GENERATION_COLUMN: generations[split]})
                      for split in ids], ignore_index=True)


def write_generated_weak_labels(w2s: pd.DataFrame, train_w2s: pd.DataFrame, slice_index: int, n_slices: int,
                                predictions_path: str, out_path: str) -> None:
    """The supervisor's generations `w2s` (its train_w2s predictions, in train_w2s's order) on slice
    `slice_index` of `n_slices`, with each row's prompt and the hash of train_w2s's (id, prompt) pairs.

    A generation with no answer (empty or whitespace only: the supervisor ended its text at once) is refused
    with the ids it concerns; the supervisor's own outputs stay as they are.
    """
    rows = w2s_slice(w2s, slice_index, n_slices)
    prompts = w2s_slice(train_w2s, slice_index, n_slices)["prompt"].to_numpy()
    texts = rows[GENERATION_COLUMN].fillna("").astype(str)
    empty = rows.loc[~texts.str.strip().astype(bool), "id"].tolist()
    if empty:
        raise EmptyGenerationError(
            f"{predictions_path}: the supervisor generated no text for {len(empty)} of the {len(rows)} prompts of "
            f"train_w2s slice {slice_index}/{n_slices} (ids {', '.join(map(str, empty[:5]))}"
            f"{', ...' if len(empty) > 5 else ''}), so a student would have no target to learn there; its "
            "predictions and checkpoint are kept. Train the supervisor longer or with another lr so that it "
            "answers every prompt, then rerun it")
    frame = pd.DataFrame({"id": rows["id"].to_numpy(), "prompt": prompts, GENERATION_COLUMN: texts.to_numpy(),
                          "train_w2s_sha256": rows_sha256(train_w2s)})
    log.info("slice %d/%d: %d generated weak labels, %d distinct", slice_index, n_slices, len(frame),
             frame[GENERATION_COLUMN].nunique())
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
