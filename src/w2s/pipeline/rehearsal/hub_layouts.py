"""Each catalogue dataset's hub repository as a local folder, laid out as the repository is at its registered
revision (file paths, config folders, README configs, split names), for `datasets.load_dataset` to read through a
dataset's `mirror`: the fixtures of tests/data/test_hub_layouts.py and of the rehearsal (w2s.pipeline.rehearse).

The layouts are those public code read these repositories in (docs/datasets.md says which are confirmed); the rows
are w2s.pipeline.rehearsal.hub_rows'. Files a dataset must not read hold rows with other texts, so that reading
them shows.
"""

from __future__ import annotations

import gzip
import json
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import yaml

from w2s.data import catalogue
from w2s.pipeline.rehearsal.hub_rows import ROWS, RowBuilder

N_ROWS = {"train": 40, "test": 20}


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


def hub_folder(name: str, root: Path, layout: dict[str, dict[str, str]] | None = None,
               n_rows: dict[str, int] | None = None, rows_of: RowBuilder | None = None) -> tuple[Path, dict]:
    """The repository's folder under `root` with rows in every file of the layout (LAYOUTS[name] unless given):
    `n_rows` per split (N_ROWS unless given) from `rows_of` (the dataset's hub_rows.ROWS builder unless given).
    Returns the folder and the rows of the files behind our train and test splits."""
    spec = catalogue.DATASETS[name]
    folder = root / spec.hub_id
    ours = {hub: split for split, hub in spec.splits.items() if hub}
    rows: dict[str, list[dict]] = {}
    configs = []
    layout = layout or LAYOUTS[name]
    n_rows = n_rows or N_ROWS
    rows_of = rows_of or ROWS[name]
    chosen = CHOSEN.get(name, "")
    for config, files in layout.items():
        entries = []
        for hub_split, pattern in files.items():
            split = ours.get(hub_split, "train")  # other splits hold train-like rows
            # Without a choice to make, the first README config (the default) or every export folder.
            in_chosen = config == chosen or pattern.startswith(chosen) if chosen else config == next(iter(layout))
            read = in_chosen and hub_split in ours
            # Rows the dataset must not read carry other texts, so reading them fails the comparison.
            generated = rows_of(split if read else f"unread-{split}", n_rows[split])
            paths = [pattern.replace("[0-3]", str(i)) for i in range(4)] if "[0-3]" in pattern else [pattern]
            per_file = n_rows[split] // len(paths)
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
