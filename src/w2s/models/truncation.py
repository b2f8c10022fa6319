"""How many texts of each prepared split are longer than a model's context (max_length tokens).

Training, feature extraction and prediction cut such texts to their first max_length tokens; the
reference drops them without a word. Neither is silent here: the counts reach every metrics JSON.
"""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from w2s import io
from w2s.models.text import load_tokenizer

log = logging.getLogger("w2s")


def count_truncated(tokenizer: Any, texts: list[str], max_length: int) -> int:
    """Texts whose tokens, special tokens included, exceed max_length: those truncation cuts."""
    lengths = [len(ids) for ids in tokenizer(texts, truncation=False)["input_ids"]]
    return sum(length > max_length for length in lengths)


def write_truncation(model_entry: dict[str, Any], max_length: int, split_paths: dict[str, str], out_path: str) -> None:
    """{"max_length": ..., "truncated": {split: count}, "n": {split: rows}} for one model's tokenizer."""
    tokenizer = load_tokenizer(model_entry)
    # Counting needs whole texts; without this, transformers warns of each one longer than its own limit.
    tokenizer.model_max_length = int(1e30)
    truncated, sizes = {}, {}
    for split, path in split_paths.items():
        texts = pd.read_parquet(path)["text"].tolist()
        truncated[split], sizes[split] = count_truncated(tokenizer, texts, max_length), len(texts)
        if truncated[split]:
            log.warning("%d of %d %s texts exceed max_length %d tokens and are truncated; raise training.max_length "
                        "to keep them whole", truncated[split], len(texts), split, max_length)
    io.write_json({"max_length": max_length, "truncated": truncated, "n": sizes}, out_path)
