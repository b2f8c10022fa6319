"""A user's local data files, checked before any job and read as preparation reads them: their columns, labels,
row ids and rows against n_train and n_test (check_local_files), with errors that name the file, the column and
the setting to change."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import pandas as pd

from w2s.data.catalogue import DATASETS, PACKAGED_DATASETS, dataset_spec
from w2s.data.spec import HIDDEN_LABEL, DatasetError, DatasetSpec, entry_column
from w2s.data.standard import class_index, is_missing, label_text

# The suffixes of local data files, and the builder `datasets.load_dataset` reads each with.
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
# The column of a standard dataset's local file whose values are kept as its rows' ids, when no two are alike.
ID_COLUMN = "id"
# A CSV header name of this many words or more is taken for a row's text: the file has no header line.
WORDS_OF_A_ROW = 6
NUMBER_PATTERN = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
# How many distinct label values an error lists before it counts the rest.
SHOWN_VALUES = 10


def _shown_values(counts: dict[Any, int]) -> str:
    """"'neg' (150 rows), 'pos' (150 rows)": values with their row counts, the most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    shown = [("an empty value" if is_missing(value) else repr(value) if isinstance(value, str) else str(value))
             + f" ({_rows(n)})" for value, n in ordered[:SHOWN_VALUES]]
    rest = len(ordered) - SHOWN_VALUES
    return ", ".join(shown) + (f" and {rest:,} more values" if rest > 0 else "")


def _rows(n: int, kind: str = "") -> str:
    """'1 row', '12 usable rows'."""
    return f"{n:,} {kind}row{'' if n == 1 else 's'}"


def _yaml_list(values: list[str]) -> str:
    """values as a YAML flow list to paste into a config; a value YAML would misread is quoted."""
    plain = r"[A-Za-z0-9_.+-]+( [A-Za-z0-9_.+-]+)*"
    return "[" + ", ".join(v if re.fullmatch(plain, v) else json.dumps(v) for v in values) + "]"


def check_labels(name: str, where: str, labels: Any, spec: DatasetSpec) -> dict[int, int]:
    """Rows per class index of a standard dataset's labels, hidden ones (-1, without label_names) left out, once
    every label is shown to stand for one of the task's classes; otherwise the error names the values found and
    the setting that maps them. `where` names the file or split in words."""
    n_classes, names = spec.task.n_classes, spec.label_names
    column = entry_column(spec, spec.task.label_column)
    found = pd.Series(list(labels), dtype=object).value_counts(dropna=False)
    counts: dict[int, int] = {}
    bad: dict[Any, int] = {}
    hidden = 0
    for value, n in found.items():
        index = class_index(value, names)
        if index == HIDDEN_LABEL and not names:
            hidden += int(n)
        elif index is None or not 0 <= index < n_classes:
            bad[value] = int(n)
        else:
            counts[index] = counts.get(index, 0) + int(n)
    held = f"dataset '{name}': the label column '{column}' of {where} holds"
    if bad and names:
        raise DatasetError(f"{held} {_shown_values(bad)}, which label_names {_yaml_list(list(names))} does not name; "
                           f"add them to datasets.{name}.label_names (and n_classes), or remove those rows")
    if any(class_index(value) is None for value in bad):
        texts = sorted({label_text(value) for value in found.index if not is_missing(value)})
        classes = "" if len(texts) == n_classes else f", and n_classes: {len(texts)}"
        raise DatasetError(f"{held} {_shown_values(bad)}, but a label is a class index 0..{n_classes - 1} unless "
                           f"label_names names the classes: set datasets.{name}.label_names: {_yaml_list(texts)} (the "
                           f"names of classes 0, 1, ... in that order{classes}), or write the labels as integers"
                           + ("; every row needs a label" if any(map(is_missing, bad)) else ""))
    if bad:
        raise DatasetError(f"{held} {_shown_values(bad)}, outside 0..{n_classes - 1}, the class indices of n_classes "
                           f"{n_classes}; set datasets.{name}.n_classes to the number of classes, or fix those labels")
    if len(counts) < 2:
        only = (f"labelled {names[next(iter(counts))]!r} (class {next(iter(counts))})" if names and counts
                else f"of class {next(iter(counts))}" if counts else "unlabelled (-1)")
        raise DatasetError(f"dataset '{name}': every labelled row of {where} is {only}, but a classifier needs rows "
                           f"of at least two classes; check label_column and the file"
                           + (f" (-1 marks a hidden label and leaves its {_rows(hidden)} out: for labels -1 and 1 set "
                              "label_names: [-1, 1])" if hidden else ""))
    return dict(sorted(counts.items()))


