"""Sharded data-parallel finetuning (PyTorch FSDP2) of one job in several processes on one node.

A training job with `processes` > 1 (its GPUs, or CPU processes over gloo where it has none) re-launches
its training through torchrun (train): every process runs w2s.training.jobs.train_model with its Ranks.
The classifier is sharded with fully_shard (shard): each process keeps 1/N of the float32 weights, their
gradients and the optimiser state, and gathers a block's weights only while that block computes, in
bf16 on GPUs (MixedPrecisionPolicy). Each process trains on its own rows of every batch (Ranks.chunks);
the gradients are summed over processes, so a step is the single-process step of the whole batch.
Resume checkpoints are written by every process at once with torch.distributed.checkpoint
(ShardedCheckpoints), and rank 0 alone writes the job's outputs.
"""

from __future__ import annotations

import json
import logging
import math
import os
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import torch.distributed as dist
from torch import nn

from w2s.training.resume import (
    MANIFEST_FILE,
    SCALARS_FILE,
    CheckpointError,
    Progress,
    ResumeCheckpoints,
    Trainer,
    file_sha256,
    scalars_of,
)

log = logging.getLogger("w2s")
# Written by torchrun: a process started by launch finds its rank and the job's process count here.
RANK_ENV, WORLD_ENV, LOCAL_RANK_ENV = "RANK", "WORLD_SIZE", "LOCAL_RANK"
SHARDED_FORMAT = "fsdp-1"
SHARDS_DIR = "shards"


@dataclass(frozen=True)
class Ranks:
    """This process's rank among the job's `world` training processes; Ranks(0, 1) is a one-process job."""

    rank: int
    world: int

    @property
    def sharded(self) -> bool:
        return self.world > 1

    @property
    def writes_outputs(self) -> bool:
        return self.rank == 0

    def chunks(self, rows: np.ndarray, size: int) -> list[np.ndarray]:
        """This process's rows of `rows` (every world-th, from its rank), cut into chunks of at most `size`.

        Every process gets as many chunks as the process with most rows, some of them possibly empty:
        each forward and backward of a sharded model is collective, so all processes must run as many.
        For one process these are the consecutive slices of `rows`."""
        mine = rows[self.rank :: self.world]
        count = math.ceil(math.ceil(len(rows) / self.world) / size)
        return [mine[i * size : (i + 1) * size] for i in range(count)]

    def gather(self, rows: torch.Tensor) -> torch.Tensor:
        """Every process's `rows` (n_i, ...) concatenated in rank order, on every process."""
        if not self.sharded:
            return rows
        count = torch.tensor([len(rows)], device=rows.device)
        counts = [torch.zeros_like(count) for _ in range(self.world)]
        dist.all_gather(counts, count)
        longest = int(max(counts))
        padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=rows.device)
        padded[: len(rows)] = rows
        gathered = [torch.zeros_like(padded) for _ in range(self.world)]
        dist.all_gather(gathered, padded)
        return torch.cat([part[: int(n)] for part, n in zip(gathered, counts)])

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of `value` over every process."""
        if self.sharded:
            dist.all_reduce(value)
        return value


SINGLE = Ranks(0, 1)


def job_ranks() -> Ranks:
    """This process's Ranks: from torchrun's environment when launched by it, else a one-process job."""
    if WORLD_ENV not in os.environ:
        return SINGLE
    return Ranks(int(os.environ[RANK_ENV]), int(os.environ[WORLD_ENV]))


def init_process_group(ranks: Ranks) -> torch.device:
    """Join the job's process group (NCCL on GPUs, gloo on CPUs); the device this process trains on."""
    if torch.cuda.is_available():
        on = torch.device("cuda", int(os.environ[LOCAL_RANK_ENV]))
        torch.cuda.set_device(on)
        dist.init_process_group("nccl", rank=ranks.rank, world_size=ranks.world, device_id=on)
        return on
    dist.init_process_group("gloo", rank=ranks.rank, world_size=ranks.world)
    return torch.device("cpu")


