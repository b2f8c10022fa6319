"""Finetuning a text classifier (full or LoRA, w2s.training.loop.fit), in one process or sharded over several
(w2s.training.distributed), and the resume checkpoints finetuning saves and continues from."""

from __future__ import annotations

import logging
import math
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s import io
from w2s.evaluation import metrics
from w2s.models.devices import DTYPES, describe_device, supported_dtype
from w2s.models.lora import add_lora
from w2s.models.text import (
    TextClassifier,
    disable_dropout,
    empty_backbone,
    load_backbone,
    load_tokenizer,
    model_parallel_map,
    place,
)
from w2s.training.distributed import (
    SINGLE,
    Ranks,
    ShardedCheckpoints,
    full_state_dict,
    layer_blocks,
    shard_from_first,
)
from w2s.training.features import by_length, text_batcher, text_lengths
from w2s.training.job import TrainingJob
from w2s.training.loop import Batcher, Selection, fit, predict
from w2s.training.loss_registry import loss_function, registered
from w2s.training.outputs import predicted_splits, save_checkpoint, write_predictions
from w2s.training.probe import final_sweep
from w2s.training.resume import ResumeCheckpoints, run_key
from w2s.training.rows import selection_labels
from w2s.training.settings import TrainingSettings

log = logging.getLogger("w2s")


def build_classifier(model_entry: dict[str, Any], settings: TrainingSettings, on: torch.device,
                 n_classes: int = 2, ranks: Ranks = SINGLE) -> tuple[torch.nn.Module, Any]:
    """The classifier full finetuning or LoRA trains, and its tokenizer. With `ranks` of several processes,
    the classifier is sharded over them (w2s.training.distributed.shard), each transformer layer on its own."""
    tokenizer = load_tokenizer(model_entry)
    # float32 master weights; autocast (and, sharded on GPUs, FSDP's mixed precision) supplies settings.dtype.
    # Sharded, rank 0 loads the model on the CPU and the others build it empty; shard_from_first sends the shards.
    if ranks.sharded:
        backbone = load_backbone(model_entry) if ranks.writes_outputs else empty_backbone(model_entry)
    else:
        backbone = load_backbone(model_entry, device_map=model_parallel_map(torch.cuda.device_count()))
    if settings.mode == "lora":
        backbone = add_lora(backbone, settings.lora)
    if settings.gradient_checkpointing:
        # Sharded: non-reentrant checkpointing, which runs FSDP's hooks again when it recomputes a layer.
        backbone.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False} if ranks.sharded else None)
        if settings.mode == "lora":
            # Frozen embeddings produce no grad, so checkpointed blocks would see none either.
            backbone.enable_input_require_grads()
    model = TextClassifier(backbone, settings.pooling, n_classes)
    if ranks.sharded:
        compute_dtype = supported_dtype(on, settings.dtype)
        shard_from_first(model, layer_blocks(backbone),
                         DTYPES[compute_dtype] if on.type == "cuda" and compute_dtype != "float32" else None, ranks, on)
    else:
        model = place(model, on)
    disable_dropout(model)
    if settings.compile:
        model.compile(dynamic=True)  # in place, so the checkpoint keeps the module's own names
    return model, tokenizer


