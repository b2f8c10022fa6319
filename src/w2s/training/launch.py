"""Starting one training job: w2s.training.jobs.train_model in this process, or, for a job with `processes` > 1,
in that many processes started by torchrun on this node (train). Each of those runs this module's _main, which
joins the job's process group (w2s.training.distributed) and trains its share of the sharded model. The job's
typed settings travel to those processes as their plain params (TrainingSettings.params), and each builds
them again."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

from w2s.runlog import log_to
from w2s.training.distributed import job_ranks, run_in_process_group
from w2s.training.jobs import train_model
from w2s.training.settings import TrainingSettings


def train(processes: int, job: dict[str, Any], log_path: str, threads: int) -> None:
    """w2s.training.jobs.train_model of `job`, its keyword arguments (`settings`: the job's TrainingSettings, the
    rest plain values), in this process or, with `processes` > 1, in that many started by torchrun on this
    node. Each of those logs to `log_path` with its rank and uses threads // processes CPU threads."""
    if processes < 1:
        raise ValueError(f"a training job runs in 1 or more processes, got {processes}; fix the model's "
                         "resources.processes")
    if processes == 1:
        train_model(**job)
        return
    package_root = str(Path(__file__).resolve().parents[2])
    with tempfile.TemporaryDirectory(prefix="w2s-fsdp-") as scratch:
        spec = Path(scratch) / "job.json"
        plain = {**job, "settings": job["settings"].params()}
        spec.write_text(json.dumps({"job": plain, "log_path": log_path, "threads": max(1, threads // processes)}))
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   "-m", "w2s.training.launch", str(spec)]
        # The processes import this very w2s, wherever the launching one found it.
        env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [package_root, os.environ.get("PYTHONPATH")]))}
        result = subprocess.run(command, env=env)
    if result.returncode != 0:
        raise RuntimeError(f"the {processes} training processes failed (torchrun exit status {result.returncode}); "
                           f"each process's error is in {log_path}")


def _main(spec_path: str) -> None:
    spec = json.loads(Path(spec_path).read_text())
    job = {**spec["job"], "settings": TrainingSettings.from_params(spec["job"]["settings"])}
    ranks = job_ranks()
    log_to(spec["log_path"], spec["threads"], prefix=f"rank {ranks.rank}/{ranks.world} ")
    run_in_process_group(lambda ranks, on: train_model(**job, ranks=ranks, on=on))


if __name__ == "__main__":
    _main(sys.argv[1])
