"""The Snakemake workflow for real: dry runs of both shipped configs, lint, and a tiny end-to-end
run on randomly initialised models followed by an incremental rerun."""

from __future__ import annotations

import json
import subprocess
import zipfile
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from browser import render_page
from helpers import HUB_TOKEN, LINEAGES, LOSSES, REPO, planned_jobs, run_workflow, snakemake, tiny_config

from w2s.data.splits import rows_sha256
from w2s.report.provenance import config_sha256


@pytest.fixture(scope="module")
def finished_run(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("pipeline")
    return run_workflow(workdir, tiny_config(tiny_models, workdir))


def test_full_run_builds_every_artifact(finished_run: Path) -> None:
    summary = pd.read_csv(finished_run / "results" / "summary.csv")
    expected_runs = {f"gt/{m}" for m in ("small", "mid", "big")} | {
        f"w2s/{loss}/{lineage}" for loss in LOSSES for lineage in LINEAGES
    } | {"prompt/mid/0shot", "prompt/mid/2shot"}
    assert set(summary["run"]) == expected_runs
    assert len(summary) == len(expected_runs)
    assert summary["n_test"].eq(24).all()
    assert summary["accuracy"].between(0, 1).all()
    chain_end = summary.set_index("run").loc["w2s/xent/small__mid__big"]
    assert chain_end["supervisor_run"] == "w2s/xent/small__mid"
    assert chain_end["lineage"] == "small → mid → big"
    assert chain_end["chain_length"] == 3
    assert (finished_run / "results" / "report" / "report.html").stat().st_size > 0
    assert (finished_run / "results" / "sst2" / "seed0" / "features" / "big.safetensors").exists()
    assert not (finished_run / "results" / "sst2" / "seed0" / "features" / "small.safetensors").exists()
    prompted = summary.set_index("run").loc["prompt/mid/2shot"]
    assert (prompted["kind"], prompted["mode"], prompted["shots"]) == ("prompt", "prompt", 2)


def test_truncation_counts_reach_every_trained_runs_metrics(finished_run: Path) -> None:
    """Sentences of five words and, every third one, nine (one token a word): the weak model's
    max_length of 8 cuts the nine-word ones, as many as each split drew (counted by hand in the
    prepared splits: 9 of 24 in train_gt, 11 of 24 in train_w2s, 8 of 24 in test); 16 cuts none."""
    seed_dir = finished_run / "results" / "sst2" / "seed0"
    keys = ("max_length", "train_gt_truncated", "train_w2s_truncated", "test_truncated")
    result = json.loads((seed_dir / "gt/small/metrics.json").read_text())
    assert {k: result[k] for k in keys} == {"max_length": 8, "train_gt_truncated": 9, "train_w2s_truncated": 11,
                                            "test_truncated": 8}
    for run in ("gt/mid", "gt/big", "w2s/xent/small__mid__big"):
        result = json.loads((seed_dir / run / "metrics.json").read_text())
        assert {k: result[k] for k in keys} \
            == {"max_length": 16, "train_gt_truncated": 0, "train_w2s_truncated": 0, "test_truncated": 0}, run
    assert "test_truncated" not in json.loads((seed_dir / "prompt/mid/0shot/metrics.json").read_text())
    summary = pd.read_csv(finished_run / "results" / "summary.csv").set_index("run")
    assert summary.loc[["gt/small", "gt/mid"], "test_truncated"].tolist() == [8, 0]


def test_the_hub_token_is_written_to_no_file(finished_run: Path) -> None:
    """Results, logs, benchmarks, provenance, the report and Snakemake's own records."""
    files = [p for p in finished_run.rglob("*") if p.is_file()]
    assert len(files) > 100
    assert [str(p.relative_to(finished_run)) for p in files if HUB_TOKEN.encode() in p.read_bytes()] == []


def test_modes_and_model_selection_reach_the_artifacts(finished_run: Path) -> None:
    seed_dir = finished_run / "results" / "sst2" / "seed0"
    # LoRA saves the adapter, not a copy of the backbone.
    adapter = seed_dir / "gt" / "small" / "checkpoint" / "backbone"
    assert (adapter / "adapter_config.json").exists() and not (adapter / "model.safetensors").exists()
    # gt/small trained sharded in two processes (resources.processes), each of which logged its 6 steps: 24
    # train_gt rows in batches of 8 for 2 epochs, no holdout.
    log = (finished_run / "results" / "logs" / "sst2" / "seed0" / "gt" / "small.log").read_text()
    assert all(f"rank {rank}/2 INFO w2s: trained 6 steps" in log for rank in (0, 1))
    small = pd.read_parquet(seed_dir / "gt" / "small" / "history.parquet")
    assert len(small) == 6 and small["device"].iloc[0].endswith(", 2 processes")
    # 24 train_gt rows, a quarter held out: 18 train in batches of 8 for 2 epochs, so
    # ceil(36 / 8) = 5 steps; 3 steps an epoch, so the holdout is scored after step 2 and the last.
    history = pd.read_parquet(seed_dir / "gt" / "mid" / "history.parquet")
    assert len(history) == 5
    assert history["selection_score"].notna().tolist() == [False, False, True, False, True]
    summary = pd.read_csv(finished_run / "results" / "summary.csv").set_index("run")
    assert summary.loc["w2s/xent/small__mid", "model_selection"] == "weak_holdout"
    assert summary.loc["w2s/xent/small__mid", "mode"] == "full"
    assert summary.loc["gt/small", "mode"] == "lora"
    assert not summary["uses_ground_truth_selection"].any()


def test_each_chain_step_labels_its_own_slice(finished_run: Path) -> None:
    seed_dir = finished_run / "results" / "sst2" / "seed0"
    train_w2s = pd.read_parquet(finished_run / "results" / "data" / "sst2" / "seed0" / "train_w2s.parquet")
    first = pd.read_parquet(seed_dir / "gt" / "small" / "weak_labels.parquet")
    second = pd.read_parquet(seed_dir / "w2s" / "xent" / "small__mid" / "weak_labels.parquet")
    assert list(first.columns) == ["id", "soft_label", "hard_label", "train_w2s_sha256"]
    assert list(first["id"]) == list(train_w2s["id"][:12])
    assert list(second["id"]) == list(train_w2s["id"][12:])
    assert set(first["train_w2s_sha256"]) == set(second["train_w2s_sha256"]) == {rows_sha256(train_w2s)}
    assert (np.stack(first["soft_label"])[:, 1] > 0.5).astype(int).tolist() == first["hard_label"].tolist()


def test_student_metrics_use_its_weak_root_and_ceiling(finished_run: Path) -> None:
    seed_dir = finished_run / "results" / "sst2" / "seed0"
    student = json.loads((seed_dir / "w2s" / "logconf" / "small__mid__big" / "metrics.json").read_text())
    weak = json.loads((seed_dir / "gt" / "small" / "metrics.json").read_text())
    ceiling = json.loads((seed_dir / "gt" / "big" / "metrics.json").read_text())
    assert student["weak_accuracy"] == weak["accuracy"]
    assert student["ceiling_accuracy"] == ceiling["accuracy"]
    if ceiling["accuracy"] > weak["accuracy"]:
        expected = (student["accuracy"] - weak["accuracy"]) / (ceiling["accuracy"] - weak["accuracy"])
        assert student["pgr"] == pytest.approx(expected)
    else:
        assert student["pgr"] is None and "not above" in student["pgr_undefined_reason"]


TRAINED_RUNS = [f"gt/{m}" for m in ("small", "mid", "big")] + [
    f"w2s/{loss}/{lineage}" for loss in LOSSES for lineage in LINEAGES]


def test_training_curves_hold_every_step_of_every_trained_run(finished_run: Path) -> None:
    curves = pd.read_parquet(finished_run / "results" / "training_curves.parquet")
    seed_dir = finished_run / "results" / "sst2" / "seed0"
    steps = {run: len(pd.read_parquet(seed_dir / run / "history.parquet")) for run in TRAINED_RUNS}
    assert curves.groupby("run").size().to_dict() == steps
    mid = curves[curves["run"] == "gt/mid"]
    assert mid["holdout_accuracy"].notna().tolist() == [False, False, True, False, True]
    assert curves.loc[curves["run"] == "w2s/logconf/small__mid__big", "lineage"].unique().tolist() == [
        "small → mid → big"]
    # One CPU for every run; the sharded gt/small's processes had a thread each, the others the job's two.
    assert curves["device"].str.split(",").str[0].nunique() == 1 and curves["device"].iloc[0].startswith("CPU: ")
    assert set(curves.loc[curves["run"] == "gt/small", "device"].str.split(", ", n=1).str[1]) == {
        "1 threads, 2 processes"}


def test_provenance_records_code_config_data_and_every_model_job(finished_run: Path) -> None:
    record = json.loads((finished_run / "results" / "report" / "provenance.json").read_text())
    head = subprocess.run(["git", "-C", str(REPO), "rev-parse", "HEAD"], capture_output=True, text=True,
                          check=True).stdout.strip()
    assert record["git"]["commit"] == head
    assert record["config_sha256"] == config_sha256(yaml.safe_load((finished_run / "config.yaml").read_text()))
    # 11 trainings, 2 prompting runs and the features of the probe model.
    prompts = ["sst2/seed0/prompt/mid/0shot", "sst2/seed0/prompt/mid/2shot"]
    expected = sorted([f"sst2/seed0/{run}" for run in TRAINED_RUNS] + prompts + ["sst2/seed0/embed_features/big"])
    assert [a["artifact"] for a in record["artifacts"]] == expected
    assert all(a["wall_s"] > 0 for a in record["artifacts"])
    assert [f["path"] for f in record["data_files"]] == [
        f"results/data/sst2/seed0/{name}" for name in
        ("label_balance.json", "source.json", "test.parquet", "train_gt.parquet", "train_w2s.parquet",
         "unlabelled/test.parquet", "unlabelled/train_gt.parquet", "unlabelled/train_w2s.parquet")]
    # The data was read from local files in the hub schema: the record names each by its sha256.
    (source,) = record["data_sources"]
    assert (source["dataset"], source["hub_id"], source["revision"]) == ("sst2", None, None)
    assert sorted(source["local_files"]) == ["test", "train"]
    assert all(len(digest) == 64 for digest in source["local_files"].values())
    # Every model with where it was read from: the tiny models are local folders, with no hub revision.
    models = yaml.safe_load((finished_run / "config.yaml").read_text())["models"]
    assert {m["model"]: (m["hub_id"], m["revision"], m["local"]) for m in record["model_sources"]} == {
        name: (None, None, entry["path"]) for name, entry in models.items()}
    assert record["dvc_data"]["recorded"] is False


def test_report_renders_every_view_offline_in_chromium(finished_run: Path) -> None:
    page = render_page(finished_run / "results" / "report" / "report.html")
    # "regularisation": the probe "big" is the strong model of two direct students.
    assert page.figures == {"accuracy", "pgr", "regularisation", "agreement", "chains", "curves"}, page.describe()
    assert page.rendered == page.figures, page.describe()
    assert (page.console_errors, page.console_warnings, page.page_errors, page.blocked_requests) == (
        [], [], [], []), page.describe()
    html = (finished_run / "results" / "report" / "report.html").read_text(encoding="utf-8")
    assert "<h2>Provenance</h2>" in html


def test_snakemake_report_packs_figures_and_tables(finished_run: Path) -> None:
    snakemake(finished_run, "--configfile", "config.yaml", "--report", "report.zip")
    with zipfile.ZipFile(finished_run / "report.zip") as archive:
        names = {Path(name).name for name in archive.namelist()}
    assert {"accuracy.png", "pgr.png", "agreement.png", "chains.png", "curves.png", "report.html",
            "summary.csv", "summary_seeds.csv", "summary_losses.csv", "reference_comparison.csv"} <= names


def test_rerun_after_finishing_plans_nothing(finished_run: Path) -> None:
    result = snakemake(finished_run, "--configfile", "config.yaml", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr


def reversed_keys(value: object) -> object:
    """The same config with every mapping's keys in reverse order; lists keep theirs."""
    if isinstance(value, dict):
        return {key: reversed_keys(value[key]) for key in reversed(list(value))}
    if isinstance(value, list):
        return [reversed_keys(item) for item in value]
    return value


def test_reordering_config_keys_reruns_nothing(finished_run: Path, tiny_models: dict[str, Path]) -> None:
    reordered = reversed_keys(tiny_config(tiny_models, finished_run))
    (finished_run / "reordered.yaml").write_text(yaml.safe_dump(reordered, sort_keys=False))
    result = snakemake(finished_run, "--configfile", "reordered.yaml", "-n")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]


def test_changing_a_loss_hyperparameter_reruns_exactly_its_students(
    finished_run: Path, tiny_models: dict[str, Path]
) -> None:
    changed = tiny_config(tiny_models, finished_run, aux_coef=0.3)
    (finished_run / "changed.yaml").write_text(yaml.safe_dump(changed))
    result = snakemake(finished_run, "--configfile", "changed.yaml", "-n")
    base = "results/sst2/seed0/w2s/logconf"
    expected = Counter(
        [("train_student", f"{base}/{lineage}/checkpoint") for lineage in LINEAGES]
        + [("evaluate", f"{base}/{lineage}/metrics.json") for lineage in LINEAGES]
        + [("weak_labels", f"{base}/small__mid/weak_labels.parquet"),
           ("summarize", "results/summary.parquet"),
           ("training_curves", "results/training_curves.parquet"),
           ("leaderboard", "results/leaderboard.csv"),
           ("provenance", "results/report/provenance.json"),
           ("report", "results/report/report.html")]
    )
    assert planned_jobs(result.stdout) == expected


def test_demo_config_plans_every_artifact_kind(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "demo.yaml"), "-n")
    counts = Counter(rule for rule, _ in planned_jobs(result.stdout).elements())
    assert counts == {"fetch_vader_movies": 1, "prepare_data": 1, "prepare_ood_test": 1, "count_truncated": 3,
                      "embed_features": 3,
                      "train_ground_truth": 3, "weak_labels": 4, "train_student": 8,
                      "evaluate": 11, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
                      "report": 1}


