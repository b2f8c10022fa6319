"""Which hub commit every dataset and model is read at, and the lock file that pins those the
registry and the config leave open.

A branch name (main, refs/convert/parquet) moves whenever its owner pushes, so a run that reads a
branch is not reproducible. The dataset registry (w2s.data.catalogue) carries a commit where public sources
confirm one, and a config entry may set its own. For the rest the first preflight on a machine that
reaches the hub resolves the branch's head commit and writes it to the lock file beside the config
(config/config.yaml -> config/hub.lock.yaml); the user commits that file, and every later run of the
checkout reads the same commits.
"""

from __future__ import annotations

import datetime
import os
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Literal

import yaml

from w2s import io

RepoType = Literal["dataset", "model"]
MAIN_BRANCH = "main"
COMMIT = re.compile(r"[0-9a-f]{40}")
# Beside the config, whatever the install (a path beside the package would be in site-packages); one lock
# for every config in the folder that reads a repository.
LOCK_NAME = "hub.lock.yaml"
# Where a Snakemake run's scripts find the lock file the run reads: they are not told the config files.
WORKFLOW_LOCK_ENV = "W2S_HUB_LOCK"
LOCK_HEADER = (
    "# Hub commits resolved by `python -m w2s.pipeline.preflight` for repositories that neither the dataset\n"
    "# registry (src/w2s/data/catalogue.py) nor the config pins. Commit this file: every run of the checkout then\n"
    "# reads the same data and weights. Delete an entry and rerun preflight to move it to the branch's head.\n"
)
SECTIONS: dict[RepoType, str] = {"dataset": "datasets", "model": "models"}


class RevisionError(RuntimeError):
    """A revision could not be resolved or the lock file is unusable; the message says what to do."""


def lock_key(hub_id: str, branch: str) -> str:
    """One entry per repository and branch: datasets that share a repository share its commit."""
    return f"{hub_id}@{branch}"


def lock_file(config_path: str | Path) -> Path:
    """The lock file of a config: beside it."""
    return Path(config_path).parent / LOCK_NAME


def workflow_lock(configfiles: Sequence[str | Path], default_config: str | Path) -> dict[str, dict[str, str]]:
    """The lock a Snakemake run reads: beside its last config file (`default_config` when it was given none), where
    preflight writes it for that config. Its path goes to the environment (WORKFLOW_LOCK_ENV) for the run's scripts."""
    path = lock_file(configfiles[-1] if configfiles else default_config)
    os.environ[WORKFLOW_LOCK_ENV] = str(path)
    return read_lock(path)


def read_lock(path: str | Path) -> dict[str, dict[str, str]]:
    """{"datasets": {key: commit}, "models": {key: commit}}; empty sections when there is no file."""
    path = Path(path)
    lock: dict[str, dict[str, str]] = {section: {} for section in SECTIONS.values()}
    if not path.exists():
        return lock
    try:
        content = yaml.safe_load(path.read_text()) or {}
    except yaml.YAMLError as err:
        raise RevisionError(f"{path} is not valid YAML ({err}); fix it, or delete it and rerun preflight") from err
    for section in lock:
        entries = content.get(section) or {}
        for key, entry in entries.items():
            commit = entry.get("revision") if isinstance(entry, dict) else entry
            if not isinstance(commit, str) or not COMMIT.fullmatch(commit):
                raise RevisionError(
                    f"{path}: {section}.{key} is {commit!r}, not a 40-hex commit; delete the entry and rerun preflight"
                )
            lock[section][key] = commit
    return lock


def locked_revision(lock: dict[str, dict[str, str]], repo_type: RepoType, hub_id: str, branch: str) -> str | None:
    return lock[SECTIONS[repo_type]].get(lock_key(hub_id, branch))


def record_in_lock(repo_type: RepoType, hub_id: str, branch: str, commit: str, path: str | Path) -> None:
    """Add or replace one entry, with the date it was resolved, keeping every other entry."""
    path = Path(path)
    content: dict[str, Any] = {}
    if path.exists():
        content = yaml.safe_load(path.read_text()) or {}
    section = content.setdefault(SECTIONS[repo_type], {}) or {}
    content[SECTIONS[repo_type]] = section
    section[lock_key(hub_id, branch)] = {"revision": commit, "resolved": datetime.date.today().isoformat()}
    ordered = {name: dict(sorted((content.get(name) or {}).items())) for name in SECTIONS.values()}
    io.write_text(LOCK_HEADER + yaml.safe_dump(ordered, sort_keys=False), path)


def resolve_head(repo_type: RepoType, hub_id: str, branch: str) -> str:
    """The commit `branch` of a hub repository points at now (needs the hub)."""
    from huggingface_hub import HfApi
    from huggingface_hub.errors import RepositoryNotFoundError, RevisionNotFoundError

    api = HfApi()
    try:
        info = (api.dataset_info if repo_type == "dataset" else api.model_info)(hub_id, revision=branch)
    except RevisionNotFoundError as err:
        raise RevisionError(f"the {repo_type} repository '{hub_id}' has no branch '{branch}' on the hub") from err
    except RepositoryNotFoundError as err:
        raise RevisionError(f"the {repo_type} repository '{hub_id}' does not exist on the hub or is private; "
                            "check the id, or log in with `hf auth login`") from err
    except Exception as err:  # httpx errors, offline mode, ...
        raise RevisionError(f"could not reach the hub to resolve {hub_id}@{branch} ({type(err).__name__}: {err}); "
                            "run preflight where the hub is reachable, or pin the revision in the config") from err
    if info.sha is None or not COMMIT.fullmatch(info.sha):
        raise RevisionError(f"the hub gave no commit for {hub_id}@{branch}")
    return info.sha


def pin_model_entry(entry: dict[str, Any], lock: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A hub model's config entry with the lock file's commit when the config pins none."""
    if "hub_id" not in entry or "revision" in entry:
        return entry
    locked = locked_revision(lock, "model", entry["hub_id"], MAIN_BRANCH)
    return entry if locked is None else {**entry, "revision": locked}