def train(processes: int, job: dict[str, Any], log_path: str, threads: int) -> None:
    """w2s.training.jobs.train_model of `job`, its keyword arguments as plain values (`settings`: the rule's
    training params), in this process or, with `processes` > 1, in that many started by torchrun on this
    node. Each of those logs to `log_path` with its rank and uses threads // processes CPU threads."""
    if processes < 1:
        raise ValueError(f"a training job runs in 1 or more processes, got {processes}; fix the model's "
                         "resources.processes")
    if processes == 1:
        _train(job)
        return
    package_root = str(Path(__file__).resolve().parents[2])
    with tempfile.TemporaryDirectory(prefix="w2s-fsdp-") as scratch:
        spec = Path(scratch) / "job.json"
        spec.write_text(json.dumps({"job": job, "log_path": log_path, "threads": max(1, threads // processes)}))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   "-m", "w2s.training.distributed", str(spec)]
        # The processes import this very w2s, wherever the launching one found it.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"the {processes} training processes failed (torchrun exit status {result.returncode}); "
                           f"each process's error is in {log_path}")


def _train(job: dict[str, Any], ranks: Ranks = SINGLE, on: torch.device | None = None) -> None:
    from w2s.training.jobs import train_model
    from w2s.training.settings import TrainingSettings

    train_model(**{**job, "settings": TrainingSettings.from_params(job["settings"])}, ranks=ranks, on=on)


def shard(model: nn.Module, blocks: list[nn.Module], compute_dtype: torch.dtype | None) -> nn.Module:
    """fully_shard every block (a transformer layer) and then the rest of `model`, in place.

    With `compute_dtype` (bf16 on GPUs) the gathered weights compute in it while the sharded float32
    weights and optimiser state stay the master copy, and gradients are reduced in float32. Gradients
    are summed over processes, not averaged: each process's loss is already its share of the batch loss."""
    from torch.distributed.fsdp import FSDPModule, MixedPrecisionPolicy, fully_shard

    policy = MixedPrecisionPolicy(param_dtype=compute_dtype, reduce_dtype=torch.float32) \
        if compute_dtype is not None else MixedPrecisionPolicy()
    for block in blocks:
        fully_shard(block, mp_policy=policy)
    # Resharded after every forward, the root too (FSDP would keep its weights gathered for the backward): a
    # forward with no backward (predictions, model selection) must leave the sharded parameters in place for the
    # optimiser and the checkpoints.
    fully_shard(model, mp_policy=policy, reshard_after_forward=True)
    for module in model.modules():
        if isinstance(module, FSDPModule):
            module.set_gradient_divide_factor(1.0)
            # A plain sum (then a division by 1): gloo has no pre-multiplied sum, and NCCL copies no less for it.
            module.set_force_sum_reduction_for_comms(True)
    return model


def shard_from_first(model: nn.Module, blocks: list[nn.Module], compute_dtype: torch.dtype | None, ranks: Ranks,
                     on: torch.device) -> nn.Module:
    """shard `model`, loaded with its weights on rank 0 and built on the meta device on every other rank, and
    send every process its shard of rank 0's weights: the host holds the float32 model once, not once a process.
    Buffers (rotary frequencies, position ids: not all of them in the state dict) come from rank 0 too."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, set_model_state_dict

    loaded = model.state_dict() if ranks.writes_outputs else {}
    shard(model, blocks, compute_dtype)
    if not ranks.writes_outputs:
        model.to_empty(device=on)
    set_model_state_dict(model, loaded, options=StateDictOptions(full_state_dict=True, broadcast_from_rank0=True))
    for buffer in model.buffers():
        dist.broadcast(buffer, src=0)
    return model


def layer_blocks(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's repeated layers, each sharded on its own: the longest nn.ModuleList in it."""
    lists = [m for m in backbone.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(backbone).__name__} has no list of layers to shard; train it with "
                         "resources.processes: 1")
    return list(max(lists, key=len))


def snapshot(parameter: torch.Tensor) -> torch.Tensor:
    """A copy of a parameter, for model selection: of a sharded one, this process's shard, where it lives."""
    from torch.distributed.tensor import DTensor

    if isinstance(parameter, DTensor):
        return parameter.detach().clone()
    return parameter.detach().to("cpu", copy=True)


def full_state_dict(model: nn.Module) -> dict[str, torch.Tensor]:
    """A sharded model's whole state dict on the CPU: every process takes part, rank 0 receives it (others: {})."""
    from torch.distributed.checkpoint.state_dict import StateDictOptions, get_model_state_dict

    return get_model_state_dict(model, options=StateDictOptions(full_state_dict=True, cpu_offload=True))


class ShardedCheckpoints(ResumeCheckpoints):
    """Resume checkpoints of a sharded run: `step-NNNNNNNN/` holds `shards/` (torch.distributed.checkpoint:
    every process's shard of the trainable weights, of the optimiser state and of model selection's best
    weights), `scalars.json` and `manifest.json` with the sha256 of every file. Staged and renamed like
    ResumeCheckpoints', by rank 0 once every process has written its shard. Trained without dropout, on
    batches drawn from the seed alone, a sharded run draws no random numbers, so no RNG state is kept."""

    def __init__(self, root: str | Path, key: str, every: int, model: nn.Module, ranks: Ranks) -> None:
        super().__init__(root, key, every)
        self.model = model
        self.ranks = ranks

    def _state(self, trainer: Trainer, best: list[torch.Tensor] | None) -> dict[str, Any]:
        from torch.distributed.checkpoint.state_dict import get_optimizer_state_dict

        state: dict[str, Any] = {"weights": {str(i): p.detach() for i, p in enumerate(trainer.trainable)},
                                 "optimizer": get_optimizer_state_dict(self.model, trainer.optimizer)}
        if best is not None:
            state["best"] = {str(i): saved for i, saved in enumerate(best)}
        return state

    def save(self, progress: Progress, trainer: Trainer) -> Path:
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.api import CheckpointException

        final = self.directory / f"step-{progress.steps_done:08d}"
        staging = final.with_name("." + final.name)
        previous = [p for p in self.checkpoints() if p != final]
        failure = None
        try:
            if self.ranks.writes_outputs:
                shutil.rmtree(staging, ignore_errors=True)
                staging.mkdir(parents=True)
            dist.barrier()
            dcp.save(self._state(trainer, progress.best_weights), checkpoint_id=staging / SHARDS_DIR)
            dist.barrier()
            if self.ranks.writes_outputs:
                (staging / SCALARS_FILE).write_text(json.dumps(scalars_of(progress, trainer), allow_nan=False))
                manifest = {"format": SHARDED_FORMAT, "steps_done": progress.steps_done, "processes": self.ranks.world,
                            "sha256": {str(f.relative_to(staging)): file_sha256(f)
                                       for f in sorted(staging.rglob("*")) if f.is_file()}}
                (staging / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True))
                shutil.rmtree(final, ignore_errors=True)
                staging.rename(final)
        except (OSError, CheckpointException) as err:
            failure = err
        failed = self.ranks.total(torch.tensor([failure is not None], dtype=torch.int64))
        if int(failed):
            kept = f"the checkpoint {previous[0]} is kept" if previous else "no earlier checkpoint exists"
            raise CheckpointError(f"could not write the sharded resume checkpoint of step {progress.steps_done} "
                                  f"to {final}: {failure or 'another process failed'}; {kept}, free disk space if "
                                  "it is full and rerun to resume") from failure
        if self.ranks.writes_outputs:
            for old in previous:
                shutil.rmtree(old, ignore_errors=True)
            log.info("sharded resume checkpoint saved: step %d in %s", progress.steps_done, final)
        dist.barrier()
        return final

    def restore(self, trainer: Trainer) -> Progress:
        """Load the newest checkpoint whose hashes verify (checked by rank 0) into every process's shards."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        candidates: list[Any] = [None]
        if self.ranks.writes_outputs:
            for leftover in self.directory.glob(".step-*"):  # staged by a writer that was killed
                shutil.rmtree(leftover, ignore_errors=True)
            candidates = [_verified_sharded(self.checkpoints(), self.ranks.world)]
        dist.broadcast_object_list(candidates, src=0)
        chosen = candidates[0]
        if chosen is None:
            return Progress()
        checkpoint, scalars = Path(chosen[0]), chosen[1]
        best = [snapshot(p) for p in trainer.trainable] if scalars["has_best_weights"] else None
        state = self._state(trainer, best)
        # The optimiser holds state only for parameters that ever had a gradient (not, say, a pooler that the
        # classifier's pooling skips); get_optimizer_state_dict makes some for all, so only the saved ones load.
        saved = dcp.FileSystemReader(checkpoint / SHARDS_DIR).read_metadata().state_dict_metadata
        state["optimizer"]["state"] = {
            fqn: slots for fqn, slots in state["optimizer"]["state"].items()
            if all(f"optimizer.state.{fqn}.{slot}" in saved for slot in slots)}
        dcp.load(state, checkpoint_id=checkpoint / SHARDS_DIR)
        set_optimizer_state_dict(self.model, trainer.optimizer, state["optimizer"],
                                 options=StateDictOptions(strict=False))
        trainer.scheduler.load_state_dict({**trainer.scheduler.state_dict(), **scalars["scheduler"]})
        if scalars["scaler"]:
            trainer.scaler.load_state_dict(scalars["scaler"])
        best_score = -math.inf if scalars["best_score"] is None else scalars["best_score"]
        log.info("resumed from %s: %d steps done", checkpoint, scalars["steps_done"])
        return Progress(scalars["steps_done"], scalars["history"], best_score, best)


def _verified_sharded(checkpoints: list[Path], processes: int) -> tuple[str, dict[str, Any]] | None:
    """The newest checkpoint whose manifest and hashes check out, with its scalars; None if none does."""
    for checkpoint in checkpoints:
        try:
            manifest = json.loads((checkpoint / MANIFEST_FILE).read_text())
            if manifest.get("format") != SHARDED_FORMAT or manifest.get("processes") != processes:
                raise ValueError(f"format {manifest.get('format')} of {manifest.get('processes')} processes, "
                                 f"expected {SHARDED_FORMAT} of {processes}")
            for name, expected in manifest["sha256"].items():
                actual = file_sha256(checkpoint / name)
                if actual != expected:
                    raise ValueError(f"sha256 mismatch in {name}: {actual}, manifest says {expected}")
            return str(checkpoint), json.loads((checkpoint / SCALARS_FILE).read_text())
        except (OSError, ValueError, KeyError) as err:
            log.warning("resume checkpoint %s is unusable and is skipped: %s", checkpoint, err)
    return None


def run_in_process_group(job: Callable[[Ranks, torch.device], None]) -> None:
    """Join the process group torchrun set up, run `job(ranks, device)`, and leave it."""
    ranks = job_ranks()
    on = init_process_group(ranks)
    try:
        job(ranks, on)
    finally:
        dist.destroy_process_group()


def _main(spec_path: str) -> None:
    from w2s.pipeline.runlog import log_to

    spec = json.loads(Path(spec_path).read_text())
    ranks = job_ranks()
    log_to(spec["log_path"], spec["threads"], prefix=f"rank {ranks.rank}/{ranks.world} ")
    run_in_process_group(lambda ranks, on: _train(spec["job"], ranks, on))


if __name__ == "__main__":
    _main(sys.argv[1])
