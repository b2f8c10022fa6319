"""One method job (rules/methods.smk): the method's inputs built from the job's label-free files, the method called
(w2s.methods.entries), and what it returns written as a student's outputs, so that evaluation, chains and the report
read a method's run as they read a student's (checkpoint, predictions, history, sweep)."""

from __future__ import annotations

import logging
import shutil
import tempfile
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2s import io
from w2s.data import labels as class_probs
from w2s.methods import entries
from w2s.methods.interface import MethodError, MethodInputs, StrongModel, StudentRun
from w2s.models.prompting import PromptSettings
from w2s.tasks import Task
from w2s.training.jobs import train_model
from w2s.training.outputs import predicted_splits, write_predictions
from w2s.training.probe import final_sweep
from w2s.training.settings import TrainingSettings

log = logging.getLogger("w2s")

STUDENT_OUTPUTS = ("checkpoint", "predictions", "history", "sweep")


def run_method(name: str, method: dict[str, Any], model: str, model_entry: dict[str, Any], settings: TrainingSettings,
               seed: int, split_paths: dict[str, str], weak_labels_path: str, features_path: str | None,
               out: dict[str, str], task: dict[str, Any], prompt: PromptSettings, workdir: Path = Path(".")) -> None:
    """Run config method `name` ({"entry", "params"}) for the strong model `model` on the label-free splits
    (`split_paths`: train_w2s and test) and the supervisor's weak labels, and write its outputs to `out`. `prompt`:
    the dataset's question and label words, for a method that prompts the strong model or builds contrast pairs."""
    the_task = Task.from_params(task)  # a classification task: the config validator refuses methods otherwise
    found = entries.load_method(method["entry"], workdir)
    record = entries.provenance(method["entry"], workdir)
    log.info("method %s: %s (%s, sha256 %s, version %s) with params %s", name, record["entry"], record["file"],
             record["sha256"], record["version"], method["params"])
    weak = pd.read_parquet(weak_labels_path)
    frames = {split: pd.read_parquet(path) for split, path in split_paths.items()}
    by_id = frames["train_w2s"].assign(position=np.arange(len(frames["train_w2s"]))).set_index("id", drop=False)
    train = by_id.loc[weak["id"]].reset_index(drop=True)

    with tempfile.TemporaryDirectory(prefix=f"w2s-method-{name}-") as scratch_dir:
        scratch = Path(scratch_dir)

        def trainer(labels_path: str, loss: str, loss_params: dict[str, Any], folder: Path) -> dict[str, str]:
            """The train_student job's own trainer, on the method's choice of weak labels."""
            written = {"checkpoint": str(folder / "checkpoint"),
                       **{key: str(folder / f"{key}.parquet") for key in STUDENT_OUTPUTS[1:]}}
            train_model(model_entry, settings, seed, split_paths, written, loss=loss, loss_params=loss_params,
                        weak_labels_path=labels_path, features_path=features_path, task=task)
            return written

        strong = StrongModel(model, model_entry, settings, features_path, trainer, scratch / "trained")
        inputs = MethodInputs(the_task, train, weak, {split: frames[split] for split in predicted_splits(frames)}, strong,
                              dict(method["params"]), seed, scratch / "method", prompt)
        inputs.scratch.mkdir()
        result = found(inputs)
        if isinstance(result, StudentRun):
            _copy_student(result, out)
        elif isinstance(result, dict):
            _write_probabilities(name, result, frames, out, the_task)
        else:
            raise MethodError(f"method '{name}' ({method['entry']}) returned {type(result).__name__}; a method returns "
                              "the StudentRun of inputs.strong.train, or a dict of class probabilities by split "
                              f"({', '.join(predicted_splits(frames))})")
    io.write_json({**record, "params": method["params"]}, Path(out["checkpoint"]) / "method.json")


def _copy_student(run: StudentRun, out: dict[str, str]) -> None:
    for key in STUDENT_OUTPUTS[1:]:
        shutil.copyfile(run.out[key], out[key])
    shutil.copytree(run.out["checkpoint"], out["checkpoint"])


def _write_probabilities(name: str, probs: dict[str, Any], frames: dict[str, pd.DataFrame], out: dict[str, str],
                         task: Task) -> None:
    """A method's own probabilities: checked against its splits' rows and the task's classes, written as a student's
    predictions, a one-row history and a sweep of its one model; its checkpoint holds only method.json."""
    arrays = {}
    for split in predicted_splits(frames):
        if split not in probs:
            raise MethodError(f"method '{name}' returned no probabilities for {split}; return every one of "
                              f"{', '.join(predicted_splits(frames))}")
        array = np.asarray(probs[split], dtype=np.float64)
        expected = (len(frames[split]), task.n_classes)
        if array.shape != expected:
            raise MethodError(f"method '{name}' returned {split} probabilities of shape {array.shape}; it needs "
                              f"{expected}: one row per {split} row, in their order, one column per class")
        arrays[split] = array
    write_predictions(frames, arrays, out, f"method '{name}' must return rows of class probabilities that sum to 1")
    io.write_parquet(pd.DataFrame({"step": [0], "trained": [False]}), out["history"])
    io.write_parquet(final_sweep(frames["test"], arrays["test"]), out["sweep"])
    Path(out["checkpoint"]).mkdir(parents=True, exist_ok=True)
    log.info("method %s: test class fractions %s", name,
             (np.bincount(class_probs.hard(arrays["test"]), minlength=task.n_classes) / len(arrays["test"])).round(3))
