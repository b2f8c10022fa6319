"""The training loop: minibatches of any model on soft targets, then predictions."""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
from torch import nn

from w2s.models.devices import DTYPES, autocast, supported_dtype
from w2s.training.distributed import SINGLE, Ranks, restore_snapshot, snapshot
from w2s.training.losses import Batch, LossFn
from w2s.training.resume import Progress, ResumeCheckpoints, Trainer
from w2s.training.settings import Schedule
from w2s.training.sharded_adafactor import ShardedAdafactor

Batcher = Callable[[np.ndarray], dict[str, torch.Tensor]]


@dataclass(frozen=True)
class Selection:
    """Early stopping: every `every` steps and at the end, `score` (higher is better) rates the
    model on held-out rows, and the best-scoring weights are restored after training."""

    score: Callable[[], float]
    every: int


def make_optimizer(name: str, params: list[nn.Parameter], lr: float, weight_decay: float,
                   ranks: Ranks = SINGLE) -> torch.optim.Optimizer:
    """AdamW (Adam when weight_decay is 0, as the reference), or Adafactor for the largest models.

    AdamW runs fused, one kernel over every parameter (on a CPU about 9x faster than the
    per-tensor loop for 16M parameters), sharded or not. torch's Adafactor follows the configured lr; the
    reference's torch_optimizer Adafactor keeps its default relative step size, which ignores lr. A model
    sharded over `ranks` gets w2s.training.sharded_adafactor.ShardedAdafactor, torch's step on whole parameters.
    """
    if name == "adamw":
        return torch.optim.AdamW(params, lr=lr, weight_decay=weight_decay, fused=True)
    if name == "adafactor" and ranks.sharded:
        return ShardedAdafactor(params, ranks, lr=lr, weight_decay=weight_decay)
    if name == "adafactor":
        return torch.optim.Adafactor(params, lr=lr, weight_decay=weight_decay)
    raise ValueError(f"unknown optimizer '{name}'; use adamw or adafactor")


def lr_factor(step: int, total: int, warmup_frac: float) -> float:
    """Linear warmup, then cosine decay to zero."""
    warmup = int(warmup_frac * total)
    if step < warmup:
        return (step + 1) / warmup
    progress = (step - warmup) / max(1, total - warmup)
    return 0.5 * (1 + math.cos(math.pi * progress))


def class_agreement(logits: torch.Tensor, targets: torch.Tensor) -> torch.Tensor:
    """How many rows' most probable class is their soft target's most probable class."""
    return (logits.argmax(-1) == targets.argmax(-1)).sum()


