"""One checkout, one package: a finished run in a real git repository reruns nothing after a checkout of
another commit and back or a touch, only what a changed module reaches; a workflow that imports another
checkout's package says so; the schema is the workflow's own; provenance names uncommitted config and data."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers import REPO, copy_workflow, planned_jobs, snakemake, tiny_config

LOSSES_MODULE = "src/w2s/training/losses.py"


def git(checkout: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(checkout), "-c", "user.name=w2s", "-c", "user.email=w2s@example.org",
                           *args], check=True, capture_output=True, text=True).stdout


def snakemake_in(checkout: Path, *args: str, package: Path | None = None) -> subprocess.CompletedProcess:
    """Snakemake on the checkout's own Snakefile and config tiny.yaml, importing the w2s of `package` (a src/
    folder; the checkout's own by default)."""
    env = {**os.environ, "PYTHONPATH": str(package or checkout / "src")}
    env.pop("W2S_WORKFLOW_DIR", None)
    return snakemake(checkout, "--configfile", "tiny.yaml", *args, snakefile=checkout / "Snakefile", env=env)


def probe_config(models: dict[str, Path], data_dir: Path) -> dict:
    """The tests' tiny config cut to two probe-mode models and one loss, without prompting: a finished run of
    15 jobs, every rule's code input among them."""
    config = tiny_config(models, data_dir)
    probe = config["models"]["big"]
    config.update(models={"small": {**probe, "params_b": 0.1}, "big": probe}, ladder=["small", "big"], chains=[],
                  losses={"xent": {}})
    del config["prompting"]
    return config


