"""Supervisors that are no trained model: simulated weak supervisors with a chosen error structure, and
ensembles of weak models.

Each writes a prediction file as a training job does (split, id, probs on train_w2s and test), so that
weak labels, students and metrics read it like any supervisor's.

Simulated: the real weak model's (`like`) errors are counted on each block it labels, the test split
and each w2s slice of train_w2s, and exactly as many rows of that block get a wrong label, chosen by
the structure: at random (seeded), on the longest inputs (characters), where a strong ground-truth
model is least confident (lowest top-class probability), or on the highest values of a column of the
prepared split. Ties go to the earlier row in the split's stored order. A wrong label is the next
class, (label + 1) mod K: the other class for K = 2. Every row's probabilities are its simulated label
with probability 1, so only where the errors fall differs from the real model, never its confidence.

Ensemble: members' class probabilities combined row by row, either their mean or a majority vote,
each member weighted equally or by its confidence on the row, max(p) - 1/K (|p - 0.5| for K = 2; a
row where every member is uniform falls back to equal weights). A vote's winner is stored with
probability 1; a tie goes to the tied class with the highest mean probability over members, then to
the lowest class.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass

import numpy as np
import pandas as pd

from w2s import io
from w2s.data import labels as class_probs
from w2s.data.splits import w2s_slice

log = logging.getLogger("w2s")

STRUCTURES = ("random", "longest", "least_confident", "column")
COMBINES = ("mean", "vote")
WEIGHTINGS = ("none", "confidence")


@dataclass(frozen=True)
class Simulation:
    """A simulated supervisor's error structure (STRUCTURES), and the column whose highest values get the errors
    for the structure `column`."""

    structure: str
    column: str | None = None

    def __post_init__(self) -> None:
        if self.structure not in STRUCTURES:
            raise ValueError(f"simulate is {self.structure!r}, not one of {', '.join(STRUCTURES)}")


@dataclass(frozen=True)
class Ensemble:
    """How an ensemble supervisor combines its members (COMBINES) and weights them (WEIGHTINGS)."""

    combine: str
    weighting: str

    def __post_init__(self) -> None:
        if self.combine not in COMBINES or self.weighting not in WEIGHTINGS:
            raise ValueError(f"an ensemble combines by {', '.join(COMBINES)} and weights by {', '.join(WEIGHTINGS)}, "
                             f"not {self.combine!r} and {self.weighting!r}")


def wrong_labels(labels: np.ndarray, n_classes: int) -> np.ndarray:
    """The wrong label each row gets: the next class, (label + 1) mod K."""
    return (np.asarray(labels, dtype=np.int64) + 1) % n_classes


def error_rows(n_errors: int, structure: str, seed: int | list[int], scores: np.ndarray | None = None,
               n_rows: int = 0) -> np.ndarray:
    """Positions (sorted) of the `n_errors` rows that get a wrong label: seeded at random among `n_rows`, or the
    rows with the highest `scores`, the earlier row first among equal scores."""
    if structure == "random":
        return np.sort(np.random.default_rng(seed).choice(n_rows, size=n_errors, replace=False))
    order = np.argsort(-np.asarray(scores, dtype=float), kind="stable")
    return np.sort(order[:n_errors])


def simulated_labels(labels: np.ndarray, like_probs: np.ndarray, structure: str, seed: int | list[int],
                     scores: np.ndarray | None = None) -> np.ndarray:
    """Labels with exactly as many errors as the real weak model's predictions `like_probs` make on these rows,
    placed by `structure` (`scores`: higher gets errors first; unused at random)."""
    labels = np.asarray(labels, dtype=np.int64)
    n_errors = int((class_probs.hard(like_probs) != labels).sum())
    given = labels.copy()
    wrong = error_rows(n_errors, structure, seed, scores, len(labels))
    given[wrong] = wrong_labels(labels[wrong], like_probs.shape[1])
    return given


def error_scores(structure: str, rows: pd.DataFrame, strong_probs: np.ndarray | None, column: str | None,
                 where: str) -> np.ndarray | None:
    """What orders the rows for a structure, higher first: input length, the strong model's doubt, a column."""
    if structure == "random":
        return None
    if structure == "longest":
        if "text" not in rows:
            raise ValueError(f"{where}: simulate longest places errors on the longest texts, but this task's inputs "
                             "are not text; use random, least_confident or column")
        return rows["text"].str.len().to_numpy(dtype=float)
    if structure == "least_confident":
        return -np.asarray(strong_probs).max(axis=1)
    if column not in rows:
        raise ValueError(f"{where}: simulate column places errors on the highest values of column '{column}', which "
                         f"the prepared split does not have (its columns: {', '.join(rows.columns)}); name one of them")
    values = rows[column]
    if not (pd.api.types.is_numeric_dtype(values) or pd.api.types.is_bool_dtype(values)):
        raise ValueError(f"{where}: column '{column}' holds {values.dtype} values, but errors go to its highest "
                         "values, so it must be numeric or boolean; name another column")
    return values.to_numpy(dtype=float)


