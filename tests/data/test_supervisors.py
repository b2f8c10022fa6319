"""Simulated and ensemble supervisors (w2s.data.supervisors): error counts and placements, combination
arithmetic and the tie rule on hand-made frames; config checks; the exact plan of a tiny config with
one of each; and a minimal run of the new rules through their students' metrics."""

from __future__ import annotations

import copy
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import REPO, planned_jobs, snakemake, tiny_config

from w2s.data import supervisors
from w2s.data.labels import as_column
from w2s.pipeline.experiment import pairs, student_chains, trained_models
from w2s.pipeline.validation import ConfigError, validate_config

SCHEMA = REPO / "config" / "schema.yaml"


def test_a_wrong_label_is_the_next_class() -> None:
    assert supervisors.wrong_labels(np.array([0, 1, 1, 0]), 2).tolist() == [1, 0, 0, 1]
    assert supervisors.wrong_labels(np.array([0, 1, 2]), 3).tolist() == [1, 2, 0]


def test_errors_go_to_the_highest_scores_and_ties_to_the_earlier_row() -> None:
    scores = np.array([3.0, 7.0, 5.0, 7.0, 1.0, 5.0])
    assert supervisors.error_rows(3, "longest", 0, scores).tolist() == [1, 2, 3]
    assert supervisors.error_rows(0, "longest", 0, scores).tolist() == []


def test_random_errors_are_seeded_and_exactly_counted() -> None:
    first = supervisors.error_rows(4, "random", [0, 1, 0], n_rows=10)
    assert len(set(first.tolist())) == 4
    assert first.tolist() == supervisors.error_rows(4, "random", [0, 1, 0], n_rows=10).tolist()
    assert first.tolist() != supervisors.error_rows(4, "random", [1, 1, 0], n_rows=10).tolist()


def binary(p1: list[float]) -> np.ndarray:
    return np.array([[1 - p, p] for p in p1])


def test_simulated_labels_copy_the_real_models_error_count() -> None:
    labels = np.array([0, 1, 1, 0, 1, 0])
    # The real model is wrong on rows 0 and 4 (2 errors); the longest rows are 2 and 5.
    like = binary([0.9, 0.8, 0.7, 0.2, 0.3, 0.1])
    lengths = np.array([10, 20, 90, 15, 30, 80])
    given = supervisors.simulated_labels(labels, like, "longest", 0, lengths)
    assert given.tolist() == [0, 1, 0, 0, 1, 1]


def labelled_split(split: str, texts: list[str], labels: list[int], **columns: list) -> pd.DataFrame:
    return pd.DataFrame({"id": [f"{split}:{i}" for i in range(len(texts))], "text": texts, "label": labels, **columns})


def predictions(frames: dict[str, pd.DataFrame], p1: dict[str, list[float]]) -> pd.DataFrame:
    return pd.concat([pd.DataFrame({"split": split, "id": frame["id"], "probs": as_column(binary(p1[split]))})
                      for split, frame in frames.items()], ignore_index=True)


@pytest.fixture
def split_files(tmp_path: Path) -> dict[str, object]:
    """train_w2s of 8 rows in 2 slices of 4 and test of 4; the real weak model is wrong on train rows 0 (slice 1),
    4 and 5 (slice 2) and on test rows 1 and 2; the strong model is least sure on train rows 3, 1 | 6, 7, 4 and
    test rows 3, 0, then 2."""
    frames = {
        "train_w2s": labelled_split("train", ["a" * n for n in (1, 9, 3, 4, 5, 2, 8, 7)], [0, 1, 0, 1, 0, 1, 0, 1],
                                    difficulty=[0.1, 0.9, 0.5, 0.3, 0.2, 0.6, 0.7, 0.4]),
        "test": labelled_split("test", ["aa", "aaaa", "a", "aaa"], [1, 0, 1, 0], difficulty=[0.4, 0.3, 0.2, 0.1]),
    }
    like = {"train_w2s": [0.8, 0.9, 0.1, 0.7, 0.6, 0.4, 0.2, 0.9], "test": [0.7, 0.6, 0.4, 0.2]}
    strong = {"train_w2s": [0.1, 0.6, 0.1, 0.5, 0.7, 0.9, 0.45, 0.55], "test": [0.6, 0.9, 0.7, 0.5]}
    paths = {split: tmp_path / f"{split}.parquet" for split in frames}
    for split, frame in frames.items():
        frame.to_parquet(paths[split])
    predictions(frames, like).to_parquet(tmp_path / "like.parquet")
    predictions(frames, strong).to_parquet(tmp_path / "strong.parquet")
    return {"splits": {k: str(v) for k, v in paths.items()}, "like": str(tmp_path / "like.parquet"),
            "strong": str(tmp_path / "strong.parquet"), "dir": tmp_path}


