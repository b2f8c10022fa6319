"""Sharded data-parallel finetuning (PyTorch FSDP2) of one job in several processes on one node.

A training job with `processes` > 1 (its GPUs, or CPU processes over gloo where it has none) is started
in that many processes by w2s.training.launch; each joins the process group (run_in_process_group) and runs
w2s.training.jobs.train_model with its Ranks.
The classifier is sharded with fully_shard (shard): each process keeps 1/N of the float32 weights, their
gradients and the optimiser state, and gathers a block's weights only while that block computes, in
bf16 on GPUs (MixedPrecisionPolicy). Each process trains on its own rows of every batch (Ranks.chunks);
the gradients are summed over processes, so a step is the single-process step of the whole batch;
Adafactor steps the shards as whole parameters (w2s.training.sharded_adafactor). Resume checkpoints are written by every
process at once with torch.distributed.checkpoint (ShardedCheckpoints), and rank 0 alone writes the job's
outputs. Every collective w2s calls itself goes through Ranks, which puts its tensors on the job's device
(W2S_STRICT_COLLECTIVES=1 makes any other call fail), and waits at most PROCESS_GROUP_TIMEOUT.
"""

from __future__ import annotations

import functools
import json
import logging
import math
import os
import shutil
import sys
from dataclasses import dataclass, replace
from datetime import timedelta
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
# How long a collective waits for the other processes before the job fails. The longest wait is for rank 0 working
# alone: loading Qwen-72B in float32 (72.7e9 x 4 bytes = 291 GB) or hashing a checkpoint's 291 GB of weight
# shards (ShardedCheckpoints), while the others wait in the next collective. At 100 MB/s, a slow network
# filesystem's read, 291 GB take 49 minutes; two hours leave that more than twice over, and a true hang still
# fails 12 hours before that job's runtime limit. NCCL's default, 10 minutes, would kill those jobs.
PROCESS_GROUP_TIMEOUT = timedelta(hours=2)
# Set (to 1) by the tests and by rehearsals: see strict_collectives.
STRICT_COLLECTIVES_ENV = "W2S_STRICT_COLLECTIVES"
# torch.distributed's collectives and point-to-point calls, which w2s calls through Ranks only.
COLLECTIVES = ("all_gather", "all_gather_into_tensor", "all_gather_object", "all_reduce", "all_to_all",
               "all_to_all_single", "barrier", "batch_isend_irecv", "broadcast", "broadcast_object_list", "gather",
               "gather_object", "irecv", "isend", "monitored_barrier", "recv", "recv_object_list", "reduce",
               "reduce_scatter", "reduce_scatter_tensor", "scatter", "scatter_object_list", "send", "send_object_list")


@dataclass(frozen=True)
class Ranks:
    """This process's rank among the job's `world` training processes and the device it trains on; Ranks(0, 1) is
    a one-process job.

    Every collective w2s issues goes through Ranks' methods, which put its tensors on `device`: NCCL serves CUDA
    tensors only, and a CPU tensor handed to it fails (`No backend type associated with device type cpu`). With
    W2S_STRICT_COLLECTIVES=1 a call of torch.distributed's collectives from anywhere else in w2s raises
    (init_process_group)."""

    rank: int
    world: int
    device: torch.device = torch.device("cpu")

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
        """Every process's `rows` (n_i, ...) concatenated in rank order, on every process, on the job's device."""
        if not self.sharded:
            return rows
        rows = rows.to(self.device)
        count = torch.tensor([len(rows)], device=self.device)
        counts = [torch.zeros_like(count) for _ in range(self.world)]
        self._collective(dist.all_gather, counts, count)
        longest = int(max(counts))
        padded = torch.zeros((longest, *rows.shape[1:]), dtype=rows.dtype, device=self.device)
        padded[: len(rows)] = rows
        gathered = [torch.zeros_like(padded) for _ in range(self.world)]
        self._collective(dist.all_gather, gathered, padded)
        return torch.cat([part[: int(n)] for part, n in zip(gathered, counts)])

    def total(self, value: torch.Tensor) -> torch.Tensor:
        """The sum of `value` over every process, on the job's device (a `value` already there is summed in place)."""
        if not self.sharded:
            return value
        value = value.to(self.device)
        self._collective(dist.all_reduce, value)
        return value

    def broadcast(self, value: torch.Tensor) -> torch.Tensor:
        """Rank 0's `value` on every process, on the job's device (a `value` already there is overwritten)."""
        value = value.to(self.device)
        self._collective(dist.broadcast, value, src=0)
        return value

    def broadcast_object(self, value: Any) -> Any:
        """Rank 0's `value` (any picklable object) on every process, sent from the job's device."""
        box = [value]
        self._collective(dist.broadcast_object_list, box, src=0, device=self.device)
        return box[0]

    def gather_objects(self, value: Any) -> list[Any]:
        """Every process's `value` (any picklable object), in rank order, on every process. On GPUs torch sends the
        pickles from the current CUDA device, which init_process_group set to the job's."""
        values: list[Any] = [None] * self.world
        self._collective(dist.all_gather_object, values, value)
        return values

    def _collective(self, operation: Callable[..., Any], *args: Any, **kwargs: Any) -> None:
        """The one place w2s calls a torch.distributed collective (W2S_STRICT_COLLECTIVES checks it)."""
        operation(*args, **kwargs)


