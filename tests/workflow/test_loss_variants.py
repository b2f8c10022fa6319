"""Named variants of a loss in the workflow: their own paths, the base loss and their hyperparameters in the
student job's params, and a changed hyperparameter rerunning that variant's students only. Dry runs and
`--touch` only: the models named here are never loaded."""

from __future__ import annotations

import json
import subprocess
import sys
from collections import Counter
from pathlib import Path

import pytest
import yaml
from helpers import REPO, planned_jobs, snakemake, sst2_rows, write_jsonl

VARIANTS = ("logconf-0.25", "logconf-0.75")
LOSS_NAMES = ("xent", *VARIANTS)
LINEAGES = ("small__mid", "small__mid__big")
SEED_DIR = "results/sst2/seed0"


def variants_config(data_dir: Path, aux_coef: float = 0.25) -> dict:
    rows = write_jsonl(sst2_rows(16, seed=1), data_dir / "rows.jsonl")
    return {
        "seeds": [0],
        "w2s_slices": 2,
        "datasets": {"sst2": {"n_train": 8, "n_test": 4, "data_files": {"train": str(rows), "test": str(rows)}}},
        "models": {name: {"path": str(data_dir / name), "resources": {"gpu": 0}} for name in ("small", "mid", "big")},
        "ladder": ["small", "mid"],
        "chains": [["small", "mid", "big"]],
        "losses": {"xent": {},
                   "logconf-0.25": {"loss": "logconf", "aux_coef": aux_coef},
                   "logconf-0.75": {"loss": "logconf", "aux_coef": 0.75, "warmup_frac": 0.2}},
    }


@pytest.fixture
def workdir(tmp_path: Path) -> Path:
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(variants_config(tmp_path)))
    return tmp_path


# The student job's params as Snakemake evaluates them for given wildcards, read with its own API.
STUDENT_PARAMS = """
import json, sys
from pathlib import Path
from types import SimpleNamespace
from snakemake.api import SnakemakeApi
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path(sys.argv[1]),
                            config_settings=ConfigSettings(configfiles=[Path(sys.argv[2])]), workdir=Path(sys.argv[3]))
    params = workflow._workflow.get_rule("train_student").params
    jobs = {}
    for loss in sys.argv[4:]:
        wildcards = SimpleNamespace(dataset="sst2", seed="0", loss=loss, chain="small__mid")
        jobs[loss] = {"loss": params.loss(wildcards), "loss_params": params.loss_params(wildcards)}
print(json.dumps(jobs))
"""


def test_a_variants_student_job_gets_the_base_loss_and_the_variants_hyperparameters(workdir: Path) -> None:
    result = subprocess.run(
        [sys.executable, "-c", STUDENT_PARAMS, str(REPO / "Snakefile"), str(workdir / "config.yaml"), str(workdir),
         *LOSS_NAMES], capture_output=True, text=True, cwd=workdir, check=False,
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert json.loads(result.stdout.strip().splitlines()[-1]) == {
        "xent": {"loss": "xent", "loss_params": {}},
        "logconf-0.25": {"loss": "logconf", "loss_params": {"aux_coef": 0.25}},
        "logconf-0.75": {"loss": "logconf", "loss_params": {"aux_coef": 0.75, "warmup_frac": 0.2}},
    }


def test_each_variant_has_its_own_students_and_changing_its_hyperparameter_reruns_exactly_them(workdir: Path) -> None:
    # Every output in place and recorded as made by this config (--touch writes Snakemake's metadata, params too).
    plan = snakemake(workdir, "--configfile", "config.yaml", "-n", cores=1).stdout
    jobs = planned_jobs(plan)
    students = {output for rule, output in jobs if rule == "train_student"}
    assert students == {f"{SEED_DIR}/w2s/{loss}/{lineage}/checkpoint" for loss in LOSS_NAMES for lineage in LINEAGES}
    chain_labels = {output for rule, output in jobs if rule == "weak_labels"}
    assert chain_labels == {f"{SEED_DIR}/gt/small/weak_labels.parquet"} | {
        f"{SEED_DIR}/w2s/{loss}/small__mid/weak_labels.parquet" for loss in LOSS_NAMES}

    for line in plan.splitlines():
        if line.startswith(("    output: ", "    benchmark: ", "    log: ")):
            for name in line.split(": ", 1)[1].split(", "):
                path = workdir / name
                path.parent.mkdir(parents=True, exist_ok=True)
                path.mkdir() if name.endswith(("/checkpoint", "/figures")) else path.touch()
    snakemake(workdir, "--configfile", "config.yaml", "--touch", "--forceall", cores=1)
    assert "Nothing to be done" in snakemake(workdir, "--configfile", "config.yaml", "-n", cores=1).stdout

    (workdir / "config.yaml").write_text(yaml.safe_dump(variants_config(workdir, aux_coef=0.3)))
    base = f"{SEED_DIR}/w2s/logconf-0.25"
    assert planned_jobs(snakemake(workdir, "--configfile", "config.yaml", "-n", cores=1).stdout) == Counter(
        [("train_student", f"{base}/{lineage}/checkpoint") for lineage in LINEAGES]
        + [("evaluate", f"{base}/{lineage}/metrics.json") for lineage in LINEAGES]
        + [("weak_labels", f"{base}/small__mid/weak_labels.parquet"),
           ("summarize", "results/summary.parquet"),
           ("training_curves", "results/training_curves.parquet"),
           ("leaderboard", "results/leaderboard.csv"),
           ("provenance", "results/report/provenance.json"),
           ("report", "results/report/report.html")]
    )
