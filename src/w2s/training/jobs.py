"""A training job's dispatch (train_model): the task's kind (KIND_TRAINING, the training layer's one
registration point of a task kind) gives the job's training rows and, by training mode, its trainer, which gets
the rows, holdout and paths as one TrainingJob; called by w2s.training.launch for workflow/scripts/train_model.py.

The trainers: finetuning of a text classifier (w2s.training.finetune), a probe on frozen features or a
pretrained head (w2s.training.heads), and a generative task's causal LM (w2s.training.generative).
"""

from __future__ import annotations

import logging
from pathlib import Path
from dataclasses import dataclass
from typing import Any, Callable, Sequence

import pandas as pd
import pyarrow.parquet as pq
import torch

from w2s.models.devices import device
from w2s.models.text import generative_checkpoint_files
from w2s.tasks import Task, dataset_task
from w2s.training import generative
from w2s.training.distributed import SINGLE, Ranks
from w2s.training.finetune import finetune_classifier, resume_checkpoints
from w2s.training.heads import predict_with_own_head, train_probe
from w2s.training.job import TrainingJob
from w2s.training.loss_registry import GENERATIVE_LOSSES
from w2s.training.outputs import PREDICTED_SPLITS
from w2s.training.rows import nested_subset, split_holdout, training_rows
from w2s.training.settings import TrainingSettings

log = logging.getLogger("w2s")


def train_model(
    model_entry: dict[str, Any],
    settings: TrainingSettings,
    seed: int,
    split_paths: dict[str, str],
    out: dict[str, str],
    loss: str = "xent",
    loss_params: dict[str, Any] | None = None,
    weak_labels_path: str | None = None,
    features_path: str | None = None,
    oracle_labels_path: str | None = None,
    resume_dir: str | Path | None = None,
    code_paths: Sequence[str | Path] = (),
    task: dict[str, Any] | None = None,
    n_rows: int | None = None,
    ranks: Ranks = SINGLE,
    on: torch.device | None = None,
) -> None:
    """Train on train_gt's true labels, or on weak labels when given; predict test and train_w2s.

    With `n_rows` (a data axis), only a seeded nested subset of that many training rows is trained on
    and held out from (w2s.training.rows.nested_subset).

    The trainer is chosen by the training mode among those the task's kind supports (TRAINERS):
    finetuning (full or lora, text; w2s.training.finetune), a probe on the frozen features at `features_path`,
    or a pretrained head that predicts with no training (w2s.training.heads). `task` ({"kind", "n_classes"}, w2s.tasks) is a
    binary text task when not given.

    With `resume_dir`, finetuning saves resume checkpoints there every `checkpoint_every` steps and
    a rerun of the same job continues from the newest one, unless its settings, inputs or code
    (`code_paths`: the rule's code input, the digest of the script and the modules it imports) changed; the
    folder is removed once every output is written.

    With model_selection other than "final", a holdout of the training rows picks the best
    checkpoint: scored against the weak labels (weak_holdout) or, as an opt-in baseline that
    uses ground truth, against their true labels (ground_truth_holdout). A probe is fit to
    convergence instead (w2s.training.heads.train_probe), the holdout picks the L2 strength, and `out["sweep"]` gets
    the test predictions of every strength; other modes write their one model's test predictions
    there, with no strength.

    `split_paths` maps train_gt (labelled; ground-truth runs only), train_w2s and test (their
    label-free views) to files. A student sees true labels only through `oracle_labels_path`, the
    labelled train_w2s its rule gives it under ground_truth_holdout. Predictions and the sweep hold
    ids and class probabilities; evaluation joins the true labels by id.

    `ranks` is this process's place among several that finetune one model sharded (w2s.training.distributed,
    which starts them and gives `on`, the process's device); only full and lora finetuning of a
    classification task shard.
    """
    torch.manual_seed(seed)
    if weak_labels_path is not None and settings.model_selection == "ground_truth_holdout" \
            and oracle_labels_path is None:
        raise ValueError("model_selection ground_truth_holdout scores a student against true labels, but the job "
                         "was given no oracle labels; the train_student rule gives them as input oracle_labels")
    the_task = Task.from_params(task) if task is not None else dataset_task({})
    mode = settings.mode
    kind = KIND_TRAINING[the_task.kind]
    if mode not in kind.trainers:
        raise ValueError(f"training mode {mode} does not apply to a {the_task.kind} task; use one of "
                         f"{', '.join(kind.trainers)}")
    trainer = kind.trainers[mode]
    if ranks.sharded and trainer is not finetune_classifier:
        what = f"{the_task.kind} tasks" if mode in ("full", "lora") else f"training mode {mode}"
        raise ValueError(f"{what} train in one process, but this job has {ranks.world}; set the model's "
                         "resources.processes to 1 (several GPUs then hold the model's layers, spread by device_map)")
    frames = {split: _read_split(path, split, mode) for split, path in split_paths.items()}
    train_split = "train_gt" if weak_labels_path is None else "train_w2s"
    rows = kind.rows(frames, weak_labels_path, oracle_labels_path, the_task)
    if n_rows is not None:
        rows = nested_subset(rows, n_rows, seed)
        log.info("data axis: trains on %d of its %s rows", n_rows, train_split)
    holdout = None
    if settings.model_selection != "final" and mode != "pretrained_head":
        rows, holdout = split_holdout(rows, settings.holdout_frac, seed)
    # A twin's starting weights count too: a retrained generative finetuning stage resumes nothing of before.
    inputs = [*split_paths.values(), *(p for p in (weak_labels_path, features_path, oracle_labels_path) if p),
              *generative_checkpoint_files(model_entry)]
    trainer(TrainingJob(model_entry, settings, seed, the_task, frames, train_split, rows, holdout, loss,
                        loss_params or {}, out, features_path, inputs, resume_dir, code_paths, ranks,
                        on if on is not None else device()))


