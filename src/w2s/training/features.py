"""Frozen features of a model, computed once per model and dataset for the probes that train on them, and the
token batchers finetuning reads texts through: texts tokenised once, then padded batch by batch.

Texts are tokenised for transformers models (pooled hidden states, w2s.models.text); images are decoded for
torchvision and timm models (the input of the classifier layer, w2s.models.vision).
"""

from __future__ import annotations

import logging
import time
from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s import io
from w2s.models.devices import device, frozen_weights_dtype, supported_dtype
from w2s.models.text import (
    TextClassifier,
    load_backbone,
    load_student_backbone,
    load_tokenizer,
    model_parallel_map,
    place,
)
from w2s.tasks import Task
from w2s.training.loop import Batcher, embed
from w2s.training.settings import EmbeddingSettings

log = logging.getLogger("w2s")


def tokenize(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text's token ids, cut to max_length: tokenised once, then padded batch by batch."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def token_batcher(tokenizer: Any, token_ids: list[list[int]]) -> Batcher:
    """Rows of `token_ids` by position, padded to their batch's longest, with their attention mask."""

    def batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        padded = tokenizer.pad({"input_ids": [token_ids[i] for i in rows]}, return_tensors="pt")
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
    return batch


def text_batcher(tokenizer: Any, texts: list[str], max_length: int) -> Batcher:
    """token_batcher of `texts`, each cut to max_length."""
    return token_batcher(tokenizer, tokenize(tokenizer, texts, max_length))


def text_lengths(texts: pd.Series | list[str]) -> np.ndarray:
    """Characters per text: a tokenizer-free stand-in for token counts, good enough to group rows that pad alike."""
    return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))


def by_length(texts: list[str]) -> np.ndarray:
    """The texts' positions, shortest first: an order in which batches pad little."""
    return np.argsort(text_lengths(texts), kind="stable")


def padded_tokens(lengths: np.ndarray, order: np.ndarray, batch_size: int) -> int:
    """Tokens the model reads when rows go in `order`, `batch_size` at a time, each batch padded to its longest row."""
    return sum(int(lengths[order[i : i + batch_size]].max()) * len(order[i : i + batch_size])
               for i in range(0, len(order), batch_size))


def embed_features(model_entry: dict[str, Any], settings: EmbeddingSettings, split_paths: dict[str, str],
                   out_path: str, task: dict[str, Any] | None = None, checkpoint: str | None = None) -> None:
    """Frozen features of every prepared split, computed once per model and dataset: pooled hidden
    states of a text model, or the input of an image model's classifier layer (w2s.models.vision).
    With `checkpoint`, a finetuned student's checkpoint folder, the text model is that student's
    backbone (load_student_backbone), whose pooled states its head read: ft(weak) + lp(gt)'s features."""
    on = device()
    compute_dtype = supported_dtype(on, settings.dtype)
    if task is not None and Task.from_params(task).input_column == "image":
        from w2s.models import vision  # torchvision and timm load only for image tasks

        frames = {split: pd.read_parquet(path) for split, path in split_paths.items()}
        model = vision.load_image_model(vision.model_keys(model_entry))
        started = time.perf_counter()
        features = {split: vision.embed_images(model, frame["image"].tolist(), settings.eval_batch_size, on,
                                               compute_dtype, names=frame["id"].tolist())
                    for split, frame in frames.items()}
        n_images = sum(len(frame) for frame in frames.values())
        log.info("embedded %d images in %s in %.1f s", n_images, compute_dtype, time.perf_counter() - started)
    else:
        features = _embed_texts(model_entry, settings, split_paths, on, compute_dtype, checkpoint)
    for split, split_features in features.items():
        log.info("embedded %s: %s", split, tuple(split_features.shape))
    io.write_safetensors(features, out_path)


def _embed_texts(model_entry: dict[str, Any], settings: EmbeddingSettings, split_paths: dict[str, str],
                 on: torch.device, compute_dtype: str, checkpoint: str | None = None) -> dict[str, torch.Tensor]:
    """Pooled features of every split's texts (embed_texts)."""
    texts = {split: pd.read_parquet(path)["text"].tolist() for split, path in split_paths.items()}
    return embed_texts(model_entry, settings, texts, on, compute_dtype, checkpoint)


def embed_texts(model_entry: dict[str, Any], settings: EmbeddingSettings, texts: dict[str, list[str]],
                on: torch.device, compute_dtype: str, checkpoint: str | None = None,
                truncation_side: str | None = None) -> dict[str, torch.Tensor]:
    """Pooled features of each named list of texts. The lists are embedded together, in order of token count, so
    that every batch pads to nearly its own length; ordered by characters within each split, the demo's
    batches were a third padding. `truncation_side` ("left" keeps a text's end), if given, replaces the
    tokenizer's own."""
    tokenizer = load_tokenizer(model_entry)
    if truncation_side is not None:
        tokenizer.truncation_side = truncation_side
    weights_dtype, device_map = frozen_weights_dtype(on, compute_dtype), model_parallel_map(torch.cuda.device_count())
    backbone = (load_backbone(model_entry, weights_dtype, device_map) if checkpoint is None
                else load_student_backbone(model_entry, checkpoint, weights_dtype, device_map))
    classifier = place(TextClassifier(backbone, settings.pooling), on)
    token_ids = tokenize(tokenizer, [text for split_texts in texts.values() for text in split_texts],
                           settings.max_length)
    lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
    order = np.argsort(lengths, kind="stable")
    started = time.perf_counter()
    pooled = embed(classifier.features, token_batcher(tokenizer, token_ids), order, settings.eval_batch_size, on,
                   compute_dtype)
    read = padded_tokens(lengths, order, settings.eval_batch_size)
    log.info("embedded %d texts (%d tokens, %.1f%% of the %d read were padding) in %s in %.1f s", len(token_ids),
             lengths.sum(), 100 * (1 - lengths.sum() / read), read, compute_dtype, time.perf_counter() - started)
    return dict(zip(texts, torch.split(pooled, [len(split_texts) for split_texts in texts.values()])))
