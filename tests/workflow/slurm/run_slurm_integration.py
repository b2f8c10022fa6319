#!/usr/bin/env python3
"""The tiny pipeline on a real single-node SLURM cluster on localhost, against a local run.

    python tests/workflow/slurm/run_slurm_integration.py [WORKDIR]

Installs Debian's slurm-wlm and munge when they are missing, writes /etc/slurm/slurm.conf for one
node with this machine's CPUs and memory (SlurmUser root, proctrack/linuxproc, task/none, no
accounting storage; completed jobs go to a jobcomp/filetxt log that `sacct --completion` reads),
starts munged, slurmctld and slurmd, and runs the tiny pipeline of tests/workflow/test_workflow.py twice:
locally, and through profiles/slurm with `--executor slurm`. It checks that every job was a SLURM
job that completed and that every result file equals the local run's, prints what it saw, and
stops what it started. Needs root, or sudo without a password. tests/workflow/test_slurm.py runs the same
under pytest.
"""

from __future__ import annotations

import hashlib
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from dataclasses import dataclass
from pathlib import Path

import yaml

TESTS = Path(__file__).resolve().parents[1]
# Run on its own, the script finds the tests' helpers in the folder above its own.
sys.path.insert(0, str(TESTS))
from helpers import REPO, make_tiny_model, snakemake, tiny_config  # noqa: E402

CLUSTER_DIR = Path(tempfile.gettempdir()) / "w2s-slurm-cluster"
SLURM_CONF = Path("/etc/slurm/slurm.conf")
MARKER = "# Written by tests/workflow/slurm/run_slurm_integration.py for a test cluster; removed when it ends."
# Both runs give every job one thread: results depend on torch's thread count, and a 2-CPU node
# then runs two jobs side by side.
SAME_THREADS = ("--max-threads", "1")
# Result files whose content is not a function of the computation: file times, wall times
# (provenance and the report that shows it), and PEFT's target_modules, written in set order.
NOT_COMPARED = re.compile(r"^results/(logs|benchmarks|report)/|/file_times\.json$|/adapter_config\.json$")
SUBMITTED = re.compile(r"Job (\d+) has been submitted with SLURM jobid (\d+)")
RUN_ID = re.compile(r"SLURM run ID: (\S+)")


def as_root() -> list[str]:
    return [] if os.geteuid() == 0 else ["sudo", "-n"]


def run(*cmd: str, **kwargs) -> subprocess.CompletedProcess:
    return subprocess.run(cmd, check=True, text=True, capture_output=True, **kwargs)


def install_packages() -> None:
    """Debian's slurm-wlm and munge, when they are missing."""
    if shutil.which("slurmctld") and shutil.which("munged"):
        return
    env = {**os.environ, "DEBIAN_FRONTEND": "noninteractive"}
    run(*as_root(), "apt-get", "update", "-qq", env=env)
    run(*as_root(), "apt-get", "install", "-y", "-qq", "--no-install-recommends", "slurm-wlm", "munge", env=env)


def machine_memory_mb() -> int:
    kib = int(re.search(r"^MemTotal:\s+(\d+) kB", Path("/proc/meminfo").read_text(), re.M).group(1))
    return kib // 1024


def slurm_conf(host: str, cpus: int, memory_mb: int, state: Path) -> str:
    return f"""{MARKER}
ClusterName=w2s-test
SlurmctldHost={host}(127.0.0.1)
SlurmUser=root
SlurmdUser=root
AuthType=auth/munge
ProctrackType=proctrack/linuxproc
TaskPlugin=task/none
SelectType=select/cons_tres
SelectTypeParameters=CR_Core
AccountingStorageType=accounting_storage/none
JobAcctGatherType=jobacct_gather/none
JobCompType=jobcomp/filetxt
JobCompLoc={state}/jobcomp.txt
StateSaveLocation={state}/ctld
SlurmdSpoolDir={state}/slurmd
SlurmctldPidFile={state}/slurmctld.pid
SlurmdPidFile={state}/slurmd.pid
SlurmctldLogFile={state}/slurmctld.log
SlurmdLogFile={state}/slurmd.log
ReturnToService=2
MpiDefault=none
NodeName={host} NodeAddr=127.0.0.1 CPUs={cpus} RealMemory={memory_mb} State=UNKNOWN
PartitionName=w2s Nodes={host} Default=YES MaxTime=INFINITE State=UP
"""


