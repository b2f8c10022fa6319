"""Bad weak labels and predictions stop the job that reads them, with the file and the fix; a
config naming missing data files, local data files of the wrong shape or out-of-range loss
hyperparameters is refused before any job, naming the file, the column and the setting; a job that
fails anyway ends the run with its own message; and the source holds no unsafe loading: no pickle,
no shell commands built from the config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO, snakemake
from job_settings import training_settings
from w2s.pipeline.validation import check_data_files, ConfigError, validate_config
from w2s.data.preparation import prepare
from w2s.data.spec import DatasetError
from w2s.data.splits import W2sSlice, rows_sha256
from w2s.data.weak_labels import write_weak_labels
from w2s.evaluation.run_metrics import evaluate
from w2s.training.jobs import train_model
from w2s.training.rows import training_rows
from w2s.data.labels import check_probabilities
from w2s.models.truncation import write_truncation


def train_w2s(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"train:{i}" for i in range(n)], "text": [f"t{i}" for i in range(n)],
                         "label": [i % 2 for i in range(n)]})


def binary(probs: list[float]) -> list[list[float]]:
    """P(class 1) of each row as the stored two-class probabilities [P(0), P(1)]."""
    return [[1 - p, p] for p in probs]


def weak_labels_file(path: Path, ids: list[str], soft: list[float], made_for: pd.DataFrame | None = None) -> str:
    """Weak labels as the weak_labels rule writes them, made for `made_for`'s rows (train_w2s())."""
    made_for = train_w2s() if made_for is None else made_for
    pd.DataFrame({"id": ids, "soft_label": binary(soft), "hard_label": [int(p > 0.5) for p in soft],
                  "train_w2s_sha256": rows_sha256(made_for)}).to_parquet(path, index=False)
    return str(path)


def predictions_file(path: Path, probs: list[float]) -> str:
    frame = train_w2s(len(probs))
    pd.DataFrame({"split": "train_w2s", "id": frame["id"], "probs": binary(probs)}).to_parquet(path, index=False)
    return str(path)


def unlabelled_file(path: Path, frame: pd.DataFrame) -> str:
    frame[["id", "text"]].to_parquet(path, index=False)
    return str(path)


# --------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("probs, first", [([0.2, np.nan, 0.7], r"row 1: \[nan, nan\]"),
                                          ([0.2, 0.5, 1.5], r"row 2: \[-0.5, 1.5\]"),
                                          ([-0.1, 0.5, 0.5], r"row 0: \[1.1, -0.1\]")])
def test_check_probabilities_names_the_count_and_the_first_bad_row(probs: list[float], first: str) -> None:
    with pytest.raises(ValueError, match=rf"^what: 1 of 3 rows hold probabilities that are NaN or outside \[0, 1\] "
                       rf"\(the first is {first}\); fix it$"):
        check_probabilities(np.array(binary(probs)), "what", "fix it")
    check_probabilities(np.array(binary([0.0, 0.5, 1.0])), "what", "fix it")


def test_check_probabilities_refuses_rows_that_do_not_sum_to_one() -> None:
    with pytest.raises(ValueError, match=r"^what: 1 of 2 rows of probabilities do not sum to 1 \(the first is row 1, "
                       r"summing to 0\.900000\); fix it$"):
        check_probabilities(np.array([[0.2, 0.3, 0.5], [0.3, 0.3, 0.3]]), "what", "fix it")
    with pytest.raises(ValueError, match=r"^what: class probabilities must have shape \(n, K\) with K >= 2, not \(3,\)"):
        check_probabilities(np.array([0.2, 0.3, 0.5]), "what", "fix it")