SINGLE = Ranks(0, 1)


def job_ranks() -> Ranks:
    """This process's Ranks: from torchrun's environment when launched by it, else a one-process job."""
    if WORLD_ENV not in os.environ:
        return SINGLE
    return Ranks(int(os.environ[RANK_ENV]), int(os.environ[WORLD_ENV]))


def init_process_group(ranks: Ranks, timeout: timedelta = PROCESS_GROUP_TIMEOUT) -> Ranks:
    """Join the job's process group (NCCL on GPUs, gloo on CPUs); `ranks` with the device this process trains on.

    A collective that waits longer than `timeout` for the other processes fails the job. With
    W2S_STRICT_COLLECTIVES=1 in the environment, torch.distributed's collectives called by w2s's code anywhere but
    Ranks' methods raise (strict_collectives), in every sharded job. leave_process_group undoes both."""
    if torch.cuda.is_available():
        on = torch.device("cuda", int(os.environ[LOCAL_RANK_ENV]))
        torch.cuda.set_device(on)
        dist.init_process_group("nccl", rank=ranks.rank, world_size=ranks.world, device_id=on, timeout=timeout)
    else:
        on = torch.device("cpu")
        dist.init_process_group("gloo", rank=ranks.rank, world_size=ranks.world, timeout=timeout)
    if os.environ.get(STRICT_COLLECTIVES_ENV) == "1":
        strict_collectives()
    return replace(ranks, device=on)


def leave_process_group() -> None:
    """Leave the process group init_process_group joined, and restore torch.distributed's own collectives."""
    for name, original in _UNCHECKED.items():
        setattr(dist, name, original)
    _UNCHECKED.clear()
    dist.destroy_process_group()


def strict_collectives() -> None:
    """Make every collective of torch.distributed (COLLECTIVES) raise when w2s's code calls it from anywhere but
    Ranks._collective, naming the caller; torch's own modules (FSDP, torch.distributed.checkpoint) call them freely."""
    if _UNCHECKED:
        return
    for name in COLLECTIVES:
        _UNCHECKED[name] = getattr(dist, name)
        setattr(dist, name, _checked(name, _UNCHECKED[name]))


def _checked(name: str, collective: Callable[..., Any]) -> Callable[..., Any]:
    @functools.wraps(collective)
    def checked(*args: Any, **kwargs: Any) -> Any:
        caller = sys._getframe(1)
        module = caller.f_globals.get("__name__", "")
        if module.split(".")[0] == "w2s" and caller.f_code is not _HELPER:
            raise RuntimeError(f"{module}.{caller.f_code.co_qualname} (line {caller.f_lineno}) calls "
                               f"torch.distributed.{name} directly; w2s's collectives go through the methods of "
                               "w2s.training.distributed.Ranks, which put their tensors on the job's device "
                               f"(NCCL serves CUDA tensors only); checked because {STRICT_COLLECTIVES_ENV}=1")
        return collective(*args, **kwargs)

    return checked


_HELPER = Ranks._collective.__code__
# torch.distributed's own collectives while strict_collectives has replaced them, by name.
_UNCHECKED: dict[str, Callable[..., Any]] = {}


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
        buffer.copy_(ranks.broadcast(buffer))
    return model


def layer_blocks(backbone: nn.Module) -> list[nn.Module]:
    """The backbone's repeated layers, each sharded on its own: the longest nn.ModuleList in it."""
    lists = [m for m in backbone.modules() if isinstance(m, nn.ModuleList)]
    if not lists:
        raise ValueError(f"{type(backbone).__name__} has no list of layers to shard; train it with "
                         "resources.processes: 1")
    return list(max(lists, key=len))


