"""A run's identity: the keys naming a run in its evaluate job's context param, its metrics file and the summary.

Defined once here, below the pipeline that builds a context (w2s.pipeline.run_context) and the summary that reads
it (w2s.evaluation.summary). A context is a plain dict, never an instance of a class: Snakemake records each param
as its repr, so the keys' order here is the param's, and changing it reruns every evaluate job.
"""

from __future__ import annotations

from typing import Any, TypedDict, get_args, get_type_hints


class RunIdentity(TypedDict):
    """Who ran, on what, trained how: every run's metrics name it by these keys, in this order."""

    dataset: str
    seed: int
    run: str
    kind: str
    model: str
    model_rank: int | None
    params_b: float | None
    loss: str | None
    lineage: str
    chain_length: int
    weak_model: str
    supervisor_run: str | None
    student_run: str | None
    data_axis: str | None
    n_gt_rows: int | None
    n_weak_labels: int | None
    hub_id: str | None
    mode: str
    task_kind: str
    n_classes: int
    shots: int | None
    model_selection: str | None
    uses_ground_truth_selection: bool


class WeakSupervision(TypedDict):
    """What supervises the lineage from its root: a model, or a simulated or ensemble supervisor
    (w2s.data.supervisors), in words."""

    weak_kind: str
    weak_method: str
    weak_structure: str | None
    weak_like: str | None
    weak_members: str | None


class RunContext(RunIdentity, WeakSupervision, total=False):
    """An evaluate job's context: the identity, then a simulated or ensemble supervisor's own entry, then the weak
    supervision; with generative finetuning in the config, whether the model started from it and the same run
    without it."""

    supervisor: dict[str, Any]
    generative_finetuning: bool
    run_without_generative_finetuning: str | None


IDENTITY_KEYS: tuple[str, ...] = tuple(RunIdentity.__annotations__)
WEAK_KEYS: tuple[str, ...] = tuple(WeakSupervision.__annotations__)
# How many rows a run trained on: counts, summarized beside the metrics rather than leading the tables.
ROW_COUNT_KEYS = ("n_gt_rows", "n_weak_labels")
# Leading columns of the per-run table, present even when no run has them, so readers can rely on them.
IDENTITY_COLUMNS: tuple[str, ...] = tuple(key for key in (*IDENTITY_KEYS, *WEAK_KEYS) if key not in ROW_COUNT_KEYS)
# The identity columns a table reads as numbers: those typed int or float (or either or None).
IDENTITY_NUMERIC_COLUMNS: tuple[str, ...] = tuple(
    key for key, hint in get_type_hints(RunIdentity).items()
    if key in IDENTITY_COLUMNS and {int, float} & {hint, *get_args(hint)})


def run_identity(**values: Any) -> RunIdentity:
    """The identity of a run from its values by key, in IDENTITY_KEYS' order; a missing or unknown key is an error,
    so that no context lacks a column the summary reads."""
    if values.keys() != set(IDENTITY_KEYS):
        raise ValueError(f"a run's identity has the keys {', '.join(IDENTITY_KEYS)}; missing "
                         f"{sorted(set(IDENTITY_KEYS) - values.keys())}, unknown {sorted(values.keys() - set(IDENTITY_KEYS))}")
    return {key: values[key] for key in IDENTITY_KEYS}  # type: ignore[return-value]
