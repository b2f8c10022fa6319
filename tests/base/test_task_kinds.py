"""Task kinds enter through one registration point per layer, each keyed by the kind's name: its declaration
(w2s.tasks.KINDS: columns, model families, modes), its training (w2s.training.jobs.KIND_TRAINING: training rows
and a trainer per mode) and its scorer (w2s.evaluation.run_metrics.SCORERS). Every kind has its part in each,
and a toy kind registered there alone is validated in a config, trained and scored."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
from helpers import SCHEMA, minimal_config, validation_error
from job_settings import training_settings

from w2s import tasks
from w2s.evaluation.run_metrics import SCORERS, Evaluation, evaluate
from w2s.pipeline.validation import validate_config
from w2s.training.job import TrainingJob
from w2s.training.jobs import KIND_TRAINING, KindTraining, train_model
from w2s.training.outputs import write_predictions

TOY = "toy_scores"


def test_every_kind_has_its_training_and_its_scorer_and_nothing_else_is_registered() -> None:
    assert sorted(KIND_TRAINING) == sorted(SCORERS) == sorted(tasks.KINDS)
    for name, kind in tasks.KINDS.items():
        assert tuple(KIND_TRAINING[name].trainers) == kind.modes, name


def _toy_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None, oracle_labels_path: str | None,
              task: tasks.Task) -> pd.DataFrame:
    """Every train_gt row, its soft label the one-hot of its label."""
    gt = frames["train_gt"]
    return pd.DataFrame({"position": np.arange(len(gt)), "soft_label": list(np.eye(task.n_classes)[gt["label"]])})


def _toy_trainer(job: TrainingJob) -> None:
    """Predicts the training rows' class frequencies for every row: no model at all."""
    frequencies = np.mean(np.stack(job.rows["soft_label"].to_list()), axis=0)
    probs = {split: np.tile(frequencies, (len(job.frames[split]), 1)) for split in ("test", "train_w2s")}
    write_predictions(job.frames, probs, job.out, "the toy trainer")


def _toy_scorer(job: Evaluation) -> None:
    predictions = pd.read_parquet(job.predictions["self"])
    Path(job.out_path).write_text(json.dumps({**job.context, "n_predicted": len(predictions)}))


@pytest.fixture
def toy_kind(monkeypatch: pytest.MonkeyPatch) -> None:
    """The toy kind, registered where a new kind is and nowhere else."""
    monkeypatch.setitem(tasks.KINDS, TOY, tasks.TaskKind(TOY, "text", ("transformers",), ("full",), "a toy kind"))
    monkeypatch.setitem(KIND_TRAINING, TOY, KindTraining(_toy_rows, {"full": _toy_trainer}))
    monkeypatch.setitem(SCORERS, TOY, _toy_scorer)


def _toy_config(kind: str) -> dict:
    config = minimal_config()
    config["datasets"] = {"mine": {"kind": kind, "n_classes": 2, "n_train": 8, "n_test": 4,
                                   "data_files": {"train": "train.jsonl", "test": "test.jsonl"}}}
    return config


def test_a_config_names_a_registered_kind_and_an_unknown_kind_is_refused_with_the_known_ones(toy_kind: None) -> None:
    validate_config(_toy_config(TOY), SCHEMA)
    assert validation_error(_toy_config("toy_scorez")) == (
        "unknown task kind 'toy_scorez' in datasets.mine.kind; valid task kinds are: generative, "
        "image_classification, text_classification, toy_scores")


def test_a_toy_kind_registered_alone_trains_and_is_scored(toy_kind: None, tmp_path: Path) -> None:
    splits = {"train_gt": [0, 1, 1, 1], "train_w2s": [0, 0, 1], "test": [1, 0]}
    paths = {}
    for split, labels in splits.items():
        paths[split] = str(tmp_path / f"{split}.parquet")
        pd.DataFrame({"id": [f"{split}:{i}" for i in range(len(labels))], "text": ["a text"] * len(labels),
                      "label": labels}).to_parquet(paths[split])
    out = {"predictions": str(tmp_path / "predictions.parquet")}
    train_model({"path": "unused"}, training_settings(mode="full", model_selection="final"), 0, paths, out,
                task={"kind": TOY, "n_classes": 2})
    predictions = pd.read_parquet(out["predictions"])
    assert predictions["split"].tolist() == ["test", "test", "train_w2s", "train_w2s", "train_w2s"]
    assert np.stack(predictions["probs"].to_list()).tolist() == [[0.25, 0.75]] * 5
    metrics_path = tmp_path / "metrics.json"
    evaluate("gt/toy", {"self": out["predictions"]}, paths["test"], 0, 0, str(metrics_path),
             {"run": "gt/toy", "task_kind": TOY})
    assert json.loads(metrics_path.read_text()) == {"run": "gt/toy", "task_kind": TOY, "n_predicted": 5}
