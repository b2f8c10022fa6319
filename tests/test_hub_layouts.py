"""Every registered hub dataset read from a folder laid out as its hub repository is at the registered
revision (file paths, config folders, README configs, split names), through the very
`datasets.load_dataset` arguments the registry passes for the hub (w2s.data.sources.load_arguments) less the
revision. A wrong config name, folder or split name in the registry fails here.

The layouts are those public code read these repositories in (docs/datasets.md says which are
confirmed); the rows are the hub schema's columns from test_datasets.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import replace
from pathlib import Path

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import yaml

from test_datasets import EXPECTED, HUB_DATASETS, ROWS, source_row
from w2s.data import sources
from w2s.data.sources import DatasetError, data_source, load_arguments, prepare

N_ROWS = {"train": 40, "test": 20}


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)


def shard(split: str) -> str:
    return f"{split}-00000-of-00001.parquet"


def export(folder: str, splits: list[str]) -> dict[str, dict[str, str]]:
    """The hub's parquet export: <config folder>/<split>/0000.parquet, no README."""
    return {"": {split: f"{folder}/{split}/0000.parquet" for split in splits}}


def converted(config_folders: dict[str, list[str]]) -> dict[str, dict[str, str]]:
    """A repository converted to parquet on main: <folder>/<split>-00000-of-00001.parquet, with one
    README `configs:` entry per folder ("data" is the default config's folder)."""
    return {("default" if folder == "data" else folder): {split: f"{folder}/{shard(split)}" for split in splits}
            for folder, splits in config_folders.items()}


TRAIN_VALIDATION_TEST = ["train", "validation", "test"]
# hub split -> file, per README config ("" when the repository has no README configs)
LAYOUTS: dict[str, dict[str, dict[str, str]]] = {
    "amazon_polarity": {"amazon_polarity": {
        "train": "amazon_polarity/train-0000[0-3]-of-00004.parquet", "test": "amazon_polarity/" + shard("test")}},
    "sciq": converted({"data": TRAIN_VALIDATION_TEST}),
    "anthropic_hh": {"": {split: f"{part}/{split}.jsonl.gz" for part in ("harmless-base", "helpful-base")
                          for split in ("train", "test")}},
    "cosmos_qa": export("default", TRAIN_VALIDATION_TEST),
    "boolq": converted({"data": ["train", "validation"]}),
    "sst2": converted({"data": TRAIN_VALIDATION_TEST}),
    "dream": export("plain_text", TRAIN_VALIDATION_TEST),
    **{f"ethics_{cfg}": {"": {split: f"{c}/{split}/0000.parquet" for c in ("commonsense", cfg)
                              for split in TRAIN_VALIDATION_TEST}}
       for cfg in ("justice", "deontology", "virtue", "utilitarianism")},
    "anli_r2": {"plain_text": {split: f"plain_text/{shard(split)}"
                               for split in ("train_r1", "dev_r1", "test_r1", "train_r2", "dev_r2", "test_r2")}},
    "cola": converted({"cola": TRAIN_VALIDATION_TEST, "sst2": TRAIN_VALIDATION_TEST}),
    "hellaswag": converted({"data": TRAIN_VALIDATION_TEST}),
    "mc_taco": export("plain_text", ["validation", "test"]),
    "openbookqa": converted({"main": TRAIN_VALIDATION_TEST, "additional": TRAIN_VALIDATION_TEST}),
    "paws": converted({"labeled_final": TRAIN_VALIDATION_TEST, "labeled_swap": ["train"]}),
    # Public code (2026) reads it only from the export's default folder, as a repository whose main holds a script.
    "quail": export("default", ["train", "validation", "challenge"]),
    "piqa": export("plain_text", TRAIN_VALIDATION_TEST),
    "quartz": converted({"data": TRAIN_VALIDATION_TEST}),
    "social_iqa": export("default", ["train", "validation"]),
    "multirc": converted({"multirc": TRAIN_VALIDATION_TEST, "wic": TRAIN_VALIDATION_TEST}),
    "wic": converted({"multirc": TRAIN_VALIDATION_TEST, "wic": TRAIN_VALIDATION_TEST}),
    "twitter_sentiment": converted({"sentiment": TRAIN_VALIDATION_TEST, "irony": TRAIN_VALIDATION_TEST}),
}
LAYOUTS["anthropic_hh_pairwise"] = LAYOUTS["anthropic_hh"]
# The README config, or the export's folder, that holds each dataset's rows, where there is a choice;
# written here rather than read from the registry, so that a wrong registry entry fails.
CHOSEN = {"cola": "cola", "openbookqa": "main", "paws": "labeled_final", "multirc": "multirc", "wic": "wic",
          "twitter_sentiment": "sentiment",
          **{f"ethics_{cfg}": f"{cfg}/" for cfg in ("justice", "deontology", "virtue", "utilitarianism")}}


