"""The dress rehearsal: a shipped config's own DAG, rules and code paths at toy scale on a CPU, in minutes.

`python -m w2s.pipeline.rehearse CONFIG` (or `make rehearse CONFIG=...`) turns CONFIG into its miniature and runs it
through the same Snakefile, as the real run would:
1. Every dataset becomes a local copy in its source's layout at its registered revision with rows as long as the
   real data's (rehearsal.fixtures), read through `mirror:`/`image_folder:`; only n_train and n_test shrink.
2. Every model becomes a randomly initialised miniature of its own kind in a fake hub cache (rehearsal.miniatures):
   same hub id, revision, file layout, tokenizer and settings (mode, LoRA, optimizer, dtype, losses, model
   selection, chains, prompting, supervisors, analyses). A job that gets N > 1 GPUs in the real run (its
   w2s.pipeline.resources) runs in 2 gloo processes here; bf16 autocast runs emulated on CPUs without bf16
   (W2S_EMULATE_BF16); every collective is checked to go through the job's device helper (W2S_STRICT_COLLECTIVES).
3. Preflight checks the miniature config first, so its rows run for every dataset and model kind.
4. The whole DAG runs if it has at most --max-jobs jobs; otherwise one run per job signature is picked
   (rehearsal.plan) and config only_runs builds just those, with the summary and report.
It prints a table: jobs run against the whole DAG by rule, signatures covered, runs skipped, and times. A failure
names the config, the job and its signature, and ends with the job's log.
"""

from __future__ import annotations

import argparse
import copy
import os
import re
import shutil
import subprocess
import sys
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from w2s.data import catalogue
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.pipeline import resources as w2s_resources
from w2s.pipeline.rehearsal import fixtures
from w2s.pipeline.rehearsal.miniatures import Miniatures
from w2s.pipeline.rehearsal.plan import Job, Plan, describe_signature, parse_dry_run, select, signature

REPO = w2s_schema.SHIPPED_SCHEMA.parents[1]
# Rows of the miniature: train_gt, each slice of train_w2s, and test.
GT_ROWS, SLICE_ROWS, TEST_ROWS = 16, 8, 12
# Hub fixture files hold this many times the rows a dataset draws: conversions drop and expand rows.
FIXTURE_MARGIN = 3
# Images in each class folder (ImageFolder refuses an empty one); 1,000 classes hold enough for any miniature.
IMAGES_PER_CLASS = 1
DEFAULT_MAX_JOBS = 60
CORES = 2


class RehearsalError(RuntimeError):
    """The rehearsal could not be set up or a step of it failed; the message says which and where."""


@dataclass
class Timings:
    seconds: dict[str, float] = field(default_factory=dict)

    def measure(self, name: str, start: float) -> None:
        self.seconds[name] = time.monotonic() - start


def _real_processes(config: dict[str, Any], model: str) -> int:
    """How many processes the real run's training jobs of `model` shard over (1: not sharded)."""
    entry = config["models"][model]
    training = w2s_experiment.training_params(config, model)
    generative = any(d.get("kind") == "generative" for d in config["datasets"].values())
    try:
        found = w2s_resources.model_job_resources(entry, training, "train", config.get("resources"),
                                                  sharded=not generative)
    except ValueError as err:
        raise RehearsalError(f"model '{model}': {err}") from err
    return int(found["processes"])