def munge_works() -> bool:
    encoded = subprocess.run(["munge", "-n"], capture_output=True, text=True)
    return encoded.returncode == 0 and subprocess.run(
        ["unmunge"], input=encoded.stdout, capture_output=True, text=True).returncode == 0


def running(pid: int, name: str) -> bool:
    """Whether `pid` is a live process called `name` (a stale pid file may name another one)."""
    try:
        status = Path(f"/proc/{pid}/status").read_text()
    except FileNotFoundError:
        return False
    return f"Name:\t{name}\n" in status and "State:\tZ" not in status


def stop_daemon(pid_file: Path, name: str) -> None:
    """Stop the daemon a pid file names and wait until it is gone (slurmd holds its port)."""
    if not pid_file.exists():
        return
    pid = int(pid_file.read_text().split()[0])
    if not running(pid, name):
        return
    run(*as_root(), "kill", str(pid))
    for _ in range(100):
        if not running(pid, name):
            return
        time.sleep(0.1)
    raise RuntimeError(f"{name} (pid {pid}) did not stop")


@dataclass
class LocalSlurm:
    """A one-node cluster on localhost; a context manager that starts it and stops it."""

    state: Path = CLUSTER_DIR
    started_munged: bool = False

    def __enter__(self) -> LocalSlurm:
        install_packages()
        if SLURM_CONF.exists() and MARKER not in SLURM_CONF.read_text():
            raise RuntimeError(f"{SLURM_CONF} exists: this machine has its own SLURM, which this test leaves alone")
        self.stop_daemons()  # a previous run's, if it was killed before stopping them
        try:
            self.start()
        except BaseException:
            self.__exit__()
            raise
        return self

    def start(self) -> None:
        if not munge_works():
            run(*as_root(), "install", "-d", "-o", "munge", "-g", "munge", "/run/munge")
            # --force: start even over a socket a killed munged left behind.
            run(*as_root(), "runuser", "-u", "munge", "--", "munged", "--force")
            self.started_munged = True
        run(*as_root(), "rm", "-rf", str(self.state))
        run(*as_root(), "mkdir", "-p", str(self.state))
        host = socket.gethostname().split(".")[0]
        conf = slurm_conf(host, os.cpu_count() or 1, machine_memory_mb(), self.state)
        run(*as_root(), "mkdir", "-p", str(SLURM_CONF.parent))
        run(*as_root(), "tee", str(SLURM_CONF), input=conf)
        run(*as_root(), "slurmctld")
        run(*as_root(), "slurmd")
        self.wait_until_idle()

    def wait_until_idle(self, timeout_s: float = 60) -> None:
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            states = subprocess.run(["sinfo", "-h", "-o", "%T"], capture_output=True, text=True).stdout.split()
            if states == ["idle"]:
                return
            time.sleep(0.5)
        raise RuntimeError(f"the SLURM node did not become idle in {timeout_s} s; see {self.state}/*.log")

    def completed_jobs(self) -> list[tuple[str, str, str]]:
        """(job id, job name, state) of every finished job, from the job-completion log."""
        listing = run("sacct", "--completion", "--parsable2", "--noheader", "--format=JobID,JobName,State").stdout
        return [tuple(line.split("|")) for line in listing.splitlines()]

    def stop_daemons(self) -> None:
        stop_daemon(self.state / "slurmd.pid", "slurmd")
        stop_daemon(self.state / "slurmctld.pid", "slurmctld")

    def __exit__(self, *exc: object) -> None:
        self.stop_daemons()
        if self.started_munged:
            stop_daemon(Path("/run/munge/munged.pid"), "munged")
        run(*as_root(), "rm", "-f", str(SLURM_CONF))


@dataclass
class IntegrationResult:
    jobs_planned: int  # jobs Snakemake ran, from its job stats (the target rule `all` left out)
    slurm_jobs: dict[int, int]  # Snakemake job id -> SLURM job id
    completed: list[tuple[str, str, str]]  # sacct --completion rows of this run's jobs
    local_checksums: dict[str, str]  # md5 of every compared result file of the local run
    slurm_checksums: dict[str, str]
    differing: list[str]
    slurm_wall_s: float
    local_wall_s: float


def jobs_in_stats(log: str) -> int:
    """Jobs in the 'Job stats' table of a Snakemake log, less the target rule `all`."""
    table = log.split("Job stats:", 1)[1]
    return int(re.search(r"^total\s+(\d+)", table, re.M).group(1)) - 1


