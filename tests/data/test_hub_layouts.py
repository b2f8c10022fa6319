"""Every registered hub dataset read from a folder laid out as its hub repository is at the registered
revision (file paths, config folders, README configs, split names), through the very
`datasets.load_dataset` arguments the registry passes for the hub (w2s.data.reading.load_arguments) less the
revision. A wrong config name, folder or split name in the registry fails here.

The layouts and rows are w2s.pipeline.rehearsal's (hub_layouts, hub_rows), which the rehearsal reads too.
"""

from __future__ import annotations

import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pytest

from helpers import EXPECTED_CONVERSIONS, HUB_DATASETS, source_row
from w2s.data import catalogue, preparation
from w2s.data.preparation import prepare
from w2s.data.reading import data_source, load_arguments
from w2s.data.spec import DatasetError
from w2s.pipeline.rehearsal.hub_layouts import hub_folder


pytestmark = pytest.mark.usefixtures("_private_datasets_cache")


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_the_registry_reads_each_repository_layout(name: str, tmp_path: Path) -> None:
    folder, rows = hub_folder(name, tmp_path)
    source = replace(data_source(name), mirror=str(folder))
    out = prepare(name, n_train=20, n_test=10, seed=0, source=source)
    assert [len(out[s]) for s in ("train_gt", "train_w2s", "test")] == [10, 10, 10]
    for frame in out.values():
        for row in frame.itertuples():
            split, index = row.id.split(":")
            # Positions are within the split as the loader returns it: the files' rows in order.
            assert (row.text, row.label) in EXPECTED_CONVERSIONS[name](source_row(row.id, rows)), (name, row)
            assert int(index) < len(rows[split])


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_the_hub_is_read_with_the_mirrors_arguments_plus_the_revision(name: str) -> None:
    spec = catalogue.DATASETS[name]
    source = data_source(name)
    hub_path, hub_kwargs = load_arguments(source, "train")
    mirror_path, mirror_kwargs = load_arguments(replace(source, mirror="/copy"), "train")
    assert (hub_path, mirror_path) == (spec.hub_id, "/copy")
    assert hub_kwargs == {**mirror_kwargs, "revision": spec.revision or spec.branch}


def test_registered_revisions() -> None:
    pinned = {name: spec.revision for name, spec in catalogue.DATASETS.items() if spec.revision}
    assert all(len(sha) == 40 and int(sha, 16) >= 0 for sha in pinned.values())
    assert set(catalogue.DATASETS) - set(pinned) == {"amazon_polarity", "vader_movies", "mc_taco", "quail",
                                                  "ethics_justice", "ethics_deontology", "ethics_virtue",
                                                  "ethics_utilitarianism"}
    assert pinned["cosmos_qa"] == "ed50fe83db62b355759053b1cd5eef344ee371e0"
    exports = {name for name, spec in catalogue.DATASETS.items() if spec.parquet_export}
    assert exports == {"cosmos_qa", "dream", "mc_taco", "piqa", "quail", "social_iqa", "ethics_justice",
                       "ethics_deontology", "ethics_virtue", "ethics_utilitarianism"}


def test_a_renamed_export_folder_is_an_error_that_names_it(tmp_path: Path) -> None:
    """piqa's export folder is plain_text at the pinned commit; a later export renamed it default."""
    layout = {"": {split: f"default/{split}/0000.parquet" for split in ("train", "validation", "test")}}
    folder, _ = hub_folder("piqa", tmp_path, layout)
    with pytest.raises(DatasetError, match="piqa"):
        prepare("piqa", 20, 10, seed=0, source=replace(data_source("piqa"), mirror=str(folder)))


def test_a_script_only_repository_says_to_read_the_parquet_export(tmp_path: Path) -> None:
    folder = tmp_path / "allenai" / "cosmos_qa"
    folder.mkdir(parents=True)
    (folder / "cosmos_qa.py").write_text("# a loading script\n")
    (folder / "README.md").write_text("# Cosmos QA\n")
    source = replace(data_source("cosmos_qa"), mirror=str(folder), parquet_export=False, hub_config=None)
    with pytest.raises(DatasetError, match=r"holds a loading script and no data files \(cosmos_qa\.py\).*"
                                           r"refs/convert/parquet"):
        prepare("cosmos_qa", 20, 10, seed=0, source=source)


def test_a_missing_split_is_named(tmp_path: Path) -> None:
    layout = {"": {"train": "default/train/0000.parquet"}}  # the export lost its validation split
    folder, _ = hub_folder("social_iqa", tmp_path, layout)
    with pytest.raises(DatasetError, match=r"has no split 'validation', which dataset 'social_iqa' reads as its "
                                           r"test split"):
        prepare("social_iqa", 20, 10, seed=0, source=replace(data_source("social_iqa"), mirror=str(folder)))


def test_the_source_record_names_the_commit_read(tmp_path: Path) -> None:
    folder, _ = hub_folder("boolq", tmp_path)
    source = replace(data_source("boolq"), mirror=str(folder))
    outputs = {split: str(tmp_path / f"{split}.parquet") for split in ("train_gt", "train_w2s", "test")}
    outputs["source"] = str(tmp_path / "source.json")
    preparation.write_prepared("boolq", 20, 10, 0, None, outputs, source=source)
    record = json.loads((tmp_path / "source.json").read_text())
    import datasets

    assert record == {"dataset": "boolq", "datasets_version": datasets.__version__, "hub_id": "google/boolq",
                      "branch": "main", "revision": "35b264d03638db9f4ce671b711558bf7ff0f80d5",
                      "pinned_by": "registry", "hub_config": None, "parquet_export": False, "mirror": str(folder),
                      "splits": {"train": "train", "test": "validation"},
                      "task": {"kind": "text_classification", "n_classes": 2}}
    assert len(pd.read_parquet(outputs["test"])) == 10
