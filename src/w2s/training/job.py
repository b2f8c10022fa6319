"""TrainingJob: what every trainer reads (w2s.training.jobs.KIND_TRAINING), built once
by w2s.training.jobs.train_model from the job's settings, rows and paths."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Sequence

import pandas as pd
import torch

from w2s.tasks import Task
from w2s.training.distributed import SINGLE, Ranks
from w2s.training.settings import TrainingSettings


@dataclass(frozen=True)
class TrainingJob:
    """What every trainer reads: the model, its settings, the task, the rows to train on (positions in
    `train_split` with soft labels, without the held-out ones), the loss and where outputs go."""

    model_entry: dict[str, Any]
    settings: TrainingSettings
    seed: int
    task: Task
    frames: dict[str, pd.DataFrame]
    train_split: str
    rows: pd.DataFrame
    holdout: pd.DataFrame | None
    loss: str
    loss_params: dict[str, Any]
    out: dict[str, str]
    features_path: str | None
    input_paths: list[str]
    resume_dir: str | Path | None
    code_paths: Sequence[str | Path]
    ranks: Ranks = SINGLE
    on: torch.device | None = None
