"""Datasets: hub ids, split mapping, binary conversion, and the deterministic train/test splits.

Every registered dataset is read with `datasets.load_dataset`, either from the hub or from
local files in the hub schema, and converted to rows of (id, text, label) with label in {0, 1}.
"""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from w2s import io

Converter = Callable[[dict[str, Any], random.Random], "tuple[str, int] | None"]
PREPARED_SPLITS = ("train_gt", "train_w2s", "test")
log = logging.getLogger("w2s")


class DatasetError(RuntimeError):
    """A dataset could not be loaded or has too few usable rows."""


@dataclass(frozen=True)
class DatasetSpec:
    hub_id: str
    convert: Converter
    hub_config: str | None = None
    # our split name -> the hub's split name; None means test rows are drawn from train
    splits: dict[str, str | None] = field(default_factory=lambda: {"train": "train", "test": "test"})
    description: str = ""


def _amazon_polarity(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    return f"{row['title']} {row['content']}", int(row["label"])


def _sciq(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    answer = row["correct_answer"] if label else rng.choice(
        [row["distractor1"], row["distractor2"], row["distractor3"]]
    )
    return f"Q: {row['question']} A: {answer}", label


def _anthropic_hh(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    return (row["chosen"] if label else row["rejected"]), label


def _cosmos_qa(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    answers = [row[f"answer{i}"] for i in range(4)]
    true_answer = answers[int(row["label"])]
    # "None of the above" as the right answer makes every shown alternative a false claim.
    label = 0 if "None of the above choices" in true_answer else int(rng.random() < 0.5)
    answer = true_answer if label else rng.choice([a for a in answers if a != true_answer])
    return f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {answer}", label


def _boolq(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    return f"Passage: {row['passage']}\nQuestion: {row['question']}", int(bool(row["answer"]))


def _sst2(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    label = int(row["label"])
    return None if label not in (0, 1) else (row["sentence"].strip(), label)


VADER_NEUTRAL_BAND = 0.5


def _vader_movies(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    score = float(row["score"])
    # Like SST-2's binary task, near-neutral snippets are left out.
    if abs(score) < VADER_NEUTRAL_BAND:
        return None
    return str(row["text"]).strip(), int(score > 0)


DATASETS: dict[str, DatasetSpec] = {
    "amazon_polarity": DatasetSpec("fancyzhx/amazon_polarity", _amazon_polarity),
    "sciq": DatasetSpec("allenai/sciq", _sciq),
    "anthropic_hh": DatasetSpec("Anthropic/hh-rlhf", _anthropic_hh),
    "cosmos_qa": DatasetSpec(
        "allenai/cosmos_qa", _cosmos_qa, splits={"train": "train", "test": "validation"}
    ),
    "boolq": DatasetSpec("google/boolq", _boolq, splits={"train": "train", "test": "validation"}),
    "sst2": DatasetSpec(
        "stanfordnlp/sst2", _sst2, splits={"train": "train", "test": "validation"},
        description="the hub's test split has no labels, so validation serves as test",
    ),
    "vader_movies": DatasetSpec(
        "vaderSentiment==3.3.2", _vader_movies, splits={"train": "train", "test": None},
        description="10,605 Rotten Tomatoes snippets with human sentiment ratings (Hutto and "
        "Gilbert 2014), shipped in the vaderSentiment source package on PyPI",
    ),
}

PACKAGED_DATASETS = {"vader_movies"}
VADER_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
VADER_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"


def fetch_vader_movies(out_path: str | Path) -> None:
    """Take the rated snippets out of the vaderSentiment sdist, fetched with pip from PyPI."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--dest", tmp, DATASETS["vader_movies"].hub_id]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise DatasetError(
                f"could not fetch {DATASETS['vader_movies'].hub_id} with pip ({result.stderr.strip()[-500:]}); "
                "check that PyPI is reachable, or set data_files.train in the config to a copy of "
                f"{VADER_MEMBER}"
            )
        (sdist,) = Path(tmp).glob("vaderSentiment-*.tar.gz")
        with tarfile.open(sdist) as outer:
            inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
            inner_file = outer.extractfile(inner_member)
            assert inner_file is not None
            with tarfile.open(fileobj=inner_file) as inner:
                snippets = inner.extractfile(VADER_MEMBER)
                assert snippets is not None
                payload = snippets.read()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != VADER_SHA256:
        raise DatasetError(f"{VADER_MEMBER} has sha256 {digest}, expected {VADER_SHA256}")
    out = Path(out_path)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp_out = out.with_name(out.name + ".tmp")
    tmp_out.write_bytes(payload)
    tmp_out.replace(out)


def _load_rows(name: str, split: str, data_files: dict[str, str] | None) -> Any:
    import datasets

    spec = DATASETS[name]
    try:
        if name == "vader_movies":
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
            if not data_files or "train" not in data_files:
                raise DatasetError("vader_movies needs data_files.train (the fetch rule provides it)")
            return datasets.load_dataset(
                "csv", data_files=data_files["train"], delimiter="\t",
                column_names=["id", "score", "text"], quoting=3, split="train",
            )
        if data_files:
            # Local files need no hub; without this, datasets pings it to count downloads.
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
            if split not in data_files:
                raise DatasetError(f"dataset '{name}' sets data_files but has no '{split}' file")
            path = data_files[split]
            suffix = Path(path).suffix.lower()
            builder = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(suffix)
            if builder is None:
                raise DatasetError(f"{path}: local data files must be .jsonl, .json, .parquet or .csv")
            return datasets.load_dataset(builder, data_files=path, split="train")
        hub_split = spec.splits[split]
        return datasets.load_dataset(spec.hub_id, spec.hub_config, split=hub_split)
    except DatasetError:
        raise
    except Exception as err:  # datasets raises many types for offline, missing and malformed data
        source = data_files.get(split, data_files.get("train")) if data_files else f"the hub id '{spec.hub_id}'"
        raise DatasetError(
            f"could not load the {split} split of dataset '{name}' from {source}: {err}. "
            "Offline? Download it once and point datasets.<name>.data_files at local files in the "
            "hub schema, or set HF_HUB_OFFLINE=1 to use the local Hugging Face cache."
        ) from err


def _convert(name: str, rows: Any, indices: list[int], split: str, seed: int, want: int) -> pd.DataFrame:
    """Convert rows in the given order until `want` usable ones are found."""
    convert = DATASETS[name].convert
    records = []
    for index in indices:
        # One generator per row keeps a row's random choice independent of sampling order.
        rng = random.Random(f"{name}:{split}:{index}:{seed}")
        converted = convert(rows[index], rng)
        if converted is None:
            continue
        text, label = converted
        records.append({"id": f"{split}:{index}", "text": text, "label": label})
        if len(records) == want:
            break
    if len(records) < want:
        raise DatasetError(
            f"dataset '{name}' has only {len(records)} usable rows in its {split} split but the "
            f"config asks for {want}; lower n_train or n_test"
        )
    return pd.DataFrame.from_records(records, columns=["id", "text", "label"])


def prepare(
    name: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None = None
) -> dict[str, pd.DataFrame]:
    """train_gt and train_w2s are the two halves of a random n_train sample; test is disjoint."""
    rng = random.Random(seed)
    train_rows = _load_rows(name, "train", data_files)
    train_order = list(range(len(train_rows)))
    rng.shuffle(train_order)
    if DATASETS[name].splits["test"] is None:
        pool = _convert(name, train_rows, train_order, "train", seed, n_train + n_test)
        train, test = pool.iloc[:n_train], pool.iloc[n_train:]
    else:
        train = _convert(name, train_rows, train_order, "train", seed, n_train)
        test_rows = _load_rows(name, "test", data_files)
        test_order = list(range(len(test_rows)))
        rng.shuffle(test_order)
        test = _convert(name, test_rows, test_order, "test", seed, n_test)
    half = n_train // 2
    splits = {"train_gt": train.iloc[:half], "train_w2s": train.iloc[half:], "test": test}
    for split, frame in splits.items():
        if frame["label"].nunique() < 2:
            raise DatasetError(f"the {split} split of '{name}' has a single class; raise its size")
    return {split: frame.reset_index(drop=True) for split, frame in splits.items()}


def w2s_slice(rows: pd.DataFrame, slice_index: int, n_slices: int) -> pd.DataFrame:
    """Slice `slice_index` (1-based) of `n_slices` equal, disjoint, contiguous slices of train_w2s."""
    if not 1 <= slice_index <= n_slices:
        raise ValueError(f"slice {slice_index} does not exist among {n_slices} slices")
    bounds = np.linspace(0, len(rows), n_slices + 1).astype(int)
    return rows.iloc[bounds[slice_index - 1] : bounds[slice_index]]


def write_prepared(dataset: str, n_train: int, n_test: int, seed: int,
                   data_files: dict[str, str] | None, outputs: dict[str, str]) -> None:
    splits = prepare(dataset, n_train, n_test, seed, data_files)
    for split, frame in splits.items():
        log.info("%s %s: %d rows, %.3f positive", dataset, split, len(frame), frame["label"].mean())
        io.write_parquet(frame, outputs[split])


def write_weak_labels(predictions_path: str, slice_index: int, n_slices: int, out_path: str) -> None:
    """The supervisor's predictions on one slice of train_w2s: id, soft, hard and true label."""
    preds = pd.read_parquet(predictions_path)
    w2s = preds[preds["split"] == "train_w2s"].reset_index(drop=True)
    rows = w2s_slice(w2s, slice_index, n_slices)
    frame = pd.DataFrame({
        "id": rows["id"].to_numpy(),
        "soft_label": rows["prob"].to_numpy(),
        "hard_label": (rows["prob"] > 0.5).astype(int).to_numpy(),
        "true_label": rows["label"].to_numpy(),
    })
    log.info("slice %d/%d: %d weak labels, accuracy %.4f", slice_index, n_slices, len(frame),
             float((frame["hard_label"] == frame["true_label"]).mean()))
    io.write_parquet(frame, out_path)