def _miniature_dataset(name: str, entry: dict[str, Any], slices: int, data: Path) -> dict[str, Any]:
    """The dataset's entry at toy scale, reading its local copy in the source's layout."""
    n_test = TEST_ROWS
    mini = {**entry, "n_test": n_test}
    if "n_train_gt" in entry:
        mini.update(n_train_gt=GT_ROWS, n_train=GT_ROWS + slices * SLICE_ROWS)
    else:  # half of n_train is train_gt
        mini["n_train"] = 2 * max(GT_ROWS, slices * SLICE_ROWS)
    n_rows = {"train": FIXTURE_MARGIN * (mini["n_train"] + n_test), "test": FIXTURE_MARGIN * n_test}
    if entry.get("data_files") or name in catalogue.PACKAGED_DATASETS:
        return mini  # the user's own files, or a dataset shipped in a PyPI package: read as they are
    if "image_folder" in entry or "imagenet_root" in entry:
        folder = fixtures.write_image_folder(data / name, entry["n_classes"], IMAGES_PER_CLASS)
        mini.pop("imagenet_root", None)
        return {**mini, "image_folder": str(folder)}
    if name == "chess_puzzles":
        return {**mini, "mirror": str(fixtures.write_chess_puzzles(data / name, n_rows["train"]))}
    if name not in fixtures.TEXT_WORDS:
        raise RehearsalError(f"dataset '{name}' is read from the hub repository '{entry.get('hub_id')}', whose layout "
                             "the rehearsal does not know; give it data_files to rehearse it")
    # A folder per dataset: datasets that share a repository (multirc and wic) fill its other configs' files
    # with rows they must not read.
    return {**mini, "mirror": str(fixtures.write_hub_dataset(name, data / name, n_rows))}


def _scaled_axes(axes: dict[str, list[int]], config: dict[str, Any], mini: dict[str, Any]) -> dict[str, list[int]]:
    """Data-axis values scaled from the real rows to the miniature's, each still below the rows it subsamples."""
    real = min(d["n_train"] for d in config["datasets"].values())
    small = min(d["n_train"] for d in mini["datasets"].values())
    limit = {"n_weak_labels": SLICE_ROWS - 1, "n_gt_rows": GT_ROWS - 1}
    return {axis: sorted({max(2, min(limit[axis], round(v * small / real))) for v in values})
            for axis, values in axes.items()}


def miniature_config(config: dict[str, Any], workdir: Path, miniatures: Miniatures) -> dict[str, Any]:
    """`config` at toy scale: local copies of its data, miniatures of its models, 2 processes where it shards."""
    mini = copy.deepcopy(config)
    data = workdir / "data"
    mini["datasets"] = {name: _miniature_dataset(name, entry, config["w2s_slices"], data)
                        for name, entry in config["datasets"].items()}
    if config.get("axes"):
        mini["axes"] = _scaled_axes(config["axes"], config, mini)
    for name, entry in config["models"].items():
        processes = 2 if _real_processes(config, name) > 1 else 1
        placed = miniatures.place(entry)
        mini["models"][name] = {**placed, "resources": {**entry.get("resources", {}), "gpu": 0, "processes": processes,
                                                        "mem_mb": 4000, "runtime": 30}}
    mini["report"]["bootstrap_samples"] = 50  # the defaults are filled: the block is there
    return mini


def environment(workdir: Path) -> dict[str, str]:
    """The jobs' environment: the fake hub and torch caches, offline, emulated bf16, strict collectives."""
    return {
        **os.environ,
        "HF_HUB_CACHE": str(workdir / "hub"),
        "HF_HUB_OFFLINE": "1",
        "HF_DATASETS_CACHE": str(workdir / "datasets-cache"),
        "HF_UPDATE_DOWNLOAD_COUNTS": "0",
        "TORCH_HOME": str(workdir / "torch"),
        "W2S_EMULATE_BF16": "1",
        "W2S_STRICT_COLLECTIVES": "1",
        "TOKENIZERS_PARALLELISM": "false",
    }


def _snakemake(workdir: Path, env: dict[str, str], *args: str) -> subprocess.CompletedProcess:
    """Snakemake on the miniature config in `workdir` (a later --configfile in `args` replaces the list)."""
    command = [sys.executable, "-m", "snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir),
               "--configfile", str(workdir / "config.yaml"), *args]
    return subprocess.run(command, capture_output=True, text=True, env=env, cwd=workdir)


def _start_preflight(workdir: Path, env: dict[str, str]) -> subprocess.Popen:
    """Preflight of the miniature config, in a folder of its own: it converts Qwen-1 checkpoints to results/models/
    under its working folder, which would otherwise stand in for the convert_qwen1 jobs the rehearsal must run."""
    folder = workdir / "preflight"
    folder.mkdir()
    return subprocess.Popen([sys.executable, "-m", "w2s.pipeline.preflight", str(workdir / "config.yaml"),
                             "--skip", "machine", "--lock", str(workdir / "hub.lock.yaml")],
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, env=env, cwd=folder)


