"""One job per GPU on a machine with several: a GPU job claims free GPU indices and sees only them.

Snakemake's `--resources gpu=N` only counts: it starts as many GPU jobs as there are GPUs but does
not say which job gets which, so every job would train on GPU 0. A job therefore claims indices
with an exclusive file lock per GPU, held for the life of its process (the OS releases it when the
process ends, also on a crash), and sets CUDA_VISIBLE_DEVICES to them before torch initialises
CUDA. Where a scheduler has already chosen (SLURM's --gpus sets CUDA_VISIBLE_DEVICES), the job
keeps its choice. Every script whose job loads a model starts with start_gpu_job, before it imports torch.
"""

from __future__ import annotations

import fcntl
import os
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from w2s.runlog import log_to

LOCK_DIR = Path(tempfile.gettempdir()) / "w2s-gpu-locks"


def visible_gpu_count() -> int:
    """The machine's GPUs as nvidia-smi lists them (inside a container: the ones it was given);
    none where nvidia-smi is missing or finds no working driver."""
    if shutil.which("nvidia-smi") is None:
        return 0
    listing = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                             capture_output=True, text=True)
    return len(listing.stdout.split()) if listing.returncode == 0 else 0


def _try_lock(path: Path) -> int | None:
    # Read-only, so that a lock file another user created still opens; flock needs no write access.
    fd = os.open(path, os.O_RDONLY | os.O_CREAT, 0o644)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        os.close(fd)
        return None
    return fd


def claim_free_indices(count: int, total: int, lock_dir: Path = LOCK_DIR, poll_s: float = 5.0) -> list[int]:
    """Lock `count` of the GPU indices 0..total-1 that no other process holds; wait while fewer are
    free. All or none: a partial claim is released before waiting, so that two jobs wanting two
    GPUs each cannot hold one each forever. The claimed locks' descriptors stay open, so the
    locks are held, until the process ends."""
    if count > total:
        raise RuntimeError(f"the job needs {count} GPUs and this machine has {total}")
    if not lock_dir.exists():
        lock_dir.mkdir(parents=True, exist_ok=True)
        lock_dir.chmod(0o1777)  # shared by every user's jobs, as /tmp is
    while True:
        claimed: dict[int, int] = {}
        for index in range(total):
            fd = _try_lock(lock_dir / f"gpu{index}.lock")
            if fd is not None:
                claimed[index] = fd
                if len(claimed) == count:
                    return sorted(claimed)
        for fd in claimed.values():
            os.close(fd)
        time.sleep(poll_s)


def claim_gpus(count: int, total: int | None = None, environ: MutableMapping[str, str] = os.environ,
               lock_dir: Path = LOCK_DIR) -> list[int] | None:
    """Make the current process see `count` GPUs of its own; call it before anything imports torch.

    Returns the claimed indices, or None where CUDA_VISIBLE_DEVICES was already set (by a scheduler
    or by hand) and is kept. A job that wants no GPU sees none, so that it cannot take memory on a
    GPU another job was given; on a machine without GPUs every job runs on the CPU, as before.
    """
    if "CUDA_VISIBLE_DEVICES" in environ:
        return None
    if count == 0:
        environ["CUDA_VISIBLE_DEVICES"] = ""
        return []
    total = visible_gpu_count() if total is None else total
    if total == 0:
        return []
    indices = claim_free_indices(count, total, lock_dir)
    environ["CUDA_VISIBLE_DEVICES"] = ",".join(map(str, indices))
    print(f"w2s: this job uses GPU {environ['CUDA_VISIBLE_DEVICES']} (locks in {lock_dir})", file=sys.stderr)
    return indices


def start_gpu_job(job: Any) -> None:
    """The start of a job that loads a model, given the script's `snakemake` object: claim its GPUs
    (resources.gpu) before anything imports torch, since CUDA reads CUDA_VISIBLE_DEVICES once, then log to its
    log file (w2s.runlog.log_to) with its threads. The script imports its job's modules after this call."""
    claim_gpus(job.resources.gpu)
    log_to(job.log[0], job.threads)
