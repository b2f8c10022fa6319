"""One preflight check: its row (Check), and running one (run_check), OK with what it found, WARN where it cannot
be made here, or FAIL with the error that says what to fix."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Callable

from w2s import revisions
from w2s.data.spec import DatasetError

OK, FAIL, WARN = "OK", "FAIL", "WARN"


@dataclass(frozen=True)
class Check:
    status: str
    item: str
    check: str
    detail: str

    def line(self) -> str:
        return f"{self.status:<4}  {self.item:<24}  {self.check:<28}  {self.detail}"


class CheckFailed(Exception):
    """A check's failure, in words that say what to fix."""


class CheckSkipped(Exception):
    """A check that cannot be made here (the hub out of reach): a warning, not a failure."""


def run_check(item: str, check: str, body: Callable[[], str]) -> Check:
    """One check: OK with what `body` returns, WARN when it could not be made, or FAIL with the error it raised."""
    from w2s.models.qwen1 import Qwen1ConversionError
    from w2s.models.source import ModelLoadError

    # The package's own errors already say what to fix; anything else is named by its type.
    explained = (CheckFailed, DatasetError, revisions.RevisionError, ModelLoadError, Qwen1ConversionError)
    try:
        return Check(OK, item, check, body())
    except CheckSkipped as err:
        return Check(WARN, item, check, " ".join(str(err).split()))
    except Exception as err:  # every failure becomes a row; the run goes on to the next check
        detail = str(err) if isinstance(err, explained) else f"{type(err).__name__}: {err}"
        return Check(FAIL, item, check, " ".join(detail.split()))


def lock_note(repo_type: revisions.RepoType, hub_id: str, branch: str, head: str, lock_path: Path | None) -> str:
    """Write a resolved commit to the lock file, and say so."""
    if lock_path is None:
        return f"{hub_id}@{branch} is at {head}; not written (--no-lock)"
    revisions.record_in_lock(repo_type, hub_id, branch, head, lock_path)
    return f"{hub_id}@{branch} is at {head}; written to {lock_path}: commit it"
