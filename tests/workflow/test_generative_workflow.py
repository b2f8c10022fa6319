"""The generative task kind end to end: a real Snakemake run on a toy (prompt, target) parquet dataset with
tiny randomly initialised causal LMs: ground-truth models, the weak model's greedy generations as weak
labels, a direct student, a 3-model bootstrap chain, metrics and the summary table."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pandas as pd
import pytest
import yaml
from generative_fixtures import make_tiny_causal_lm, write_toy_parquet
from helpers import planned_jobs, snakemake

RUNS = ("gt/weak", "gt/mid", "gt/strong", "w2s/xent/weak__strong", "w2s/xent/weak__mid", "w2s/xent/weak__mid__strong")


# One torch thread per training job: on a busy 2-core machine two threads per job ran ten times slower.
ONE_THREAD = ("--set-threads", "train_ground_truth=1", "train_student=1")


def generative_config(workdir: Path) -> dict:
    def model(name: str, n_layer: int, n_embd: int, epochs: float) -> dict:
        path = make_tiny_causal_lm(workdir / "models" / name, seed=n_embd, n_layer=n_layer, n_embd=n_embd)
        return {"path": str(path), "params_b": 0.001, "resources": {"gpu": 0}, "training": {"epochs": epochs}}

    return {
        "seeds": [0],
        "w2s_slices": 2,
        "datasets": {"toy": {"kind": "generative", "n_train": 96, "n_test": 40,
                             "data_files": {"train": str(write_toy_parquet(workdir / "toy.parquet", 160, 0))},
                             "splits": {"train": "train", "test": None},
                             "input_column": "question", "label_column": "answer"}},
        "generation": {"max_new_tokens": 3},
        "training": {"mode": "full", "lr": 1e-2, "batch_size": 8, "minibatch_size": 8, "eval_batch_size": 48,
                     "max_length": 16, "model_selection": "final"},
        # The weak model is the narrowest and trains the shortest, so it knows the least of the task.
        "models": {"weak": model("weak", 1, 16, 3), "mid": model("mid", 1, 24, 16), "strong": model("strong", 1, 32, 16)},
        "ladder": ["weak", "strong"],
        "chains": [["weak", "mid", "strong"]],
        "losses": {"xent": {}},
        "report": {"bootstrap_samples": 100},
    }


@pytest.fixture(scope="module")
def generative_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("generative")
    (workdir / "generative.yaml").write_text(yaml.safe_dump(generative_config(workdir)))
    target = "results/summary.csv"
    dry = snakemake(workdir, target, "-n", "--configfile", "generative.yaml")
    counts = Counter(rule for rule, _ in planned_jobs(dry.stdout).elements())
    # No truncation counts and no features: prompts are never truncated, and no model is a probe. The weak
    # model labels slice 1 for both its students; the chain's first step labels slice 2 for its second.
    assert counts == {"prepare_data": 1, "train_ground_truth": 3, "weak_labels": 2, "train_student": 3,
                      "evaluate": 6, "summarize": 1}
    snakemake(workdir, target, *ONE_THREAD, "--configfile", "generative.yaml")
    return workdir


def test_prepared_splits_hold_prompts_and_targets(generative_run: Path) -> None:
    data = generative_run / "results" / "data" / "toy" / "seed0"
    test = pd.read_parquet(data / "test.parquet")
    assert list(test.columns) == ["id", "prompt", "target"] and len(test) == 40
    assert list(pd.read_parquet(data / "unlabelled" / "train_w2s.parquet").columns) == ["id", "prompt"]
    balance = json.loads((data / "label_balance.json").read_text())
    assert balance["train_gt"]["n"] == 48 and 1 < balance["test"]["distinct_targets"] <= 8


def test_students_train_on_the_supervisors_generations_made_on_their_slice_only(generative_run: Path) -> None:
    seed = generative_run / "results" / "toy" / "seed0"
    train_w2s = pd.read_parquet(generative_run / "results" / "data" / "toy" / "seed0" / "unlabelled" / "train_w2s.parquet")
    # A run generates on train_w2s only where a student reads its weak labels: the weak model on slice 1, the
    # chain's first step on slice 2; the others on test alone.
    labelled = {"gt/weak": slice(0, 24), "w2s/xent/weak__mid": slice(24, 48)}
    for run in RUNS:
        predictions = pd.read_parquet(seed / run / "predictions.parquet").query("split == 'train_w2s'")
        assert predictions["id"].tolist() == train_w2s["id"].iloc[labelled.get(run, slice(0, 0))].tolist(), run
    for run, rows in labelled.items():
        labels = pd.read_parquet(seed / run / "weak_labels.parquet")
        predictions = pd.read_parquet(seed / run / "predictions.parquet").query("split == 'train_w2s'")
        assert labels["id"].tolist() == train_w2s["id"].iloc[rows].tolist(), run
        assert labels["prompt"].tolist() == train_w2s["prompt"].iloc[rows].tolist(), run
        assert labels["generation"].tolist() == [t if t.strip() else "" for t in predictions["generation"]], run
        assert "target" not in labels and "label" not in labels
        # The students it taught count its empty weak labels.
        student = {"gt/weak": "w2s/xent/weak__strong", "w2s/xent/weak__mid": "w2s/xent/weak__mid__strong"}[run]
        result = json.loads((seed / student / "metrics.json").read_text())
        assert (result["weak_labels_n"], result["weak_labels_empty"]) == (24, int(labels["empty"].sum())), run


def test_every_run_is_scored_by_exact_match_with_pgr_and_agreement(generative_run: Path) -> None:
    seed = generative_run / "results" / "toy" / "seed0"
    test = pd.read_parquet(generative_run / "results" / "data" / "toy" / "seed0" / "test.parquet").set_index("id")
    scores = {}
    for run in RUNS:
        result = json.loads((seed / run / "metrics.json").read_text())
        generated = pd.read_parquet(seed / run / "predictions.parquet").query("split == 'test'").set_index("id")
        answers = generated["generation"].str.split().str[0].fillna("")
        # An empty answer is never right; the toy targets are letters, never empty.
        assert result["accuracy"] == pytest.approx((answers == test.loc[answers.index, "target"]).mean()), run
        assert (result["task_kind"], result["auroc"], result["n_test"]) == ("generative", None, 40), run
        assert result["auroc_undefined_reason"].startswith("AUROC does not apply to a generative task"), run
        scores[run] = result
    chain = scores["w2s/xent/weak__mid__strong"]
    assert chain["supervisor_run"] == "w2s/xent/weak__mid" and chain["weak_model"] == "weak"
    assert chain["weak_accuracy"] == scores["gt/weak"]["accuracy"]
    assert chain["ceiling_accuracy"] == scores["gt/strong"]["accuracy"]
    for run in RUNS[3:]:
        result = scores[run]
        gap = result["ceiling_accuracy"] - result["weak_accuracy"]
        assert result["pgr"] == pytest.approx((result["accuracy"] - result["weak_accuracy"]) / gap), run
        assert 0 <= result["agreement"] <= 1 and result["pgr_ci"] is not None and result["pgr_auroc"] is None, run
    summary = pd.read_csv(generative_run / "results" / "summary.csv").set_index("run")
    assert summary.loc["w2s/xent/weak__strong", "pgr"] == pytest.approx(scores["w2s/xent/weak__strong"]["pgr"])
    print({run: {k: scores[run].get(k) for k in ("accuracy", "pgr", "agreement")} for run in RUNS})


def test_the_report_tables_name_the_generative_task(generative_run: Path) -> None:
    from w2s.report.aggregation import with_selection_marked
    from w2s.report.tables import ground_truth_table

    summary = with_selection_marked(pd.read_csv(generative_run / "results" / "summary.csv"))
    table = ground_truth_table(summary)
    assert set(table["task"]) == {"generative, exact match"}
    assert set(table["AUROC kind"]) == {"none (generative: exact match)"}
    assert sorted(table["model"]) == ["mid", "strong", "weak"]
