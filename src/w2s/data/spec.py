"""What the pipeline knows of a dataset: its spec (DatasetSpec: hub repository, branch, commit, splits, task
and the converter that turns a hub row into an input and a label), and DatasetError, the one error every
dataset reader raises. The catalogue's specs are w2s.data.catalogue's; a config entry's, w2s.data.standard's."""

from __future__ import annotations

import random
from dataclasses import dataclass, field
from typing import Any, Callable

from w2s import revisions, tasks

# A hub row -> (input, label), or None for a row the task leaves out; the input is a text or image bytes.
Converter = Callable[[dict[str, Any], random.Random], "tuple[Any, int] | None"]


class DatasetError(RuntimeError):
    """A dataset could not be loaded or has too few usable rows."""


MAIN_BRANCH = revisions.MAIN_BRANCH
# The hub's own parquet export of a repository: the only way to read repositories that still ship a
# loading script, which datasets>=4 refuses to run.
PARQUET_EXPORT_BRANCH = "refs/convert/parquet"


def entry_column(spec: "DatasetSpec", column: str) -> str:
    """The name a standard dataset's source gives our `column` (input_column, e.g. img for cifar10)."""
    return spec.columns.get(column, column)


@dataclass(frozen=True)
class DatasetSpec:
    hub_id: str
    convert: Converter
    # main branch: the config name (README `configs:`); parquet export: the config's folder (None: every folder)
    hub_config: str | None = None
    # our split name -> the hub's split name; None means test rows are drawn from train
    splits: dict[str, str | None] = field(default_factory=lambda: {"train": "train", "test": "test"})
    description: str = ""
    branch: str = MAIN_BRANCH
    # The commit of `branch` the data is read at, where public sources confirm one; otherwise the
    # first preflight resolves the branch's head and writes it to the lock file (w2s.revisions).
    revision: str | None = None
    task: tasks.Task = tasks.Task(tasks.DEFAULT_KIND, 2)
    # A standard dataset's folder of images (w2s.data.images): image_folder or imagenet_root, and its path.
    folder: tuple[str, str] | None = None
    # A standard dataset's column names where they differ from ours: {"image": "img"}, {"label": "y"}.
    columns: dict[str, str] = field(default_factory=dict)
    # A standard dataset's class names, in class-index order: a label is the position of its name.
    label_names: tuple[str, ...] = ()
    # A standard dataset read from local files keeps the files' own row ids (ID_COLUMN) where they are unique.
    keeps_ids: bool = False

    @property
    def parquet_export(self) -> bool:
        return self.branch == PARQUET_EXPORT_BRANCH


HIDDEN_LABEL = -1  # how the hub marks a test split's withheld labels