def wrong_rows(split_files: dict[str, object], structure: str, column: str | None = None,
               strong_path: str | None = None) -> dict[str, list[int]]:
    out = Path(split_files["dir"]) / f"{structure}.parquet"
    supervisors.write_simulated(supervisors.Simulation(structure, column), split_files["splits"], split_files["like"],
                                seed=0, n_slices=2, out_path=str(out), strong_path=strong_path)
    made = pd.read_parquet(out)
    wrong = {}
    for split, path in split_files["splits"].items():
        labels = pd.read_parquet(path)["label"].to_numpy()
        rows = made[made["split"] == split]
        probs = np.stack(rows["probs"])
        assert set(probs.ravel().tolist()) <= {0.0, 1.0}  # hard labels with probability 1
        wrong[split] = np.flatnonzero(probs.argmax(axis=1) != labels).tolist()
    return wrong


def test_each_structure_places_the_real_models_error_count_per_slice_and_split(split_files: dict) -> None:
    # 1 error in slice 1 (rows 0-3), 2 in slice 2 (rows 4-7), 2 in test.
    assert wrong_rows(split_files, "longest") == {"train_w2s": [1, 6, 7], "test": [1, 3]}
    assert wrong_rows(split_files, "least_confident", strong_path=split_files["strong"]) == {
        "train_w2s": [3, 6, 7], "test": [0, 3]}
    assert wrong_rows(split_files, "column", column="difficulty") == {"train_w2s": [1, 5, 6], "test": [0, 1]}
    random = wrong_rows(split_files, "random")
    assert [sum(r < 4 for r in random["train_w2s"]), sum(r >= 4 for r in random["train_w2s"]),
            len(random["test"])] == [1, 2, 2]


def test_a_missing_column_is_named_with_the_columns_there(split_files: dict) -> None:
    with pytest.raises(ValueError, match=r"column 'length', which the prepared split does not have \(its columns: "
                                         r"id, text, label, difficulty\); name one of them"):
        wrong_rows(split_files, "column", column="length")
    with pytest.raises(ValueError, match="column .text. holds str values, but errors go to its highest values"):
        wrong_rows(split_files, "column", column="text")


def test_longest_needs_text_inputs() -> None:
    rows = pd.DataFrame({"id": ["a"], "image": [b"\x00"], "label": [0]})
    with pytest.raises(ValueError, match="this task's inputs are not text; use random, least_confident or column"):
        supervisors.error_scores("longest", rows, None, None, "test.parquet")


# Two members on three rows: they disagree on row 0 (a tie for an unweighted vote), agree on row 1, and
# are both uniform on row 2.
MEMBERS = np.array([[[0.9, 0.1], [0.4, 0.6], [0.5, 0.5]],
                    [[0.3, 0.7], [0.2, 0.8], [0.5, 0.5]]])


def test_mean_and_confidence_weighted_mean() -> None:
    assert supervisors.combined_probs(MEMBERS, "mean", "none") == pytest.approx(
        np.array([[0.6, 0.4], [0.3, 0.7], [0.5, 0.5]]))
    # Weights max(p) - 1/2: row 0 0.4 and 0.2, (0.4 * 0.9 + 0.2 * 0.3) / 0.6 = 0.7; row 1 0.1 and 0.3,
    # (0.1 * 0.4 + 0.3 * 0.2) / 0.4 = 0.25; row 2 no confidence anywhere, so equal weights.
    assert supervisors.combined_probs(MEMBERS, "mean", "confidence") == pytest.approx(
        np.array([[0.7, 0.3], [0.25, 0.75], [0.5, 0.5]]))