@pytest.fixture(scope="module")
def finished_checkout(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict[str, object]:
    """A git repository of the workflow with its config committed and its data files untracked, two commits (the
    second edits training/losses.py), the first checked out and its run finished."""
    checkout = copy_workflow(tmp_path_factory.mktemp("checkout"))
    (checkout / "data").mkdir()
    config = probe_config(tiny_models, checkout / "data")
    (checkout / "tiny.yaml").write_text(yaml.safe_dump(config))
    git(checkout, "init", "-q")
    git(checkout, "add", "--", *(p.name for p in checkout.iterdir() if p.name not in (".git", "data")))
    git(checkout, "commit", "-qm", "the workflow")
    first = git(checkout, "rev-parse", "HEAD").strip()
    losses = checkout / LOSSES_MODULE
    losses.write_text(losses.read_text() + "# a later edit\n")
    git(checkout, "commit", "-qam", "an edit of losses.py")
    git(checkout, "checkout", "-q", first)
    snakemake_in(checkout)
    return {"checkout": checkout, "first": first, "config": config}


def test_a_checkout_of_another_commit_and_back_or_a_touch_reruns_nothing(finished_checkout: dict) -> None:
    checkout = finished_checkout["checkout"]
    git(checkout, "checkout", "-q", "master")
    git(checkout, "checkout", "-q", finished_checkout["first"])
    result = snakemake_in(checkout, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
    (checkout / "src" / "w2s" / "io.py").touch()
    result = snakemake_in(checkout, "-n")
    assert "Nothing to be done" in result.stdout + result.stderr, result.stdout[-3000:]
    # The other commit's losses.py reruns the jobs whose scripts import it, and what follows from them.
    git(checkout, "checkout", "-q", "master")
    seed_dir = "results/sst2/seed0"
    assert planned_jobs(snakemake_in(checkout, "-n").stdout) == Counter(
        [("embed_features", f"{seed_dir}/features/{m}.safetensors") for m in ("small", "big")]
        + [("train_ground_truth", f"{seed_dir}/gt/{m}/checkpoint") for m in ("small", "big")]
        + [("train_student", f"{seed_dir}/w2s/xent/small__big/checkpoint")]
        + [("weak_labels", f"{seed_dir}/gt/small/weak_labels.parquet")]
        + [("evaluate", f"{seed_dir}/{run}/metrics.json") for run in ("gt/small", "gt/big", "w2s/xent/small__big")]
        + [("summarize", "results/summary.parquet"), ("training_curves", "results/training_curves.parquet"),
           ("leaderboard", "results/leaderboard.csv"), ("provenance", "results/report/provenance.json"),
           ("report", "results/report/report.html")]
    )
    git(checkout, "checkout", "-q", finished_checkout["first"])


def test_a_dry_run_lists_one_code_input_per_job(finished_checkout: dict) -> None:
    checkout = finished_checkout["checkout"]
    plan = snakemake_in(checkout, "-n", "--forceall").stdout
    inputs = dict(re.findall(r"^(?:local)?rule (\w+):\n    input: (.*)$", plan, flags=re.M))
    assert len(inputs) == 13  # every rule of the run, `all` among them
    # Snakemake marks a source file "(cached)".
    code = {rule: [f.removesuffix(" (cached)") for f in files.split(", ")
                   if f.endswith((".py (cached)", ".sha256 (cached)"))] for rule, files in inputs.items()}
    digests = checkout / ".snakemake" / "w2s-code"
    assert {rule: files for rule, files in code.items() if rule != "all"} == {
        rule: [f"{digests}/{script}.sha256"] for rule, script in (
            ("prepare_data", "prepare_data.py"), ("count_truncated", "count_truncated.py"),
            ("embed_features", "embed_features.py"), ("train_ground_truth", "train_model.py"),
            ("weak_labels", "weak_labels.py"), ("train_student", "train_model.py"), ("evaluate", "evaluate.py"),
            ("summarize", "summarize.py"), ("training_curves", "training_curves.py"),
            ("leaderboard", "leaderboard.py"), ("provenance", "provenance.py"), ("report", "report.py"))}
    assert code["all"] == []


def test_provenance_names_the_git_status_of_the_config_and_data_files(finished_checkout: dict) -> None:
    checkout = finished_checkout["checkout"]
    record = json.loads((checkout / "results" / "report" / "provenance.json").read_text())
    data = finished_checkout["config"]["datasets"]["sst2"]["data_files"]
    assert (record["git"]["commit"], record["git"]["dirty"]) == (finished_checkout["first"], False)
    assert {f["path"]: f["status"] for f in record["git"]["files"]} == {
        str(checkout / "tiny.yaml"): "committed", data["train"]: "untracked", data["test"]: "untracked"}
    page = (checkout / "results" / "report" / "report.html").read_text(encoding="utf-8")
    assert f"not committed: {data['test']} (untracked), {data['train']} (untracked)" in page


def test_a_workflow_that_imports_another_checkouts_package_warns_with_both_paths(
    finished_checkout: dict, tmp_path: Path
) -> None:
    checkout = finished_checkout["checkout"]
    own = snakemake_in(checkout, "-n")
    assert "Warning" not in own.stderr, own.stderr
    foreign = snakemake_in(checkout, "-n", package=REPO / "src")
    assert (f"Warning: the workflow in {checkout} imports the w2s package in {REPO / 'src' / 'w2s'}, not its own "
            f"({checkout / 'src' / 'w2s'}): its jobs would run that code.") in foreign.stderr, foreign.stderr


def test_a_job_that_imports_another_checkouts_package_warns_with_both_paths(tmp_path: Path) -> None:
    env = {**os.environ, "PYTHONPATH": str(REPO / "src"), "W2S_WORKFLOW_DIR": str(tmp_path)}
    job = subprocess.run([sys.executable, "-c", "import w2s"], capture_output=True, text=True, env=env, check=True)
    assert (f"Warning: this job imports the w2s package in {REPO / 'src' / 'w2s'}, not the one of its "
            f"workflow in {tmp_path}") in job.stderr, job.stderr
    # The workflow's own process says it once, from rules/common.smk.
    workflow = subprocess.run([sys.executable, "-c", "import snakemake.api, w2s"], capture_output=True,
                              text=True, env=env, check=True)
    assert "Warning" not in workflow.stderr, workflow.stderr


def test_under_snakemake_the_schema_is_the_workflows_own(tmp_path: Path) -> None:
    """W2S_WORKFLOW_DIR, which rules/common.smk sets before it imports w2s and its jobs inherit, picks the schema
    (and so every default) of the workflow's checkout; without it, the package's own checkout's."""
    checkout = copy_workflow(tmp_path / "checkout")
    schema = checkout / "config" / "schema.yaml"
    schema.write_text(schema.read_text().replace("lr: {default: 1.0e-5,", "lr: {default: 3.0e-5,", 1))
    read = "from w2s.pipeline import schema; print(schema.SHIPPED_SCHEMA, schema.TRAINING_DEFAULTS['lr'])"
    env = {**os.environ, "PYTHONPATH": str(REPO / "src")}
    env.pop("W2S_WORKFLOW_DIR", None)
    out = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == [str(REPO / "config" / "schema.yaml"), "1e-05"]
    env["W2S_WORKFLOW_DIR"] = str(checkout)
    out = subprocess.run([sys.executable, "-c", read], capture_output=True, text=True, env=env, check=True).stdout
    assert out.split() == [str(schema), "3e-05"]
