"""Preparation: a dataset's rows converted and split into train_gt, train_w2s and test (prepare), each split's
class balance (label_balance) and what was read (source_record), written with label-free views (write_prepared).

train_gt and train_w2s split a random n_train sample of the train rows; test is disjoint from them, drawn from
the test split or, where the dataset has none, from the rest of train.
"""

from __future__ import annotations

import dataclasses
import hashlib
import logging
import random
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from w2s import io
from w2s.data.catalogue import DATASETS, dataset_spec
from w2s.data.local_files import ID_COLUMN, check_columns, check_labels, kept_ids
from w2s.data.reading import DataSource, data_source, load_rows, pin, split_where
from w2s.data.spec import DatasetError, DatasetSpec, entry_column

log = logging.getLogger("w2s")

# label_balance's count, per split, of chess puzzles left out at preparation for their move number.
LEFT_OUT_OVER_MAX_MOVES = "over_max_moves"


def _checked_rows(name: str, split: str, rows: Any, data_files: dict[str, str] | None, source: DataSource,
                  spec: DatasetSpec, entry: dict[str, Any]) -> list[str] | None:
    """A standard dataset's split, checked as the config check checks its file (columns, labels), and its rows'
    own ids where they are kept (a local file's unique ID_COLUMN); None for rows named by position."""
    if name in DATASETS or spec.folder is not None:
        return None
    where = split_where(split, data_files, source)
    path = Path((data_files or {}).get(split, ""))
    header = None
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig") as stream:
            header = stream.readline()
    check_columns(name, where, rows.column_names, spec, header, entry)
    if not spec.task.is_generative:
        check_labels(name, where, rows[entry_column(spec, spec.task.label_column)], spec)
    if not spec.keeps_ids or ID_COLUMN not in rows.column_names:
        return None
    ids = kept_ids(rows[ID_COLUMN])
    if ids is None:
        log.warning("%s: its %s column is empty in a row or repeats a value, so rows are named by position (%s:N)",
                    where, ID_COLUMN, split)
    return ids