# The splits whose inputs (texts or images) a mode reads; finetuning reads every split's. A probe trains on
# features and needs train_w2s's inputs only to check the weak labels' hash; a pretrained head predicts
# train_w2s and test. Elsewhere ids and labels suffice, which spares reading gigabytes of images.
SPLITS_WITH_INPUTS = {"probe": {"train_w2s"}, "pretrained_head": set(PREDICTED_SPLITS)}


def _read_split(path: str, split: str, mode: str) -> pd.DataFrame:
    if mode not in SPLITS_WITH_INPUTS or split in SPLITS_WITH_INPUTS[mode]:
        return pd.read_parquet(path)
    return pd.read_parquet(path, columns=[c for c in ("id", "label") if c in pq.read_schema(path).names])


def _finetune_generative(job: TrainingJob) -> None:
    """A causal LM finetuned (full or lora) on a generative task's targets (w2s.training.generative)."""
    if job.loss not in GENERATIVE_LOSSES:
        raise ValueError(f"loss {job.loss} is defined on class probabilities; a generative task trains with "
                         f"{', '.join(sorted(GENERATIVE_LOSSES))} on its targets' tokens")
    generative.finetune(job, resume_checkpoints(job))


def _class_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None, oracle_labels_path: str | None,
                task: Task) -> pd.DataFrame:
    return training_rows(frames, weak_labels_path, oracle_labels_path, task.n_classes)


def _target_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None, oracle_labels_path: str | None,
                 task: Task) -> pd.DataFrame:
    return generative.training_rows(frames, weak_labels_path, oracle_labels_path)


@dataclass(frozen=True)
class KindTraining:
    """How one task kind trains: its training rows (positions in their split with a soft label or a target text,
    from train_gt, weak labels and the opt-in oracle) and the trainer of each training mode it supports, the
    modes w2s.tasks.KINDS declares for it (tests/base/test_task_kinds.py checks that the two agree)."""

    rows: Callable[[dict[str, pd.DataFrame], str | None, str | None, Task], pd.DataFrame]
    trainers: dict[str, Callable[[TrainingJob], None]]


# The training layer's registration point of a task kind (w2s.tasks.KINDS declares its columns and modes).
KIND_TRAINING: dict[str, KindTraining] = {
    "text_classification": KindTraining(_class_rows, {
        "full": finetune_classifier, "lora": finetune_classifier, "probe": train_probe}),
    "image_classification": KindTraining(_class_rows, {"probe": train_probe, "pretrained_head": predict_with_own_head}),
    "generative": KindTraining(_target_rows, {"full": _finetune_generative, "lora": _finetune_generative}),
}