def test_real_config_plans_the_whole_sweep_offline(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "config.yaml"), "-n")
    counts = Counter(rule for rule, _ in planned_jobs(result.stdout).elements())
    # 5 datasets; 8 models; 28 ladder pairs + 1 chain end, each with 2 losses; 7 ground-truth
    # supervisors + 1 chain step per loss labelling data; 2 prompted models at 0 and 5 shots; the
    # 4 Qwen-1 checkpoints converted once each.
    assert counts == {"convert_qwen1": 4, "prepare_data": 5, "count_truncated": 40, "train_ground_truth": 40, "train_student": 290,
                      "weak_labels": 45, "prompt_baseline": 20, "evaluate": 350, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
                      "report": 1}


def test_nlp_suite_config_plans_22_datasets_on_the_gpt2_ladder(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "nlp_suite.yaml"), "-n")
    counts = Counter(rule for rule, _ in planned_jobs(result.stdout).elements())
    # Per dataset: 4 ground-truth models, 6 pairs x 2 losses, 3 supervisors labelling slice 1.
    assert counts == {"prepare_data": 22, "count_truncated": 88, "train_ground_truth": 88, "train_student": 264,
                      "weak_labels": 66, "evaluate": 352, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
                      "report": 1}


def test_pretraining_axis_config_plans_four_pythia_checkpoints_under_pythia_1_4b(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "pretraining_axis.yaml"), "-n")
    jobs = planned_jobs(result.stdout)
    counts = Counter(rule for rule, _ in jobs.elements())
    # Per dataset (sciq, boolq): 5 ground-truth models, the ladder's 10 pairs x 2 losses, and the 4
    # checkpoints labelling slice 1; 5 + 20 evaluations.
    assert counts == {"prepare_data": 2, "count_truncated": 10, "train_ground_truth": 10, "train_student": 40,
                      "weak_labels": 8, "evaluate": 50, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
                      "report": 1}
    into_strong = {output.split("/checkpoint")[0] for rule, output in jobs
                   if rule == "train_student" and output.startswith("results/sciq/seed0/w2s/xent/")
                   and "__pythia-1.4b/" in output}
    assert into_strong == {f"results/sciq/seed0/w2s/xent/pythia-160m-step{step}__pythia-1.4b"
                           for step in (1000, 8000, 32000, 143000)}


