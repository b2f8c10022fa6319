"""Bad weak labels and predictions stop the job that reads them, with the file and the fix, and
the source holds no unsafe loading: no pickle, no shell commands built from the config."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from conftest import REPO
from w2s.data import rows_sha256, write_weak_labels
from w2s.evaluation import evaluate
from w2s.jobs import _training_rows, train_model
from w2s.metrics import check_probabilities
from w2s.truncation import write_truncation


def train_w2s(n: int = 6) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"train:{i}" for i in range(n)], "text": [f"t{i}" for i in range(n)],
                         "label": [i % 2 for i in range(n)]})


def weak_labels_file(path: Path, ids: list[str], soft: list[float], made_for: pd.DataFrame | None = None) -> str:
    """Weak labels as the weak_labels rule writes them, made for `made_for`'s rows (train_w2s())."""
    made_for = train_w2s() if made_for is None else made_for
    pd.DataFrame({"id": ids, "soft_label": soft, "hard_label": [int(p > 0.5) for p in soft],
                  "train_w2s_sha256": rows_sha256(made_for)}).to_parquet(path, index=False)
    return str(path)


def predictions_file(path: Path, probs: list[float]) -> str:
    frame = train_w2s(len(probs))
    pd.DataFrame({"split": "train_w2s", "id": frame["id"], "prob": probs}).to_parquet(path, index=False)
    return str(path)


def unlabelled_file(path: Path, frame: pd.DataFrame) -> str:
    frame[["id", "text"]].to_parquet(path, index=False)
    return str(path)


# --------------------------------------------------------------------------- probabilities


@pytest.mark.parametrize("probs, first", [([0.2, np.nan, 0.7], "row 1: nan"), ([0.2, 0.5, 1.5], "row 2: 1.5"),
                                          ([-0.1, 0.5, 0.5], "row 0: -0.1")])
def test_check_probabilities_names_the_count_and_the_first_bad_row(probs: list[float], first: str) -> None:
    with pytest.raises(ValueError, match=rf"^what: 1 of 3 probabilities are NaN or outside \[0, 1\] \(the first is "
                       rf"{first}\); fix it$"):
        check_probabilities(np.array(probs), "what", "fix it")
    check_probabilities(np.array([0.0, 0.5, 1.0]), "what", "fix it")


def test_weak_labels_refuse_a_supervisor_whose_predictions_are_nan(tmp_path: Path) -> None:
    predictions = predictions_file(tmp_path / "predictions.parquet", [0.9, np.nan, 0.1, 0.8, 0.3, 0.6])
    rows = unlabelled_file(tmp_path / "train_w2s.parquet", train_w2s())
    out = tmp_path / "weak_labels.parquet"
    with pytest.raises(ValueError, match=rf"^{re.escape(predictions)}, the supervisor's predictions on train_w2s: 1 "
                       r"of 3 probabilities are NaN .* its training diverged, so it cannot supervise: lower its lr"):
        write_weak_labels(predictions, rows, 1, 2, str(out))
    assert not out.exists()
    write_weak_labels(predictions, rows, 2, 2, str(out))  # the other slice is fine
    assert pd.read_parquet(out)["soft_label"].tolist() == [0.8, 0.3, 0.6]


def test_weak_labels_refuse_predictions_of_other_rows(tmp_path: Path) -> None:
    predictions = predictions_file(tmp_path / "predictions.parquet", [0.9, 0.2, 0.1, 0.8, 0.3, 0.6])
    rows = unlabelled_file(tmp_path / "train_w2s.parquet", train_w2s(5))
    out = tmp_path / "weak_labels.parquet"
    with pytest.raises(ValueError, match=rf"^{re.escape(predictions)}: the supervisor's train_w2s predictions are not "
                       rf"of the rows of {re.escape(rows)} in their order \(6 predictions, 5 rows\), so they were made "
                       "from other data; delete the predictions and let the supervisor's training rule make them"):
        write_weak_labels(predictions, rows, 1, 2, str(out))
    assert not out.exists()


# --------------------------------------------------------------------------- weak labels given to a student


def test_weak_labels_of_the_right_rows_are_read(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:4", "train:1"], [0.0, 1.0])
    rows = _training_rows({"train_w2s": train_w2s()[["id", "text"]]}, path)
    # No true label: a student's rows carry only what it may train on.
    assert rows.to_dict("list") == {"row": [4, 1], "soft_label": [0.0, 1.0]}


def test_the_oracle_adds_true_labels_joined_by_id(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:4", "train:1", "train:3"], [0.0, 1.0, 0.2])
    oracle = tmp_path / "oracle.parquet"
    train_w2s().iloc[::-1].to_parquet(oracle, index=False)  # another order: joined by id, not position
    with pytest.raises(ValueError, match=rf"^{re.escape(str(oracle))}: the ground-truth oracle's rows are not this "
                       "job's train_w2s rows; rerun prepare_data"):
        _training_rows({"train_w2s": train_w2s()[["id", "text"]]}, path, str(oracle))
    train_w2s().to_parquet(oracle, index=False)
    rows = _training_rows({"train_w2s": train_w2s()[["id", "text"]]}, path, str(oracle))
    assert rows.to_dict("list") == {"row": [4, 1, 3], "soft_label": [0.0, 1.0, 0.2], "true_label": [0, 1, 1]}


def test_a_student_selecting_on_ground_truth_needs_its_oracle_input(tmp_path: Path) -> None:
    splits = {split: unlabelled_file(tmp_path / f"{split}.parquet", train_w2s()) for split in ("train_w2s", "test")}
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "train:1"], [0.1, 0.9])
    with pytest.raises(ValueError, match="^model_selection ground_truth_holdout scores a student against true labels, "
                       "but the job was given no oracle labels; the train_student rule gives them as input "
                       "oracle_labels$"):
        train_model({}, {"model_selection": "ground_truth_holdout"}, 0, splits, {}, weak_labels_path=path)


def test_soft_weak_labels_out_of_range_are_refused(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "train:1", "train:2"], [0.1, 1.2, np.nan])
    with pytest.raises(ValueError, match=rf"^{re.escape(path)}, the soft weak labels: 2 of 3 probabilities are NaN "
                       r"or outside \[0, 1\] \(the first is row 1: 1.2\); delete it and let the weak_labels rule"):
        _training_rows({"train_w2s": train_w2s()}, path)


def test_weak_labels_with_foreign_ids_or_repeated_ids_are_refused(tmp_path: Path) -> None:
    path = weak_labels_file(tmp_path / "weak.parquet", ["train:0", "test:1", "test:9"], [0.1, 0.9, 0.2])
    with pytest.raises(ValueError, match=rf"^{re.escape(path)}: 2 weak-label ids are not in train_w2s, or ids repeat, "
                       "so the file was not written by the weak_labels rule; delete it and let the weak_labels rule "
                       "make it again from this dataset and seed$"):
        _training_rows({"train_w2s": train_w2s()}, path)
    repeated = weak_labels_file(tmp_path / "repeated.parquet", ["train:0", "train:0"], [0.1, 0.2])
    with pytest.raises(ValueError, match="0 weak-label ids are not in train_w2s, or ids repeat"):
        _training_rows({"train_w2s": train_w2s()}, repeated)


# --------------------------------------------------------------------------- evaluation


def test_evaluate_refuses_predictions_of_other_test_rows(tmp_path: Path) -> None:
    path = tmp_path / "predictions.parquet"
    pd.DataFrame({"split": "test", "id": ["a", "c"], "prob": [0.3, 0.6]}).to_parquet(path)
    test = tmp_path / "test.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": [0, 1]}).to_parquet(test)
    out = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}: its test predictions are not one per row of "
                       rf"{re.escape(str(test))} \(2 predictions, 2 rows, 1 ids not in the split\), so they were made "
                       "from other data; retrain the run that wrote them$"):
        evaluate("gt/a", {"self": str(path)}, str(test), 10, 0, str(out), {"kind": "ground_truth"})
    assert not out.exists()


def test_evaluate_refuses_nan_test_predictions(tmp_path: Path) -> None:
    path = tmp_path / "predictions.parquet"
    pd.DataFrame({"split": "test", "id": ["a", "b"], "prob": [0.3, np.nan]}).to_parquet(path)
    test = tmp_path / "test.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": [0, 1]}).to_parquet(test)
    out = tmp_path / "metrics.json"
    with pytest.raises(ValueError, match=rf"^{re.escape(str(path))}, test predictions: 1 of 2 probabilities are NaN "
                       r"or outside \[0, 1\] \(the first is row 1: nan\); retrain the run that wrote them$"):
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
    path = tmp_path / "predictions.parquet"
    pd.DataFrame({"split": "test", "id": ["a", "b"], "prob": [0.3, 0.8]}).to_parquet(path)
    test = tmp_path / "test.parquet"
    pd.DataFrame({"id": ["a", "b"], "text": ["x", "y"], "label": [0, 1]}).to_parquet(test)
    out = tmp_path / "metrics.json"
    truncation = {"max_length": 8, "truncated": {"train_gt": 2, "train_w2s": 0, "test": 1}, "n": {}}
    evaluate("gt/a", {"self": str(path)}, str(test), 10, 0, str(out), {"kind": "ground_truth"}, truncation=truncation)
    result = json.loads(out.read_text())
    assert {k: result[k] for k in ("max_length", "train_gt_truncated", "train_w2s_truncated", "test_truncated")} == {
        "max_length": 8, "train_gt_truncated": 2, "train_w2s_truncated": 0, "test_truncated": 1}


# --------------------------------------------------------------------------- safe loading


def python_sources() -> list[Path]:
    return sorted([*(REPO / "src").rglob("*.py"), *(REPO / "workflow" / "scripts").glob("*.py")])


def test_no_source_file_unpickles_or_torch_loads() -> None:
    """Checkpoints and features are safetensors: pickle (and torch.load, which unpickles) can run
    code hidden in a file."""
    unsafe = re.compile(r"\btorch\.load\b|\bimport pickle\b|\bpickle\.|\bdill\b|\bjoblib\b|\.to_pickle\(|read_pickle")
    found = [f"{path.relative_to(REPO)}:{number}: {line.strip()}"
             for path in python_sources()
             for number, line in enumerate(path.read_text().splitlines(), start=1) if unsafe.search(line)]
    assert found == []


def test_no_rule_runs_a_shell_command() -> None:
    """Config values reach jobs only as script params, never through a shell, so a model id or path
    cannot become a command; the one subprocess (pip download) is an argument list without a shell."""
    workflow_files = [REPO / "Snakefile", *sorted((REPO / "rules").glob("*.smk"))]
    assert [p.name for p in workflow_files if re.search(r"^\s*(shell|run):", p.read_text(), re.M)] == []
    shells = [str(p.relative_to(REPO)) for p in python_sources()
              if re.search(r"shell\s*=\s*True|os\.system\(|os\.popen\(", p.read_text())]
    assert shells == []
