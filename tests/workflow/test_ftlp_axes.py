"""ft(weak) + lp(gt) and the data axes: metrics worked out by hand, nested subsets, config checks, the exact
jobs they plan, and a tiny end-to-end run of their rules."""

from __future__ import annotations

import json
import re
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from safetensors.torch import load_file
from helpers import (
    CEILING_PROBS,
    EVALUATION_CONTEXT,
    STUDENT_PROBS,
    WEAK_PROBS,
    planned_jobs,
    run_evaluate,
    run_workflow,
    snakemake,
    tiny_config,
    write_predictions,
)

from w2s.evaluation.summary import pair_means, run_table
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.training.probe import choose_l2
from w2s.training.rows import nested_subset
from w2s.training.settings import ProbeSettings

# ft(weak) + lp(gt)'s predictions: wrong on row 6 only -> 7/8 (the student's 6/8, the weak's 5/8, the ceiling's 8/8).
FTLP = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.6, 0.1]
FTLP_CONTEXT = {**EVALUATION_CONTEXT, "run": "ftlp/xent/gpt2__gpt2-medium", "kind": "ft_weak_lp_gt",
                "model": "gpt2-medium", "student_run": "w2s/xent/gpt2__gpt2-medium"}


def ftlp_predictions(tmp_path: Path) -> dict[str, str]:
    roles = (("self", FTLP), ("student", STUDENT_PROBS), ("weak", WEAK_PROBS), ("ceiling", CEILING_PROBS))
    return {role: write_predictions(tmp_path / f"{role}.parquet", probs, shuffle_seed=i)
            for i, (role, probs) in enumerate(roles)}


def test_ft_weak_lp_gt_metrics_by_hand(tmp_path: Path) -> None:
    result = run_evaluate(tmp_path, ftlp_predictions(tmp_path), FTLP_CONTEXT)
    assert result["accuracy"] == 7 / 8 and result["student_accuracy"] == 6 / 8
    assert (result["weak_accuracy"], result["ceiling_accuracy"]) == (5 / 8, 1.0)
    # PGR = (acc - 5/8) / (1 - 5/8): (7/8 - 5/8) / (3/8) = 2/3 for the probe, (6/8 - 5/8) / (3/8) = 1/3 for the student.
    assert result["pgr"] == pytest.approx(2 / 3) and result["student_pgr"] == pytest.approx(1 / 3)
    assert result["pgr_ci"][0] <= 2 / 3 <= result["pgr_ci"][1]
    assert "agreement" not in result  # it has no supervisor


def test_ft_weak_lp_gt_needs_its_student(tmp_path: Path) -> None:
    predictions = {k: v for k, v in ftlp_predictions(tmp_path).items() if k != "student"}
    with pytest.raises(ValueError, match=r"ft_weak_lp_gt run ftlp/xent/gpt2__gpt2-medium needs \['student', 'weak', "
                                         r"'ceiling'\] predictions, got \['weak', 'ceiling'\]"):
        run_evaluate(tmp_path, predictions, FTLP_CONTEXT)


def test_nested_subsets_are_seeded_ordered_and_nested() -> None:
    rows = pd.DataFrame({"row": np.arange(40), "soft_label": list(np.eye(2)[np.arange(40) % 2])})
    small, large = nested_subset(rows, 10, seed=3), nested_subset(rows, 25, seed=3)
    assert len(small) == 10 and len(large) == 25
    assert set(small["row"]) < set(large["row"])
    assert small["row"].is_monotonic_increasing
    assert small["row"].tolist() == nested_subset(rows, 10, seed=3)["row"].tolist()
    assert small["row"].tolist() != nested_subset(rows, 10, seed=4)["row"].tolist()
    with pytest.raises(ValueError, match="a data axis asks for 40 of 40 training rows; give fewer than 40"):
        nested_subset(rows, 40, seed=3)