def fit(
    model: nn.Module,
    batcher: Batcher,
    targets: torch.Tensor,
    loss_fn: LossFn,
    schedule: Schedule,
    on: torch.device,
    compute_dtype: str = "float32",
    selection: Selection | None = None,
    *,
    lengths: np.ndarray | None = None,
    needs_batch_probs: bool = False,
    resume: ResumeCheckpoints | None = None,
    agreement: Callable[[torch.Tensor, torch.Tensor], torch.Tensor] = class_agreement,
    ranks: Ranks = SINGLE,
) -> list[dict[str, float]]:
    """Train on soft targets (n, 2); returns one record per optimiser step.

    Each batch is cut into minibatches whose gradients accumulate, so memory follows the
    minibatch size, not the batch size. `loss_fn(logits, targets, step_frac, batch=...)` returns a
    minibatch's share of the batch loss (see w2s.training.losses); with `needs_batch_probs` a no-grad pass
    first gives it the student's probabilities on the whole batch. With `lengths` (one per row),
    a batch's rows are sorted by length before they are cut, so each minibatch pads less; the
    batch loss does not depend on the order of its rows. With `resume`, training continues from
    its newest valid checkpoint and saves one every `resume.every` steps; the batch order is a
    function of the seed alone, so a resumed run takes the same steps as an uninterrupted one.
    `targets` may be any tensor with one row per example that `loss_fn` reads (a generative task's target
    token ids); `agreement(logits, targets)` counts a minibatch's rows whose prediction is their target, for
    the history's batch_target_accuracy.

    With `ranks` of several processes (a model sharded by w2s.training.distributed), each process trains on
    its rows of every batch (Ranks.chunks) and the losses' batch probabilities are gathered from all of them;
    the history and the selection scores are the whole batch's, the same on every process.
    """
    n = targets.shape[0]
    total_steps = max(1, math.ceil(schedule.epochs * n / schedule.batch_size))
    generator = torch.Generator().manual_seed(schedule.seed)
    epochs_needed = math.ceil(total_steps * schedule.batch_size / n)
    order = torch.cat([torch.randperm(n, generator=generator) for _ in range(epochs_needed)]).numpy()
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = make_optimizer(schedule.optimizer, trainable, schedule.lr, schedule.weight_decay, ranks)
    scheduler = torch.optim.lr_scheduler.LambdaLR(
        optimizer, lambda step: lr_factor(step, total_steps, schedule.warmup_frac)
    )
    # float16 gradients underflow without loss scaling; for other dtypes the scaler passes through.
    scaler = torch.amp.GradScaler(on.type, enabled=supported_dtype(on, compute_dtype) == "float16")

    def forward(rows: np.ndarray, batch: np.ndarray) -> torch.Tensor:
        # A process with no rows left still computes, on one row it discards: every forward of a sharded model
        # gathers weights from all processes.
        with autocast(on, compute_dtype):
            logits = model(**{k: v.to(on) for k, v in batcher(rows if len(rows) else batch[:1]).items()}).float()
        return logits[: len(rows)]

    # Training mode keeps gradient checkpointing active; callers disable dropout (models.disable_dropout).
    model.train()
    trainer = Trainer(trainable, optimizer, scheduler, scaler)
    progress = resume.restore(trainer) if resume is not None else Progress()
    history = progress.history
    for step in range(progress.steps_done, total_steps):
        batch = order[step * schedule.batch_size : (step + 1) * schedule.batch_size]
        if lengths is not None:
            batch = batch[np.argsort(lengths[batch], kind="stable")]
        minibatches = ranks.chunks(batch, schedule.minibatch_size)
        probs = None
        if needs_batch_probs:
            with torch.no_grad():
                probs = ranks.gather(torch.cat([torch.softmax(forward(rows, batch), dim=-1) for rows in minibatches]))
        # The losses read the batch's probabilities and targets as sets (a quantile, a mean), so the probabilities,
        # gathered process by process, need not be in the targets' order.
        whole = Batch(len(batch), targets[batch].to(on), probs)
        step_frac = step / total_steps
        # Kept on the device and read once per step: a read per minibatch would stall the GPU.
        batch_loss = torch.zeros((), device=on)
        agreeing = torch.zeros((), device=on)
        for rows in minibatches:
            logits = forward(rows, batch)
            minibatch_targets = targets[rows].to(on)
            loss = loss_fn(logits, minibatch_targets, step_frac, batch=whole)
            scaler.scale(loss).backward()
            batch_loss += loss.detach()
            agreeing += agreement(logits.detach(), minibatch_targets)
        batch_loss, agreeing = ranks.total(batch_loss), ranks.total(agreeing)
        scaler.unscale_(optimizer)
        torch.nn.utils.clip_grad_norm_(trainable, schedule.max_grad_norm)
        # The rate this step uses: scheduler.step() below sets the next step's.
        step_lr = optimizer.param_groups[0]["lr"]
        scaler.step(optimizer)
        scaler.update()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
        history.append(
            {
                "step": step,
                "epoch": (step + 1) * schedule.batch_size / n,
                "loss": float(batch_loss),
                "lr": step_lr,
                "batch_target_accuracy": float(agreeing) / len(batch),
            }
        )
        if selection is not None and ((step + 1) % selection.every == 0 or step + 1 == total_steps):
            model.eval()
            score = selection.score()
            model.train()
            history[-1]["selection_score"] = score
            # Strictly better only: among equal scores the earliest, least-fitted weights stay.
            if score > progress.best_score:
                progress.best_score = score
                progress.best_weights = [snapshot(p) for p in trainable]
        progress.steps_done = step + 1
        if resume is not None and resume.due(progress.steps_done, total_steps):
            resume.save(progress, trainer)
    if progress.best_weights is not None:
        for parameter, saved in zip(trainable, progress.best_weights):
            restore_snapshot(parameter, saved)
    model.eval()
    return history


@torch.inference_mode()
def predict(model: nn.Module, batcher: Batcher, order: np.ndarray, batch_size: int, on: torch.device,
            compute_dtype: str = "float32", ranks: Ranks = SINGLE) -> np.ndarray:
    """Class probabilities (n, K) of every row; `order` groups rows of similar length to cut padding.
    With `ranks` of several processes each predicts its share of the rows, and every one returns all."""
    model.eval()
    assert len(order), "predict needs at least one row"
    chunk_rows, chunk_probs = [], []
    for rows in ranks.chunks(order, batch_size):
        with autocast(on, compute_dtype):
            # A process with no rows left computes one it discards, as in fit.
            logits = model(**{k: v.to(on) for k, v in batcher(rows if len(rows) else order[:1]).items()})
        chunk_probs.append(torch.softmax(logits.float(), dim=-1)[: len(rows)])
        chunk_rows.append(torch.as_tensor(rows, device=on))
    rows_done = ranks.gather(torch.cat(chunk_rows)).cpu().numpy()
    probs = np.zeros((len(order), chunk_probs[0].shape[-1]), dtype=np.float64)
    probs[rows_done] = ranks.gather(torch.cat(chunk_probs)).cpu().numpy()
    return probs


@torch.inference_mode()
def embed(features_of: Callable[..., torch.Tensor], batcher: Batcher, order: np.ndarray, batch_size: int,
          on: torch.device, compute_dtype: str = "float32") -> torch.Tensor:
    """Pooled features of every row, in row order, as float32.

    With a `compute_dtype` other than float32, matmuls run in it under autocast, as given: callers
    pick it with supported_dtype, so that a CPU without native bf16 is not made to emulate it.
    """
    chunks, rows_done = [], []
    with torch.autocast(on.type, dtype=DTYPES[compute_dtype], enabled=compute_dtype != "float32"):
        for i in range(0, len(order), batch_size):
            rows = order[i : i + batch_size]
            chunks.append(features_of(**{k: v.to(on) for k, v in batcher(rows).items()}).float().cpu())
            rows_done.append(torch.as_tensor(rows))
    stacked = torch.cat(chunks)
    out = torch.empty_like(stacked)
    out[torch.cat(rows_done)] = stacked
    return out
