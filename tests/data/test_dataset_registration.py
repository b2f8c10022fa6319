"""A new catalogue dataset needs one registration: its spec and converter in w2s.data.catalogue.DATASETS. Here a
toy dataset is registered through that dict alone and prepared from a folder laid out as a hub repository that
was converted to parquet on main (README configs), read through the dataset's `mirror` as the real jobs read it.
"""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest

from w2s.data import catalogue
from w2s.data.preparation import prepare
from w2s.data.reading import data_source
from w2s.data.spec import DatasetSpec
from w2s.pipeline.rehearsal.hub_layouts import converted, hub_folder

pytestmark = pytest.mark.usefixtures("_private_datasets_cache")

TOY = "toy_verdicts"
VERDICTS = ("yes", "no", "unsure")


def toy_rows(split: str, n: int) -> list[dict]:
    """The toy repository's schema: a question and a verdict; every third row is unsure."""
    return [{"question": f"{split} question {i}", "verdict": VERDICTS[i % 3]} for i in range(n)]


def convert_toy(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    if row["verdict"] == "unsure":  # the binary task leaves undecided rows out
        return None
    return f"Q: {row['question']}", int(row["verdict"] == "yes")


def test_a_dataset_registered_in_the_catalogue_alone_is_prepared(tmp_path: Path,
                                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    spec = DatasetSpec("org/toy-verdicts", convert_toy, splits={"train": "train", "test": "validation"},
                       revision="0" * 40)
    monkeypatch.setitem(catalogue.DATASETS, TOY, spec)
    # The repository also has a test split, which the dataset must not read: its rows carry other texts.
    folder, rows = hub_folder(TOY, tmp_path, converted({"data": ["train", "validation", "test"]}),
                              n_rows={"train": 60, "test": 30}, rows_of=toy_rows)
    source = replace(data_source(TOY), mirror=str(folder))
    assert (source.hub_id, source.revision, source.pinned_by) == ("org/toy-verdicts", "0" * 40, "registry")

    splits = prepare(TOY, n_train=20, n_test=10, seed=0, source=source)

    assert {name: len(frame) for name, frame in splits.items()} == {"train_gt": 10, "train_w2s": 10, "test": 10}
    ids = {name: frame["id"].tolist() for name, frame in splits.items()}
    assert not set(ids["train_gt"]) & set(ids["train_w2s"])
    assert all(i.startswith("train:") for i in ids["train_gt"] + ids["train_w2s"])
    assert all(i.startswith("test:") for i in ids["test"])
    for frame in splits.values():
        assert list(frame.columns) == ["id", "text", "label"]
        for row in frame.itertuples():
            split, index = row.id.split(":")
            source_row = rows[split][int(index)]
            assert source_row["verdict"] != "unsure"
            assert (row.text, row.label) == (f"Q: {source_row['question']}", int(source_row["verdict"] == "yes"))
    # The test rows are the validation split's: the hub's test split holds "unread-" texts.
    assert all(text.startswith("Q: test question") for text in splits["test"]["text"])