def test_weak_labels_refuse_a_supervisor_whose_predictions_are_nan(tmp_path: Path) -> None:
    predictions = predictions_file(tmp_path / "predictions.parquet", [0.9, np.nan, 0.1, 0.8, 0.3, 0.6])
    rows = unlabelled_file(tmp_path / "train_w2s.parquet", train_w2s())
    out = tmp_path / "weak_labels.parquet"
    with pytest.raises(ValueError, match=rf"^{re.escape(predictions)}, the supervisor's predictions on train_w2s: 1 "
                       r"of 3 rows hold probabilities that are NaN .* its training diverged, so it cannot supervise: "
                       "lower its lr"):
        write_weak_labels(predictions, rows, W2sSlice(1, 2), str(out))
    assert not out.exists()
    write_weak_labels(predictions, rows, W2sSlice(2, 2), str(out))  # the other slice is fine
    written = pd.read_parquet(out)
    assert np.stack(written["soft_label"]).tolist() == binary([0.8, 0.3, 0.6])
    assert written["hard_label"].tolist() == [1, 0, 1]


def test_weak_labels_refuse_predictions_of_other_rows(tmp_path: Path) -> None:
    predictions = predictions_file(tmp_path / "predictions.parquet", [0.9, 0.2, 0.1, 0.8, 0.3, 0.6])
    rows = unlabelled_file(tmp_path / "train_w2s.parquet", train_w2s(5))
    out = tmp_path / "weak_labels.parquet"
    with pytest.raises(ValueError, match=rf"^{re.escape(predictions)}: the supervisor's train_w2s predictions are not "
                       rf"of the rows of {re.escape(rows)} in their order \(6 predictions, 5 rows\), so they were made "
                       "from other data; delete the predictions and let the supervisor's training rule make them"):
        write_weak_labels(predictions, rows, W2sSlice(1, 2), str(out))
    assert not out.exists()


# --------------------------------------------------------------------------- weak labels given to a student


def test_weak_labels_of_the_right_rows_are_read(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:4", "train:1"], [0.0, 1.0])
    rows = training_rows({"train_w2s": train_w2s()[["id", "text"]]}, path)
    # No true label: a student's rows carry only what it may train on.
    assert list(rows.columns) == ["row", "soft_label"]
    assert rows["row"].tolist() == [4, 1] and np.stack(rows["soft_label"]).tolist() == binary([0.0, 1.0])


def test_the_oracle_adds_true_labels_joined_by_id(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:4", "train:1", "train:3"], [0.0, 1.0, 0.2])
    oracle = tmp_path / "oracle.parquet"
    train_w2s().iloc[::-1].to_parquet(oracle, index=False)  # another order: joined by id, not position
    with pytest.raises(ValueError, match=rf"^{re.escape(str(oracle))}: the ground-truth oracle's rows are not this "
                       "job's train_w2s rows; rerun prepare_data"):
        training_rows({"train_w2s": train_w2s()[["id", "text"]]}, path, str(oracle))
    train_w2s().to_parquet(oracle, index=False)
    rows = training_rows({"train_w2s": train_w2s()[["id", "text"]]}, path, str(oracle))
    assert rows["row"].tolist() == [4, 1, 3] and rows["true_label"].tolist() == [0, 1, 1]
    assert np.stack(rows["soft_label"]).tolist() == binary([0.0, 1.0, 0.2])


def test_a_student_selecting_on_ground_truth_needs_its_oracle_input(tmp_path: Path) -> None:
    splits = {split: unlabelled_file(tmp_path / f"{split}.parquet", train_w2s()) for split in ("train_w2s", "test")}
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "train:1"], [0.1, 0.9])
    with pytest.raises(ValueError, match="^model_selection ground_truth_holdout scores a student against true labels, "
                       "but the job was given no oracle labels; the train_student rule gives them as input "
                       "oracle_labels$"):
        train_model({}, training_settings(model_selection="ground_truth_holdout"), 0, splits, {},
                    weak_labels_path=path)


def test_soft_weak_labels_out_of_range_are_refused(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "train:1", "train:2"], [0.1, 1.2, np.nan])
    with pytest.raises(ValueError, match=rf"^{re.escape(path)}, the soft weak labels: 2 of 3 rows hold probabilities "
                       r"that are NaN or outside \[0, 1\] \(the first is row 1: \[-0.19999999999999996, 1.2\]\); delete "
                       "it and let the weak_labels rule"):
        training_rows({"train_w2s": train_w2s()}, path)