def test_vote_ties_go_to_the_highest_mean_probability_then_the_lowest_class() -> None:
    # Row 0: one vote each, mean probabilities 0.6 against 0.4; row 2: both vote class 0.
    assert supervisors.combined_probs(MEMBERS, "vote", "none").tolist() == [[1, 0], [0, 1], [1, 0]]
    # Votes for classes 0 and 1 tie; their mean probabilities are 0.3 and 0.275 (class 2's 0.425 has no vote).
    three_classes = np.array([[[0.5, 0.1, 0.4]], [[0.1, 0.45, 0.45]]])
    assert supervisors.combined_probs(three_classes, "vote", "none").tolist() == [[1, 0, 0]]
    surer = np.array([[[0.6, 0.4]], [[0.1, 0.9]]])  # tied votes; class 1's mean probability 0.65 beats 0.35
    assert supervisors.combined_probs(surer, "vote", "none").tolist() == [[0, 1]]
    mirrored = np.array([[[0.4, 0.6]], [[0.6, 0.4]]])  # tied votes and tied means: the lowest class
    assert supervisors.combined_probs(mirrored, "vote", "none").tolist() == [[1, 0]]
    # Weighted: on row 0 member 1 (0.4) outvotes member 2 (0.2). Of three members, the confident one (0.45)
    # loses 1 vote to 2 unweighted and wins 0.45 to 0.15 weighted.
    assert supervisors.combined_probs(MEMBERS, "vote", "confidence").tolist() == [[1, 0], [0, 1], [1, 0]]
    outvoted = np.array([[[0.95, 0.05]], [[0.4, 0.6]], [[0.45, 0.55]]])
    assert supervisors.combined_probs(outvoted, "vote", "none").tolist() == [[0, 1]]
    assert supervisors.combined_probs(outvoted, "vote", "confidence").tolist() == [[1, 0]]


def test_an_ensemble_reads_its_members_by_id(tmp_path: Path) -> None:
    first = pd.DataFrame({"split": ["test", "test"], "id": ["a", "b"], "probs": as_column(binary([0.9, 0.2]))})
    second = pd.DataFrame({"split": ["test", "test"], "id": ["b", "a"], "probs": as_column(binary([0.4, 0.5]))})
    first.to_parquet(tmp_path / "m1.parquet")
    second.to_parquet(tmp_path / "m2.parquet")
    supervisors.write_ensemble([str(tmp_path / "m1.parquet"), str(tmp_path / "m2.parquet")],
                               supervisors.Ensemble("mean", "none"), str(tmp_path / "ens.parquet"))
    made = pd.read_parquet(tmp_path / "ens.parquet")
    assert made["id"].tolist() == ["a", "b"]
    assert np.stack(made["probs"])[:, 1] == pytest.approx([0.7, 0.3])


# ---------------------------------------------------------------- config


def supervised_config(models: dict[str, Path], data_dir: Path) -> dict:
    """The tiny workflow's config with one simulated and one ensemble supervisor in the ladder before the probe."""
    config = tiny_config(models, data_dir)
    config["supervisors"] = {"small-unsure": {"simulate": "least_confident", "like": "small", "strong": "big"},
                             "pair-vote": {"ensemble": ["small", "mid"], "combine": "vote",
                                           "weighting": "confidence"}}
    config["ladder"] = ["small", "mid", "small-unsure", "pair-vote", "big"]
    return config