def _data_like(names: list[str]) -> str | None:
    """Why a CSV header reads as a row of data, or None: one of its names is a number, or a sentence."""
    for column in names:
        if re.fullmatch(NUMBER_PATTERN, column.strip()):
            return f"its column name '{column}' is a number"
        if len(column.split()) >= WORDS_OF_A_ROW:
            return f"its column name '{column[:60]}{'...' if len(column) > 60 else ''}' is a text of {len(column.split())} words"
    return None


def check_columns(name: str, where: str, columns: list[str], spec: DatasetSpec, csv_header: str | None = None,
                  entry: dict[str, Any] | None = None) -> None:
    """A standard dataset's file or split has the columns its entry names (input_column and label_column, or
    their defaults); otherwise the error lists the columns it has and names the setting. A CSV file whose
    columns are missing and whose first line (`csv_header`) reads as a row of data (_data_like) has no header."""
    task = spec.task
    holds = {"text": "the text", "image": "the image", "prompt": "the prompt"}
    needed = [(task.input_column, "input_column", holds[task.input_column]),
              (task.label_column, "label_column", "the target text" if task.is_generative else "the class label")]
    missing = [(entry_column(spec, ours), setting, ours, what) for ours, setting, what in needed
               if entry_column(spec, ours) not in columns]
    if not missing:
        return
    reason = _data_like(columns) if csv_header is not None else None
    if reason is not None:
        line = csv_header.strip()
        raise DatasetError(
            f"dataset '{name}': {where} has no header line: its first line, '{line[:80]}{'...' if len(line) > 80 else ''}', "
            f"reads as a row of data ({reason}). The first line of a CSV file names its columns; add one, e.g. "
            + ",".join(entry_column(spec, ours) for ours, _, _ in needed))
    entry = entry or {}
    said = [f"no column '{column}' (" + (f"datasets.{name}.{setting}" if setting in entry else f"the default of {setting}")
            + ")" for column, setting, _, _ in missing]
    alike = {column: other for column, *_ in missing for other in columns if other.lower() == column.lower()}
    if len(alike) == len(missing):
        fix = ("Column names are case-sensitive: set "
               + " and ".join(f"datasets.{name}.{setting}: {alike[column]}" for column, setting, _, _ in missing))
    else:
        fix = (f"Set {' and '.join(f'datasets.{name}.{setting}' for _, setting, _, _ in missing)} to the column"
               f"{'s' if len(missing) > 1 else ''} that hold{'' if len(missing) > 1 else 's'} "
               + " and ".join(what for *_, what in missing))
    raise DatasetError(f"dataset '{name}': {where} has {' and '.join(said)}; its columns are: {', '.join(columns)}. "
                       f"{fix}")


def kept_ids(values: Any) -> list[str] | None:
    """A local file's own row ids as text, or None when one is empty or two are alike (rows are then named by
    their position, <split>:<row>)."""
    ids = ["" if is_missing(value) else str(value) for value in values]
    return ids if "" not in ids and len(set(ids)) == len(ids) else None


def json_records(path: Path, where: str) -> Iterator[dict[str, Any]]:
    """The rows of a JSON lines file (blank lines skipped), or of a JSON document that is a list of rows; the
    first line that is no JSON object stops the read, naming its number."""
    with path.open(encoding="utf-8") as stream:
        first = stream.read(1)
        while first.isspace():
            first = stream.read(1)
    if first == "[":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{where}: line {err.lineno} is not valid JSON ({err.msg}, at column {err.colno}); "
                               "fix that line") from err
        numbered: Iterator[tuple[int, Any]] = ((0, row) for row in rows)
    else:
        numbered = _json_lines(path, where)
    for number, row in numbered:
        if not isinstance(row, dict):
            at = f"line {number}" if number else "an item of its list"
            raise DatasetError(f"{where}: {at} holds a JSON {type(row).__name__}, not an object of column values "
                               "({\"text\": ..., \"label\": ...}); fix that line")
        yield row


