"""The prepared splits' rows as later jobs meet them: train_w2s's slices (w2s_slice), the hash that ties weak
labels to the rows they label (rows_sha256), the position of each weak label's row (weak_label_positions), and the
name of a dataset's out-of-distribution test split (OOD_SPLIT)."""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass

import numpy as np
import pandas as pd


# A dataset's out-of-distribution test split (config ood_test, rule prepare_ood_test), predicted beside test.
OOD_SPLIT = "ood_test"


@dataclass(frozen=True)
class W2sSlice:
    """Slice `index` (1-based) of `n_slices` equal, disjoint, contiguous slices of train_w2s: the rows one
    supervisor labels for one student."""

    index: int
    n_slices: int

    def __post_init__(self) -> None:
        if not 1 <= self.index <= self.n_slices:
            raise ValueError(f"slice {self.index} does not exist among {self.n_slices} slices")

    def of(self, rows: pd.DataFrame) -> pd.DataFrame:
        """This slice of `rows`, train_w2s or a frame in its order."""
        bounds = np.linspace(0, len(rows), self.n_slices + 1).astype(int)
        return rows.iloc[bounds[self.index - 1] : bounds[self.index]]


def w2s_slice(rows: pd.DataFrame, slice_index: int, n_slices: int) -> pd.DataFrame:
    """Slice `slice_index` (1-based) of `n_slices` equal, disjoint, contiguous slices of train_w2s."""
    return W2sSlice(slice_index, n_slices).of(rows)


def rows_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a split's rows as ordered (id, input) pairs: what weak labels were made for, checked
    by the student that reads them. Each pair is one JSON line, so no two different lists of pairs
    give the same bytes; an image enters as its bytes' sha256. Labels do not enter, so label-free
    views and labelled splits agree."""
    digest = hashlib.sha256()
    if "image" in frame:
        inputs = (hashlib.sha256(data).hexdigest() for data in frame["image"])
    else:
        inputs = (str(text) for text in frame["prompt" if "prompt" in frame else "text"])
    for row_id, value in zip(frame["id"], inputs):
        digest.update(json.dumps([str(row_id), value], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


REMAKE_WEAK_LABELS = "delete it and let the weak_labels rule make it again from this dataset and seed"


def weak_label_positions(labels: pd.DataFrame, train_w2s: pd.DataFrame, path: str) -> np.ndarray:
    """The position in train_w2s of each weak label's row, once the labels are shown to be made for these
    rows: their `train_w2s_sha256` is the hash of train_w2s's (id, input) pairs, and each id is one of its
    rows, once."""
    # Ids alone repeat across datasets ("train:17"); the hash of every (id, input) pair does not.
    made_for = labels["train_w2s_sha256"].unique().tolist() if "train_w2s_sha256" in labels else []
    ours = rows_sha256(train_w2s)
    if made_for != [ours]:
        raise ValueError(f"{path}: the weak labels were made for train_w2s rows whose ids and inputs hash "
                         f"to {made_for or 'nothing (no train_w2s_sha256 column)'}, but this job's train_w2s hashes to "
                         f"{ours}, so they label other data; {REMAKE_WEAK_LABELS}")
    position = pd.Series(np.arange(len(train_w2s)), index=train_w2s["id"])
    missing = set(labels["id"]) - set(position.index)
    if missing or labels["id"].duplicated().any():
        raise ValueError(f"{path}: {len(missing)} weak-label ids are not in train_w2s, or ids repeat, "
                         f"so the file was not written by the weak_labels rule; {REMAKE_WEAK_LABELS}")
    return position.loc[labels["id"]].to_numpy()
