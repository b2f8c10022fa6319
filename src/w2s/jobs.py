"""The jobs that load a model: feature extraction and training; called by workflow/scripts/."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from w2s import io, metrics
from w2s.losses import LOSSES
from w2s.models import ProbeClassifier, TextClassifier, disable_dropout, load_backbone, load_tokenizer
from w2s.train import Batcher, Schedule, device, embed, fit, predict

log = logging.getLogger("w2s")
PREDICTED_SPLITS = ("test", "train_w2s")


def _text_batcher(tokenizer: Any, texts: list[str], max_length: int) -> Batcher:
    def batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        encoded = tokenizer([texts[i] for i in rows], padding=True, truncation=True,
                            max_length=max_length, return_tensors="pt")
        return {"input_ids": encoded["input_ids"], "attention_mask": encoded["attention_mask"]}
    return batch


def _by_length(texts: list[str]) -> np.ndarray:
    return np.argsort([len(t) for t in texts], kind="stable")


def embed_features(model_entry: dict[str, Any], params: dict[str, Any],
                   split_paths: dict[str, str], out_path: str) -> None:
    """Frozen pooled features of every prepared split, computed once per model and dataset."""
    on = device()
    tokenizer = load_tokenizer(model_entry)
    weights_dtype = params["dtype"] if on.type == "cuda" else "float32"
    classifier = TextClassifier(load_backbone(model_entry, weights_dtype), params["pooling"]).to(on)
    features = {}
    for split, path in split_paths.items():
        texts = pd.read_parquet(path)["text"].tolist()
        batcher = _text_batcher(tokenizer, texts, params["max_length"])
        features[split] = embed(classifier.features, batcher, _by_length(texts), params["eval_batch_size"], on)
        log.info("embedded %s: %s", split, tuple(features[split].shape))
    io.write_safetensors(features, out_path)


def train_model(
    model_entry: dict[str, Any],
    params: dict[str, Any],
    seed: int,
    split_paths: dict[str, str],
    out: dict[str, str],
    loss: str = "xent",
    loss_params: dict[str, Any] | None = None,
    weak_labels_path: str | None = None,
    features_path: str | None = None,
) -> None:
    """Train on train_gt's true labels, or on weak labels when given; predict test and train_w2s."""
    torch.manual_seed(seed)
    on = device()
    frames = {split: pd.read_parquet(path) for split, path in split_paths.items()}
    if weak_labels_path is None:
        train_split = "train_gt"
        rows = np.arange(len(frames["train_gt"]))
        soft = frames["train_gt"]["label"].to_numpy(dtype=np.float64)
    else:
        train_split = "train_w2s"
        labels = pd.read_parquet(weak_labels_path)
        position = pd.Series(np.arange(len(frames["train_w2s"])), index=frames["train_w2s"]["id"])
        missing = set(labels["id"]) - set(position.index)
        if missing:
            raise ValueError(f"{weak_labels_path}: {len(missing)} weak-label ids are not in train_w2s, "
                             "so the labels were made for another dataset, seed or split")
        rows = position.loc[labels["id"]].to_numpy()
        soft = labels["soft_label"].to_numpy(dtype=np.float64)
    targets = torch.tensor(np.stack([1 - soft, soft], axis=1), dtype=torch.float32)

    tokenizer = None
    if features_path is not None:
        features = load_file(features_path)
        model: torch.nn.Module = ProbeClassifier(features["test"].shape[1]).to(on)

        def batcher_for(split: str) -> Batcher:
            return lambda r: {"features": features[split][torch.as_tensor(r)]}
        orders = {split: np.arange(len(frame)) for split, frame in frames.items()}
    else:
        tokenizer = load_tokenizer(model_entry)
        backbone = load_backbone(model_entry)  # float32 master weights; autocast supplies params["dtype"]
        if params["gradient_checkpointing"]:
            backbone.gradient_checkpointing_enable()
        model = TextClassifier(backbone, params["pooling"]).to(on)
        disable_dropout(model)

        def batcher_for(split: str) -> Batcher:
            return _text_batcher(tokenizer, frames[split]["text"].tolist(), params["max_length"])
        orders = {split: _by_length(frame["text"].tolist()) for split, frame in frames.items()}

    train_batcher = batcher_for(train_split)
    history = fit(
        model,
        lambda batch: train_batcher(rows[batch]),
        targets,
        lambda logits, t, step_frac: LOSSES[loss](logits, t, step_frac, **(loss_params or {})),
        Schedule.from_params(params, seed),
        on,
        params["dtype"],
    )
    log.info("trained %d steps, final loss %.4f", len(history), history[-1]["loss"])

    predictions = []
    for split in PREDICTED_SPLITS:
        probs = predict(model, batcher_for(split), orders[split], params["eval_batch_size"], on, params["dtype"])
        predictions.append(pd.DataFrame({"split": split, "id": frames[split]["id"],
                                         "prob": probs, "label": frames[split]["label"]}))
        log.info("%s accuracy %.4f", split, metrics.accuracy(probs, frames[split]["label"].to_numpy()))
    io.write_parquet(pd.concat(predictions, ignore_index=True), out["predictions"])
    io.write_parquet(pd.DataFrame(history), out["history"])
    _save_checkpoint(model, tokenizer, out["checkpoint"])


def _save_checkpoint(model: torch.nn.Module, tokenizer: Any, directory: str) -> None:
    """Weights as safetensors: the head alone in probe mode, else the whole model."""
    final = Path(directory)
    staging = final.with_name(final.name + ".tmp")
    staging.mkdir(parents=True, exist_ok=True)
    if isinstance(model, TextClassifier):
        model.backbone.save_pretrained(staging / "backbone", safe_serialization=True)
        tokenizer.save_pretrained(staging / "backbone")
    io.write_safetensors(model.head.state_dict(), staging / "head.safetensors")
    staging.replace(final)
