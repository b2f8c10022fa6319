"""The cluster profiles plan the real sweep: what SLURM is asked for, and Kubernetes on S3.

Dry runs: no scheduler is reached. A dry run on the Kubernetes profile asks its S3 storage which
outputs exist, so S3 is a moto server on localhost with the bucket the profile names.
"""

from __future__ import annotations

import os
import re
from collections import Counter
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from helpers import REPO, snakemake

pytest.importorskip("snakemake_executor_plugin_slurm", reason="the cluster extra is not installed")
pytest.importorskip("snakemake_executor_plugin_kubernetes", reason="the cluster extra is not installed")
pytest.importorskip("snakemake_storage_plugin_s3", reason="the cluster extra is not installed")

STUDENT_72B = "w2s/xent/gpt2__qwen-72b/checkpoint"


def dry_run(workdir: Path, *args: str, env: dict[str, str] | None = None) -> str:
    return snakemake(workdir, "-n", *args, cores=None, env={**os.environ, **(env or {})}).stdout


def planned(output: str) -> list[tuple[str, str, dict[str, str]]]:
    """(rule, first output, resources) of every job in a dry run's listing."""
    jobs = []
    for rule, body in re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", output, flags=re.M):
        first_output = re.search(r"^    output: ([^,\n]+)", body, flags=re.M)
        resources = re.search(r"^    resources: (.*)$", body, flags=re.M).group(1)
        jobs.append((rule, first_output.group(1) if first_output else "",
                     dict(item.split("=", 1) for item in resources.split(", "))))
    return jobs


def resources_of(jobs: list, output_suffix: str) -> dict[str, str]:
    [resources] = [r for _, output, r in jobs if output.endswith(output_suffix)]
    return resources


class JobResources(dict):
    """A job's resources as the SLURM plugin reads them: .get() and attributes."""

    __getattr__ = dict.__getitem__


def test_slurm_profile_asks_for_the_gpus_a_model_needs_on_one_node(tmp_path: Path) -> None:
    from snakemake_executor_plugin_slurm.submit_string import get_submit_command
    from snakemake_executor_plugin_slurm.utils import set_gres_string

    jobs = planned(dry_run(tmp_path, "--profile", str(REPO / "profiles" / "slurm"),
                           "--configfile", str(REPO / "config" / "config.yaml")))
    assert Counter(rule for rule, _, _ in jobs) == {
        "convert_qwen1": 4, "prepare_data": 5, "count_truncated": 40, "train_ground_truth": 40, "train_student": 290, "weak_labels": 45,
        "prompt_baseline": 20, "evaluate": 350, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
        "report": 1, "all": 1}
    student = resources_of(jobs, f"sciq/seed0/{STUDENT_72B}")
    assert {k: student[k] for k in ("gpu", "processes", "nodes", "cpus_per_gpu", "mem_mb", "runtime")} == {
        "gpu": "8", "processes": "8", "nodes": "1", "cpus_per_gpu": "4", "mem_mb": "598000", "runtime": "840"}
    # What the plugin submits for it: 8 GPUs and 32 CPUs on one node, 598 GB, 14 hours; one task, in which
    # torchrun starts the 8 sharded training processes (no --ntasks-per-gpu).
    job = SimpleNamespace(resources=JobResources({k: int(v) if v.isdigit() else v for k, v in student.items()}),
                          threads=4)
    params = {"run_uuid": "run", "slurm_logfile": "log", "comment_str": "c", "account": "", "partition": "",
              "workdir": str(tmp_path)}
    sbatch = get_submit_command(job, params) + set_gres_string(job)
    assert {"-t 840", "--mem 598000", "--nodes=1", "--cpus-per-gpu=4", "--gpus=8"} <= set(
        re.findall(r"-t \d+|--mem \d+|--[a-z-]+=\S+", sbatch))
    assert "--ntasks" not in sbatch
    # Jobs that load no model ask for no GPU.
    assert all(r["gpu"] == "0" for rule, _, r in jobs if rule in ("evaluate", "weak_labels", "summarize"))


def test_kubernetes_profile_plans_the_sweep_on_s3(tmp_path: Path) -> None:
    import boto3
    from moto.server import ThreadedMotoServer

    profile = yaml.safe_load((REPO / "profiles" / "kubernetes" / "config.yaml").read_text())
    bucket, prefix = re.fullmatch(r"s3://([^/]+)/(.+)", profile["default-storage-prefix"]).groups()
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["datasets"] = {"sciq": config["datasets"]["sciq"]}  # one dataset: a dry run asks S3 per file
    (tmp_path / "sciq.yaml").write_text(yaml.safe_dump(config))
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=0, verbose=False)
    server.start()
    try:
        endpoint = "http://{}:{}".format(*server.get_host_and_port())
        boto3.client("s3", endpoint_url=endpoint, region_name="us-east-1", aws_access_key_id="test",
                     aws_secret_access_key="test").create_bucket(Bucket=bucket)
        output = dry_run(
            tmp_path, "--profile", str(REPO / "profiles" / "kubernetes"), "--configfile", "sciq.yaml",
            "--storage-s3-endpoint-url", endpoint,
            env={"SNAKEMAKE_STORAGE_S3_ACCESS_KEY": "test", "SNAKEMAKE_STORAGE_S3_SECRET_KEY": "test"},
        )
    finally:
        server.stop()
    jobs = planned(output)
    assert Counter(rule for rule, _, _ in jobs) == {
        "convert_qwen1": 4, "prepare_data": 1, "count_truncated": 8, "train_ground_truth": 8, "train_student": 58, "weak_labels": 9,
        "prompt_baseline": 4, "evaluate": 70, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
        "report": 1, "all": 1}
    # Every result lives in the bucket; the package code the rules depend on stays local.
    assert all(output.startswith(f"s3://{bucket}/{prefix}/results/") for _, output, _ in jobs if output)
    assert f"s3://{bucket}/{prefix}/{REPO}" not in output
    student = resources_of(jobs, f"s3://{bucket}/{prefix}/results/sciq/seed0/{STUDENT_72B} (send to storage)")
    assert (student["gpu"], student["gpu_manufacturer"], student["mem_mb"]) == ("8", "nvidia", "598000")
