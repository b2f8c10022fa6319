"""What each training job reads from the params its rule gives it, as typed, frozen settings.

The rules pass plain dicts (Snakemake compares them to decide what to rerun); workflow/scripts build
these objects from them at the boundary, and the job modules read nothing else. A params dict with a
key the settings do not name, or without one they need, is refused by name (w2s.params.check_keys).
Plain dataclasses, torch-free to import: the config validator (w2s.pipeline.validation) reads them when
Snakemake loads the workflow.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields
from typing import Any

from w2s.models.lora import LoraSettings
from w2s.params import SettingsError, check_keys

# What a probe head's fit does not read: the minibatch optimiser's settings and finetuning's switches.
SGD_ONLY_KEYS = ("lr", "epochs", "batch_size", "minibatch_size", "weight_decay", "warmup_frac", "max_grad_norm",
                 "optimizer", "evals_per_epoch", "checkpoint_every", "gradient_checkpointing", "compile", "lora")
# The keys each training mode's job does not receive: a pretrained head trains nothing, so neither the
# optimiser's keys nor the probe's apply; finetuning reads no probe block.
NOT_RECEIVED = {"probe": SGD_ONLY_KEYS, "pretrained_head": (*SGD_ONLY_KEYS, "probe")}
FINETUNING_NOT_RECEIVED = ("probe",)


def _names(cls: type) -> tuple[str, ...]:
    return tuple(field.name for field in fields(cls))


@dataclass(frozen=True)
class Schedule:
    """The minibatch schedule fit reads (w2s.training.loop.fit; TrainingSettings.schedule)."""

    lr: float
    epochs: float
    batch_size: int
    minibatch_size: int
    weight_decay: float
    warmup_frac: float
    max_grad_norm: float
    seed: int
    optimizer: str = "adamw"


@dataclass(frozen=True)
class ProbeSettings:
    """training.probe: the L2 strengths to choose from and when a solve has converged (w2s.training.probe)."""

    l2_grid: tuple[float, ...]
    tolerance: float
    max_iter: int
    max_rounds: int

    @classmethod
    def from_params(cls, probe: dict[str, Any]) -> "ProbeSettings":
        """From the training params' probe block (TrainingSettings checks its keys)."""
        return cls(tuple(float(v) for v in probe["l2_grid"]), float(probe["tolerance"]), int(probe["max_iter"]),
                   int(probe["max_rounds"]))


def lora_settings(params: dict[str, Any]) -> LoraSettings:
    check_keys("training params' lora block", params, _names(LoraSettings))
    modules = params["target_modules"]
    return LoraSettings(params["r"], params["alpha"], params["dropout"],
                        modules if isinstance(modules, str) else tuple(modules))


@dataclass(frozen=True)
class EmbeddingSettings:
    """What embed_features reads (w2s.training.features): pooling and max_length for texts, the compute dtype and
    batch size for both texts and images. In the order the embed_features rule passes them."""

    pooling: str
    max_length: int
    dtype: str
    eval_batch_size: int

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        return _names(cls)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "EmbeddingSettings":
        check_keys("embedding params", params, cls.keys())
        return cls(**params)


@dataclass(frozen=True)
class TrainingSettings:
    """What a training job reads (w2s.training.jobs.train_model; its Schedule goes to w2s.training.loop.fit, lora to
    add_lora, probe to w2s.training.probe). The minibatch keys and lora are None for a probe head and a
    pretrained head, probe is None except for a probe head: their rules do not pass them
    (w2s.pipeline.experiment.training_job_params), so that changing them reruns no such job."""

    mode: str
    pooling: str
    dtype: str
    eval_batch_size: int
    max_length: int
    model_selection: str
    holdout_frac: float
    lr: float | None
    epochs: float | None
    batch_size: int | None
    minibatch_size: int | None
    weight_decay: float | None
    warmup_frac: float | None
    max_grad_norm: float | None
    optimizer: str | None
    evals_per_epoch: float | None
    checkpoint_every: int | None
    gradient_checkpointing: bool | None
    compile: bool | None
    lora: LoraSettings | None
    probe: ProbeSettings | None

    @staticmethod
    def received_keys(mode: str) -> tuple[str, ...]:
        """The training keys a job in `mode` receives."""
        dropped = NOT_RECEIVED.get(mode, FINETUNING_NOT_RECEIVED)
        return tuple(name for name in _names(TrainingSettings) if name not in dropped)

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "TrainingSettings":
        if "mode" not in params:  # the mode says which keys the rest must be
            check_keys("training params", {}, ("mode",))
        check_keys(f"training params of mode {params['mode']}", params, cls.received_keys(params["mode"]))
        values = {name: params.get(name) for name in _names(cls)}
        values["lora"] = lora_settings(params["lora"]) if "lora" in params else None
        if "probe" in params:
            check_keys("training params' probe block", params["probe"], _names(ProbeSettings))
            values["probe"] = ProbeSettings.from_params(params["probe"])
        return cls(**values)

    def params(self) -> dict[str, Any]:
        """The params this was built from (from_params(settings.params()) == settings), as plain values that
        travel as JSON: a sharded job's torchrun workers receive them and build the settings again."""
        values = {name: getattr(self, name) for name in self.received_keys(self.mode)}
        for block in ("lora", "probe"):
            if block in values:
                values[block] = asdict(values[block])
        return values

    def schedule(self, seed: int) -> Schedule:
        """The minibatch schedule of finetuning (full or lora)."""
        names = [name for name in _names(Schedule) if name != "seed"]
        missing = [name for name in names if getattr(self, name) is None]
        if missing:
            raise SettingsError(f"mode {self.mode} trains no minibatches, so it has no {', '.join(missing)}")
        return Schedule(**{name: getattr(self, name) for name in names}, seed=seed)

    def identity(self) -> dict[str, Any]:
        """The settings as plain values, for a resume checkpoint's run key (w2s.training.resume.run_key)."""
        return asdict(self)


@dataclass(frozen=True)
class GenerativeFinetuningSettings:
    """The generative_finetuning stage's hyperparameters as its job receives them
    (w2s.pipeline.experiment.generative_params; the stage is w2s.training.unsupervised_lm)."""

    lr: float
    epochs: float
    batch_size: int
    minibatch_size: int
    max_length: int
    weight_decay: float
    warmup_frac: float
    max_grad_norm: float
    optimizer: str
    dtype: str
    gradient_checkpointing: bool
    checkpoint_every: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "GenerativeFinetuningSettings":
        check_keys("generative finetuning params", params, _names(cls))
        return cls(**params)

    def schedule(self, seed: int) -> Schedule:
        names = [name for name in _names(Schedule) if name != "seed"]
        return Schedule(**{name: getattr(self, name) for name in names}, seed=seed)