def _json_lines(path: Path, where: str) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as err:
                raise DatasetError(f"{where}: line {number} is not valid JSON ({err.msg}, at column {err.colno}); "
                                   "fix or remove that line") from err


@dataclass(frozen=True)
class LocalColumns:
    """What the config check reads of a local data file: its column names, its number of rows, the values of
    the wanted columns it has (in row order), and for a CSV file its first line."""

    columns: list[str]
    n_rows: int
    values: dict[str, list[Any]]
    csv_header: str | None = None


def read_local_columns(path: Path, wanted: list[str], where: str) -> LocalColumns:
    """The columns of a local data file, and the values of those of `wanted` it has, reading no more of the
    file than its format needs: parquet only those columns' chunks, CSV only those fields (with pandas, as
    datasets' CSV builder reads it), JSON every line (its rows, unlike the others', have no fixed columns)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            columns = list(parquet.schema_arrow.names)
            table = parquet.read(columns=[c for c in wanted if c in columns])
            return LocalColumns(columns, parquet.metadata.num_rows,
                                {c: table.column(c).to_pylist() for c in table.column_names})
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig") as stream:
                header = stream.readline()
            columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
            present = [c for c in wanted if c in columns] or columns[:1]
            frame = pd.read_csv(path, usecols=present)
            return LocalColumns(columns, len(frame), {c: frame[c].tolist() for c in present if c in wanted}, header)
    except (OSError, ValueError, UnicodeDecodeError) as err:  # pandas and pyarrow: ParserError, ArrowInvalid
        raise DatasetError(f"{where} cannot be read as {suffix[1:]} ({type(err).__name__}: {' '.join(str(err).split())}); "
                           "fix the file") from err
    columns_seen: dict[str, None] = {}
    values: dict[str, list[Any]] = {c: [] for c in wanted}
    n_rows = 0
    for row in json_records(path, where):
        columns_seen.update(dict.fromkeys(row))
        for column in wanted:
            values[column].append(row.get(column))
        n_rows += 1
    return LocalColumns(list(columns_seen), n_rows, {c: v for c, v in values.items() if c in columns_seen})


def is_remote(path: str) -> bool:
    """A remote location (https://, hf://, s3://, ...) that datasets reads itself, not a local path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None


def split_words(split: str, path: str) -> str:
    """A split's local file in words for errors: "the train file data/reviews.csv"."""
    return f"the {split} file {path}"


def check_local_files(name: str, entry: dict[str, Any], workdir: Path) -> list[str]:
    """What the config check reads of a dataset's data_files before any job, in seconds: the test rows' source
    (data_files.test, or splits.test null to draw them from train), and for each file its columns, labels and
    rows against n_train and n_test (a catalogue dataset's files: that they read). Raises DatasetError naming
    the file, the column and the setting; returns one line per file saying what it holds. Remote files
    (https://, hf://) are datasets' to read, and folders of images preparation's: neither is read here."""
    spec = dataset_spec(name, entry)
    files = entry.get("data_files") or {}
    if not files or name in PACKAGED_DATASETS:
        return []
    from_train = spec.splits["test"] is None
    standard = name not in DATASETS
    for split in ("train", *([] if from_train else ["test"])):
        if split not in files:
            raise no_file_error(name, split, spec)
    if from_train and "test" in files:
        raise DatasetError(f"dataset '{name}' sets data_files.test, but splits.test is null, which draws the test "
                           "rows from the train file instead; remove data_files.test, or splits.test")
    notes = []
    for split, path in sorted(files.items(), key=lambda item: item[0] != "train"):
        if is_remote(path):
            continue
        where = split_words(split, path)
        if Path(path).suffix.lower() not in LOCAL_BUILDERS:
            raise DatasetError(f"dataset '{name}': {where}: local data files must be {local_suffixes()}")
        full = workdir / path
        wanted = [entry_column(spec, spec.task.label_column), ID_COLUMN] if standard else []
        read = (read_local_columns(full, wanted, f"dataset '{name}': {where}") if full.stat().st_size
                else LocalColumns([], 0, {}))
        if read.n_rows == 0:
            raise DatasetError(f"dataset '{name}': {where} has no rows; point data_files.{split} at a file with rows")
        if not standard:  # the catalogue's converters leave rows out of their own: preparation counts those
            notes.append(f"dataset '{name}': {where}: {_rows(read.n_rows)} in the hub schema")
            continue
        usable, held = _standard_file_rows(name, where, read, spec, entry)
        needed = entry["n_test"] if split == "test" else entry["n_train"] + (entry["n_test"] if from_train else 0)
        if usable < needed:
            drawn = (f"n_test {entry['n_test']:,}" if split == "test" else f"n_train {entry['n_train']:,}"
                     + (f" + n_test {entry['n_test']:,}, as splits.test is null" if from_train else ""))
            raise DatasetError(f"dataset '{name}': {where} has {_rows(usable, 'usable ')}, fewer than the {needed:,} "
                               f"drawn from it ({drawn}); lower n_train or n_test, or add rows")
        ids = kept_ids(read.values[ID_COLUMN]) is not None if ID_COLUMN in read.values else None
        named = {True: f"ids from its {ID_COLUMN} column", None: "ids by position",
                 False: f"ids by position (its {ID_COLUMN} column repeats a value or has an empty one)"}[ids]
        notes.append(f"dataset '{name}': {where}: {_rows(read.n_rows)} ({held}), {named}"
                     + ("; the test rows are drawn from it" if from_train else ""))
    return notes


def _standard_file_rows(name: str, where: str, read: LocalColumns, spec: DatasetSpec,
                        entry: dict[str, Any]) -> tuple[int, str]:
    """A standard dataset's file checked for its columns and labels (a generative task's: for a target in
    every row): its usable rows, and what they hold in words."""
    check_columns(name, where, read.columns, spec, read.csv_header, entry)
    label_column = entry_column(spec, spec.task.label_column)
    labels = read.values[label_column]
    if spec.task.is_generative:
        empty = [i for i, target in enumerate(labels) if is_missing(target) or not str(target).strip()]
        if empty:
            raise DatasetError(f"dataset '{name}': {where} has {_rows(len(empty))} with an empty target (column "
                               f"'{label_column}'; the first is row {empty[0]}), so they have no answer to train on or "
                               "to score; fill them in or remove them")
        return read.n_rows, "a target in every row"
    counts = check_labels(name, where, labels, spec)
    held = "classes " + ", ".join(f"{index}" + (f" ({spec.label_names[index]})" if spec.label_names else "")
                                  + f": {n:,}" for index, n in counts.items())
    usable = sum(counts.values())
    return usable, held + (f", unlabelled (-1): {read.n_rows - usable:,}" if usable < read.n_rows else "")


def no_file_error(name: str, split: str, spec: DatasetSpec) -> DatasetError:
    """A dataset read from local files that names no file for a split it reads."""
    if split == "train":
        return DatasetError(f"dataset '{name}' sets data_files without data_files.train, the file its train rows "
                            "are read from; add it")
    return DatasetError(
        f"dataset '{name}' reads its test rows from data_files.test, which is not set; add data_files.test"
        + (", or set splits: {train: train, test: null} to draw the test rows from the train file"
           if name not in DATASETS else f" (a file of the hub's {spec.splits['test']} split)"))


def local_suffixes() -> str:
    """The suffixes LOCAL_BUILDERS reads, in words: ".jsonl, .json, .parquet or .csv"."""
    suffixes = list(dict.fromkeys(LOCAL_BUILDERS))
    return ", ".join(suffixes[:-1]) + " or " + suffixes[-1]
