"""Methods in the workflow (rules/methods.smk): a loss through the method interface equals its student exactly, in
probe and in full finetuning and along a chain; built-in methods and a user's method from a file outside the
repository (on the demo config) reach the summary with their provenance; a params change reruns exactly that method's runs;
and a method that reads labels by relative path fails, one that globs results/ finds none."""

from __future__ import annotations

import hashlib
import json
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml

from helpers import REPO, lengthened, planned_jobs, snakemake, sst2_rows, tiny_config, write_jsonl
from w2s.data import labels as class_probs

LINEAGES = ("small__big", "small__mid", "small__mid__big")
SEED_DIR = "results/sst2/seed0"

# A method that reads a labelled split by the path it has outside the shadow folder.
PEEK_BY_PATH = """
import pandas as pd

def peek(inputs):
    labelled = pd.read_parquet("results/data/sst2/seed0/test.parquet")
    return {"test": labelled, "train_w2s": labelled}
"""
# A method that searches the results folder for any file with a label column, and refuses to go on if it finds one.
PEEK_BY_GLOB = """
from pathlib import Path

import pandas as pd

def peek(inputs):
    found = [str(p) for p in Path(".").glob("**/*.parquet") if "label" in pd.read_parquet(p).columns]
    if found:
        raise RuntimeError(f"labelled files in reach: {found}")
    return inputs.strong.train(inputs.weak_labels, name="after-search")
"""


def methods_config(tiny_models: dict[str, Path], data_dir: Path) -> dict:
    data_dir.mkdir(exist_ok=True)
    config = tiny_config(tiny_models, data_dir)
    config["models"]["small"]["resources"] = {"gpu": 0}  # a method runs in one process
    config["models"]["small"]["training"] = {"mode": "probe", "pooling": "mean", "probe": {"l2_grid": [0.1]}}
    config["ladder"] = ["small", "big"]
    # An out-of-distribution test split from a file of its own, which every run predicts and is scored on.
    ood = write_jsonl(lengthened(sst2_rows(40, seed=3)), data_dir / "ood.jsonl")
    config["datasets"]["sst2"]["ood_test"] = {"data_files": str(ood), "n_test": 16}
    config["losses"] = {"xent": {}}
    # Its prompt runs are not built (only_runs); its max_length (32) is the prompt limit the tiny GPT-2 fits.
    config["methods"] = {
        "xent-api": {"entry": "w2s.methods.loss:train_with_loss", "params": {"loss": "xent"}},
        "confident": {"entry": "w2s.methods.confident:confident", "params": {"quantile": 0.5}},
        "resampled": {"entry": "w2s.methods.resampling:resample", "params": {"fraction": 0.5}},
        # Prompting needs a causal LM: mid (tiny GPT-2) only, so its one lineage is small → mid.
        "elicited": {"entry": "w2s.methods.elicitation:elicit", "params": {"shots": 2}, "models": ["mid"]},
        "ccs": {"entry": "w2s.methods.ccs:ccs", "params": {"restarts": 2, "steps": 50}},
    }
    # Every lineage of xent, through the interface and not; the other methods on the probe pair.
    config["only_runs"] = ["*/gt/*", "*/w2s/xent/*", "*/w2s/xent-api/*", "*/w2s/confident/small__big",
                           "*/w2s/resampled/small__big", "*/w2s/elicited/*", "*/w2s/ccs/small__big"]
    return config


def probs_of(workdir: Path, run: str) -> dict[str, np.ndarray]:
    frame = pd.read_parquet(workdir / SEED_DIR / run / "predictions.parquet")
    return {split: class_probs.read_column(rows, "probs", run) for split, rows in frame.groupby("split")}


