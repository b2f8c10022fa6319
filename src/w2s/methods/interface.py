"""The fixed interface of a weak-to-strong method: what a method callable receives (MethodInputs, with the strong
model as a StrongModel and the project's trainer behind StrongModel.train), and what it may return (its class
probabilities on the splits it is asked about, or the StudentRun that StrongModel.train made).

A method is `def my_method(inputs: MethodInputs) -> StudentRun | dict[str, numpy.ndarray]`, in any module or file,
named in the config's `methods:` block by its entry (w2s.methods.entries). It never receives a true label: its
rows are the label-free views of train_w2s and test, its supervision the weak labels.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from w2s.data import labels as class_probs
from w2s.models.prompting import PromptSettings
from w2s.tasks import Task
from w2s.training.settings import TrainingSettings

# The splits a method predicts: test is scored; train_w2s becomes the weak labels of the next step of a chain; a
# dataset's out-of-distribution test split (OOD_SPLIT, config ood_test) is scored too where it has one.
METHOD_SPLITS = ("test", "train_w2s")


class MethodError(RuntimeError):
    """A method could not be found or run, or returned what the pipeline cannot use; the message says what to fix."""


@dataclass(frozen=True)
class StudentRun:
    """A student the project's own trainer made for a method (StrongModel.train): its output files in the method's
    scratch folder (checkpoint, predictions, history, sweep), as a train_student job writes them."""

    out: dict[str, str]

    def probs(self, split: str) -> np.ndarray:
        """Its (n, K) class probabilities on `split` (test or train_w2s), in the split's row order."""
        frame = pd.read_parquet(self.out["predictions"])
        return class_probs.read_column(frame[frame["split"] == split], "probs", self.out["predictions"])


# How StrongModel.train runs the project's trainer: (weak labels file, loss, loss params, output folder) -> outputs.
Trainer = Callable[[str, str, dict[str, Any], Path], dict[str, str]]


@dataclass(frozen=True)
class StrongModel:
    """The strong model in its configured mode: its config entry and training settings, its frozen features where it
    is a probe (`features_path`), and `train`, the project's student trainer (full or LoRA finetuning, or the probe
    solver) on weak labels a method chose."""

    name: str
    entry: dict[str, Any]
    settings: TrainingSettings
    features_path: str | None
    trainer: Trainer = field(repr=False)
    scratch: Path = field(repr=False)

    @property
    def mode(self) -> str:
        return self.settings.mode

    def features(self) -> dict[str, Any]:
        """The frozen features of every split by name (train_gt, train_w2s, test: torch tensors, rows in the splits'
        order), for a probe-mode model. A method reads train_w2s's and test's; train_gt's rows hold no label."""
        if self.features_path is None:
            raise MethodError(f"model '{self.name}' trains in mode {self.mode}, which has no frozen features; a "
                              "method that reads features needs a probe-mode strong model (training.mode: probe)")
        from safetensors.torch import load_file

        return load_file(self.features_path)

    def train(self, weak_labels: pd.DataFrame, *, loss: str = "xent", loss_params: dict[str, Any] | None = None,
              name: str = "student") -> StudentRun:
        """The project's student trained on `weak_labels` (rows of MethodInputs.weak_labels: a subset, rows repeated
        for resampling, or soft labels changed) with a registered loss, exactly as a train_student job would; its
        outputs go to the scratch folder `name`."""
        folder = self.scratch / name
        folder.mkdir(parents=True, exist_ok=True)
        path = folder / "weak_labels.parquet"
        weak_labels.to_parquet(path, index=False)
        return StudentRun(self.trainer(str(path), loss, dict(loss_params or {}), folder))


@dataclass(frozen=True)
class MethodInputs:
    """What a method receives.

    `train`: the label-free rows of train_w2s that the weak labels label (id and input), in the weak labels' order,
    with `position`, each row's position in train_w2s (the row of train_w2s's features).
    `weak_labels`: the supervisor's labels of those rows (id, soft_label: K class probabilities, hard_label, and the
    hash of the rows they were made for). `predict`: the label-free splits to return probabilities for (test,
    train_w2s, and ood_test where the dataset has an out-of-distribution test split). `strong`: the strong model and the trainer. `params`: the method's params from the config. `seed`:
    the run's seed. `scratch`: an empty folder of its own. `prompt`: the dataset's question and label words (one
    per class), the prompt's token limit, batch size and dtype, for a method that prompts the strong model or builds
    contrast pairs from the candidate answers (w2s.models.prompting).
    """

    task: Task
    train: pd.DataFrame
    weak_labels: pd.DataFrame
    predict: dict[str, pd.DataFrame]
    strong: StrongModel
    params: dict[str, Any]
    seed: int
    scratch: Path
    prompt: PromptSettings

    def weak_probs(self) -> np.ndarray:
        """The weak labels' (n, K) class probabilities."""
        return class_probs.read_column(self.weak_labels, "soft_label", "the method's weak labels")

    def train_features(self) -> np.ndarray:
        """The strong model's frozen features of the weak-labelled rows, in the weak labels' order (probe mode)."""
        return self.strong.features()["train_w2s"][self.train["position"].to_numpy()].double().numpy()