def write_rows(rows: list[dict], path: Path) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    if path.name.endswith(".jsonl.gz"):
        path.write_bytes(gzip.compress("".join(json.dumps(r) + "\n" for r in rows).encode()))
    else:
        pq.write_table(pa.Table.from_pylist(rows), path)


def hub_folder(name: str, root: Path, layout: dict[str, dict[str, str]] | None = None) -> tuple[Path, dict]:
    """The repository's folder with rows in every file of the layout; returns it and the rows of the
    files behind our train and test splits."""
    spec = sources.DATASETS[name]
    folder = root / spec.hub_id
    ours = {hub: split for split, hub in spec.splits.items() if hub}
    rows: dict[str, list[dict]] = {}
    configs = []
    layout = layout or LAYOUTS[name]
    chosen = CHOSEN.get(name, "")
    for config, files in layout.items():
        entries = []
        for hub_split, pattern in files.items():
            split = ours.get(hub_split, "train")  # other splits hold train-like rows
            # Without a choice to make, the first README config (the default) or every export folder.
            in_chosen = config == chosen or pattern.startswith(chosen) if chosen else config == next(iter(layout))
            read = in_chosen and hub_split in ours
            # Rows the dataset must not read carry other texts, so reading them fails the comparison.
            generated = ROWS[name](split if read else f"unread-{split}", N_ROWS[split])
            paths = [pattern.replace("[0-3]", str(i)) for i in range(4)] if "[0-3]" in pattern else [pattern]
            per_file = N_ROWS[split] // len(paths)
            for i, path in enumerate(paths):
                file_rows = generated[i * per_file:(i + 1) * per_file]
                if read:
                    rows.setdefault(split, []).extend(file_rows)
                write_rows(file_rows, folder / path)
            entries.append({"split": hub_split, "path": pattern.replace("[0-3]", "*")})
        if config:
            configs.append({"config_name": config, "data_files": entries})
    if configs:
        card = yaml.safe_dump({"configs": configs}, sort_keys=False)
        (folder / "README.md").write_text(f"---\n{card}---\n# {spec.hub_id}\n")
    return folder, rows


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
            assert (row.text, row.label) in EXPECTED[name](source_row(row.id, rows)), (name, row)
            assert int(index) < len(rows[split])


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_the_hub_is_read_with_the_mirrors_arguments_plus_the_revision(name: str) -> None:
    spec = sources.DATASETS[name]
    source = data_source(name)
    hub_path, hub_kwargs = load_arguments(source, "train")
    mirror_path, mirror_kwargs = load_arguments(replace(source, mirror="/copy"), "train")
    assert (hub_path, mirror_path) == (spec.hub_id, "/copy")
    assert hub_kwargs == {**mirror_kwargs, "revision": spec.revision or spec.branch}


def test_registered_revisions() -> None:
    pinned = {name: spec.revision for name, spec in sources.DATASETS.items() if spec.revision}
    assert all(len(sha) == 40 and int(sha, 16) >= 0 for sha in pinned.values())
    assert set(sources.DATASETS) - set(pinned) == {"amazon_polarity", "vader_movies", "mc_taco", "quail",
                                                "ethics_justice", "ethics_deontology", "ethics_virtue",
                                                "ethics_utilitarianism"}
    assert pinned["cosmos_qa"] == "ed50fe83db62b355759053b1cd5eef344ee371e0"
    exports = {name for name, spec in sources.DATASETS.items() if spec.parquet_export}
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
    sources.write_prepared("boolq", 20, 10, 0, None, outputs, source=source)
    record = json.loads((tmp_path / "source.json").read_text())
    import datasets

    assert record == {"dataset": "boolq", "datasets_version": datasets.__version__, "hub_id": "google/boolq",
                      "branch": "main", "revision": "35b264d03638db9f4ce671b711558bf7ff0f80d5",
                      "pinned_by": "registry", "hub_config": None, "parquet_export": False, "mirror": str(folder),
                      "splits": {"train": "train", "test": "validation"},
                      "task": {"kind": "text_classification", "n_classes": 2}}
    assert len(pd.read_parquet(outputs["test"])) == 10