def _convert(
    name: str, rows: Any, indices: list[int], split: str, seed: int, sizes: list[int], balance: bool,
    spec: DatasetSpec, max_moves: int | None = None, ids: list[str] | None = None, where: str = "",
) -> list[pd.DataFrame]:
    """Convert rows in the given order into parts of the given sizes, each row going to the first
    part with room. With balance, a part has room for a class only while that class holds less than
    1/K of the part (rounded up), so its class counts differ by at most one when every class has rows.
    `max_moves` leaves out long chess puzzles (_convert_generative). A row's id is its own from `ids`, else
    its position (<split>:<row>); `where` names the split's file or repository in errors."""
    if spec.task.is_generative:
        return _convert_generative(name, rows, indices, split, seed, sizes, spec, max_moves, ids, where)
    n_classes, column = spec.task.n_classes, spec.task.input_column
    parts: list[list[dict[str, Any]]] = [[] for _ in sizes]
    class_counts = [[0] * n_classes for _ in sizes]
    usable = [0] * n_classes
    for index in indices:
        if all(len(records) == size for records, size in zip(parts, sizes)):
            break
        # One generator per row keeps a row's random choice independent of sampling order.
        rng = random.Random(f"{name}:{split}:{index}:{seed}")
        converted = _converted(name, rows, index, split, spec, rng, where)
        if converted is None:
            continue
        value, label = converted
        if label not in range(n_classes):
            raise DatasetError(
                f"row {index} of the {split} split of '{name}' has label {label}, "
                + ("which is neither 0 nor 1" if n_classes == 2 else f"outside 0..{n_classes - 1} of its {n_classes} classes")
                + "; fix the label column of the data"
                + ("" if name in DATASETS else f", or set datasets.{name}.n_classes to the data's number of classes")
            )
        usable[label] += 1
        for records, counts, size in zip(parts, class_counts, sizes):
            if len(records) < size and (not balance or counts[label] < -(-size // n_classes)):
                counts[label] += 1
                records.append({"id": ids[index] if ids else f"{split}:{index}", column: value, "label": label})
                break
    if any(len(records) < size for records, size in zip(parts, sizes)):
        if sum(usable) == 0:
            raise DatasetError(
                f"none of the {len(indices)} rows of the {split} split of '{name}' is usable (all are "
                f"unlabelled or left out of the {'binary ' if n_classes == 2 else ''}task); point data_files at "
                "labelled rows"
            )
        if balance:
            raise DatasetError(
                f"dataset '{name}' cannot fill {sum(sizes)} class-balanced rows from its {split} split, "
                f"which has {sum(usable)} usable rows, "
                + (f"{usable[1]} of them positive" if n_classes == 2 else f"{usable} per class")
                + "; lower n_train or "
                "n_test, or switch balance off"
            )
        raise DatasetError(
            f"dataset '{name}' has only {sum(usable)} usable rows in its {split} split but the "
            f"config asks for {sum(sizes)}; lower n_train or n_test"
        )
    return [pd.DataFrame.from_records(records, columns=["id", column, "label"]) for records in parts]


def _converted(name: str, rows: Any, index: int, split: str, spec: DatasetSpec, rng: random.Random,
               where: str = "") -> Any:
    try:
        return spec.convert(rows[index], rng)
    except KeyError as err:
        columns = getattr(rows, "column_names", None)
        if columns is None or err.args[0] in columns:
            raise _unfit_row(name, index, split, spec, err) from err
        # A column the hub schema has and the file lacks: every row would fail, so the file is named, not the row.
        raise DatasetError(
            f"dataset '{name}': {where or f'the {split} split'} has no column '{err.args[0]}', which the hub schema "
            f"of {spec.hub_id} has; its columns are: {', '.join(columns)}. Point data_files.{split} at a file in that "
            "schema (docs/datasets.md, \"Local files\")"
        ) from err
    except (IndexError, TypeError, ValueError) as err:
        raise _unfit_row(name, index, split, spec, err) from err


def _unfit_row(name: str, index: int, split: str, spec: DatasetSpec, err: Exception) -> DatasetError:
    return DatasetError(f"row {index} of the {split} split of '{name}' does not fit the hub schema of {spec.hub_id} "
                        f"({type(err).__name__}: {err}); fix that row or the file's columns")


def _convert_generative(name: str, rows: Any, indices: list[int], split: str, seed: int, sizes: list[int],
                        spec: DatasetSpec, max_moves: int | None = None, ids: list[str] | None = None,
                        where: str = "") -> list[pd.DataFrame]:
    """A generative task's rows in the given order as (id, prompt, target) parts of the given sizes, with the
    columns a converter adds after them (chess: move_number, and rating and themes from the Lichess CSV). A
    row whose target is empty (whitespace only) is refused: it has no answer to train on or to score. With
    `max_moves`, a puzzle whose move to find is numbered above it is left out, and each part counts those met
    while it was being filled in its frame's attrs (LEFT_OUT_OVER_MAX_MOVES)."""
    parts: list[list[dict[str, Any]]] = [[] for _ in sizes]
    left_out = [0] * len(sizes)
    filling = 0
    for index in indices:
        while filling < len(sizes) and len(parts[filling]) == sizes[filling]:
            filling += 1
        if filling == len(sizes):
            break
        # One generator per row keeps a row's random choice independent of sampling order.
        converted = _converted(name, rows, index, split, spec, random.Random(f"{name}:{split}:{index}:{seed}"), where)
        if converted is None:
            continue
        prompt, target, *more = converted
        if not str(target).strip():
            raise DatasetError(f"row {index} of the {split} split of '{name}' has an empty target, so it has no "
                               "answer to train on or to score; fix the target column of the data")
        columns = more[0] if more else {}
        if max_moves is not None and columns["move_number"] > max_moves:
            left_out[filling] += 1
            continue
        parts[filling].append({"id": ids[index] if ids else f"{split}:{index}", "prompt": prompt, "target": target,
                               **columns})
    found = sum(map(len, parts))
    if found < sum(sizes):
        raise DatasetError(f"dataset '{name}' has only {found} usable rows in its {split} split but the "
                           f"config asks for {sum(sizes)}; lower n_train or n_test"
                           + (f", or raise max_moves ({sum(left_out)} puzzles are past move {max_moves})"
                              if max_moves is not None else ""))
    frames = []
    for records, count in zip(parts, left_out):
        frame = pd.DataFrame.from_records(records, columns=list(records[0]) if records else ["id", "prompt", "target"])
        if max_moves is not None:
            frame.attrs[LEFT_OUT_OVER_MAX_MOVES] = count
        frames.append(frame)
    return frames


def prepare(
    name: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None = None,
    *, balance: bool = False, source: DataSource | None = None, entry: dict[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """train_gt and train_w2s split a random n_train sample, train_gt taking the entry's n_train_gt rows (by
    default half, the smaller half for odd n_train); test is disjoint.

    With balance, each of the three splits has equal class counts (within one for odd sizes).
    Hub rows are read from `source` (default: the registry's repository and revision); `entry`, the
    config's, describes a dataset outside the catalogue, and for any dataset may set n_train_gt and, for
    chess puzzles, max_moves (_convert_generative).
    """
    spec = dataset_spec(name, entry)
    source = source or data_source(name, entry)
    entry = entry or {}
    rng = random.Random(seed)
    train_rows = load_rows(name, "train", data_files, source, spec)
    train_where = split_where("train", data_files, source)
    train_ids = _checked_rows(name, "train", train_rows, data_files, source, spec, entry)
    train_order = list(range(len(train_rows)))
    rng.shuffle(train_order)
    n_gt = entry.get("n_train_gt", n_train // 2)
    max_moves = entry.get("max_moves")
    if spec.splits["test"] is None:
        train_gt, train_w2s, test = _convert(
            name, train_rows, train_order, "train", seed, [n_gt, n_train - n_gt, n_test], balance, spec, max_moves,
            train_ids, train_where,
        )
    else:
        train_gt, train_w2s = _convert(
            name, train_rows, train_order, "train", seed, [n_gt, n_train - n_gt], balance, spec, max_moves,
            train_ids, train_where,
        )
        test_rows = load_rows(name, "test", data_files, source, spec)
        test_where = split_where("test", data_files, source)
        test_ids = _checked_rows(name, "test", test_rows, data_files, source, spec, entry)
        test_order = list(range(len(test_rows)))
        rng.shuffle(test_order)
        (test,) = _convert(name, test_rows, test_order, "test", seed, [n_test], balance, spec, max_moves,
                           test_ids, test_where)
    splits = {"train_gt": train_gt, "train_w2s": train_w2s, "test": test}
    for split, frame in splits.items():
        if not spec.task.is_generative and frame["label"].nunique() < 2:
            raise DatasetError(
                f"the {split} split of '{name}' has a single class: all {len(frame)} rows are labelled "
                f"{frame['label'].iloc[0]}; raise n_train or n_test, set balance: true, or check the data's labels"
            )
    return splits


def prepare_ood_test(name: str, n_test: int, seed: int, ood: dict[str, Any], data_file: str | None = None, *,
                     balance: bool = False, source: DataSource | None = None,
                     entry: dict[str, Any] | None = None) -> pd.DataFrame:
    """The dataset's out-of-distribution test split (config ood_test): n_test rows in a seeded order of their own,
    converted as the dataset's rows are, from `data_file` (a file in the format the dataset's training file has)
    or from the hub split ood["split"] of the dataset's own repository at its revision."""
    spec = dataset_spec(name, entry)
    source = source or data_source(name, entry)
    entry = entry or {}
    # The rows are read as the dataset's train split is: a catalogue loader (vader_movies) reads data_files.train.
    files = {"train": data_file} if data_file is not None else None
    if files is None:
        spec = dataclasses.replace(spec, splits={**spec.splits, "train": ood["split"]})
    rows = load_rows(name, "train", files, source, spec)
    ids = _checked_rows(name, "train", rows, files, source, spec, entry)
    order = list(range(len(rows)))
    random.Random(f"ood_test:{seed}").shuffle(order)
    (frame,) = _convert(name, rows, order, "ood_test", seed, [n_test], balance, spec, None, ids,
                        split_where("train", files, source))
    if frame["label"].nunique() < 2:
        raise DatasetError(f"the ood_test split of '{name}' has a single class: all {len(frame)} rows are labelled "
                           f"{frame['label'].iloc[0]}; raise ood_test.n_test or check its labels")
    return frame


def write_ood_test(dataset: str, n_test: int, seed: int, ood: dict[str, Any], data_file: str | None,
                   outputs: dict[str, str], *, balance: bool = False, source: DataSource | None = None,
                   entry: dict[str, Any] | None = None) -> None:
    """The out-of-distribution test split under outputs ood_test, its label-free view under ood_test_unlabelled,
    and what it was read from under source (the file's sha256, or the hub repository and commit)."""
    spec = dataset_spec(dataset, entry)
    source = source or data_source(dataset, entry)
    if data_file is None:
        source = pin(source)
    frame = prepare_ood_test(dataset, n_test, seed, ood, data_file, balance=balance, source=source, entry=entry)
    stats = label_balance({"ood_test": frame}, spec.task.n_classes)["ood_test"]
    log.info("%s ood_test: %d rows, class fractions %s", dataset, stats["n"],
             [round(f, 3) for f in stats["class_fractions"][:10]])
    io.write_parquet(frame, outputs["ood_test"])
    io.write_parquet(frame[["id", spec.task.input_column]], outputs[unlabelled_output("ood_test")])
    record = source_record(dataset, source, {"ood_test": data_file} if data_file else None, entry)
    io.write_json({**record, "ood_test": ood, "label_balance": stats}, outputs["source"])


def label_balance(splits: dict[str, pd.DataFrame], n_classes: int = 2) -> dict[str, dict[str, Any]]:
    """Per split: its number of rows and the fraction of each class (class_fractions); for a binary task
    also the fraction labelled 1 (positive_fraction); for a generative task the number of distinct targets,
    and with max_moves the puzzles left out while the split was filled (over_max_moves)."""
    balance: dict[str, dict[str, Any]] = {}
    for split, frame in splits.items():
        if "target" in frame:  # a generative task: targets, not classes; chess: the puzzles left out past max_moves
            balance[split] = {"n": len(frame), "distinct_targets": int(frame["target"].nunique()),
                              **({LEFT_OUT_OVER_MAX_MOVES: frame.attrs[LEFT_OUT_OVER_MAX_MOVES]}
                                 if LEFT_OUT_OVER_MAX_MOVES in frame.attrs else {})}
            continue
        counts = np.bincount(frame["label"].to_numpy(), minlength=n_classes)
        stats: dict[str, Any] = {"n": len(frame), "class_fractions": (counts / max(len(frame), 1)).tolist()}
        if n_classes == 2:
            stats["positive_fraction"] = float(frame["label"].mean())
        balance[split] = stats
    return balance


def source_record(dataset: str, source: DataSource, data_files: dict[str, str] | None,
                  entry: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a preparation read, for the prepared data's metadata, provenance and the report: the hub
    repository and commit, each local file's sha256, or a folder of images (its path)."""
    import datasets

    spec = dataset_spec(dataset, entry)
    record: dict[str, Any] = {"dataset": dataset, "datasets_version": datasets.__version__,
                              "splits": {ours: hub for ours, hub in spec.splits.items() if hub},
                              "task": spec.task.params()}
    if spec.folder is not None:
        record[spec.folder[0]] = spec.folder[1]
    elif data_files:
        record["data_files"] = {split: {"path": path, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
                                for split, path in sorted(data_files.items())}
    else:
        record.update(source.record())
    return record


def unlabelled_output(split: str) -> str:
    """The outputs key of a split's label-free view in write_prepared (and rule prepare_data)."""
    return f"{split}_unlabelled"


def write_prepared(
    dataset: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None,
    outputs: dict[str, str], *, balance: bool = False, source: DataSource | None = None,
    entry: dict[str, Any] | None = None,
) -> None:
    """Each split as (id, input, label) rows under its own outputs key, and as its label-free view
    (id, input) under `<split>_unlabelled` when that key is given; the input column is the task's
    (text or image). `entry`, the config's, describes a dataset outside the catalogue."""
    spec = dataset_spec(dataset, entry)
    source = source or data_source(dataset, entry)
    if not data_files and spec.folder is None:
        source = pin(source)
    splits = prepare(dataset, n_train, n_test, seed, data_files, balance=balance, source=source, entry=entry)
    balance_by_split = label_balance(splits, spec.task.n_classes)
    for split, frame in splits.items():
        stats = balance_by_split[split]
        log.info("%s %s: %d rows, %s", dataset, split, stats["n"],
                 f"{stats['distinct_targets']} distinct targets" if "distinct_targets" in stats else
                 f"class fractions {[round(f, 3) for f in stats['class_fractions'][:10]]}")
        io.write_parquet(frame, outputs[split])
        if unlabelled_output(split) in outputs:
            io.write_parquet(frame[["id", spec.task.input_column]], outputs[unlabelled_output(split)])
    if "label_balance" in outputs:
        io.write_json(balance_by_split, outputs["label_balance"])
    if "source" in outputs:
        io.write_json(source_record(dataset, source, data_files, entry), outputs["source"])
