"""Where every number in the report came from: code, config, packages, devices, data and cost."""

from __future__ import annotations

import hashlib
import json
import platform
import subprocess
from importlib import metadata
from pathlib import Path
from typing import Any

import pandas as pd
import yaml

from w2s.pipeline.filetimes import md5_of
from w2s.tasks import model_family
from w2s.revisions import pin_model_entry

# The packages whose versions can change a result or how it is drawn.
PACKAGES = (
    "w2s", "torch", "transformers", "peft", "accelerate", "datasets", "safetensors", "numpy", "pandas",
    "pyarrow", "snakemake", "dvc", "altair", "vl-convert-python",
)
DATA_STAGE = "data"
# Where the convert rule (rules/models.smk) writes a converted model, relative to the workflow's working directory.
CONVERTED_MODELS = "results/models"
# Where a Snakemake run's provenance job finds the run's config files (os.pathsep between them): rules/common.smk
# sets it, as scripts are not told them.
CONFIG_FILES_ENV = "W2S_CONFIG_FILES"


def config_sha256(config: dict[str, Any]) -> str:
    """A hash of the config's content, independent of key order and YAML formatting."""
    canonical = json.dumps(config, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(canonical.encode("utf-8")).hexdigest()


def git_state(directory: str | Path, files: list[str] = ()) -> dict[str, Any]:
    """The checked-out commit and whether tracked files differ from it; nulls with the reason outside git. With
    `files` (the run's config and data files, wherever they are), each one's state in the repository that holds
    it: committed, modified (or staged), untracked, ignored, outside git, or missing."""
    try:
        commit = _git(directory, "rev-parse", "HEAD").strip()
        changed = _git(directory, "status", "--porcelain", "--untracked-files=no")
    except (OSError, subprocess.CalledProcessError) as error:
        return {"commit": None, "dirty": None, "note": f"no git state: {error}",
                "files": [{"path": path, "status": file_status(path)} for path in files]}
    return {"commit": commit, "dirty": bool(changed.strip()),
            "files": [{"path": path, "status": file_status(path)} for path in files]}


# `git status --porcelain` codes of a file that is not committed as it is; every other code is a change.
UNCOMMITTED = {"??": "untracked", "!!": "ignored"}


def file_status(path: str | Path) -> str:
    """A file's git state in the repository that holds it (see git_state)."""
    path = Path(path).resolve()
    if not path.exists():
        return "missing"
    try:
        code = _git(path.parent, "status", "--porcelain", "--ignored", "--", path.name)[:2]
    except (OSError, subprocess.CalledProcessError):
        return "outside git"
    return "committed" if not code else UNCOMMITTED.get(code, "modified")


def run_files(config_files: list[str], datasets: dict[str, dict[str, Any]]) -> list[str]:
    """The files a run reads besides its code: its config files, then each dataset's local data_files and its
    out-of-distribution test file (a remote location, https:// or hf://, has no git state; a file the workflow
    fetches into results/ is its own artifact)."""
    data = [path for entry in datasets.values() for path in entry.get("data_files", {}).values()
            if path and "://" not in path]
    data += [path for entry in datasets.values() if (path := entry.get("ood_test", {}).get("data_files"))
             and "://" not in path and not path.startswith("results/")]
    return [*config_files, *data]


def _git(directory: str | Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True, text=True).stdout


def package_versions() -> dict[str, str | None]:
    versions: dict[str, str | None] = {"python": platform.python_version()}
    for name in PACKAGES:
        try:
            versions[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            versions[name] = None
    return versions


def dvc_data_version(dvc_lock: str | Path) -> dict[str, Any]:
    """What dvc.lock records for the prepared data (the `data` stage's outputs), or why nothing is recorded."""
    path = Path(dvc_lock)
    if not path.exists():
        return {"recorded": False, "note": f"{path.name} not found: the workflow was not run through `dvc repro`"}
    stage = (yaml.safe_load(path.read_text()) or {}).get("stages", {}).get(DATA_STAGE)
    if stage is None:
        return {"recorded": False, "note": f"{path.name} has no '{DATA_STAGE}' stage"}
    outs = [{key: out.get(key) for key in ("path", "md5", "size", "nfiles")} for out in stage.get("outs", [])]
    return {"recorded": True, "lock_file": path.name, "outs": outs}


def data_files(paths: list[str]) -> list[dict[str, Any]]:
    """md5 (DVC's content address) and size of each prepared data file."""
    return [{"path": path, "md5": md5_of(path), "bytes": Path(path).stat().st_size} for path in sorted(paths)]


def data_sources(paths: list[str]) -> list[dict[str, Any]]:
    """What each preparation read (its source.json): the hub repository and commit, or local files."""
    sources = []
    for path in sorted(p for p in paths if Path(p).name == "source.json"):
        record = json.loads(Path(path).read_text())
        local = record.get("data_files")
        sources.append({
            "dataset": record["dataset"], "seed_folder": Path(path).parent.name,
            "hub_id": record.get("hub_id"), "revision": record.get("revision"),
            "branch": record.get("branch"), "pinned_by": record.get("pinned_by"), "mirror": record.get("mirror"),
            "local_files": {split: f["sha256"] for split, f in local.items()} if local else None,
        })
    return sources


def model_sources(models: dict[str, dict[str, Any]], lock: dict[str, dict[str, str]],
                  converted_dir: str = CONVERTED_MODELS) -> list[dict[str, Any]]:
    """Where each configured model is loaded from: a hub repository at the revision its entry names (a
    commit, tag or branch, such as a Pythia pretraining checkpoint's `step1000`) or else at the lock
    file's commit, as the training jobs load it; or a local path, a package, or an image library. A
    transformers model's weights files come with their sha256 (model_weights)."""
    sources = []
    for name, entry in sorted(models.items()):
        if "hub_id" in entry:
            pinned = pin_model_entry(entry, lock)
            by = "config" if "revision" in entry else "lock" if "revision" in pinned else "unpinned"
            if "convert" in entry:  # the jobs load the conversion the convert rule wrote
                pinned = {**pinned, "converted": f"{converted_dir}/{name}"}
            sources.append({"model": name, "hub_id": entry["hub_id"], "revision": pinned.get("revision"),
                            "pinned_by": by, "local": None, **model_weights(pinned)})
            continue
        local = entry.get("path") or entry.get("package") or f"{entry['family']} {entry['name']}"
        transformers = model_family(entry) == "transformers"  # image models' weights are their libraries'
        weights = model_weights(entry) if transformers else {"weights": None, "weights_note": None}
        sources.append({"model": name, "hub_id": None, "revision": None, "pinned_by": None, "local": local, **weights})
    return sources


def model_weights(entry: dict[str, Any]) -> dict[str, Any]:
    """The weights files the jobs of a transformers model load, each with its size and sha256: the one recorded
    when it arrived (the hub's, a conversion's; every load checks the file against it), else hashed here once.
    Weights not on this machine (a hub model outside this Hugging Face cache) are named in weights_note."""
    from w2s.models.source import ModelLoadError
    from w2s.models.text import shipped_source
    from w2s.models.weights import weights_record

    try:
        return {"weights": weights_record(shipped_source(entry)), "weights_note": None}
    except (ModelLoadError, OSError) as err:
        return {"weights": None, "weights_note": f"not found here: {err}"}


def artifact_costs(benchmark_paths: list[str], root: str = "results/benchmarks") -> list[dict[str, Any]]:
    """Wall time, peak resident memory and CPU time of each benchmarked job, from Snakemake's benchmark files.

    A benchmark file with several repeats contributes its mean; the artifact is the file's path under
    `root` without `.tsv` (results/benchmarks/sst2/seed0/gt/gpt2.tsv is sst2/seed0/gt/gpt2).
    """
    costs = []
    for path in sorted(benchmark_paths):
        table = pd.read_csv(path, sep="\t")
        artifact = str(Path(path).relative_to(root).with_suffix("")) if Path(path).is_relative_to(root) else path
        costs.append({
            "artifact": artifact,
            "wall_s": float(table["s"].mean()),
            "max_rss_mb": float(table["max_rss"].mean()) if pd.notna(table["max_rss"]).all() else None,
            "cpu_time_s": float(table["cpu_time"].mean()) if "cpu_time" in table else None,
        })
    return costs


def training_devices(curves: pd.DataFrame) -> list[dict[str, Any]]:
    """Each device that trained runs, with how many runs it trained."""
    per_run = curves.drop_duplicates(["dataset", "seed", "run"])
    counts = per_run["device"].fillna("not recorded").value_counts().sort_index()
    return [{"device": device, "runs": int(n)} for device, n in counts.items()]


def collect(*, workflow_dir: str | Path, config_sha256: str, benchmark_paths: list[str],
            curves: pd.DataFrame, data_paths: list[str], dvc_lock: str | Path,
            models: dict[str, dict[str, Any]], hub_lock: dict[str, dict[str, str]],
            read_files: list[str] = ()) -> dict[str, Any]:
    """The provenance record the report shows; git and DVC state (of the code and of `read_files`, the run's config
    and data files: run_files) are read when it is built."""
    return {
        "git": git_state(workflow_dir, read_files),
        "config_sha256": config_sha256,
        "packages": package_versions(),
        "built_on": platform.platform(),
        "training_devices": training_devices(curves),
        "dvc_data": dvc_data_version(dvc_lock),
        "data_files": data_files(data_paths),
        "data_sources": data_sources(data_paths),
        "model_sources": model_sources(models, hub_lock),
        "artifacts": artifact_costs(benchmark_paths),
    }