def snapshot(parameter: torch.Tensor) -> torch.Tensor:
    """A copy of a parameter in host memory, for model selection, which the GPU memory model leaves out
    (w2s.pipeline.resources): of a sharded one, this process's shard, as a DTensor sharded like the parameter (its
    shard on the CPU, as FSDP's CPU offloading keeps them), so that torch.distributed.checkpoint saves it."""
    from torch.distributed.tensor import DTensor

    if isinstance(parameter, DTensor):
        return DTensor.from_local(parameter.to_local().detach().to("cpu", copy=True), parameter.device_mesh,
                                  parameter.placements, run_check=False, shape=parameter.shape,
                                  stride=parameter.stride())
    return parameter.detach().to("cpu", copy=True)


@torch.no_grad()
def restore_snapshot(parameter: torch.Tensor, saved: torch.Tensor) -> None:
    """Copy a snapshot back into its parameter: a sharded one's shard from the host into this process's shard."""
    from torch.distributed.tensor import DTensor

    if isinstance(parameter, DTensor):
        parameter.to_local().copy_(saved.to_local())
    else:
        parameter.copy_(saved)


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
        """Rank 0 stages the folder, every process writes its shards, rank 0 hashes and renames; after each of the
        three, all processes learn whether any failed, and then all raise CheckpointError or all go on: none is
        left waiting for one that gave up."""
        import torch.distributed.checkpoint as dcp

        final = self.directory / f"step-{progress.steps_done:08d}"
        staging = final.with_name("." + final.name)
        previous = [p for p in self.checkpoints() if p != final]

        def stage() -> None:
            shutil.rmtree(staging, ignore_errors=True)
            staging.mkdir(parents=True)

        def publish() -> None:
            (staging / SCALARS_FILE).write_text(json.dumps(scalars_of(progress, trainer), allow_nan=False))
            manifest = {"format": SHARDED_FORMAT, "steps_done": progress.steps_done, "processes": self.ranks.world,
                        "sha256": {str(f.relative_to(staging)): file_sha256(f)
                                   for f in sorted(staging.rglob("*")) if f.is_file()}}
            (staging / MANIFEST_FILE).write_text(json.dumps(manifest, sort_keys=True))
            shutil.rmtree(final, ignore_errors=True)
            staging.rename(final)

        kept = f"the checkpoint {previous[0]} is kept" if previous else "no earlier checkpoint exists"
        where = f"the sharded resume checkpoint of step {progress.steps_done} to {final}"
        self._together(stage if self.ranks.writes_outputs else None, where, kept)
        shards = staging / SHARDS_DIR
        self._together(lambda: dcp.save(self._state(trainer, progress.best_weights), checkpoint_id=shards), where, kept)
        self._together(publish if self.ranks.writes_outputs else None, where, kept)
        if self.ranks.writes_outputs:
            for old in previous:
                shutil.rmtree(old, ignore_errors=True)
            log.info("sharded resume checkpoint saved: step %d in %s", progress.steps_done, final)
        return final

    def _together(self, action: Callable[[], None] | None, where: str, kept: str) -> None:
        """Run this process's `action` (None: it has none), then wait for every process's: if any failed, every
        process raises CheckpointError with the first failure, by rank."""
        from torch.distributed.checkpoint.api import CheckpointException

        failure = None
        try:
            if action is not None:
                action()
        except (OSError, CheckpointException) as err:
            failure = err
        failures = [f"rank {rank}: {text}" for rank, text in
                    enumerate(self.ranks.gather_objects(None if failure is None else str(failure))) if text is not None]
        if failures:
            raise CheckpointError(f"could not write {where}: {failures[0]}; {kept}, free disk space if it is full and "
                                  "rerun to resume") from failure

    def restore(self, trainer: Trainer) -> Progress:
        """Load the newest checkpoint whose hashes verify (checked by rank 0) into every process's shards."""
        import torch.distributed.checkpoint as dcp
        from torch.distributed.checkpoint.state_dict import StateDictOptions, set_optimizer_state_dict

        verified = None
        if self.ranks.writes_outputs:
            for leftover in self.directory.glob(".step-*"):  # staged by a writer that was killed
                shutil.rmtree(leftover, ignore_errors=True)
            verified = _verified_sharded(self.checkpoints(), self.ranks.world)
        chosen = self.ranks.broadcast_object(verified)
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


def run_in_process_group(job: Callable[[Ranks, torch.device], None],
                         timeout: timedelta = PROCESS_GROUP_TIMEOUT) -> None:
    """Join the process group torchrun set up (init_process_group), run `job(ranks, device)`, and leave it."""
    ranks = init_process_group(job_ranks(), timeout)
    try:
        job(ranks, ranks.device)
    finally:
        leave_process_group()