def _aligned_probs(path: str, split: str, ids: pd.Series) -> np.ndarray:
    """A prediction file's probabilities on `split`, in the order of `ids`."""
    frame = pd.read_parquet(path)
    rows = frame[frame["split"] == split].set_index("id")
    positions = rows.index.get_indexer(ids)
    if (positions < 0).any():
        raise ValueError(f"{path}: {int((positions < 0).sum())} of the {len(ids)} {split} rows have no prediction, so "
                         "it was made from other data; delete it and let its rule make it again")
    probs = class_probs.read_column(rows, "probs", path)[positions]
    class_probs.check_probabilities(probs, f"{path}, {split} predictions", "retrain the run that wrote them")
    return probs


def _blocks(split: str, n_rows: int, n_slices: int) -> list[np.ndarray]:
    """The row positions a supervisor's error rate is matched on: each w2s slice of train_w2s, all of test."""
    positions = pd.DataFrame(index=np.arange(n_rows))
    if split != "train_w2s":
        return [positions.index.to_numpy()]
    return [w2s_slice(positions, k, n_slices).index.to_numpy() for k in range(1, n_slices + 1)]


def write_simulated(simulation: Simulation, split_paths: dict[str, str], like_path: str, seed: int, n_slices: int,
                    out_path: str, strong_path: str | None = None) -> None:
    """A simulated supervisor's predictions on train_w2s and test (`split_paths`: the labelled splits), with the
    error count of the real weak model's predictions (`like_path`) on each block, placed by the simulation's
    structure (`strong_path`: the strong ground-truth model's predictions, for least_confident)."""
    structure = simulation.structure
    frames = []
    for split_number, split in enumerate(("train_w2s", "test")):
        rows = pd.read_parquet(split_paths[split])
        like = _aligned_probs(like_path, split, rows["id"])
        strong = _aligned_probs(strong_path, split, rows["id"]) if structure == "least_confident" else None
        scores = error_scores(structure, rows, strong, simulation.column, split_paths[split])
        given = np.empty(len(rows), dtype=np.int64)
        for block_number, block in enumerate(_blocks(split, len(rows), n_slices)):
            given[block] = simulated_labels(rows["label"].to_numpy()[block], like[block], structure,
                                            seed=[seed, split_number, block_number],
                                            scores=None if scores is None else scores[block])
        errors = int((given != rows["label"].to_numpy()).sum())
        log.info("%s: %d of %d rows wrong (%s), as many as %s per block", split, errors, len(rows), structure,
                 like_path)
        frames.append(pd.DataFrame({"split": split, "id": rows["id"].to_numpy(),
                                    "probs": class_probs.as_column(class_probs.one_hot(given, like.shape[1]))}))
    io.write_parquet(pd.concat(frames, ignore_index=True), out_path)


def member_weights(member_probs: np.ndarray, weighting: str) -> np.ndarray:
    """(members, n) weights: 1, or each member's confidence max(p) - 1/K on the row; equal where all are 0."""
    n_members, n_rows, n_classes = member_probs.shape
    if weighting == "none":
        return np.ones((n_members, n_rows))
    confidence = member_probs.max(axis=2) - 1 / n_classes
    return np.where(confidence.sum(axis=0) > 0, confidence, 1.0)


def combined_probs(member_probs: np.ndarray, combine: str, weighting: str) -> np.ndarray:
    """The ensemble's (n, K) probabilities from its members' (members, n, K): weighted mean, or the weighted
    vote's winner with probability 1 (ties: highest mean probability over members, then the lowest class)."""
    member_probs = np.asarray(member_probs, dtype=float)
    weights = member_weights(member_probs, weighting)
    if combine == "mean":
        return np.einsum("mn,mnk->nk", weights, member_probs) / weights.sum(axis=0)[:, None]
    n_classes = member_probs.shape[2]
    votes = np.einsum("mn,mnk->nk", weights, class_probs.one_hot(
        class_probs.hard(member_probs.reshape(-1, n_classes)), n_classes).reshape(member_probs.shape))
    tied = np.isclose(votes, votes.max(axis=1, keepdims=True), rtol=0, atol=1e-12)
    tie_break = np.where(tied, member_probs.mean(axis=0), -np.inf)
    return class_probs.one_hot(tie_break.argmax(axis=1), n_classes)


def write_ensemble(member_paths: list[str], ensemble: Ensemble, out_path: str) -> None:
    """An ensemble supervisor's predictions on every row of its first member's prediction file."""
    combine, weighting = ensemble.combine, ensemble.weighting
    first = pd.read_parquet(member_paths[0])
    frames = []
    for split, rows in first.groupby("split", sort=False):
        members = [_aligned_probs(path, split, rows["id"]) for path in member_paths]
        if len({p.shape[1] for p in members}) != 1:
            raise ValueError(f"members {member_paths} predict different numbers of classes, so they were trained "
                             "on different tasks; retrain them on this dataset")
        probs = combined_probs(np.stack(members), combine, weighting)
        frames.append(pd.DataFrame({"split": split, "id": rows["id"].to_numpy(),
                                    "probs": class_probs.as_column(probs)}))
        log.info("%s: %s of %d members (%s weighting) on %d rows", split, combine, len(member_paths), weighting,
                 len(rows))
    io.write_parquet(pd.concat(frames, ignore_index=True), out_path)