def _finish_preflight(checking: subprocess.Popen, config_path: Path, workdir: Path) -> None:
    output, _ = checking.communicate()
    (workdir / "preflight.txt").write_text(output)
    if checking.returncode != 0:
        failures = [line for line in output.splitlines() if line.startswith("FAIL")]
        raise RehearsalError(f"rehearsal of {config_path}: preflight failed on the miniature config:\n"
                             + "\n".join(failures or output.splitlines()[-20:]))


def _failed_jobs(output: str, planned: list[Job]) -> list[tuple[Job, str | None]]:
    """The planned jobs Snakemake reports as failed ('Error in rule X:' and its output: line), with their logs."""
    by_output = {job.outputs[0]: job for job in planned if job.outputs}
    failed = []
    for block in re.split(r"^Error in rule ", output, flags=re.M)[1:]:
        first_output = re.search(r"^    output: ([^,\n]+)", block, flags=re.M)
        log = re.search(r"^    log: (\S+)", block, flags=re.M)
        if first_output and first_output.group(1) in by_output:
            failed.append((by_output[first_output.group(1)], log.group(1) if log else None))
    return failed


@dataclass
class Rehearsal:
    """One config's rehearsal: what it planned and ran, and how long each step took."""

    config_path: Path
    workdir: Path
    whole: list[Job] = field(default_factory=list)
    plan: Plan | None = None
    # The miniature config with the schema's defaults, as the rules see it: what signatures read.
    filled: dict[str, Any] = field(default_factory=dict)
    timings: Timings = field(default_factory=Timings)

    def table(self) -> str:
        assert self.plan is not None
        ran = Counter(job.rule for job in self.plan.jobs)
        whole = Counter(job.rule for job in self.whole)
        lines = [f"rehearsal of {self.config_path}: {len(self.plan.jobs)} of {len(self.whole)} jobs run, "
                 f"{len(self.plan.signatures)} signatures covered",
                 f"{'rule':<28} {'run':>5} {'of':>6}"]
        lines += [f"{rule:<28} {ran[rule]:>5} {count:>6}" for rule, count in sorted(whole.items())]
        skipped = len(self.whole) - len(self.plan.jobs)
        lines.append(f"skipped: {skipped} jobs" + (f", only the {len(self.plan.runs)} runs in {self.workdir}/runs.txt "
                                                   f"were built (skipped jobs in {self.workdir}/skipped.txt)"
                                                   if skipped else ""))
        lines.append("time: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in self.timings.seconds.items()))
        return "\n".join(lines)


def rehearse(config_path: Path, workdir: Path, *, max_jobs: int = DEFAULT_MAX_JOBS, cores: int = CORES,
             preflight: bool = True, out: Any = None) -> Rehearsal:
    """Rehearse `config_path` in `workdir` (emptied first); raises RehearsalError naming what failed."""
    out = out or sys.stdout
    start = time.monotonic()
    config = w2s_schema.apply_defaults(_read(config_path), w2s_schema.SHIPPED_SCHEMA)
    shutil.rmtree(workdir, ignore_errors=True)
    workdir.mkdir(parents=True)
    result = Rehearsal(config_path, workdir)
    env = environment(workdir)
    mini = miniature_config(config, workdir, Miniatures(workdir / "hub", workdir / "torch"))
    _write(workdir / "config.yaml", mini)
    result.timings.measure("miniatures", start)

    # Preflight runs beside the plan (a dry run of the whole DAG); the run waits for it to pass.
    checking = _start_preflight(workdir, env) if preflight else None
    step = time.monotonic()
    planned = _snakemake(workdir, env, "-n")
    if planned.returncode != 0:
        raise RehearsalError(f"rehearsal of {config_path}: Snakemake could not plan the miniature config:\n"
                             + "\n".join((planned.stdout + planned.stderr).splitlines()[-30:]))
    result.whole = parse_dry_run(planned.stdout)
    defaults = w2s_schema.apply_defaults(mini, w2s_schema.SHIPPED_SCHEMA)
    result.filled = filled = {**defaults, **w2s_experiment.with_generative_variants(defaults)}
    selection: list[str] = []
    if len(result.whole) <= max_jobs:
        result.plan = Plan(result.whole, [], {signature(job, filled) for job in result.whole})
    else:
        result.plan = select(result.whole, filled)
        (workdir / "runs.txt").write_text("".join(run + "\n" for run in result.plan.runs))
        kept = {id(job) for job in result.plan.jobs}
        (workdir / "skipped.txt").write_text("".join(job.describe() + "\n" for job in result.whole
                                                     if id(job) not in kept))
        # A second config file, so that the miniature config stays as preflight read it.
        _write(workdir / "only_runs.yaml", {"only_runs": result.plan.runs})
        selection = ["--configfile", str(workdir / "config.yaml"), str(workdir / "only_runs.yaml")]
    result.timings.measure("plan", step)
    if checking is not None:
        _finish_preflight(checking, config_path, workdir)
        result.timings.measure("plan and preflight", step)

    step = time.monotonic()
    # One thread a job: miniatures gain nothing from more, and --cores jobs then run side by side.
    # Snakemake's greedy scheduler: its default (an ILP solved by CBC) costs about 4 CPU-s a rehearsal and chooses
    # nothing a rehearsal needs, which is code paths, not job order.
    ran = _snakemake(workdir, env, "--cores", str(cores), "--max-threads", "1", "--keep-going", "--scheduler", "greedy",
                     *selection)
    (workdir / "snakemake.txt").write_text(ran.stdout + ran.stderr)
    result.timings.measure("run", step)
    result.timings.measure("total", start)
    if ran.returncode != 0:
        raise RehearsalError(_failure_message(config_path, workdir, ran.stdout + ran.stderr, result.plan.jobs, filled))
    print(result.table(), file=out)
    return result


def _failure_message(config_path: Path, workdir: Path, output: str, planned: list[Job],
                     config: dict[str, Any]) -> str:
    """Which jobs failed, with their signatures and the end of their logs."""
    failed = _failed_jobs(output, planned)
    if not failed:
        return f"rehearsal of {config_path} failed:\n" + "\n".join(output.splitlines()[-40:])
    lines = [f"rehearsal of {config_path}: {len(failed)} job(s) failed (Snakemake's output: {workdir}/snakemake.txt)"]
    for job, log in failed:
        lines.append(f"- job {job.describe()}\n  signature: {describe_signature(signature(job, config))}")
        if log and (workdir / log).is_file():
            tail = [line for line in (workdir / log).read_text().splitlines() if line.strip()][-12:]
            lines.append(f"  its log {log} ends:\n" + "\n".join("    " + line for line in tail))
    return "\n".join(lines)


def _read(path: Path) -> dict[str, Any]:
    config = yaml.safe_load(path.read_text())
    w2s_validation.validate_config(config, w2s_schema.SHIPPED_SCHEMA)
    return config


def _write(path: Path, config: dict[str, Any]) -> None:
    path.write_text(yaml.safe_dump(config, sort_keys=False))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2s.pipeline.rehearse", description=__doc__.split("\n\n")[0])
    parser.add_argument("configs", nargs="+", metavar="CONFIG", type=Path)
    parser.add_argument("--workdir", type=Path, default=Path("results/rehearsal"),
                        help="each config is rehearsed in WORKDIR/<config name> (default: %(default)s)")
    parser.add_argument("--max-jobs", type=int, default=DEFAULT_MAX_JOBS,
                        help="run the whole DAG up to this many jobs, else one run per signature (default %(default)s)")
    parser.add_argument("--cores", type=int, default=CORES)
    parser.add_argument("--no-preflight", action="store_true", help="skip preflight on the miniature config")
    args = parser.parse_args(argv)
    failed = 0
    for path in args.configs:
        try:
            rehearse(path, args.workdir / path.stem, max_jobs=args.max_jobs, cores=args.cores,
                     preflight=not args.no_preflight)
        except (RehearsalError, w2s_validation.ConfigError, OSError) as err:
            print(err, file=sys.stderr)
            failed += 1
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
