"""The trainers of the heads on frozen models: a linear probe fit to convergence on frozen features
(w2s.training.probe), and a pretrained classifier's own head, which predicts with no training."""

from __future__ import annotations

import logging
import time

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from w2s import io
from w2s.data import labels as class_probs
from w2s.models.devices import describe_device, device, supported_dtype
from w2s.models.text import ProbeClassifier
from w2s.training.job import TrainingJob
from w2s.training.outputs import predicted_splits, save_checkpoint, write_predictions
from w2s.training.probe import choose_l2, final_sweep, grid_history
from w2s.training.rows import selection_labels

log = logging.getLogger("w2s")


def predict_with_own_head(job: TrainingJob) -> None:
    """A pretrained classifier used as it is (AlexNet's ImageNet head): no training, its softmax predicts.
    Its history is one row that says so, and its checkpoint records the model entry it was loaded from."""
    from w2s.models import vision

    on, settings = device(), job.settings
    model = vision.load_image_model(vision.model_keys(job.model_entry))
    probs = {split: vision.predict_with_head(model, job.frames[split]["image"].tolist(), settings.eval_batch_size,
                                             on, supported_dtype(on, settings.dtype), job.task.n_classes,
                                             f"{split} of the pretrained head", names=job.frames[split]["id"].tolist())
             for split in predicted_splits(job.frames)}
    write_predictions(job.frames, probs, job.out, "the pretrained head's outputs are not probabilities")
    history = pd.DataFrame({"step": [0], "trained": [False], "device": [describe_device(on)]})
    io.write_parquet(history, job.out["history"])
    io.write_parquet(final_sweep(job.frames["test"], probs["test"]), job.out["sweep"])
    with io.staged_directory(job.out["checkpoint"]) as staging:
        io.write_json({"pretrained_head": True, "model_entry": job.model_entry}, staging / "model_entry.json")


def train_probe(job: TrainingJob) -> None:
    """A linear head fit to convergence at every L2 strength of training.probe.l2_grid (w2s.training.probe).

    The strength is chosen on the held-out rows, each strength refit on every training row, and the
    chosen refit predicts; the test predictions of every strength go to the sweep.
    """
    settings, rows, holdout, frames = job.settings, job.rows, job.holdout, job.frames
    assert job.features_path is not None, "a probe trains on the features its rule gives as input"
    assert settings.probe is not None, "a probe head's params carry the probe block"
    features = load_file(job.features_path)
    every = rows if holdout is None else pd.concat([rows, holdout], ignore_index=True)
    held = None if holdout is None else np.arange(len(rows), len(every))
    held_labels = None if holdout is None else selection_labels(holdout, settings.model_selection)
    x = features[job.train_split][torch.tensor(every["row"].to_numpy())]
    started = time.perf_counter()
    on = device()
    points, chosen = choose_l2(x, np.stack(every["soft_label"].to_numpy()), held, held_labels, job.loss,
                               job.loss_params, settings.probe, on)
    history = grid_history(points, chosen)
    for point in history.itertuples():
        log.info("l2 %g: holdout accuracy %.4f (%s), training loss %.4f, %d iterations in %d rounds, %s", point.l2,
                 point.selection_score, settings.model_selection, point.loss, point.iterations, point.rounds,
                 "converged" if point.converged else "NOT converged")
    best = points[chosen]
    log.info("chose l2 %g; %d fits in %.1f s", best.l2, len(points) * (1 if holdout is None else 2),
             time.perf_counter() - started)
    probs = {split: best.fit.probs(features[split]) for split in predicted_splits(frames)}
    write_predictions(frames, probs, job.out, "the probe fit diverged; raise the smallest l2")
    test = frames["test"]
    sweep = pd.concat([pd.DataFrame({"l2": point.l2, "chosen": i == chosen, "id": test["id"],
                                     "probs": class_probs.as_column(point.fit.probs(features["test"]))})
                       for i, point in enumerate(points)], ignore_index=True)
    # selection_rows: how many held-out rows each selection score counts (as a finetuned run's history says).
    io.write_parquet(history.assign(device=describe_device(on), selection_rows=np.nan if held is None else len(held)),
                     job.out["history"])
    io.write_parquet(sweep, job.out["sweep"])
    model = ProbeClassifier(x.shape[1], job.task.n_classes)
    model.head.load_state_dict(best.fit.head_state())
    save_checkpoint(model, None, job.out["checkpoint"])
