"""The settings a job receives for a model whose training block is given: the params its rule would pass
(w2s.pipeline.experiment.training_job_params, the schema's defaults under the block), then the typed settings."""

from __future__ import annotations

from w2s.pipeline.experiment import training_job_params
from w2s.training.settings import TrainingSettings


def job_params(**training: object) -> dict:
    return training_job_params({"models": {"m": {"path": "unused", "training": training}}}, "m")


def training_settings(**training: object) -> TrainingSettings:
    return TrainingSettings.from_params(job_params(**training))
