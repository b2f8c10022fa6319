"""Sharded finetuning (w2s.training.distributed, FSDP2) on the CPU over gloo: one torchrun launch of two processes
(tests/fsdp_worker.py) trains tiny models sharded and in one process, and the two must agree."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import REPO
from job_settings import training_settings
from w2s.training.distributed import Ranks, train
from w2s.training.jobs import train_model

# float32 on both sides; only the order of the sums differs.
TOLERANCE = 1e-5


@pytest.fixture(scope="module")
def parity(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("fsdp")
    out = workdir / "parity.json"
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(REPO / "tests" / "fsdp_worker.py"), str(tiny_models["tiny-bert"]), str(tiny_models["tiny-gpt2"]),
         str(workdir), str(out)],
        capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr[-6000:] + result.stdout[-3000:]
    return json.loads(out.read_text())


def test_one_sharded_step_equals_the_single_process_step(parity: dict) -> None:
    assert parity["full_xent_1_step"]["weights"] < TOLERANCE
    assert parity["full_xent_1_step"]["losses"] < TOLERANCE


def test_several_uneven_logconf_steps_with_selection_equal_the_single_process_run(parity: dict) -> None:
    run = parity["full_logconf_6_steps"]
    assert run["weights"] < TOLERANCE
    assert run["losses"] < TOLERANCE
    # logconf's threshold, from every process's probabilities gathered, at each of the 6 steps.
    assert run["threshold_steps"] == 6
    assert run["thresholds"] < TOLERANCE


def test_lora_sharded_equals_lora_in_one_process(parity: dict) -> None:
    assert parity["lora_xent_3_steps"]["weights"] < TOLERANCE
    assert parity["lora_xent_3_steps"]["losses"] < TOLERANCE


def test_a_sharded_run_killed_mid_way_resumes_to_the_same_weights(parity: dict) -> None:
    assert parity["resumed_after_step_2"]["weights"] < TOLERANCE
    assert parity["resumed_after_step_2"]["losses"] == 0.0
    assert parity["checkpoints"] == ["step-00000006"]


def test_every_process_gets_its_rows_and_as_many_chunks() -> None:
    rows = np.arange(7)
    first, second = Ranks(0, 2), Ranks(1, 2)
    assert [c.tolist() for c in first.chunks(rows, 3)] == [[0, 2, 4], [6]]
    assert [c.tolist() for c in second.chunks(rows, 3)] == [[1, 3, 5], []]
    # One process: consecutive slices, as training always cut its batches.
    assert [c.tolist() for c in Ranks(0, 1).chunks(rows, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert Ranks(0, 1).gather(torch.ones(2, 3)).shape == (2, 3)


def test_jobs_that_do_not_shard_refuse_several_processes_and_say_what_to_set(tmp_path: Path) -> None:
    two = Ranks(0, 2)
    with pytest.raises(ValueError, match="training mode probe train in one process, but this job has 2; set the "
                                         "model's resources.processes to 1"):
        train_model({"path": "unused"}, training_settings(mode="probe"), 0, {}, {}, ranks=two)
    with pytest.raises(ValueError, match="generative tasks train in one process, but this job has 2"):
        train_model({"path": "unused"}, training_settings(mode="full"), 0, {}, {},
                    task={"kind": "generative", "n_classes": 0, "max_new_tokens": 4}, ranks=two)
    with pytest.raises(ValueError, match="a training job runs in 1 or more processes, got 0; fix the model's "
                                         "resources.processes"):
        train(0, {}, str(tmp_path / "log"), 2)
