"""One job per GPU: claims of GPU indices across processes, on fake GPU counts (no GPU needed)."""

from __future__ import annotations

import ast
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from w2s.pipeline.gpus import claim_gpus, visible_gpu_count

# A job process: claims `count` of `total` GPUs, prints them, and holds them until stdin closes.
CLAIMER = """
import json, sys
from pathlib import Path
from w2s.pipeline.gpus import claim_free_indices
indices = claim_free_indices(int(sys.argv[1]), int(sys.argv[2]), Path(sys.argv[3]), poll_s=0.05)
print(json.dumps(indices), flush=True)
sys.stdin.read()
"""


class Claimer:
    def __init__(self, count: int, total: int, lock_dir: Path) -> None:
        self.process = subprocess.Popen(
            [sys.executable, "-c", CLAIMER, str(count), str(total), str(lock_dir)],
            stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
        )

    def indices(self) -> list[int]:
        return json.loads(self.process.stdout.readline())

    def still_waiting(self, seconds: float) -> bool:
        try:
            self.process.wait(timeout=seconds)
        except subprocess.TimeoutExpired:
            return True
        return False

    def release(self) -> None:
        self.process.stdin.close()
        self.process.wait(timeout=30)

    def crash(self) -> None:
        self.process.send_signal(signal.SIGKILL)
        self.process.wait(timeout=30)


def test_concurrent_jobs_get_disjoint_gpus_and_a_released_gpu_is_reused(tmp_path: Path) -> None:
    first, second = Claimer(2, 4, tmp_path), Claimer(2, 4, tmp_path)
    held = [first.indices(), second.indices()]
    assert sorted(held[0] + held[1]) == [0, 1, 2, 3]
    third = Claimer(1, 4, tmp_path)
    # Every GPU is taken: the third job waits rather than share one.
    assert third.still_waiting(1.0)
    first.release()
    freed = third.indices()
    assert len(freed) == 1 and freed[0] in held[0]
    second.release()
    third.release()


def test_a_crashed_jobs_gpu_is_freed_by_the_os(tmp_path: Path) -> None:
    holder = Claimer(1, 1, tmp_path)
    assert holder.indices() == [0]
    waiting = Claimer(1, 1, tmp_path)
    assert waiting.still_waiting(1.0)
    holder.crash()
    assert waiting.indices() == [0]
    waiting.release()


def test_a_job_wanting_two_gpus_takes_none_while_only_one_is_free(tmp_path: Path) -> None:
    holder = Claimer(2, 3, tmp_path)
    assert holder.indices() == [0, 1]
    pair = Claimer(2, 3, tmp_path)
    assert pair.still_waiting(1.0)
    # The pair's waiting claim does not hold GPU 2: a one-GPU job still gets it.
    single = Claimer(1, 3, tmp_path)
    assert single.indices() == [2]
    holder.release()
    assert pair.indices() == [0, 1]
    pair.release()
    single.release()


def test_claim_sets_cuda_visible_devices_to_the_claimed_gpus(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert claim_gpus(2, total=3, environ=environ, lock_dir=tmp_path) == [0, 1]
    assert environ == {"CUDA_VISIBLE_DEVICES": "0,1"}
    # This process holds 0 and 1 now; the next claim in it gets the remaining GPU.
    environ = {}
    assert claim_gpus(1, total=3, environ=environ, lock_dir=tmp_path) == [2]
    assert environ == {"CUDA_VISIBLE_DEVICES": "2"}


def test_a_scheduler_choice_is_kept_and_a_cpu_job_sees_no_gpu(tmp_path: Path) -> None:
    slurm_job = {"CUDA_VISIBLE_DEVICES": "3"}
    assert claim_gpus(1, total=4, environ=slurm_job, lock_dir=tmp_path) is None
    assert slurm_job == {"CUDA_VISIBLE_DEVICES": "3"}
    cpu_job: dict[str, str] = {}
    assert claim_gpus(0, total=4, environ=cpu_job, lock_dir=tmp_path) == []
    assert cpu_job == {"CUDA_VISIBLE_DEVICES": ""}
    assert not any(tmp_path.iterdir())


def test_without_gpus_a_gpu_job_runs_on_the_cpu_and_too_many_gpus_is_an_error(tmp_path: Path) -> None:
    environ: dict[str, str] = {}
    assert claim_gpus(1, total=0, environ=environ, lock_dir=tmp_path) == []
    assert environ == {}
    with pytest.raises(RuntimeError, match="the job needs 8 GPUs and this machine has 4"):
        claim_gpus(8, total=4, environ=environ, lock_dir=tmp_path)


def test_lock_files_open_for_every_user(tmp_path: Path) -> None:
    lock_dir = tmp_path / "locks"
    claim_gpus(1, total=1, environ={}, lock_dir=lock_dir)
    assert lock_dir.stat().st_mode & 0o7777 == 0o1777
    assert (lock_dir / "gpu0.lock").stat().st_mode & 0o444 == 0o444


@pytest.mark.parametrize(("listing", "exit_code", "count"), [("0\n1\n2\n", 0, 3), ("", 9, 0)])
def test_gpus_are_counted_with_nvidia_smi(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, listing: str, exit_code: int, count: int
) -> None:
    # A stand-in nvidia-smi: three GPUs, or a driver that does not answer.
    fake = tmp_path / "nvidia-smi"
    fake.write_text(f"#!/bin/sh\nprintf '{listing}'\nexit {exit_code}\n")
    fake.chmod(0o755)
    monkeypatch.setenv("PATH", f"{tmp_path}:{os.environ['PATH']}")
    assert visible_gpu_count() == count


# A GPU job's start, in a process of its own as a job's script: a fake `snakemake` with no GPU wanted.
STARTER = """
import logging, os, sys
from types import SimpleNamespace
from w2s.pipeline.gpus import start_gpu_job
os.environ.pop("CUDA_VISIBLE_DEVICES", None)
start_gpu_job(SimpleNamespace(resources=SimpleNamespace(gpu=0), log=[sys.argv[1]], threads=3))
import torch
logging.getLogger("w2s").info("sees %r with %d threads", os.environ["CUDA_VISIBLE_DEVICES"], torch.get_num_threads())
"""


def test_a_gpu_job_claims_its_gpus_then_logs_to_its_log_with_its_threads(tmp_path: Path) -> None:
    log = tmp_path / "job.log"
    subprocess.run([sys.executable, "-c", STARTER, str(log)], check=True)
    assert "w2s: sees '' with 3 threads" in log.read_text()


SCRIPTS = Path(__file__).resolve().parents[2] / "workflow" / "scripts"
# The scripts whose jobs load a model: each reads its model entry with job_model_entry.
MODEL_SCRIPTS = sorted(path.name for path in SCRIPTS.glob("*.py") if "job_model_entry" in path.read_text())


def test_the_model_scripts_are_found() -> None:
    assert {"train_model.py", "embed_features.py", "generative_finetuning.py", "prompt_baseline.py",
            "count_truncated.py"} <= set(MODEL_SCRIPTS)


@pytest.mark.parametrize("script", MODEL_SCRIPTS)
def test_every_script_that_loads_a_model_starts_its_job_before_importing_it(script: str) -> None:
    tree = ast.parse((SCRIPTS / script).read_text())
    statements = [node for node in tree.body
                  if not (isinstance(node, ast.ImportFrom) and not node.module.startswith("w2s"))]
    assert ast.unparse(statements[0]) == "from w2s.pipeline.gpus import start_gpu_job"
    assert ast.unparse(statements[1]) == "start_gpu_job(snakemake)"