def test_weak_labels_of_another_class_count_are_refused(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "train:1"], [0.1, 0.9])
    with pytest.raises(ValueError, match=rf"^{re.escape(path)}: the weak labels have 2 classes but this task has 10, "
                       "so their supervisor was made for another task; check the dataset's n_classes, then delete it"):
        training_rows({"train_w2s": train_w2s()}, path, n_classes=10)


def test_weak_labels_with_foreign_ids_or_repeated_ids_are_refused(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "test:1", "test:9"], [0.1, 0.9, 0.2])
    with pytest.raises(ValueError, match=rf"^{re.escape(path)}: 2 weak-label ids are not in train_w2s, or ids repeat, "
                       "so the file was not written by the weak_labels rule; delete it and let the weak_labels rule "
                       "make it again from this dataset and seed$"):
        training_rows({"train_w2s": train_w2s()}, path)
    repeated = weak_labels_file(tmp_path / "repeated.parquet", ["train:0", "train:0"], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 weak-label ids are not in train_w2s, or ids repeat"):
        training_rows({"train_w2s": train_w2s()}, repeated)


# --------------------------------------------------------------------------- evaluation


def evaluation_files(tmp_path: Path, ids: list[str], probs: list[float]) -> tuple[Path, Path, Path]:
    """Test predictions of `ids`, the labelled test split of rows a (label 0) and b (1), and where the
    metrics go."""
    path, test = tmp_path / "predictions.parquet", tmp_path / "test.parquet"
    pd.DataFrame({"split": "test", "id": ids, "probs": binary(probs)}).to_parquet(path)
    pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": [0, 1]}).to_parquet(test)
    return path, test, tmp_path / "metrics.json"


def test_evaluate_refuses_predictions_of_other_test_rows(tmp_path: Path) -> None:
    path, test, out = evaluation_files(tmp_path, ["a", "c"], [0.3, 0.6])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: its test predictions are not one per row of "
                       rf"{re.escape(str(test))} \(2 predictions, 2 rows, 1 ids not in the split\), so they were made "
                       "from other data; retrain the run that wrote them$"):
        evaluate("gt/a", {"self": str(path)}, str(test), 10, 0, str(out), {"kind": "ground_truth"})
    assert not out.exists()


def test_evaluate_refuses_nan_test_predictions(tmp_path: Path) -> None:
    path, test, out = evaluation_files(tmp_path, ["a", "b"], [0.3, np.nan])
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, test predictions: 1 of 2 rows hold probabilities "
                       r"that are NaN or outside \[0, 1\] \(the first is row 1: \[nan, nan\]\); retrain the run that "
                       "wrote them$"):
        evaluate("gt/a", {"self": str(path)}, str(test), 10, 0, str(out), {"kind": "ground_truth"})
    assert not out.exists()


# --------------------------------------------------------------------------- texts longer than the context


