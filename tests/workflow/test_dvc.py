"""Versioning with DVC for real: in a copy of this working tree, `make publish` reproduces a tiny
experiment and pushes it to a local remote; the workspace copies and the cache are deleted;
`make fetch` brings back identical files, and Snakemake plans nothing, also when it compares
file times instead of checksums. Every data file is above the checksum size limit used here, as
real data is above Snakemake's default of 1 MB."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
import yaml

from helpers import REPO, interpreter_first_on_path, planned_jobs, snakemake, tiny_config
from w2s.pipeline.filetimes import md5_of

OUTS = ("results/data", "results/report", "results/summary.csv", "results/summary_seeds.csv",
        "results/summary_losses.csv", "results/reference_comparison.csv")
# Below every data file's size, so Snakemake compares their times, as it does for real data
# above its default limit of 1 MB.
CHECKSUM_LIMIT = 100
DATA_FILES = {f"results/data/sst2/seed0/{name}"
              for name in ("train_gt.parquet", "train_w2s.parquet", "test.parquet", "unlabelled/train_gt.parquet",
                           "unlabelled/train_w2s.parquet", "unlabelled/test.parquet", "label_balance.json",
                           "source.json", "file_times.json")}


def command_env() -> dict[str, str]:
    # dvc.yaml's commands run `python` and `snakemake`: the ones next to this interpreter.
    return interpreter_first_on_path(dict(os.environ, DVC_NO_ANALYTICS="1"))


def run(repo: Path, *command: str) -> str:
    result = subprocess.run(command, cwd=repo, env=command_env(), capture_output=True, text=True)
    output = result.stdout + result.stderr
    if result.returncode != 0:
        raise AssertionError(f"{' '.join(command)} failed:\n{output[-4000:]}")
    return output


def dvc(repo: Path, *args: str) -> str:
    return run(repo, sys.executable, "-m", "dvc", *args)


def dry_run(repo: Path, *args: str, snakefile: Path | None = None) -> str:
    """What a dry run of config/config.yaml in `repo` prints, planned by `snakefile` (repo's own by default)."""
    result = snakemake(repo, "--configfile", "config/config.yaml", "-n", *args,
                       snakefile=snakefile or repo / "Snakefile", env=command_env())
    return result.stdout + result.stderr


def copy_working_tree(destination: Path) -> None:
    """The files git tracks or would track, as a fresh clone of this working tree would hold them."""
    listing = subprocess.run(["git", "ls-files", "-z", "--cached", "--others", "--exclude-standard"],
                             cwd=REPO, capture_output=True, text=True, check=True).stdout
    for name in filter(None, listing.split("\0")):
        source = REPO / name
        if source.is_symlink() or source.is_file():
            (destination / name).parent.mkdir(parents=True, exist_ok=True)
            shutil.copy2(source, destination / name, follow_symlinks=False)


def out_checksums(repo: Path) -> dict[str, str]:
    """md5 of every file under the outputs dvc.yaml versions that are there, by path."""
    files = []
    for out in map(repo.joinpath, OUTS):
        files += [p for p in out.rglob("*") if p.is_file()] if out.is_dir() else [out] if out.exists() else []
    return {p.relative_to(repo).as_posix(): md5_of(p) for p in files}


def small_experiment(tiny_models: dict[str, Path], data_dir: Path) -> dict:
    """The workflow test's config cut to one probe supervised by a LoRA model: every artifact kind
    the report needs, in a fraction of the time."""
    config = tiny_config(tiny_models, data_dir)
    del config["models"]["mid"], config["prompting"]
    config.update(ladder=["small", "big"], chains=[], losses={"xent": {}})
    return config


@dataclass(frozen=True)
class Published:
    repo: Path
    remote: Path
    profile: Path
    output: str
    retitled_output: str
    checksums: dict[str, str]


@dataclass(frozen=True)
class Fetched:
    plan_before_restoring_times: str
    output: str


@pytest.fixture(scope="module")
def published(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> Published:
    root = tmp_path_factory.mktemp("dvc")
    repo, remote, profile = root / "repo", root / "remote", root / "cpu-profile"
    copy_working_tree(repo)
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(small_experiment(tiny_models, root)))
    profile.mkdir()
    (profile / "config.yaml").write_text(f"cores: 2\nmax-checksum-file-size: {CHECKSUM_LIMIT}\n")
    run(repo, "git", "init", "-q")
    run(repo, "git", "add", "-A")
    run(repo, "git", "-c", "user.name=test", "-c", "user.email=test@example.com", "commit", "-qm", "clone")
    default_remote = dvc(repo, "remote", "default").strip()
    dvc(repo, "remote", "modify", "--local", default_remote, "url", str(remote))
    dvc(repo, "config", "--local", "core.site_cache_dir", str(root / "dvc-site-cache"))
    publish = ("make", "publish", f"PYTHON={sys.executable}", f"SNAKEMAKE_PROFILE={profile}")
    output = run(repo, *publish)
    # A plain `dvc checkout` leaves the data newer than the models; then a change to the report's
    # title, which the reproduce stage must redo without retraining.
    shutil.rmtree(repo / "results" / "data")
    dvc(repo, "checkout")
    config = yaml.safe_load((repo / "config" / "config.yaml").read_text())
    config["report"]["title"] = "Retitled"
    (repo / "config" / "config.yaml").write_text(yaml.safe_dump(config))
    retitled_output = run(repo, *publish)
    return Published(repo, remote, profile, output, retitled_output, out_checksums(repo))


@pytest.fixture(scope="module")
def fetched(published: Published) -> Fetched:
    repo = published.repo
    for out in map(repo.joinpath, OUTS):
        shutil.rmtree(out) if out.is_dir() else out.unlink()
    shutil.rmtree(repo / ".dvc" / "cache")
    assert out_checksums(repo) == {}
    dvc(repo, "pull")
    plan = dry_run(repo, "--max-checksum-file-size", str(CHECKSUM_LIMIT))
    return Fetched(plan, run(repo, "make", "fetch", f"PYTHON={sys.executable}"))


def test_publish_runs_both_stages_with_the_chosen_profile(published: Published) -> None:
    stages = re.findall(r"^Running stage '(\w+)':", published.output, flags=re.M)
    assert stages == ["data", "reproduce"]
    assert published.output.count(f"Using profile {published.profile} ") == 2
    lock = yaml.safe_load((published.repo / "dvc.lock").read_text())
    assert [out["path"] for out in lock["stages"]["data"]["outs"]] == ["results/data"]
    assert {out["path"] for out in lock["stages"]["reproduce"]["outs"]} == set(OUTS[1:])
    assert lock["stages"]["reproduce"]["params"]["config/config.yaml"]["losses"] == {"xent": {}}


def test_a_report_change_after_a_plain_checkout_redoes_the_report_only(published: Published) -> None:
    assert re.findall(r"^Running stage '(\w+)':", published.retitled_output, flags=re.M) == ["reproduce"]
    outputs = {output for _, output in planned_jobs(published.retitled_output)}
    assert "results/report/report.html" in outputs
    assert {o for o in outputs if not o.startswith("results/report/")} == set()


def test_publish_versions_the_data_and_the_report_and_pushes_every_file(published: Published) -> None:
    files = set(published.checksums)
    assert {f for f in files if f.startswith("results/data/")} == DATA_FILES
    assert {"results/report/report.html", "results/report/file_times.json", *OUTS[2:]} <= files
    pushed = {p.parent.name + p.name for p in (published.remote / "files" / "md5").rglob("*") if p.is_file()}
    assert set(published.checksums.values()) <= pushed


def test_every_data_file_is_above_the_checksum_limit_the_tests_use(published: Published) -> None:
    sizes = {f: (published.repo / f).stat().st_size for f in DATA_FILES}
    assert min(sizes.values()) > CHECKSUM_LIMIT, sizes


def test_after_publish_snakemake_plans_nothing_even_by_file_times(published: Published) -> None:
    # dvc repro rewrites the times of every output it commits; publish puts them back.
    assert "Nothing to be done" in dry_run(published.repo, "--max-checksum-file-size", str(CHECKSUM_LIMIT))


def test_fetch_brings_back_identical_files(published: Published, fetched: Fetched) -> None:
    assert out_checksums(published.repo) == published.checksums
    assert "Data and pipelines are up to date." in dvc(published.repo, "status")


def test_fetch_restores_every_recorded_file_time(published: Published, fetched: Fetched) -> None:
    report_files = [f for f in published.checksums if f != "results/report/file_times.json"
                    and not f.startswith("results/data/")]
    assert "results/data: 8 file times restored, 0 mismatched, 0 missing" in fetched.output
    assert f"results/report: {len(report_files)} file times restored, 0 mismatched, 0 missing" in fetched.output


def test_without_restored_times_snakemake_would_rerun_everything_after_the_data(
    published: Published, fetched: Fetched, tmp_path: Path
) -> None:
    (tmp_path / "config").mkdir()
    shutil.copy(published.repo / "config" / "config.yaml", tmp_path / "config" / "config.yaml")
    whole_workflow = planned_jobs(dry_run(tmp_path, snakefile=published.repo / "Snakefile"))
    after_the_data = whole_workflow - Counter({("prepare_data", "results/data/sst2/seed0/train_gt.parquet"): 1})
    assert sum(after_the_data.values()) < sum(whole_workflow.values())
    assert planned_jobs(fetched.plan_before_restoring_times) == after_the_data


def test_after_fetch_snakemake_plans_nothing(published: Published, fetched: Fetched) -> None:
    assert "Nothing to be done" in dry_run(published.repo)
    assert "Nothing to be done" in dry_run(published.repo, "--max-checksum-file-size", str(CHECKSUM_LIMIT))