def test_chess_config_plans_the_ladder_and_two_three_step_chains(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "chess.yaml"), "-n")
    jobs = planned_jobs(result.stdout)
    counts = Counter(rule for rule, _ in jobs.elements())
    # 8 ground-truth models; 28 ladder pairs + 2 new steps of each chain (its first step is a pair), with
    # xent; 7 supervisors labelling slice 1 and the 4 inner chain students labelling slices 2 and 3; the 4
    # Qwen-1 checkpoints converted once. No count_truncated: a generative job refuses a prompt longer than
    # its context instead of truncating it.
    assert counts == {"convert_qwen1": 4, "prepare_data": 1, "train_ground_truth": 8,
                      "train_student": 32, "weak_labels": 11, "evaluate": 40, "summarize": 1, "leaderboard": 1, "training_curves": 1,
                      "provenance": 1, "report": 1}
    chain_steps = {output.split("/checkpoint")[0] for rule, output in jobs
                   if rule == "train_student" and output.count("__") == 3}
    assert chain_steps == {"results/chess_puzzles/seed0/w2s/xent/gpt2__gpt2-medium__gpt2-large__gpt2-xl",
                           "results/chess_puzzles/seed0/w2s/xent/gpt2__gpt2-xl__qwen-7b__qwen-72b"}