def test_supervisors_chain_like_models_but_never_learn(tmp_path: Path) -> None:
    config = supervised_config({"tiny-bert": tmp_path, "tiny-gpt2": tmp_path}, tmp_path)
    validate_config(config, SCHEMA)
    assert pairs(config) == [("small", "mid"), ("small", "big"), ("mid", "big"), ("small-unsure", "big"),
                             ("pair-vote", "big")]
    assert ["small", "mid", "big"] in student_chains(config)
    assert trained_models(config) == ["small", "mid", "big"]


@pytest.mark.parametrize(("change", "message"), [
    (lambda c: c["supervisors"]["small-unsure"].update(like="tiny"),
     "unknown model 'tiny' in supervisors.small-unsure.like; valid models are: big, mid, small"),
    (lambda c: c["supervisors"]["pair-vote"].update(ensemble=["small"]),
     "supervisors.pair-vote: an ensemble combines several models but lists 1; name at least two"),
    (lambda c: c["supervisors"]["small-unsure"].pop("strong"),
     "supervisors.small-unsure: strong names the model whose doubt places the errors, which simulate "
     "least_confident needs and no other structure reads; add strong: <model>"),
    (lambda c: c["supervisors"].update({"col": {"simulate": "column", "like": "small"}}),
     "supervisors.col: column names the prepared split's column whose highest values get the errors, which "
     "simulate column needs and no other structure reads; add column: <name>"),
    (lambda c: c["supervisors"].update({"mid": {"simulate": "random", "like": "small"}}),
     "supervisors.mid: 'mid' is also a model; give the supervisor another name"),
    (lambda c: c.update(chains=[["small", "pair-vote", "big"]]),
     "chain small -> pair-vote -> big: supervisor 'pair-vote' is no model, so it cannot learn"),
    (lambda c: c["datasets"].update(chess_puzzles={"kind": "generative", "n_train": 40, "n_test": 20}),
     "supervisors.small-unsure: simulated and ensemble supervisors label classes, but dataset 'chess_puzzles' is a "
     "generative task whose weak labels are generated texts"),
    (lambda c: c["supervisors"]["pair-vote"].update(combine="median"),
     "config error at supervisors/pair-vote: a supervisor is either {simulate:"),
])
def test_bad_supervisors_are_refused_with_the_fix(tmp_path: Path, change, message: str) -> None:
    config = supervised_config({"tiny-bert": tmp_path, "tiny-gpt2": tmp_path}, tmp_path)
    change(config)
    with pytest.raises(ConfigError) as err:
        validate_config(copy.deepcopy(config), SCHEMA)
    assert message in str(err.value)


# ---------------------------------------------------------------- workflow


def test_the_plan_runs_each_supervisor_once_and_its_students_like_any_pair(tmp_path: Path) -> None:
    models = {"tiny-bert": tmp_path / "tiny-bert", "tiny-gpt2": tmp_path / "tiny-gpt2"}  # never loaded
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(supervised_config(models, tmp_path)))
    jobs = planned_jobs(snakemake(tmp_path, "--configfile", "config.yaml", "-n").stdout)
    seed_dir = "results/sst2/seed0"
    new = {job: n for job, n in jobs.items() if "small-unsure" in job[1] or "pair-vote" in job[1]}
    students = [f"w2s/{loss}/{root}__big" for loss in ("xent", "logconf") for root in ("small-unsure", "pair-vote")]
    assert new == Counter(
        [("simulate_supervisor", f"{seed_dir}/sim/small-unsure/predictions.parquet"),
         ("ensemble_supervisor", f"{seed_dir}/ens/pair-vote/predictions.parquet")]
        + [("weak_labels", f"{seed_dir}/{run}/weak_labels.parquet") for run in ("sim/small-unsure", "ens/pair-vote")]
        + [("train_student", f"{seed_dir}/{run}/checkpoint") for run in students]
        + [("evaluate", f"{seed_dir}/{run}/metrics.json")
           for run in ("sim/small-unsure", "ens/pair-vote", *students)])
    # The tiny workflow's 40 jobs and these 14; no ground-truth run for the supervisors.
    assert sum(jobs.values()) == 54
    assert Counter(rule for rule, _ in jobs.elements())["train_ground_truth"] == 3


def test_supervisor_rules_run_into_weak_labels_and_metrics(tmp_path: Path) -> None:
    """The new rules and the rules that read their files, run by Snakemake on hand-made prepared splits and
    ground-truth predictions (no model is trained: only these rules are allowed)."""
    rng = np.random.default_rng(0)
    config = supervised_config({"tiny-bert": tmp_path, "tiny-gpt2": tmp_path}, tmp_path)
    config["supervisors"]["small-random"] = {"simulate": "random", "like": "small"}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    data_dir, seed_dir = tmp_path / "results" / "data" / "sst2" / "seed0", tmp_path / "results" / "sst2" / "seed0"
    (data_dir / "unlabelled").mkdir(parents=True)
    frames = {split: labelled_split(split, [f"text {i} " * (i % 5 + 1) for i in range(n)],
                                    rng.integers(0, 2, n).tolist()) for split, n in (("train_w2s", 24), ("test", 24))}
    for split, frame in frames.items():
        frame.to_parquet(data_dir / f"{split}.parquet")
        frame[["id", "text"]].to_parquet(data_dir / "unlabelled" / f"{split}.parquet")
    (data_dir / "label_balance.json").write_text(json.dumps({
        split: {"n": 24, "class_fractions": [1 - f["label"].mean(), f["label"].mean()],
                "positive_fraction": f["label"].mean()} for split, f in frames.items()}))
    for model in ("small", "mid", "big"):
        (seed_dir / "gt" / model).mkdir(parents=True)
        predictions(frames, {split: rng.uniform(0, 1, 24).tolist() for split in frames}).to_parquet(
            seed_dir / "gt" / model / "predictions.parquet")
    runs = ("sim/small-random", "sim/small-unsure", "ens/pair-vote")
    targets = [f"results/sst2/seed0/{run}/{name}" for run in runs for name in ("metrics.json", "weak_labels.parquet")]
    snakemake(tmp_path, *targets, "--allowed-rules", "simulate_supervisor", "ensemble_supervisor", "weak_labels",
              "evaluate", "--configfile", "config.yaml")
    metrics = {run: json.loads((seed_dir / run / "metrics.json").read_text()) for run in runs}
    test_labels = frames["test"]["label"].to_numpy()
    small = pd.read_parquet(seed_dir / "gt" / "small" / "predictions.parquet")
    small_accuracy = float(np.mean(np.stack(small[small["split"] == "test"]["probs"]).argmax(axis=1) == test_labels))
    for run in ("sim/small-random", "sim/small-unsure"):
        # Exactly the real model's errors on test, so exactly its accuracy.
        assert (metrics[run]["kind"], metrics[run]["weak_kind"], metrics[run]["accuracy"]) == (
            "simulated", "simulated", small_accuracy)
    assert metrics["sim/small-unsure"]["supervisor"] == {"like": "small", "simulate": "least_confident",
                                                         "strong": "big"}
    assert metrics["sim/small-unsure"]["weak_method"] == (
        "simulated: small's error count, errors where big is least confident")
    assert (metrics["ens/pair-vote"]["kind"], metrics["ens/pair-vote"]["weak_method"]) == (
        "ensemble", "ensemble: confidence-weighted vote of small, mid")
    assert "test_truncated" not in metrics["ens/pair-vote"]
    made = pd.read_parquet(seed_dir / "ens" / "pair-vote" / "predictions.parquet")
    weak_labels = pd.read_parquet(seed_dir / "ens" / "pair-vote" / "weak_labels.parquet")
    assert weak_labels["id"].tolist() == made[made["split"] == "train_w2s"]["id"].tolist()[:12]


def test_a_supervisors_settings_refuse_values_the_schema_does_not_name() -> None:
    with pytest.raises(ValueError, match="simulate is 'worst', not one of random, longest, least_confident, column"):
        supervisors.Simulation("worst")
    with pytest.raises(ValueError, match="not 'median' and 'none'"):
        supervisors.Ensemble("median", "none")
    assert supervisors.Ensemble("vote", "confidence").combine == "vote"