def finetune_classifier(job: TrainingJob) -> None:
    """Minibatch training of a text model's backbone (full or LoRA) and head (w2s.training.loop); with a holdout,
    the checkpoint that scores best on it is kept. Writes predictions, history, sweep and checkpoint."""
    settings, frames, rows, holdout, on, ranks = job.settings, job.frames, job.rows, job.holdout, job.on, job.ranks
    model, tokenizer = build_classifier(job.model_entry, settings, on, job.task.n_classes, ranks)
    compute_dtype = settings.dtype

    def batcher_for(split: str) -> Batcher:
        return text_batcher(tokenizer, frames[split]["text"].tolist(), settings.max_length)

    def order_of(split: str, positions: np.ndarray) -> np.ndarray:
        return by_length(frames[split]["text"].iloc[positions].tolist())

    train_batcher = batcher_for(job.train_split)
    selection = None
    if holdout is not None:
        positions = holdout["row"].to_numpy()
        holdout_labels = selection_labels(holdout, settings.model_selection)
        holdout_order = order_of(job.train_split, positions)

        def holdout_accuracy() -> float:
            probs = predict(model, lambda r: train_batcher(positions[r]), holdout_order,
                            settings.eval_batch_size, on, compute_dtype, ranks)
            return metrics.accuracy(probs, holdout_labels)

        steps_per_epoch = max(1, math.ceil(len(rows) / settings.batch_size))
        selection = Selection(holdout_accuracy, max(1, round(steps_per_epoch / settings.evals_per_epoch)))

    resume = resume_checkpoints(job, model)
    loss_fn = loss_function(job.loss)
    targets = torch.tensor(np.stack(rows["soft_label"].to_numpy()), dtype=torch.float32)
    train_rows = rows["row"].to_numpy()
    history = fit(
        model,
        lambda batch: train_batcher(train_rows[batch]),
        targets,
        lambda logits, t, step_frac, batch: loss_fn(logits, t, step_frac, batch=batch, **job.loss_params),
        settings.schedule(job.seed),
        on,
        compute_dtype,
        selection,
        lengths=text_lengths(frames[job.train_split]["text"].iloc[train_rows]),
        needs_batch_probs=registered(job.loss).needs_batch_probs,
        resume=resume,
        ranks=ranks,
    )
    log.info("trained %d steps, final loss %.4f", len(history), history[-1]["loss"])
    if selection is not None:
        scored = pd.DataFrame(history).dropna(subset=["selection_score"])
        best = scored.loc[scored["selection_score"].idxmax()]
        log.info("kept step %d: holdout accuracy %.4f (%s)", best["step"], best["selection_score"],
                 settings.model_selection)

    probs = {split: predict(model, batcher_for(split), order_of(split, np.arange(len(frames[split]))),
                            settings.eval_batch_size, on, compute_dtype, ranks)
             for split in predicted_splits(frames)}
    # Every process takes part in gathering the sharded weights; rank 0 writes the outputs.
    state = full_state_dict(model) if ranks.sharded else None
    if not ranks.writes_outputs:
        return
    write_predictions(frames, probs, job.out, "training diverged: lower lr or use dtype float32")
    processes = f", {ranks.world} processes" if ranks.sharded else ""
    # selection_rows: how many held-out rows each selection score counts, so that a report can tell a choice
    # from noise (one binomial standard error of the score).
    io.write_parquet(pd.DataFrame(history).assign(device=describe_device(on) + processes,
                                                  selection_rows=len(holdout) if holdout is not None else np.nan),
                     job.out["history"])
    io.write_parquet(final_sweep(frames["test"], probs["test"]), job.out["sweep"])
    save_checkpoint(model, tokenizer, job.out["checkpoint"], state)
    if resume is not None:
        resume.clear()


def resume_checkpoints(job: TrainingJob, model: torch.nn.Module | None = None) -> ResumeCheckpoints | None:
    """Where finetuning saves and finds its resume checkpoints, keyed by everything the run depends on:
    a sharded run's (of `model`) by its number of processes too, whose shards its checkpoints hold."""
    if job.resume_dir is None:
        return None
    identity = {"model_entry": job.model_entry, "params": job.settings.identity(), "seed": job.seed,
                "loss": job.loss, "loss_params": job.loss_params}
    if job.task.is_generative:  # the generation length changes the predictions and the selection
        identity["task"] = job.task.params()
    if job.ranks.sharded:
        assert model is not None, "a sharded run's checkpoints hold its model's shards"
        identity["processes"] = job.ranks.world
        return ShardedCheckpoints(job.resume_dir, run_key(identity, job.input_paths, job.code_paths),
                                  job.settings.checkpoint_every, model, job.ranks)
    return ResumeCheckpoints(job.resume_dir, run_key(identity, job.input_paths, job.code_paths),
                             job.settings.checkpoint_every)