def test_catalogue_config_plans_probes_lora_chains_losses_variants_supervisors_and_prompts(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "catalogue.yaml"), "-n")
    jobs = planned_jobs(result.stdout)
    counts = Counter(rule for rule, _ in jobs.elements())
    # 4 ground-truth models (3 probes, 1 LoRA); 4 simulated and 2 ensemble supervisors; 10 lineages (minilm and
    # the 6 supervisors into mpnet, minilm→smollm2 and its chain steps into mpnet and mpnet-lora) times 9 losses
    # (7 and two named logconf variants); slice labels from gt/minilm, the 6 supervisors and 9 chain steps.
    # ft(weak) + lp(gt) for the 9 LoRA students only, each embedding its own features: a probe student's would be
    # its ceiling.
    assert counts == {"fetch_vader_movies": 1, "prepare_data": 1, "count_truncated": 4, "embed_features": 3,
                      "train_ground_truth": 4, "simulate_supervisor": 4, "ensemble_supervisor": 2,
                      "train_student": 90, "weak_labels": 16, "prompt_baseline": 2, "train_ft_weak_lp_gt": 9,
                      "embed_student_features": 9, "evaluate": 111, "summarize": 1, "leaderboard": 1, "training_curves": 1,
                      "provenance": 1, "report": 1}
    lora_students = {output for rule, output in jobs if rule == "train_student" and "mpnet-lora" in output}
    assert len(lora_students) == 9
    assert {tuple(output.split("/")[4:6]) for rule, output in jobs if rule == "embed_student_features"} == \
        {tuple(output.split("/")[4:6]) for output in lora_students}
    assert {tuple(output.split("/")[4:6]) for rule, output in jobs if rule == "train_ft_weak_lp_gt"} == \
        {tuple(output.split("/")[4:6]) for output in lora_students}
    variants = {output.split("/")[4] for rule, output in jobs if rule == "train_student"}
    assert {"logconf", "logconf-0.25", "logconf-0.75"} <= variants