def test_axis_values_must_subsample(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    config = tiny_config(tiny_models, tmp_path)
    config["axes"] = {"n_weak_labels": [6, 12]}
    with pytest.raises(w2s_validation.ConfigError, match=r"axes.n_weak_labels has 12, but dataset 'sst2' has 12 rows in "
                                                     r"the first slice of train_w2s \(n_train 48, w2s_slices 2\)"):
        w2s_validation.validate_config(config, w2s_schema.SHIPPED_SCHEMA)
    config["axes"] = {"n_gt_rows": [24]}
    with pytest.raises(w2s_validation.ConfigError, match="axes.n_gt_rows has 24, but dataset 'sst2' has 24 rows in "
                                                     "train_gt"):
        w2s_validation.validate_config(config, w2s_schema.SHIPPED_SCHEMA)
    # 48 rows: 24 train_gt, 24 train_w2s in 2 slices of 12; 49 rows: 25 train_w2s in slices of 12 and 13.
    assert [w2s_experiment.slice_rows(49, 2, i) for i in (1, 2)] == [12, 13]


def test_ft_weak_lp_gt_probes_a_finetuned_student_and_keeps_a_probe_students_settings(
        tiny_models: dict[str, Path], tmp_path: Path) -> None:
    config = w2s_schema.apply_defaults(tiny_config(tiny_models, tmp_path), w2s_schema.SHIPPED_SCHEMA)
    mid = w2s_experiment.ft_weak_lp_gt_params(config, "mid")  # full finetuning, one L2 grid of 11 strengths
    assert (mid["mode"], mid["model_selection"], mid["pooling"], mid["holdout_frac"]) == (
        "probe", "weak_holdout", "last", 0.25)
    assert len(mid["probe"]["l2_grid"]) == 11 and "lr" not in mid
    assert w2s_experiment.ft_weak_lp_gt_params(config, "big") == w2s_experiment.training_job_params(config, "big")


def test_loss_tables_leave_out_data_axis_runs() -> None:
    base = {"dataset": "d", "seed": 0, "kind": "student", "loss": "xent", "chain_length": 2, "weak_model": "a",
            "model": "b", "weak_accuracy": 0.6, "ceiling_accuracy": 0.8, "auroc": 0.7, "weak_auroc": 0.6,
            "ceiling_auroc": 0.8}
    runs = run_table([{**base, "run": "w2s/xent/a__b", "accuracy": 0.7},
                      {**base, "run": "w2s/xent/a__b/n_weak_labels6", "accuracy": 0.62,
                       "data_axis": "n_weak_labels", "n_weak_labels": 6}])
    assert pair_means(runs)[["run", "pgr"]].to_dict("records") == [{"run": "w2s/xent/a__b", "pgr": pytest.approx(0.5)}]


def axes_config(models: dict[str, Path], data_dir: Path) -> dict:
    """The tiny workflow cut to one pair, small (LoRA) -> mid (full finetuning), one loss, and the new rules."""
    config = tiny_config(models, data_dir)
    del config["chains"], config["prompting"]
    config.update({"ladder": ["small", "mid"], "losses": {"xent": {}}, "analyses": {"ft_weak_lp_gt": True},
                   "axes": {"n_weak_labels": [6], "n_gt_rows": [12]}})
    return config


def test_axes_and_ft_weak_lp_gt_plan_exactly_their_jobs(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    config = tiny_config(tiny_models, tmp_path)
    config.update({"analyses": {"ft_weak_lp_gt": True}, "axes": {"n_weak_labels": [6], "n_gt_rows": [12]}})
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    dry_run = snakemake(tmp_path, "--configfile", "config.yaml", "-n").stdout
    jobs = planned_jobs(dry_run)
    seed_dir = "results/sst2/seed0"
    pairs = ("small__mid", "small__big", "mid__big")
    new = Counter(
        [("train_ground_truth_n_gt_rows", f"{seed_dir}/gt/{m}/n_gt_rows12/checkpoint") for m in ("small", "mid")]
        + [("weak_labels", f"{seed_dir}/gt/{m}/n_gt_rows12/weak_labels.parquet") for m in ("small", "mid")]
        + [(f"train_student_{axis}", f"{seed_dir}/w2s/{loss}/{pair}/{axis}{n}/checkpoint")
           for axis, n in (("n_gt_rows", 12), ("n_weak_labels", 6)) for loss in ("xent", "logconf") for pair in pairs]
        # ft(weak) + lp(gt) of the finetuned student mid only: big is a probe, whose ground-truth probe on its own
        # frozen features would be big's ceiling (w2s.pipeline.runs.ft_weak_lp_gt_runs).
        + [(rule, f"{seed_dir}/ftlp/{loss}/small__mid/{output}") for loss in ("xent", "logconf")
           for rule, output in (("embed_student_features", "features.safetensors"),
                                ("train_ft_weak_lp_gt", "checkpoint"), ("evaluate", "metrics.json"))]
        + [("evaluate", f"{seed_dir}/gt/{m}/n_gt_rows12/metrics.json") for m in ("small", "mid")]
        + [("evaluate", f"{seed_dir}/w2s/{loss}/{pair}/{axis}{n}/metrics.json")
           for axis, n in (("n_gt_rows", 12), ("n_weak_labels", 6)) for loss in ("xent", "logconf") for pair in pairs])
    (tmp_path / "plain.yaml").write_text(yaml.safe_dump(tiny_config(tiny_models, tmp_path)))
    plain = planned_jobs(snakemake(tmp_path, "--configfile", "plain.yaml", "-n").stdout)
    assert jobs - plain == new and plain - jobs == Counter()
    # ft(weak) + lp(gt) fits on the finetuned student's own features, embedded from its checkpoint.
    (ftlp_inputs,) = re.findall(rf"^rule train_ft_weak_lp_gt:\n    input: (.*)\n    output: {seed_dir}/ftlp/xent/small__mid/",
                                dry_run, flags=re.M)
    assert f"{seed_dir}/ftlp/xent/small__mid/features.safetensors" in ftlp_inputs.split(", ")
    # Its job is a probe head whatever the student's mode: the probe head's resources, in one process,
    # not those of mid's full finetuning.
    resources = {rule: dict(kv.split("=") for kv in line.split(", ")) for rule, line in re.findall(
        rf"^rule (train_ft_weak_lp_gt|train_student):\n(?:    .*\n)*?    output: {seed_dir}/(?:ftlp|w2s)/xent/small__mid/"
        r"checkpoint.*\n(?:    .*\n)*?    resources: (.*)$", dry_run, flags=re.M)}
    assert {k: resources["train_ft_weak_lp_gt"][k] for k in ("gpu", "mem_mb", "runtime", "processes")} == {
        "gpu": "0", "mem_mb": "2000", "runtime": "30", "processes": "1"}
    assert resources["train_student"]["mem_mb"] != "2000"


@pytest.fixture(scope="module")
def axes_run(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("axes")
    return run_workflow(workdir, axes_config(tiny_models, workdir))


def test_ft_weak_lp_gt_is_a_ground_truth_probe_on_the_students_own_features(axes_run: Path,
                                                                            tiny_models: dict[str, Path]) -> None:
    from transformers import AutoModel

    from w2s.models.text import TextClassifier

    seed_dir = axes_run / "results/sst2/seed0"
    features = load_file(seed_dir / "ftlp/xent/small__mid/features.safetensors")
    # The features are the finetuned student's pooled states, not the pretrained model's.
    student = TextClassifier(AutoModel.from_pretrained(seed_dir / "w2s/xent/small__mid/checkpoint/backbone"), "last")
    pretrained = TextClassifier(AutoModel.from_pretrained(tiny_models["tiny-gpt2"]), "last")
    test = pd.read_parquet(axes_run / "results/data/sst2/seed0/unlabelled/test.parquet")
    from transformers import AutoTokenizer

    tokens = AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"])(test["text"].tolist()[:1], return_tensors="pt")
    with torch.no_grad():
        own = student.features(tokens["input_ids"], tokens["attention_mask"])
        before = pretrained.features(tokens["input_ids"], tokens["attention_mask"])
    torch.testing.assert_close(features["test"][:1], own, rtol=1e-4, atol=1e-5)
    assert not torch.allclose(own, before, atol=1e-3)
    # A probe fit directly on those features with train_gt's labels, chosen as the job does, predicts the same.
    config = yaml.safe_load((axes_run / "config.yaml").read_text())
    params = w2s_experiment.ft_weak_lp_gt_params(w2s_schema.apply_defaults(config, w2s_schema.SHIPPED_SCHEMA), "mid")
    labels = pd.read_parquet(axes_run / "results/data/sst2/seed0/train_gt.parquet")["label"].to_numpy()
    order = np.random.default_rng(0).permutation(len(labels))
    n_holdout = int(round(params["holdout_frac"] * len(labels)))
    rows = np.concatenate([order[n_holdout:], order[:n_holdout]])
    points, chosen = choose_l2(features["train_gt"][torch.tensor(rows)], np.eye(2)[labels[rows]],
                               np.arange(len(labels) - n_holdout, len(labels)), labels[order[:n_holdout]], "xent", {},
                               ProbeSettings.from_params(params["probe"]), torch.device("cpu"))
    predictions = pd.read_parquet(seed_dir / "ftlp/xent/small__mid/predictions.parquet")
    job_test = np.stack(predictions[predictions["split"] == "test"]["probs"].to_numpy())
    np.testing.assert_allclose(job_test, points[chosen].fit.probs(features["test"]), atol=1e-6)
    metrics = json.loads((seed_dir / "ftlp/xent/small__mid/metrics.json").read_text())
    student_metrics = json.loads((seed_dir / "w2s/xent/small__mid/metrics.json").read_text())
    assert metrics["student_accuracy"] == student_metrics["accuracy"]
    assert metrics["ceiling_accuracy"] == student_metrics["ceiling_accuracy"]


def test_data_axes_train_on_nested_rows_and_reach_the_summary_and_report(axes_run: Path) -> None:
    seed_dir = axes_run / "results/sst2/seed0"
    summary = pd.read_csv(axes_run / "results/summary.csv").set_index("run")
    axis_rows = summary.loc[["gt/small", "gt/small/n_gt_rows12", "w2s/xent/small__mid",
                             "w2s/xent/small__mid/n_gt_rows12", "w2s/xent/small__mid/n_weak_labels6"],
                            ["data_axis", "n_gt_rows", "n_weak_labels"]]
    assert axis_rows.astype(object).fillna("-").values.tolist() == [["-", 24, "-"], ["n_gt_rows", 12, "-"], ["-", 24, 12],
                                                     ["n_gt_rows", 12, 12], ["n_weak_labels", 24, 6]]
    # PGR against the weak model that labelled the data: small on 12 rows, for the n_gt_rows student.
    student = summary.loc["w2s/xent/small__mid/n_gt_rows12"]
    assert student["weak_accuracy"] == summary.loc["gt/small/n_gt_rows12", "accuracy"]
    assert student["supervisor_run"] == "gt/small/n_gt_rows12"
    assert summary.loc["ftlp/xent/small__mid", "student_accuracy"] == summary.loc["w2s/xent/small__mid", "accuracy"]
    # The logs say how many rows each trained on: 12 of train_gt (3 held out), 6 weak labels.
    assert "data axis: trains on 12 of its train_gt rows" in (
        axes_run / "results/logs/sst2/seed0/gt/small/n_gt_rows12.log").read_text()
    assert "data axis: trains on 6 of its train_w2s rows" in (
        axes_run / "results/logs/sst2/seed0/w2s/xent/small__mid/n_weak_labels6.log").read_text()
    history = pd.read_parquet(seed_dir / "w2s/xent/small__mid/n_weak_labels6/history.parquet")
    assert len(history) > 0
    html = (axes_run / "results/report/report.html").read_text(encoding="utf-8")
    assert "PGR against the amount of data" in html and "ft(weak) + lp(gt): what the student" in html
    assert {p.name for p in (axes_run / "results/report/figures").iterdir()} >= {"data_axes.png", "ft_weak_lp_gt.png"}
    result = snakemake(axes_run, "--configfile", "config.yaml", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr
