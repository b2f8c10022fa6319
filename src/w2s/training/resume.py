"""Resume checkpoints: a training job killed mid-run continues from its last saved step.

A checkpoint is a folder `step-NNNNNNNN/` holding `state.safetensors` (trainable weights, optimiser
tensors, the best weights of model selection, RNG states), `scalars.json` (step, history rows, best
score, optimiser hyperparameters, LR-scheduler and loss-scaler state) and `manifest.json` with the
sha256 of both. It is written in a staging folder and renamed, and the previous checkpoint is
removed only after the rename, so a failed write (a full disk) leaves the previous one intact.
Loading checks every hash and the tensors' names and shapes before touching the model; a
checkpoint that fails is logged and skipped, and training starts afresh. Nothing is unpickled.

Checkpoints live in `<root>/<key>/`, where the key hashes everything that determines the run, so
a changed config, input or code (the job's script and the package modules it imports, through their
digest) never resumes another run's state.
"""

from __future__ import annotations

import errno
import hashlib
import json
import logging
import math
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable

import torch
from safetensors.torch import load_file
from torch import nn

from w2s import io

log = logging.getLogger("w2s")
FORMAT = 1
STATE_FILE, SCALARS_FILE, MANIFEST_FILE = "state.safetensors", "scalars.json", "manifest.json"
# Options that change how often state is saved, not what is trained: a new value still resumes.
NOT_IN_KEY = ("checkpoint_every",)


class CheckpointError(RuntimeError):
    """A resume checkpoint could not be written; the message says which and what survived."""


@dataclass
class Progress:
    """What the training loop carries between steps besides the model and the optimiser."""

    steps_done: int = 0
    history: list[dict[str, float]] = field(default_factory=list)
    best_score: float = -math.inf
    best_weights: list[torch.Tensor] | None = None


@dataclass(frozen=True)
class Trainer:
    """The stateful objects of a training loop, as a checkpoint saves and restores them."""

    trainable: list[nn.Parameter]
    optimizer: torch.optim.Optimizer
    scheduler: torch.optim.lr_scheduler.LRScheduler
    scaler: torch.amp.GradScaler


def file_sha256(path: Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def run_key(identity: dict[str, Any], input_paths: Iterable[str | Path], code_paths: Iterable[str | Path]) -> str:
    """A hash of the run's settings, the content of its inputs, its code and torch's version.

    `code_paths` are the job's code input as its rule declares it: the digest file of its script and the
    package modules the script imports (w2s.pipeline.codedeps.write_digest), whose content is their sha256
    each, by path inside the checkout. Files count by name and content, not folder, so a checkout moved
    elsewhere still resumes."""
    digest = hashlib.sha256()
    settings = {k: v for k, v in identity.items() if k not in NOT_IN_KEY}
    if isinstance(settings.get("params"), dict):
        settings["params"] = {k: v for k, v in settings["params"].items() if k not in NOT_IN_KEY}
    digest.update(json.dumps(settings, sort_keys=True, default=str).encode())
    for path in sorted(map(str, input_paths)):
        digest.update(f"{path}\0{file_sha256(Path(path))}\0".encode())
    for name, sha256 in sorted((Path(p).name, file_sha256(Path(p))) for p in code_paths):
        digest.update(f"{name}\0{sha256}\0".encode())
    digest.update(torch.__version__.encode())
    return digest.hexdigest()[:20]


def _tensors_of(progress: Progress, trainer: Trainer) -> dict[str, torch.Tensor]:
    tensors = {f"weight.{i}": p.detach() for i, p in enumerate(trainer.trainable)}
    for i, saved in enumerate(progress.best_weights or []):
        tensors[f"best.{i}"] = saved
    for index, slots in trainer.optimizer.state_dict()["state"].items():
        for slot, value in slots.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer.{index}.{slot}"] = value
    tensors["rng.cpu"] = torch.get_rng_state()
    if torch.cuda.is_available():
        for i, state in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng.cuda.{i}"] = state
    return tensors


def scalars_of(progress: Progress, trainer: Trainer) -> dict[str, Any]:
    optimizer_state = trainer.optimizer.state_dict()
    scheduler_state = {k: v for k, v in trainer.scheduler.state_dict().items() if k != "lr_lambdas"}
    return {
        "format": FORMAT,
        "steps_done": progress.steps_done,
        "history": progress.history,
        # JSON has no infinity: None stands for "nothing scored yet".
        "best_score": None if progress.best_score == -math.inf else progress.best_score,
        "has_best_weights": progress.best_weights is not None,
        "optimizer_param_groups": optimizer_state["param_groups"],
        "optimizer_scalars": {str(i): {k: v for k, v in slots.items() if not isinstance(v, torch.Tensor)}
                              for i, slots in optimizer_state["state"].items()},
        "scheduler": scheduler_state,
        "scaler": trainer.scaler.state_dict(),
    }


class ResumeCheckpoints:
    """Save every `every` steps (and after the last) under `root/key`; restore the newest valid one."""

    def __init__(self, root: str | Path, key: str, every: int) -> None:
        if every < 1:
            raise ValueError(f"checkpoint_every must be at least 1, got {every}")
        self.root = Path(root)
        self.directory = self.root / key
        self.every = every

    def due(self, steps_done: int, total_steps: int) -> bool:
        return steps_done % self.every == 0 or steps_done == total_steps

    def checkpoints(self) -> list[Path]:
        """Saved checkpoints, newest first."""
        if not self.directory.is_dir():
            return []
        return sorted((p for p in self.directory.glob("step-*") if p.is_dir()), reverse=True)

    def save(self, progress: Progress, trainer: Trainer) -> Path:
        final = self.directory / f"step-{progress.steps_done:08d}"
        previous = [p for p in self.checkpoints() if p != final]
        try:
            with io.staged_directory(final) as staging:
                io.write_safetensors(_tensors_of(progress, trainer), staging / STATE_FILE)
                (staging / SCALARS_FILE).write_text(
                    # Unsorted keys: history rows keep their column order.
                    json.dumps(scalars_of(progress, trainer), allow_nan=False))
                manifest = {"format": FORMAT, "steps_done": progress.steps_done,
                            "sha256": {name: file_sha256(staging / name) for name in (STATE_FILE, SCALARS_FILE)}}
                (staging / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True))
        except OSError as err:
            kept = f"the checkpoint {previous[0]} is kept" if previous else "no earlier checkpoint exists"
            hint = "; free disk space" if err.errno == errno.ENOSPC else ""
            raise CheckpointError(f"could not write the resume checkpoint of step {progress.steps_done} "
                                  f"to {final}: {err.strerror or err}; {kept}{hint} and rerun to resume") from err
        for old in previous:
            shutil.rmtree(old, ignore_errors=True)
        log.info("resume checkpoint saved: step %d in %s", progress.steps_done, final)
        return final

    def restore(self, trainer: Trainer) -> Progress:
        """Load the newest checkpoint that verifies into `trainer`; a fresh Progress if none does."""
        for leftover in self.directory.glob(".step-*"):  # staged by a writer that was killed
            shutil.rmtree(leftover, ignore_errors=True)
        for checkpoint in self.checkpoints():
            try:
                tensors, scalars = _verified(checkpoint, trainer)
            except (OSError, ValueError, KeyError) as err:
                log.warning("resume checkpoint %s is unusable and is skipped: %s", checkpoint, err)
                continue
            progress = _restore(tensors, scalars, trainer)
            log.info("resumed from %s: %d steps done", checkpoint, progress.steps_done)
            return progress
        return Progress()

    def clear(self) -> None:
        """Drop every resume state of this run (all keys): called once the job's outputs exist."""
        shutil.rmtree(self.root, ignore_errors=True)


def _verified(checkpoint: Path, trainer: Trainer) -> tuple[dict[str, torch.Tensor], dict[str, Any]]:
    """The checkpoint's tensors and scalars, after its hashes and shapes are checked; raises on any mismatch."""
    manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
    if manifest.get("format") != FORMAT:
        raise ValueError(f"format {manifest.get('format')}, expected {FORMAT}")
    for name in (STATE_FILE, SCALARS_FILE):
        actual = file_sha256(checkpoint / name)
        if actual != manifest["sha256"][name]:
            raise ValueError(f"sha256 mismatch in {name}: {actual}, manifest says {manifest['sha256'][name]}")
    tensors = load_file(str(checkpoint / STATE_FILE))
    scalars = json.loads((checkpoint / SCALARS_FILE).read_text())
    for i, parameter in enumerate(trainer.trainable):
        saved = tensors[f"weight.{i}"]
        if saved.shape != parameter.shape or saved.dtype != parameter.dtype:
            raise ValueError(f"trainable tensor {i} is {tuple(saved.shape)} {saved.dtype}, "
                             f"the model has {tuple(parameter.shape)} {parameter.dtype}")
    if f"weight.{len(trainer.trainable)}" in tensors:
        raise ValueError("the checkpoint holds more trainable tensors than the model")
    missing = [k for k in ("steps_done", "history", "best_score", "has_best_weights", "optimizer_param_groups",
                           "optimizer_scalars", "scheduler", "scaler") if k not in scalars]
    if scalars.get("has_best_weights"):
        missing += [f"best.{i}" for i in range(len(trainer.trainable)) if f"best.{i}" not in tensors]
    if "rng.cpu" not in tensors:
        missing.append("rng.cpu")
    if missing:
        raise ValueError(f"the checkpoint lacks {missing}")
    return tensors, scalars


def _restore(tensors: dict[str, torch.Tensor], scalars: dict[str, Any], trainer: Trainer) -> Progress:
    with torch.no_grad():
        for i, parameter in enumerate(trainer.trainable):
            parameter.copy_(tensors[f"weight.{i}"])
    state: dict[int, dict[str, Any]] = {int(i): dict(slots) for i, slots in scalars["optimizer_scalars"].items()}
    for name, value in tensors.items():
        if name.startswith("optimizer."):
            _, index, slot = name.split(".", 2)
            state.setdefault(int(index), {})[slot] = value
    trainer.optimizer.load_state_dict({"state": state, "param_groups": scalars["optimizer_param_groups"]})
    trainer.scheduler.load_state_dict({**trainer.scheduler.state_dict(), **scalars["scheduler"]})
    if scalars["scaler"]:
        trainer.scaler.load_state_dict(scalars["scaler"])
    torch.set_rng_state(tensors["rng.cpu"])
    cuda_states = [tensors[f"rng.cuda.{i}"] for i in range(torch.cuda.device_count()) if f"rng.cuda.{i}" in tensors]
    if cuda_states and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    best_weights = None
    if scalars["has_best_weights"]:
        best_weights = [tensors[f"best.{i}"] for i in range(len(trainer.trainable))]
    best_score = -math.inf if scalars["best_score"] is None else scalars["best_score"]
    return Progress(scalars["steps_done"], scalars["history"], best_score, best_weights)
