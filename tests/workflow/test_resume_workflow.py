"""The workflow killed with SIGKILL mid-training and rerun with --rerun-incomplete: the training job
resumes from its last checkpoint and every artifact equals an uninterrupted run's byte for byte."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import time
from pathlib import Path

import yaml

from helpers import snakemake, snakemake_command, tiny_config

TARGET = "results/sst2/seed0/gt/mid/metrics.json"
RUN = Path("results/sst2/seed0/gt/mid")


def write_config(workdir: Path, tiny_models: dict[str, Path]) -> None:
    config = tiny_config(tiny_models, workdir)
    # 18 training rows in batches of 8 for 40 epochs: 90 steps, a checkpoint every 10.
    config["models"]["mid"]["training"].update(epochs=40, checkpoint_every=10)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))


def start(workdir: Path) -> subprocess.Popen:
    # A session of its own, so that SIGKILL reaches Snakemake and its job together, as a lost node would.
    return subprocess.Popen(snakemake_command(workdir, TARGET, "--configfile", "config.yaml"), cwd=workdir,
                            start_new_session=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)


def saved_steps(workdir: Path) -> list[int]:
    return sorted(int(p.name.split("-")[1]) for p in (workdir / RUN / ".resume").glob("*/step-*"))


def test_a_workflow_killed_mid_training_resumes_with_rerun_incomplete(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    killed, uninterrupted = tmp_path / "killed", tmp_path / "uninterrupted"
    for workdir in (killed, uninterrupted):
        workdir.mkdir()
        write_config(workdir, tiny_models)
    reference = start(uninterrupted)
    run = start(killed)
    deadline = time.monotonic() + 300
    while not [s for s in saved_steps(killed) if s >= 30]:
        assert run.poll() is None and time.monotonic() < deadline, "training ended before a checkpoint of step 30"
        time.sleep(0.05)
    os.killpg(run.pid, signal.SIGKILL)
    run.wait()
    last_saved = saved_steps(killed)[-1]
    assert 30 <= last_saved < 90
    assert not (killed / RUN / "predictions.parquet").exists()

    snakemake(killed, "--configfile", "config.yaml", "--unlock")
    snakemake(killed, TARGET, "--rerun-incomplete", "--configfile", "config.yaml")
    log = (killed / "results/logs/sst2/seed0/gt/mid.log").read_text()
    resumed = re.findall(r"resumed from \S+/step-\d+: (\d+) steps done", log)
    assert resumed and int(resumed[-1]) >= last_saved, log[-2000:]
    assert reference.wait(timeout=300) == 0
    for name in ("metrics.json", "predictions.parquet", "history.parquet", "checkpoint/head.safetensors",
                 "checkpoint/backbone/model.safetensors"):
        assert (killed / RUN / name).read_bytes() == (uninterrupted / RUN / name).read_bytes(), name
    assert not (killed / RUN / ".resume").exists()
