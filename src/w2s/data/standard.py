"""A dataset outside the catalogue, in a standard schema (one input column, one label column): the spec its
config entry describes (standard_spec), the converter of its rows, and the class index a label stands for."""

from __future__ import annotations

import math
import random
import re
from typing import Any

import numpy as np

from w2s import tasks
from w2s.data.spec import HIDDEN_LABEL, Converter, DatasetSpec


def _standard_converter(input_column: str, label_column: str, task: tasks.Task,
                        label_names: tuple[str, ...] = ()) -> Converter:
    """(input, label) of a row in a standard schema; hidden labels (-1) leave the row out, and with label_names
    a label is the position of its name. An image column holds what datasets' Image(decode=False) gives: the
    encoded file's bytes (or its path)."""
    def convert(row: dict[str, Any], rng: random.Random) -> tuple[Any, int] | None:
        value = row[input_column]
        if task.input_column == "image" and isinstance(value, dict):  # datasets' Image(decode=False): bytes, path
            if value.get("bytes") is None:
                raise ValueError(f"column '{input_column}' holds no image bytes (path {value.get('path')}); embed "
                                 "the image files in the data")
            value = value["bytes"]
        label = row[label_column]
        if task.is_generative:
            return str(value), str(label)
        index = class_index(label, label_names)
        if index is None:
            raise ValueError(f"label {label!r} is no class index" + (f" and not in label_names {list(label_names)}"
                                                                     if label_names else ""))
        return None if index == HIDDEN_LABEL and not label_names else (value, index)

    return convert


def standard_spec(entry: dict[str, Any]) -> DatasetSpec:
    """The spec a standard dataset's config entry describes."""
    task = tasks.dataset_task(entry)
    folder = next(((key, entry[key]) for key in ("image_folder", "imagenet_root") if key in entry), None)
    splits = dict(entry.get("splits", {"train": "train", "test": None if folder else "test"}))
    splits.setdefault("test", None)
    input_column = entry.get("input_column", task.input_column)
    label_column = entry.get("label_column", task.label_column)
    # Folders are read as (id, image, label) records whatever the entry says of columns.
    columns = {} if folder else {task.input_column: input_column, task.label_column: label_column}
    label_names = tuple(str(label) for label in entry.get("label_names", ()))
    return DatasetSpec(
        entry.get("hub_id", folder[1] if folder else "local files"),
        _standard_converter(*((task.input_column, "label") if folder else (input_column, label_column)), task,
                            label_names),
        entry.get("hub_config"), splits, task=task, folder=folder, columns=columns, label_names=label_names,
        keeps_ids="data_files" in entry,
    )


def class_index(value: Any, label_names: tuple[str, ...] = ()) -> int | None:
    """The class index a label stands for, or None: with label_names, the position of the label's name (names
    match as text, so a CSV's 1 is the name '1'); without, the label itself when it is an integer (1, 1.0, '1')."""
    if label_names:
        text = label_text(value)
        return label_names.index(text) if text in label_names else None
    if isinstance(value, (bool, int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if math.isfinite(value) and float(value).is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def label_text(value: Any) -> str:
    """A label as label_names match it; 1.0 (an integer column with an empty cell reads as floats) is '1'."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def is_missing(value: Any) -> bool:
    """An empty cell: None, or NaN as pandas reads one."""
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))