def compared_files(workdir: Path) -> list[str]:
    files = (p.relative_to(workdir).as_posix() for p in (workdir / "results").rglob("*") if p.is_file())
    return sorted(f for f in files if not NOT_COMPARED.search(f))


def md5(path: Path) -> str:
    return hashlib.md5(path.read_bytes()).hexdigest()


def run_integration(workdir: Path, config: dict) -> IntegrationResult:
    """Run `config` locally and on a fresh local SLURM cluster, under `workdir`."""
    local, on_slurm = workdir / "local", workdir / "slurm"
    for run_dir in (local, on_slurm):
        run_dir.mkdir(parents=True, exist_ok=True)
        (run_dir / "config.yaml").write_text(yaml.safe_dump(config))

    start = time.monotonic()
    snakemake(local, "--configfile", "config.yaml", *SAME_THREADS)
    local_wall_s = time.monotonic() - start

    with LocalSlurm() as cluster:
        start = time.monotonic()
        log = snakemake(
            on_slurm, "--configfile", "config.yaml", "--profile", str(REPO / "profiles" / "slurm"), *SAME_THREADS,
            # Without accounting storage sacct cannot report a job's state; squeue can. The
            # first status check after 2 s instead of 40: these jobs take seconds.
            "--slurm-status-command", "squeue", "--slurm-init-seconds-before-status-checks", "2",
            cores=None,  # the profile's
        ).stderr
        slurm_wall_s = time.monotonic() - start
        run_id = RUN_ID.search(log).group(1)
        completed = [row for row in cluster.completed_jobs() if row[1] == run_id]

    local_checksums = {f: md5(local / f) for f in compared_files(local)}
    slurm_checksums = {f: md5(on_slurm / f) for f in compared_files(on_slurm)}
    return IntegrationResult(
        jobs_planned=jobs_in_stats(log),
        slurm_jobs={int(job): int(slurm) for job, slurm in SUBMITTED.findall(log)},
        completed=completed,
        local_checksums=local_checksums,
        slurm_checksums=slurm_checksums,
        differing=sorted(f for f, checksum in local_checksums.items() if slurm_checksums.get(f) != checksum),
        slurm_wall_s=slurm_wall_s,
        local_wall_s=local_wall_s,
    )


def tiny_pipeline_config(workdir: Path) -> dict:
    """The tests' tiny config on their tiny models (tests/helpers.py), written under `workdir`."""
    models = {"tiny-bert": make_tiny_model(workdir / "models" / "tiny-bert", "bert", 0),
              "tiny-gpt2": make_tiny_model(workdir / "models" / "tiny-gpt2", "gpt2", 1)}
    return tiny_config(models, workdir)


def problems(result: IntegrationResult) -> list[str]:
    found = []
    if len(result.slurm_jobs) != result.jobs_planned:
        found.append(f"{len(result.slurm_jobs)} SLURM jobs submitted for {result.jobs_planned} jobs")
    submitted = {str(slurm) for slurm in result.slurm_jobs.values()}
    completed = {job_id for job_id, _, state in result.completed if state == "COMPLETED"}
    if completed != submitted:
        found.append(f"sacct's completed jobs {sorted(completed)} are not the submitted {sorted(submitted)}")
    if result.local_checksums.keys() != result.slurm_checksums.keys():
        found.append("the runs wrote different files: "
                     f"{sorted(result.local_checksums.keys() ^ result.slurm_checksums.keys())}")
    found += [f"{f} differs from the local run's" for f in result.differing]
    return found


def main() -> int:
    workdir = Path(sys.argv[1]) if len(sys.argv) > 1 else Path(tempfile.mkdtemp(prefix="w2s-slurm-"))
    start = time.monotonic()
    result = run_integration(workdir, tiny_pipeline_config(workdir))
    print(f"jobs planned: {result.jobs_planned}; submitted to SLURM: {len(result.slurm_jobs)}; "
          f"completed in sacct --completion: {sum(state == 'COMPLETED' for _, _, state in result.completed)}")
    print(f"result files compared: {len(result.local_checksums)}, differing: {len(result.differing)}")
    print(f"wall time: local run {result.local_wall_s:.0f} s, SLURM run {result.slurm_wall_s:.0f} s, "
          f"all {time.monotonic() - start:.0f} s (workdir {workdir})")
    found = problems(result)
    for problem in found:
        print(f"FAILED: {problem}")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
