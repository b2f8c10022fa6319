"""Class probabilities as every artifact stores them, for any number of classes K.

Predictions, sweeps and weak labels hold one row per example and the example's K class
probabilities as one list column (`probs` in predictions and sweeps, `soft_label` in weak labels),
so that binary and many-class tasks share every file layout. In memory they are float64 arrays of
shape (n, K). A hard label is the most probable class, the lowest index among ties: for K = 2 that
is class 1 exactly when its probability is above 0.5.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

# Rows of stored probabilities must sum to 1 within this; float32 softmax rows do so within 1e-6.
ROW_SUM_TOLERANCE = 1e-4


def as_column(probs: np.ndarray) -> list[np.ndarray]:
    """(n, K) probabilities as the list column an artifact stores: one length-K array per row."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2:
        raise ValueError(f"class probabilities must have shape (n, K), not {probs.shape}")
    return list(probs)


def read_column(frame: pd.DataFrame, column: str, where: str) -> np.ndarray:
    """The (n, K) float64 array of a stored list column; every row must have the same K."""
    values = frame[column].to_numpy()
    if len(values) == 0:
        return np.zeros((0, 0))
    if not all(isinstance(v, (list, np.ndarray)) for v in values):
        raise ValueError(f"{where}: '{column}' holds one number per row, not each row's K class probabilities, so an "
                         "older w2s wrote it; delete the file and let its rule make it again")
    lengths = {len(v) for v in values}
    if len(lengths) != 1:
        raise ValueError(f"{where}: rows of '{column}' hold different numbers of classes {sorted(lengths)}; "
                         "the file is damaged, so delete it and let its rule make it again")
    return np.stack(values).astype(np.float64)


def hard(probs: np.ndarray) -> np.ndarray:
    """Each row's most probable class (the lowest index among ties)."""
    return np.asarray(probs).argmax(axis=1)


def one_hot(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """Labels 0..K-1 as (n, K) probabilities."""
    labels = np.asarray(labels, dtype=np.int64)
    out = np.zeros((len(labels), n_classes))
    out[np.arange(len(labels)), labels] = 1.0
    return out


def check_probabilities(probs: np.ndarray, what: str, fix: str) -> None:
    """Raise ValueError unless `probs` (n, K) holds probabilities whose rows sum to 1: NaN would count
    as no class and a value above 1 as a confident one, so bad values must stop the job."""
    values = np.asarray(probs, dtype=float)
    if values.ndim != 2 or values.shape[1] < 2:
        raise ValueError(f"{what}: class probabilities must have shape (n, K) with K >= 2, not {values.shape}; {fix}")
    bad = np.flatnonzero(~((values >= 0) & (values <= 1)).all(axis=1))  # NaN fails both comparisons
    if len(bad):
        raise ValueError(f"{what}: {len(bad)} of {len(values)} rows hold probabilities that are NaN or outside "
                         f"[0, 1] (the first is row {bad[0]}: {values[bad[0]].tolist()[:5]}); {fix}")
    sums = values.sum(axis=1)
    off = np.flatnonzero(np.abs(sums - 1) > ROW_SUM_TOLERANCE)
    if len(off):
        raise ValueError(f"{what}: {len(off)} of {len(values)} rows of probabilities do not sum to 1 (the first is "
                         f"row {off[0]}, summing to {sums[off[0]]:.6f}); {fix}")
