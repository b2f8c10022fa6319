"""The tiny pipeline on a real single-node SLURM cluster on localhost, through profiles/slurm
(tests/workflow/slurm/run_slurm_integration.py brings the cluster up and down).

It takes 7 to 9 minutes on 2 CPUs, as every job pays two Snakemake start-ups inside SLURM, so the
default test run leaves it out (marker `slurm`). Run it with
`python -m pytest -m slurm tests/workflow/test_slurm.py`, or without pytest with
`python tests/workflow/slurm/run_slurm_integration.py`. Needs root or sudo without a password: it installs
slurm-wlm and munge when missing and starts munged, slurmctld and slurmd.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from helpers import tiny_config

sys.path.insert(0, str(Path(__file__).parent / "slurm"))
from run_slurm_integration import IntegrationResult, run_integration  # noqa: E402


def _may_run_as_root() -> bool:
    if os.geteuid() == 0:
        return True
    return shutil.which("sudo") is not None and subprocess.run(["sudo", "-n", "true"], capture_output=True).returncode == 0


pytestmark = [
    pytest.mark.slurm,
    pytest.mark.skipif(not _may_run_as_root(), reason="needs root or sudo -n to install and start SLURM"),
]


@pytest.fixture(scope="module")
def integration(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> IntegrationResult:
    workdir = tmp_path_factory.mktemp("slurm")
    return run_integration(workdir, tiny_config(tiny_models, workdir))


def test_every_job_ran_as_a_completed_slurm_job(integration: IntegrationResult) -> None:
    # prepare_data, 3 truncation counts, embed_features, 3 ground-truth models, 8 students, 4
    # weak-label files, 2 prompting runs, 13 evaluations, summarize, training_curves, provenance
    # and report.
    assert integration.jobs_planned == 39
    assert len(integration.slurm_jobs) == 39
    slurm_ids = sorted(integration.slurm_jobs.values())
    assert len(set(slurm_ids)) == 39
    # The job-completion log names each of them once, completed, under this run's job name.
    assert sorted(int(job_id) for job_id, _, _ in integration.completed) == slurm_ids
    assert {state for _, _, state in integration.completed} == {"COMPLETED"}


def test_every_result_equals_the_local_runs(integration: IntegrationResult) -> None:
    files = integration.local_checksums
    assert len(files) == 93
    assert sum(f.endswith("/metrics.json") for f in files) == 13
    assert {"results/summary.csv", "results/summary_seeds.csv", "results/training_curves.parquet"} <= files.keys()
    assert integration.slurm_checksums == files
    assert integration.differing == []