@pytest.fixture(scope="module")
def method_run(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The workflow with the built-in methods above."""
    workdir = tmp_path_factory.mktemp("methods")
    (workdir / "config.yaml").write_text(yaml.safe_dump(methods_config(tiny_models, workdir / "data")))
    snakemake(workdir, "--configfile", "config.yaml")
    return workdir


def test_xent_through_the_interface_equals_the_xent_student_exactly(method_run: Path) -> None:
    # small__big: a probe; small__mid: full finetuning; small__mid__big: a chain step on the method's own labels.
    for lineage in LINEAGES:
        student, method = probs_of(method_run, f"w2s/xent/{lineage}"), probs_of(method_run, f"w2s/xent-api/{lineage}")
        assert set(method) == {"test", "train_w2s", "ood_test"}
        for split in ("test", "train_w2s", "ood_test"):
            assert np.array_equal(student[split], method[split]), (lineage, split)
    chained = pd.read_parquet(method_run / SEED_DIR / "w2s/xent-api/small__mid/weak_labels.parquet")
    assert len(chained) > 0


def test_every_method_reaches_the_summary_for_every_lineage_with_its_provenance(method_run: Path) -> None:
    summary = pd.read_csv(method_run / "results" / "summary.csv")
    students = summary[summary["kind"] == "student"]
    assert set(students["run"]) == {f"w2s/{method}/{lineage}" for method in ("xent", "xent-api")
                                    for lineage in LINEAGES} | {"w2s/confident/small__big", "w2s/resampled/small__big",
                                                                "w2s/elicited/small__mid", "w2s/ccs/small__big"}
    assert students["pgr"].notna().any()
    record = json.loads((method_run / SEED_DIR / "w2s/confident/small__big/checkpoint/method.json").read_text())
    source = REPO / "src" / "w2s" / "methods" / "confident.py"
    assert record == {"entry": "w2s.methods.confident:confident", "file": str(source),
                      "sha256": hashlib.sha256(source.read_bytes()).hexdigest(), "version": record["version"],
                      "params": {"quantile": 0.5}}
    assert (method_run / "results" / "report" / "report.html").stat().st_size > 0


def test_every_method_is_on_the_leaderboard_against_xent(method_run: Path) -> None:
    """xent through the interface predicts what xent does, so its paired difference and interval are exactly 0;
    every other method has a cell per lineage it ran and a row across datasets."""
    board = pd.read_csv(method_run / "results" / "leaderboard.csv")
    cells = board[board["scope"] == "dataset"].set_index(["training", "lineage"])
    for lineage in ("small → big", "small → mid", "small → mid → big"):
        assert cells.loc[("xent-api", lineage), ["vs_xent_accuracy_diff", "vs_xent_ci_low", "vs_xent_ci_high"]
                         ].tolist() == [0.0, 0.0, 0.0]
    assert {("confident", "small → big"), ("resampled", "small → big"), ("elicited", "small → mid"),
            ("ccs", "small → big")} <= set(cells.index)
    assert np.isfinite(cells.loc[("elicited", "small → mid"), "vs_xent_accuracy_diff"])
    # Every method predicted the out-of-distribution split and is scored there too.
    assert cells.loc[("xent-api", "small → big"), ["ood_vs_xent_accuracy_diff", "ood_vs_xent_ci_low"]].tolist() == [0.0, 0.0]
    assert cells.xs("small → big", level="lineage")["ood_accuracy_mean"].notna().all()
    across = board[board["scope"] == "median across datasets"]
    assert set(across["training"]) == {"xent", "xent-api", "confident", "resampled", "elicited", "ccs"}
    page = (method_run / "results" / "report" / "report.html").read_text()
    assert 'id="leaderboard-median"' in page and "<td>elicited</td>" in page


def test_the_example_method_runs_from_outside_the_repository_on_the_demo_config(tmp_path: Path) -> None:
    """The path a user takes (docs/methods.md, "Add a method"): the example copied to a folder of its own, named by
    its absolute path in the demo config, its run built with what it needs (the demo's real MiniLM and MPNet, on
    fewer snippets)."""
    outside = tmp_path / "my-methods"
    outside.mkdir()
    example = Path(shutil.copy(REPO / "examples" / "neighbour_smoothing.py", outside / "neighbour_smoothing.py"))
    workdir = tmp_path / "run"
    workdir.mkdir()
    config = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    config["datasets"]["vader_movies"].update(n_train=200, n_test=100)
    config["datasets"]["vader_movies"]["ood_test"]["n_test"] = 100
    config["methods"] = {"smoothed": {"entry": f"{example}:smooth", "params": {"k": 5}}}
    config["only_runs"] = ["vader_movies/seed0/w2s/smoothed/minilm__mpnet"]
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--configfile", "config.yaml")
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    row = summary[summary["run"] == "w2s/smoothed/minilm__mpnet"].iloc[0]
    assert 0.5 < row["accuracy"] <= 1.0 and np.isfinite(row["pgr"])
    record = json.loads((workdir / "results/vader_movies/seed0/w2s/smoothed/minilm__mpnet/checkpoint/method.json")
                        .read_text())
    assert record["file"] == str(example) and record["params"] == {"k": 5}
    board = pd.read_csv(workdir / "results" / "leaderboard.csv").set_index(["scope", "training"])
    cell = board.loc[("dataset", "smoothed")]
    assert cell["dataset"] == "vader_movies" and cell["pgr_mean"] == pytest.approx(row["pgr"])
    assert cell["vs_xent_ci_low"] <= cell["vs_xent_accuracy_diff"] <= cell["vs_xent_ci_high"]
    # Scored on the New York Times editorials too (the demo's out-of-distribution split).
    assert 0.5 < cell["ood_accuracy_mean"] <= 1.0 and np.isfinite(cell["ood_vs_xent_accuracy_diff"])
    assert "<td>smoothed</td>" in (workdir / "results" / "report" / "report.html").read_text()


def test_a_methods_params_change_reruns_exactly_its_runs(method_run: Path, tmp_path: Path) -> None:
    config = yaml.safe_load((method_run / "config.yaml").read_text())
    config["methods"]["confident"]["params"]["quantile"] = 0.25
    changed = tmp_path / "changed.yaml"
    changed.write_text(yaml.safe_dump(config))
    planned = snakemake(method_run, "-n", "--configfile", str(changed), cores=None).stdout
    jobs = planned_jobs(planned)
    trained = sorted(output for (rule, output) in jobs if rule in ("run_method", "train_student"))
    assert trained == [f"{SEED_DIR}/w2s/confident/small__big/checkpoint"]


def test_a_method_finds_no_labels_by_path_or_by_search(method_run: Path, tmp_path: Path) -> None:
    (method_run / "peek_by_path.py").write_text(PEEK_BY_PATH)
    (method_run / "peek_by_glob.py").write_text(PEEK_BY_GLOB)
    config = yaml.safe_load((method_run / "config.yaml").read_text())
    config["methods"] = {"by-path": {"entry": "peek_by_path.py:peek", "params": {}},
                         "by-glob": {"entry": "peek_by_glob.py:peek", "params": {}}}
    config["only_runs"] = ["*/w2s/by-*/small__big"]
    peeking = tmp_path / "peeking.yaml"
    peeking.write_text(yaml.safe_dump(config))
    targets = [f"{SEED_DIR}/w2s/{name}/small__big/predictions.parquet" for name in ("by-path", "by-glob")]
    result = snakemake(method_run, "--configfile", str(peeking), "--keep-going", *targets, check=False)
    assert result.returncode != 0
    # The labelled test split is where the method looked, beside the job; only the shadow folder hides it.
    assert (method_run / "results/data/sst2/seed0/test.parquet").is_file()
    log = (method_run / "results/logs/sst2/seed0/w2s/by-path/small__big.log").read_text()
    assert "FileNotFoundError: results/data/sst2/seed0/test.parquet" in log
    assert not (method_run / targets[0]).exists()
    assert (method_run / targets[1]).is_file()  # the search found no labelled file, so the method went on