def test_lint_is_clean(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "demo.yaml"), "--lint", check=False)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Congratulations" in result.stdout + result.stderr


def test_unknown_loss_is_refused_before_any_job(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    config = tiny_config(tiny_models, tmp_path)
    config["losses"]["hinge"] = {}
    (tmp_path / "bad.yaml").write_text(yaml.safe_dump(config))
    result = snakemake(tmp_path, "--configfile", "bad.yaml", "-n", check=False)
    assert result.returncode != 0
    assert "unknown loss 'hinge'" in result.stderr and "logconf, product, window, xent" in result.stderr
    assert not (tmp_path / "results").exists()


def test_a_model_that_cannot_load_fails_its_job_and_leaves_no_output(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    config = tiny_config(tiny_models, tmp_path)
    config["models"]["mid"]["path"] = str(tmp_path / "no-such-model")
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    target = "results/sst2/seed0/gt/mid/predictions.parquet"
    result = snakemake(tmp_path, target, "--configfile", "config.yaml", check=False)
    assert result.returncode != 0
    log = (tmp_path / "results/logs/sst2/seed0/gt/mid.log").read_text()
    assert f"job failed: the model path '{tmp_path / 'no-such-model'}' is not a folder" in log
    run_dir = tmp_path / "results/sst2/seed0/gt/mid"
    assert not run_dir.exists() or not any(run_dir.iterdir())
    assert (tmp_path / "results/data/sst2/seed0/train_gt.parquet").exists()
