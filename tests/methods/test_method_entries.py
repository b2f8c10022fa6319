"""A method's entry (w2s.methods.entries): its three forms checked without running anything, its source file and
provenance, the callable loaded from a file, a module and an entry point; and the built-in methods' choice of weak
labels (w2s.methods.confident, w2s.methods.resampling) with a trainer that records what it was given."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from w2s.data import labels as class_probs
from w2s.methods import entries
from w2s.methods.confident import confident
from w2s.methods.interface import MethodError, MethodInputs, StrongModel
from w2s.models.prompting import PromptSettings
from w2s.methods.resampling import resample
from w2s.tasks import dataset_task
from w2s.training.settings import TrainingSettings

from job_settings import training_settings


@pytest.mark.parametrize("entry", ["methods/mine.py:run", "/abs/m.py:go_2", "mylab.methods:run", "w2s.methods.loss:train_with_loss",
                                   "plugged-method"])
def test_each_form_of_an_entry_is_accepted(entry: str) -> None:
    assert entries.check_entry(entry) is None


@pytest.mark.parametrize(("entry", "said"), [
    ("mine.py:", "is not a Python function name"),
    ("mine-file.txt:run", "is neither a .py file nor a module name"),
    ("my lab:run", "is neither a .py file nor a module name"),
    ("two words", "is none of"),
])
def test_a_malformed_entry_is_refused_with_its_reason(entry: str, said: str) -> None:
    assert said in (entries.check_entry(entry) or "")


def test_a_file_entry_loads_its_function_and_records_the_files_hash(tmp_path: Path) -> None:
    source = tmp_path / "mine.py"
    source.write_text("def run(inputs):\n    return {'test': inputs}\n")
    found = entries.load_method("mine.py:run", tmp_path)
    assert found(7) == {"test": 7}
    record = entries.provenance("mine.py:run", tmp_path)
    assert record == {"entry": "mine.py:run", "file": str(tmp_path / "mine.py"),
                      "sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "version": None}


def test_a_missing_file_or_function_is_named(tmp_path: Path) -> None:
    with pytest.raises(entries.EntryError, match="method file 'gone.py' does not exist"):
        entries.source_file("gone.py:run", tmp_path)
    (tmp_path / "mine.py").write_text("x = 1\n")
    with pytest.raises(entries.EntryError, match="mine.py has no function 'run'"):
        entries.load_method("mine.py:run", tmp_path)


def test_a_module_entry_and_an_entry_point_resolve_to_their_module(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    package = tmp_path / "mylab"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "methods.py").write_text("def run(inputs):\n    return 'mylab'\n")
    # An installed distribution that registers the method under the entry-point group w2s.methods.
    info = tmp_path / "mylab-1.2.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: mylab\nVersion: 1.2\n")
    (info / "entry_points.txt").write_text("[w2s.methods]\nplugged-method = mylab.methods:run\n")
    monkeypatch.syspath_prepend(str(tmp_path))
    assert entries.load_method("mylab.methods:run")(None) == "mylab"
    assert entries.load_method("plugged-method")(None) == "mylab"
    assert entries.source_file("plugged-method") == package / "methods.py"
    assert entries.provenance("mylab.methods:run")["version"] == "1.2"
    with pytest.raises(entries.EntryError, match="no installed package registers a method 'absent'"):
        entries.load_method("absent")
    sys.modules.pop("mylab.methods", None)
    sys.modules.pop("mylab", None)


# --------------------------------------------------------------------------- the built-in methods' choices


def method_inputs(probs: np.ndarray, params: dict[str, Any], given: list[pd.DataFrame], scratch: Path,
                  seed: int = 0) -> MethodInputs:
    """MethodInputs over weak labels of `probs` whose trainer appends what it is given to `given`."""
    ids = [f"train:{i}" for i in range(len(probs))]
    weak = pd.DataFrame({"id": ids, "soft_label": class_probs.as_column(probs), "hard_label": probs.argmax(axis=1),
                         "train_w2s_sha256": "x"})

    def trainer(path: str, loss: str, loss_params: dict[str, Any], folder: Path) -> dict[str, str]:
        given.append(pd.read_parquet(path).assign(loss=loss))
        return {}

    settings: TrainingSettings = training_settings(mode="probe")
    strong = StrongModel("big", {}, settings, None, trainer, scratch)
    frame = pd.DataFrame({"id": ids, "text": ids, "position": range(len(ids))})
    prompt = PromptSettings("Is it positive?", (" No", " Yes"), 64, 4, "float32")
    return MethodInputs(dataset_task({}), frame, weak, {}, strong, params, seed, scratch, prompt)


def test_confident_keeps_the_weak_labels_at_or_above_the_confidence_quantile(tmp_path: Path) -> None:
    p1 = np.array([0.5, 0.9, 0.2, 0.6, 0.05, 0.45])  # confidences 0.5, 0.9, 0.8, 0.6, 0.95, 0.55
    given: list[pd.DataFrame] = []
    confident(method_inputs(np.stack([1 - p1, p1], axis=1), {"quantile": 0.5}, given, tmp_path))
    # The median confidence is (0.6 + 0.8) / 2 = 0.7: rows 1, 2 and 4 are at or above it.
    assert given[0]["id"].tolist() == ["train:1", "train:2", "train:4"]
    assert given[0]["loss"].tolist() == ["xent"] * 3
    with pytest.raises(MethodError, match=r"quantile must lie in \[0, 1\)"):
        confident(method_inputs(np.stack([1 - p1, p1], axis=1), {"quantile": 1.0}, given, tmp_path))


def test_resampling_draws_a_seeded_fraction_of_distinct_rows_by_confidence(tmp_path: Path) -> None:
    rng = np.random.default_rng(3)
    p1 = rng.uniform(0.0, 1.0, 40)
    probs = np.stack([1 - p1, p1], axis=1)
    drawn = []
    for seed in (0, 0, 1):
        given: list[pd.DataFrame] = []
        resample(method_inputs(probs, {"fraction": 0.25, "power": 1.0}, given, tmp_path, seed))
        ids = given[0]["id"].tolist()
        assert len(ids) == 10 and len(set(ids)) == 10
        assert ids == sorted(ids, key=lambda i: int(i.split(":")[1]))  # in the weak labels' order
        drawn.append(ids)
    assert drawn[0] == drawn[1] != drawn[2]
    # With a large power the draw is the most confident rows: 0.6^200 / 0.99^200 leaves the others no weight.
    p1 = np.where(np.arange(40) % 4 == 1, 0.99, 0.4)
    given = []
    resample(method_inputs(np.stack([1 - p1, p1], axis=1), {"fraction": 0.25, "power": 200.0}, given, tmp_path))
    assert given[0]["id"].tolist() == [f"train:{i}" for i in range(1, 40, 4)]


# --------------------------------------------------------------------------- what a method returns


def test_probabilities_a_method_returns_are_checked_against_its_splits(tmp_path: Path) -> None:
    from w2s.methods.runner import _write_probabilities

    frames = {"test": pd.DataFrame({"id": ["test:0", "test:1", "test:2"]}),
              "train_w2s": pd.DataFrame({"id": ["train:0", "train:1"]})}
    out = {key: str(tmp_path / f"{key}.parquet") for key in ("predictions", "history", "sweep")}
    out["checkpoint"] = str(tmp_path / "checkpoint")
    task = dataset_task({})
    even = {"test": np.full((3, 2), 0.5), "train_w2s": np.full((2, 2), 0.5)}
    with pytest.raises(MethodError, match="returned no probabilities for train_w2s"):
        _write_probabilities("m", {"test": even["test"]}, frames, out, task)
    with pytest.raises(MethodError, match=r"returned test probabilities of shape \(2, 2\); it needs \(3, 2\)"):
        _write_probabilities("m", {**even, "test": np.full((2, 2), 0.5)}, frames, out, task)
    with pytest.raises(ValueError, match="must return rows of class probabilities that sum to 1"):
        _write_probabilities("m", {**even, "test": np.full((3, 2), 0.7)}, frames, out, task)
    _write_probabilities("m", {**even, "test": np.array([[0.9, 0.1], [0.2, 0.8], [0.5, 0.5]])}, frames, out, task)
    written = pd.read_parquet(out["predictions"])
    assert written["id"].tolist() == ["test:0", "test:1", "test:2", "train:0", "train:1"]
    assert np.stack(written["probs"])[1].tolist() == [0.2, 0.8]
    assert pd.read_parquet(out["sweep"])["chosen"].tolist() == [True] * 3


def test_features_of_a_finetuned_strong_model_are_refused_with_the_mode_to_use(tmp_path: Path) -> None:
    strong = StrongModel("mid", {}, training_settings(mode="full"), None, lambda *args: {}, tmp_path)
    with pytest.raises(MethodError, match=r"model 'mid' trains in mode full, which has no frozen features; a method "
                                          r"that reads features needs a probe-mode strong model \(training.mode: probe\)"):
        strong.features()
