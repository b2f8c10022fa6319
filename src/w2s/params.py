"""The params a rule passes to its job (a plain dict, which Snakemake compares to decide what to rerun)
become typed settings at the job's boundary; this is the check every settings class makes."""

from __future__ import annotations

from typing import Any, Iterable


class SettingsError(ValueError):
    """A job's params do not match its settings; the message names the keys."""


def check_keys(what: str, params: dict[str, Any], expected: Iterable[str]) -> None:
    """Raise SettingsError naming every key of `params` not in `expected`, and every one missing: params made by
    other code than the job's, which would otherwise silently ignore or invent a setting."""
    expected = set(expected)
    unknown, missing = sorted(set(params) - expected), sorted(expected - set(params))
    problems = ([f"unknown keys {', '.join(unknown)}"] if unknown else []) + (
        [f"missing keys {', '.join(missing)}"] if missing else [])
    if problems:
        raise SettingsError(f"{what}: {'; '.join(problems)}. The params were not made by this version's rules; "
                            "rerun the job through the workflow")