def test_texts_longer_than_max_length_are_counted_per_split(
    tiny_models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The tiny tokenizer makes one token of each word and adds no special tokens."""
    words = {"train_gt": [3, 8, 9, 12], "train_w2s": [2, 8], "test": [9, 9, 8]}
    paths = {}
    for split, counts in words.items():
        paths[split] = str(tmp_path / f"{split}.parquet")
        pd.DataFrame({"text": [" ".join(["good"] * n) for n in counts]}).to_parquet(paths[split])
    out = tmp_path / "truncation.json"
    write_truncation({"path": str(tiny_models["tiny-bert"])}, 8, paths, str(out))
    assert json.loads(out.read_text()) == {"max_length": 8, "truncated": {"train_gt": 2, "train_w2s": 0, "test": 2},
                                           "n": {"train_gt": 4, "train_w2s": 2, "test": 3}}
    assert [r.getMessage() for r in caplog.records if r.levelname == "WARNING"] == [
        "2 of 4 train_gt texts exceed max_length 8 tokens and are truncated; raise training.max_length to keep "
        "them whole",
        "2 of 3 test texts exceed max_length 8 tokens and are truncated; raise training.max_length to keep them whole",
    ]


def test_truncation_counts_reach_the_metrics(tmp_path: Path) -> None:
    path, test, out = evaluation_files(tmp_path, ["a", "b"], [0.3, 0.8])
    truncation = {"max_length": 8, "truncated": {"train_gt": 2, "train_w2s": 0, "test": 1}, "n": {}}
    evaluate("gt/a", {"self": str(path)}, str(test), 10, 0, str(out), {"kind": "ground_truth"}, truncation=truncation)
    result = json.loads(out.read_text())
    assert {k: result[k] for k in ("max_length", "train_gt_truncated", "train_w2s_truncated", "test_truncated")} == {
        "max_length": 8, "train_gt_truncated": 2, "train_w2s_truncated": 0, "test_truncated": 1}


# --------------------------------------------------------------------------- config refused before any job

SCHEMA = REPO / "config" / "schema.yaml"


def config_with(datasets: dict | None = None, losses: dict | None = None) -> dict:
    return {"seeds": [0], "w2s_slices": 1,
            "datasets": datasets or {"sst2": {"n_train": 8, "n_test": 4}},
            "models": {"a": {"path": "x"}, "b": {"path": "y"}}, "ladder": ["a", "b"],
            "losses": losses or {"xent": {}}}


def test_a_data_file_that_does_not_exist_is_refused(tmp_path: Path) -> None:
    (tmp_path / "train.jsonl").write_text("{}\n" * 12)
    config = config_with({"sst2": {"n_train": 8, "n_test": 4,
                                   "data_files": {"train": "train.jsonl", "test": "tset.jsonl"}}})
    validate_config(config, SCHEMA)  # the schema and cross-references know nothing of files
    with pytest.raises(ConfigError) as info:
        check_data_files(config, tmp_path)
    assert str(info.value) == (f"dataset 'sst2': data_files.test is 'tset.jsonl', which is no file (relative to "
                               f"{tmp_path}); fix the path")
    config["datasets"]["sst2"]["data_files"]["test"] = str(tmp_path / "missing" / "test.jsonl")
    with pytest.raises(ConfigError) as info:
        check_data_files(config, tmp_path)
    assert str(info.value) == (f"dataset 'sst2': data_files.test is '{tmp_path / 'missing' / 'test.jsonl'}', "
                               "which is no file; fix the path")
    # A folder is no file either; remote locations are datasets' to read, not checked here.
    config["datasets"]["sst2"]["data_files"]["test"] = str(tmp_path)
    with pytest.raises(ConfigError, match="data_files.test is .*, which is no file"):
        check_data_files(config, tmp_path)
    for remote in ("https://example.org/sst2/test.jsonl", "hf://datasets/stanfordnlp/sst2/test.parquet"):
        config["datasets"]["sst2"]["data_files"]["test"] = remote
        check_data_files(config, tmp_path)


def test_snakemake_refuses_a_missing_data_file_when_the_workflow_loads(tmp_path: Path) -> None:
    """Before the check, a typo planned nothing when the dataset had been prepared: Snakemake runs no
    job whose outputs exist and whose input is missing, so the old data stayed."""
    (tmp_path / "train.jsonl").write_text("{}\n")
    config = config_with({"sst2": {"n_train": 8, "n_test": 4,
                                   "data_files": {"train": "train.jsonl", "test": "validation.jsnl"}}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    # Launched elsewhere: relative data files are read from the workdir (-d), where the jobs run.
    result = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), cores=None, cwd=REPO, check=False)
    assert result.returncode == 1
    assert (f"Invalid config: dataset 'sst2': data_files.test is 'validation.jsnl', which is no file "
            f"(relative to {tmp_path}); fix the path") in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


# --------------------------------------------------------------------------- your own data of the wrong shape

REVIEWS = [("The plot is a joy.", 1), ("A dull mess.", 0), ("Superb acting.", 1), ("Painfully slow.", 0),
           ("Clever and warm.", 1), ("Loud and lazy.", 0), ("A delight.", 1), ("It never works.", 0),
           ("Fresh and funny.", 1), ("A waste of time.", 0), ("Gorgeous to look at.", 1), ("Falls flat.", 0)]


def csv_file(path: Path, header: str | None, label: dict | None = None) -> str:
    """REVIEWS as a CSV file under `header` (None: no header line), labels written through `label`."""
    lines = [header] if header is not None else []
    lines += [f"\"{text}\",{(label or {}).get(y, y)}" for text, y in REVIEWS]
    path.write_text("\n".join(lines) + "\n")
    return path.name


def jsonl_file(path: Path, broken_line: int | None = None) -> str:
    lines = [json.dumps({"text": text, "label": y}) for text, y in REVIEWS]
    if broken_line is not None:
        lines[broken_line - 1] = lines[broken_line - 1][:-4]  # cut off the end: '... "label": 1}' -> '... "label"'
    path.write_text("\n".join(lines) + "\n")
    return path.name


def own_entry(train: str, **settings: object) -> dict:
    return {"n_train": 6, "n_test": 4, "n_classes": 2, "data_files": {"train": train},
            "splits": {"train": "train", "test": None}, **settings}


# Each: the file and entry of a mistake a new user made, and what both the config check and the job say of it.
SHAPE_FAULTS = {
    "other column names": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "review,sentiment")),
        "dataset 'mine': the train file reviews.csv has no column 'text' (the default of input_column) and no column "
        "'label' (the default of label_column); its columns are: review, sentiment. Set datasets.mine.input_column "
        "and datasets.mine.label_column to the columns that hold the text and the class label"),
    "column names in another case": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "Text,Label")),
        "dataset 'mine': the train file reviews.csv has no column 'text' (the default of input_column) and no column "
        "'label' (the default of label_column); its columns are: Text, Label. Column names are case-sensitive: set "
        "datasets.mine.input_column: Text and datasets.mine.label_column: Label"),
    "a misspelt label_column": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "text,sentiment"), label_column="sentimnet"),
        "dataset 'mine': the train file reviews.csv has no column 'sentimnet' (datasets.mine.label_column); its "
        "columns are: text, sentiment. Set datasets.mine.label_column to the column that holds the class label"),
    "labels as names": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "text,label", {0: "neg", 1: "pos"})),
        "dataset 'mine': the label column 'label' of the train file reviews.csv holds 'neg' (6 rows), 'pos' (6 rows), "
        "but a label is a class index 0..1 unless label_names names the classes: set datasets.mine.label_names: "
        "[neg, pos] (the names of classes 0, 1, ... in that order), or write the labels as integers"),
    "a name label_names lacks": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "text,label", {0: "neg", 1: "neutral"}),
                            label_names=["neg", "pos"]),
        "dataset 'mine': the label column 'label' of the train file reviews.csv holds 'neutral' (6 rows), which "
        "label_names [neg, pos] does not name; add them to datasets.mine.label_names (and n_classes), or remove "
        "those rows"),
    "a class index beyond n_classes": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "text,label", {0: 2})),
        "dataset 'mine': the label column 'label' of the train file reviews.csv holds 2 (6 rows), outside 0..1, the "
        "class indices of n_classes 2; set datasets.mine.n_classes to the number of classes, or fix those labels"),
    "labels -1 and 1": (
        lambda d: own_entry(csv_file(d / "reviews.csv", "text,label", {0: -1})),
        "dataset 'mine': every labelled row of the train file reviews.csv is of class 1, but a classifier needs rows "
        "of at least two classes; check label_column and the file (-1 marks a hidden label and leaves its 6 rows "
        "out: for labels -1 and 1 set label_names: [-1, 1])"),
    "a CSV without a header line": (
        lambda d: own_entry(csv_file(d / "reviews.csv", None)),
        "dataset 'mine': the train file reviews.csv has no header line: its first line, '\"The plot is a joy.\",1', "
        "reads as a row of data (its column name '1' is a number). The first line of a CSV file names its columns; "
        "add one, e.g. text,label"),
    "a broken JSON line": (
        lambda d: own_entry(jsonl_file(d / "reviews.jsonl", broken_line=9)),
        "dataset 'mine': the train file reviews.jsonl: line 9 is not valid JSON (Expecting ':' delimiter, at column "
        "37); fix or remove that line"),
    "no test file and test rows not drawn from train": (
        lambda d: {key: value for key, value in own_entry(csv_file(d / "reviews.csv", "text,label")).items()
                   if key != "splits"},
        "dataset 'mine' reads its test rows from data_files.test, which is not set; add data_files.test, or set "
        "splits: {train: train, test: null} to draw the test rows from the train file"),
}


@pytest.fixture
def in_data_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """Relative data files read from tmp_path, as the workflow reads them from its folder; a private datasets cache."""
    import datasets.config

    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)
    return tmp_path


@pytest.mark.parametrize("fault", list(SHAPE_FAULTS))
def test_a_data_file_of_the_wrong_shape_is_named_with_its_column_and_setting(fault: str, in_data_folder: Path) -> None:
    """Before, the config check said valid to each of these, and the job blamed a row (`row 3 of the train split
    of 'mine' does not fit the hub schema of local files (KeyError: 'text')`), a value (`invalid literal for
    int() with base 10: 'neg'`) or nothing (`Expected object or value at position 43`); a headerless CSV with
    the right column settings was read with its first row as the header."""
    write, message = SHAPE_FAULTS[fault]
    entry = write(in_data_folder)
    config = config_with({"mine": entry})
    validate_config(config, SCHEMA)
    with pytest.raises(ConfigError) as checked:
        check_data_files(config, in_data_folder)
    assert str(checked.value) == message
    with pytest.raises(DatasetError) as prepared:  # the job says the same, should it run without the check
        prepare("mine", entry["n_train"], entry["n_test"], 0, entry["data_files"], entry=entry)
    assert str(prepared.value) == message


@pytest.mark.parametrize(("entry", "message"), [
    (own_entry("reviews.csv", n_train=10),
     "dataset 'mine': the train file reviews.csv has 12 usable rows, fewer than the 14 drawn from it (n_train 10 + "
     "n_test 4, as splits.test is null); lower n_train or n_test, or add rows"),
    ({**own_entry("reviews.csv"), "data_files": {"train": "reviews.csv", "test": "reviews.csv"}},
     "dataset 'mine' sets data_files.test, but splits.test is null, which draws the test rows from the train file "
     "instead; remove data_files.test, or splits.test"),
    ({**own_entry("reviews.csv"), "data_files": {"train": "reviews.csv", "test": "test.csv"},
      "splits": {"train": "train", "test": "test"}, "n_test": 13},
     "dataset 'mine': the test file test.csv has 12 usable rows, fewer than the 13 drawn from it (n_test 13); lower "
     "n_train or n_test, or add rows"),
])
def test_the_config_check_counts_a_files_rows_and_finds_its_test_rows(entry: dict, message: str,
                                                                      in_data_folder: Path) -> None:
    csv_file(in_data_folder / "reviews.csv", "text,label")
    csv_file(in_data_folder / "test.csv", "text,label")
    with pytest.raises(ConfigError) as checked:
        check_data_files(config_with({"mine": entry}), in_data_folder)
    assert str(checked.value) == message


def test_the_config_check_refuses_a_file_without_rows_and_targets_left_empty(in_data_folder: Path) -> None:
    (in_data_folder / "header.csv").write_text("text,label\n")
    with pytest.raises(ConfigError) as checked:
        check_data_files(config_with({"mine": own_entry("header.csv")}), in_data_folder)
    assert str(checked.value) == ("dataset 'mine': the train file header.csv has no rows; point data_files.train at a "
                                  "file with rows")
    rows = [{"prompt": f"{a}+1=", "target": str(a + 1) if a != 4 else " "} for a in range(12)]
    (in_data_folder / "sums.jsonl").write_text("".join(json.dumps(row) + "\n" for row in rows))
    entry = {"kind": "generative", "data_files": {"train": "sums.jsonl"}, "splits": {"train": "train", "test": None},
             "n_train": 6, "n_test": 4}
    with pytest.raises(ConfigError) as checked:
        check_data_files(config_with({"sums": entry}), in_data_folder)
    assert str(checked.value) == ("dataset 'sums': the train file sums.jsonl has 1 row with an empty target (column "
                                  "'target'; the first is row 4), so they have no answer to train on or to score; fill "
                                  "them in or remove them")


def test_snakemake_refuses_a_data_file_of_the_wrong_shape_when_the_workflow_loads(tmp_path: Path) -> None:
    config = config_with({"mine": own_entry(csv_file(tmp_path / "reviews.csv", "review,sentiment"))})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "-n", "--configfile", str(tmp_path / "config.yaml"), cores=None, cwd=REPO, check=False)
    assert result.returncode == 1
    assert (result.stdout + result.stderr).strip().splitlines()[-1] == (
        "Invalid config: " + SHAPE_FAULTS["other column names"][1])
    assert not (tmp_path / "results").exists()


def test_a_failed_job_ends_the_run_with_its_own_message(tmp_path: Path) -> None:
    """A file the config check does not read (an image in a folder of images) breaks the first job. Before, the
    job printed its two chained tracebacks, and Snakemake's report of the job (its inputs, outputs, command)
    followed the message; now the job prints one line, and the run's last lines before Snakemake's closing
    ones repeat it with the job's log, which holds the traceback."""
    from PIL import Image

    for kind in ("red", "blue"):
        (tmp_path / "pics" / kind).mkdir(parents=True)
        for n in range(6):
            Image.new("RGB", (4, 4), (200, 0, 0) if kind == "red" else (0, 0, 200)).save(tmp_path / "pics" / kind / f"{n}.png")
    (tmp_path / "pics" / "red" / "3.png").write_bytes(b"no image")
    config = config_with({"pics": {"kind": "image_classification", "n_classes": 2, "image_folder": "pics",
                                   "n_train": 6, "n_test": 4}})
    config["models"] = {name: {"family": "torchvision", "name": "resnet18", "weights": None,
                               "preprocess": {"resize": 8, "crop": 8}, "resources": {"gpu": 0}} for name in ("a", "b")}
    config["training"] = {"mode": "probe", "model_selection": "final", "probe": {"l2_grid": [1.0]}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "results/data/pics/seed0/train_gt.parquet", "--configfile", "config.yaml", cores=1,
                       check=False)
    assert result.returncode == 1
    log = "results/logs/pics/seed0/prepare_data.log"
    message = ("dataset 'pics': image folder pics: file red/3.png is not a readable image (UnidentifiedImageError: "
               "cannot identify image file <_io.BytesIO object at 0x")
    lines = (result.stdout + result.stderr).splitlines()
    closing = next(i for i, line in enumerate(lines) if line.startswith("Complete log(s): "))
    assert lines[closing - 1].startswith(f"prepare_data failed: {message}")
    assert lines[closing - 1].endswith(f"replace it with an intact image file (JPEG, PNG, ...) or remove it from "
                                       f"the data (log: {log})")
    assert lines[closing + 1:] == [lines[closing + 1], "WorkflowError:",
                                   "At least one job did not complete successfully."]  # Elapsed time: ...
    job_lines = [line for line in lines if line.startswith("DatasetError: ")]
    assert len(job_lines) == 1 and job_lines[0].endswith(f"(traceback in {log})")
    assert "Traceback (most recent call last)" not in result.stdout + result.stderr
    written = (tmp_path / log).read_text()
    assert f"CRITICAL w2s: job failed: {message}" in written and "Traceback (most recent call last)" in written


@pytest.mark.parametrize(("losses", "message"), [
    ({"logconf": {"aux_coef": -0.5}}, "losses.logconf: loss 'logconf' needs aux_coef in [0, 1], not -0.5"),
    ({"entropy": {"warmup_frac": 1.5}}, "losses.entropy: loss 'entropy' needs warmup_frac in [0, 1], not 1.5"),
    ({"logconf": {"warmup_frac": -0.1}}, "losses.logconf: loss 'logconf' needs warmup_frac in [0, 1], not -0.1"),
    ({"window": {"radius": 0.6}}, "losses.window: loss 'window' needs radius in [0, 0.5], not 0.6"),
    ({"window": {"radius": -0.01}}, "losses.window: loss 'window' needs radius in [0, 0.5], not -0.01"),
    ({"logconf": {"aux_coef": "0.5"}}, "losses.logconf: loss 'logconf' needs aux_coef in [0, 1], not '0.5'"),
    ({"logconf": {"aux_coef": 1.5}}, "losses.logconf: loss 'logconf' needs aux_coef in [0, 1], not 1.5"),
    ({"logconf": {"aux_coef": float("inf")}}, "losses.logconf: loss 'logconf' needs aux_coef in [0, 1], not inf"),
    ({"product": {"beta": float("nan")}}, "losses.product: loss 'product' needs beta a finite number, not nan"),
    ({"product": {"alpha": True}}, "losses.product: loss 'product' needs alpha a finite number, not True"),
])
def test_loss_hyperparameters_out_of_range_are_refused(losses: dict, message: str) -> None:
    with pytest.raises(ConfigError) as info:
        validate_config(config_with(losses=losses), SCHEMA)
    assert str(info.value) == message


def test_a_students_loss_hyperparameters_are_range_checked_too() -> None:
    config = config_with(losses={"logconf": {"aux_coef": 0.5}})
    config["models"]["b"]["loss_params"] = {"logconf": {"aux_coef": -1}}
    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    assert str(info.value) == "models.b.loss_params.logconf: loss 'logconf' needs aux_coef in [0, 1], not -1"


def test_loss_hyperparameters_at_the_ends_of_their_ranges_are_valid() -> None:
    validate_config(config_with(losses={"logconf": {"aux_coef": 0, "warmup_frac": 1.0}, "window": {"radius": 0.5},
                                        "entropy": {"aux_coef": 1.0, "warmup_frac": 0}, "product": {"alpha": -1.5},
                                        "xent": {}}), SCHEMA)
    validate_config(config_with(losses={"window": {"radius": 0}}), SCHEMA)


# --------------------------------------------------------------------------- safe loading


def python_sources() -> list[Path]:
    return sorted([*(REPO / "src").rglob("*.py"), *(REPO / "workflow" / "scripts").glob("*.py")])


def test_no_source_file_unpickles_or_torch_loads() -> None:
    """Checkpoints and features are safetensors: pickle (and torch.load, which unpickles) can run
    code hidden in a file. The one exception is a checkpoint published only as a .pth (the official
    DINO ResNet50), read with torch.load's weights_only=True, PyTorch's restricted unpickler, which
    builds tensors and plain containers and refuses anything else."""
    unsafe = re.compile(r"\bimport pickle\b|\bpickle\.|\bdill\b|\bjoblib\b|\.to_pickle\(|read_pickle")
    torch_load = re.compile(r"\btorch\.load\b|\bload_state_dict_from_url\b")
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in python_sources()
             for number, line in enumerate(path.read_text().splitlines(), start=1)
             if unsafe.search(line) or (torch_load.search(line) and "weights_only=True" not in line)]
    assert found == []
    restricted = [str(path.relative_to(REPO)) for path in python_sources() if torch_load.search(path.read_text())]
    assert restricted == ["src/w2s/models/vision.py"]


def test_no_rule_runs_a_shell_command() -> None:
    """Config values reach jobs only as script params, never through a shell, so a model id or path
    cannot become a command; the one subprocess (pip download) is an argument list without a shell."""
    workflow_files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    assert [p.name for p in workflow_files if re.search(r"^\s*(shell|run):", p.read_text(), re.M)] == []
    shells = [str(p.relative_to(REPO)) for p in python_sources()
              if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", p.read_text())]
    assert shells == []


def test_weak_labels_of_one_number_per_row_are_refused(tmp_path: Path) -> None:
    """A file from before class probabilities were stored as lists: P(class 1) alone."""
    path = tmp_path / "weak.parquet"
    pd.DataFrame({"id": ["train:0", "train:1"], "soft_label": [0.1, 0.9], "hard_label": [0, 1],
                  "train_w2s_sha256": rows_sha256(train_w2s())}).to_parquet(path, index=False)
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: 'soft_label' holds one number per row, not each "
                       "row's K class probabilities, so an older w2s wrote it; delete the file and let its rule make "
                       "it again$"):
        training_rows({"train_w2s": train_w2s()}, str(path))
