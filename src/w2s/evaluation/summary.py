"""The summary tables of every run's metrics: one row per run, averages over seeds, PGR per loss, and the
comparison with published values."""

from __future__ import annotations

from typing import Any

import pandas as pd

from w2s import io
from w2s.evaluation import metrics, reference
from w2s.evaluation.identity import IDENTITY_COLUMNS, IDENTITY_NUMERIC_COLUMNS, ROW_COUNT_KEYS

SUMMARY_OUTPUTS = ("parquet", "csv", "seeds_csv", "losses_csv", "reference_csv")
NUMERIC_COLUMNS = (
    "accuracy", "accuracy_ci_low", "accuracy_ci_high", "auroc", "auroc_ci_low", "auroc_ci_high",
    "weak_accuracy", "ceiling_accuracy", "weak_auroc", "ceiling_auroc",
    "pgr", "pgr_ci_low", "pgr_ci_high", "pgr_auroc", "pgr_auroc_ci_low", "pgr_auroc_ci_high",
    "agreement", "agreement_ci_low", "agreement_ci_high", "agreement_supervisor_right", "agreement_supervisor_wrong",
    "n_test", "test_positive_fraction", "student_accuracy", "student_pgr", *ROW_COUNT_KEYS,
)
TEXT_COLUMNS = ("auroc_kind", "auroc_undefined_reason", "pgr_undefined_reason", "pgr_auroc_undefined_reason")
# Averaged over seeds per dataset and run, each with a bootstrap interval over seeds.
SEED_METRICS = ("accuracy", "auroc", "pgr", "pgr_auroc", "agreement")
SEED_BOOTSTRAP_SAMPLES = 1000
SEED_BOOTSTRAP_RNG_SEED = 0
REFERENCE_COLUMNS = (
    "dataset", "model", "hub_id", "reference_model", "loss", "quantity", "uses_ground_truth_selection",
    "measured", "reference", "approximate", "difference", "basis", "source",
)


def summarize(metrics_paths: list[str], outputs: dict[str, str]) -> None:
    """The tables users and the report read, each written to the path `outputs` names.

    parquet, csv: one row per dataset, seed and run with every scalar of its metrics JSON.
    seeds_csv: one row per dataset and run, metrics averaged over seeds with intervals over seeds.
    losses_csv: PGR per loss and lineage length across datasets, median and mean.
    reference_csv: published reference values beside the measured ones that match them.
    """
    missing = [name for name in SUMMARY_OUTPUTS if name not in outputs]
    if missing:
        raise ValueError(f"summarize needs output paths for {missing}")
    runs = run_table([io.read_json(path) for path in metrics_paths])
    io.write_parquet(runs, outputs["parquet"])
    io.write_text(runs.to_csv(index=False), outputs["csv"])
    pairs = pair_means(runs)
    for name, table in (("seeds_csv", seed_summary(runs)), ("losses_csv", loss_summary(pairs)),
                        ("reference_csv", reference_comparison(runs, pairs))):
        io.write_text(table.to_csv(index=False), outputs[name])


def run_table(records: list[dict[str, Any]]) -> pd.DataFrame:
    """One row per metrics record: identity columns first, then every other scalar in order of appearance."""
    frame = pd.DataFrame([_flat_scalars(record) for record in records])
    leading = [*IDENTITY_COLUMNS, *NUMERIC_COLUMNS, *TEXT_COLUMNS]
    frame = frame.reindex(columns=[*leading, *(c for c in frame.columns if c not in leading)])
    numeric = [*IDENTITY_NUMERIC_COLUMNS, *NUMERIC_COLUMNS]
    frame[numeric] = frame[numeric].apply(pd.to_numeric)
    return frame.sort_values(["dataset", "seed", "chain_length", "run"]).reset_index(drop=True)


def _flat_scalars(record: dict[str, Any]) -> dict[str, Any]:
    """Scalars as they are, each `<name>_ci` interval as `<name>_ci_low` and `<name>_ci_high`
    (empty when the interval is null); nested values such as label_balance are left out."""
    row: dict[str, Any] = {}
    for key, value in record.items():
        if key.endswith("_ci") and (value is None or (isinstance(value, list) and len(value) == 2)):
            row[f"{key}_low"], row[f"{key}_high"] = value or (None, None)
        elif value is None or isinstance(value, (str, int, float, bool)):
            row[key] = value
    return row


def uses_ground_truth_selection(frame: pd.DataFrame) -> pd.Series:
    """Whether each run picked its checkpoint with ground-truth labels; False where the metrics predate the flag."""
    if "uses_ground_truth_selection" not in frame:
        return pd.Series(False, index=frame.index)
    return frame["uses_ground_truth_selection"].eq(True)


def seed_summary(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per dataset and run: its identity, n_seeds, and per metric in SEED_METRICS the mean over
    seeds where it is defined, how many those are, and a 95% percentile bootstrap interval of that
    mean over seeds (seeds resampled with replacement; empty with fewer than two seeds)."""
    identity = [c for c in IDENTITY_COLUMNS if c not in ("dataset", "seed", "run")]
    rows = []
    for (dataset, run), group in runs.groupby(["dataset", "run"], sort=True):
        row = {"dataset": dataset, "run": run, **group.iloc[0][identity].to_dict(), "n_seeds": group["seed"].nunique()}
        for metric in SEED_METRICS:
            values = group[metric].dropna().to_numpy(dtype=float)
            low, high = metrics.bootstrap_mean_interval(values, SEED_BOOTSTRAP_SAMPLES,
                                                        SEED_BOOTSTRAP_RNG_SEED) or (None, None)
            row.update({
                f"{metric}_mean": float(values.mean()) if len(values) else None,
                f"{metric}_n_seeds": len(values),
                f"{metric}_seed_ci_low": low,
                f"{metric}_seed_ci_high": high,
            })
        rows.append(row)
    columns = ["dataset", "run", *identity, "n_seeds",
               *(f"{m}_{s}" for m in SEED_METRICS for s in ("mean", "n_seeds", "seed_ci_low", "seed_ci_high"))]
    return pd.DataFrame(rows, columns=columns)


def pair_means(runs: pd.DataFrame) -> pd.DataFrame:
    """Every student's scores averaged over seeds, one row per dataset and run, with PGR and PGR on
    AUROC recomputed from those means: NaN where the mean ceiling is not above the mean weak score."""
    # The data axes' runs vary the data, not the method: they are compared in their own view.
    students = runs[(runs["kind"] == "student") & runs["data_axis"].isna()].assign(
        uses_ground_truth_selection=lambda f: uses_ground_truth_selection(f),
        # Metrics from before simulated and ensemble supervisors were all supervised by a model.
        weak_kind=lambda f: f["weak_kind"].astype(object).fillna("model") if "weak_kind" in f else "model")
    keys = ["dataset", "run", "loss", "chain_length", "weak_model", "weak_kind", "model", "hub_id", "mode",
            "uses_ground_truth_selection"]
    scores = ["accuracy", "weak_accuracy", "ceiling_accuracy", "auroc", "weak_auroc", "ceiling_auroc"]
    means = students.groupby(keys, dropna=False, sort=True)[scores].mean().reset_index()
    means["pgr"] = metrics.gap_recovered(means["accuracy"], means["weak_accuracy"], means["ceiling_accuracy"])
    means["pgr_auroc"] = metrics.gap_recovered(means["auroc"], means["weak_auroc"], means["ceiling_auroc"])
    return means


def _pgr_statistics(pairs: pd.DataFrame) -> dict[str, Any]:
    """Median and mean of PGR and PGR on AUROC over the pairs where they are defined (the reference
    counts only pairs whose ceiling beats the weak model), with how many pairs were counted and excluded."""
    statistics: dict[str, Any] = {}
    for name in ("pgr", "pgr_auroc"):
        counted = pairs[name].dropna()
        statistics.update({
            f"{name}_median": counted.median() if len(counted) else None,
            f"{name}_mean": counted.mean() if len(counted) else None,
            f"{name}_pairs_counted": len(counted),
            f"{name}_pairs_excluded": len(pairs) - len(counted),
        })
    return statistics


def loss_summary(pairs: pd.DataFrame) -> pd.DataFrame:
    """Per loss and lineage length (2: direct weak→strong pairs, more: bootstrap chains), PGR across
    datasets from seed means; runs selected with ground truth, and lineages rooted in a simulated or an
    ensemble supervisor (weak_kind), are kept apart from the others."""
    keys = ["loss", "chain_length", "weak_kind", "uses_ground_truth_selection"]
    rows = [
        {**dict(zip(keys, key)), "lineage": ("direct" if key[1] == 2 else f"chain of {key[1]} models")
         + ("" if key[2] == "model" else f", from {key[2]} supervisors"),
         "datasets": group["dataset"].nunique(), "pairs": len(group), **_pgr_statistics(group)}
        for key, group in pairs.groupby(keys, sort=True)
    ]
    statistics = ("median", "mean", "pairs_counted", "pairs_excluded")
    columns = [*keys, "lineage", "datasets", "pairs", *(f"{n}_{s}" for n in ("pgr", "pgr_auroc") for s in statistics)]
    return pd.DataFrame(rows, columns=columns)


def reference_comparison(runs: pd.DataFrame, pairs: pd.DataFrame) -> pd.DataFrame:
    """Published reference values beside the measured ones of the same configuration.

    Ground-truth accuracy: a full-finetuning ground-truth run of a model whose hub id the reference
    used, on a dataset of the same name, averaged over seeds. Median PGR: per dataset and loss over
    the direct pairs whose weak and strong models are both such models and fully finetuned,
    from seed means, counting only pairs whose ceiling beats the weak model. Empty when nothing matches.
    """
    rows = []
    ground_truth = runs[(runs["kind"] == "ground_truth") & (runs["mode"] == "full")].assign(
        uses_ground_truth_selection=lambda f: uses_ground_truth_selection(f))
    for (dataset, model, hub_id, selected), group in ground_truth.groupby(
            ["dataset", "model", "hub_id", "uses_ground_truth_selection"], sort=True):
        published = reference.ground_truth_accuracy(dataset, hub_id)
        if published is not None:
            rows.append(_comparison_row(dataset, model, hub_id, None, "ground-truth accuracy", selected,
                                        group["accuracy"].mean(), published, f"{group['seed'].nunique()} seeds"))
    hub_ids = runs.drop_duplicates("model").set_index("model")["hub_id"]
    direct = pairs[(pairs["chain_length"] == 2) & (pairs["mode"] == "full")
                   & pairs["hub_id"].map(reference.reference_model).notna()
                   & pairs["weak_model"].map(hub_ids).map(reference.reference_model).notna()]
    for (dataset, loss, selected), group in direct.groupby(["dataset", "loss", "uses_ground_truth_selection"],
                                                           sort=True):
        published = reference.median_pgr(dataset, loss)
        counted = group["pgr"].dropna()
        if published is not None and len(counted):
            rows.append(_comparison_row(dataset, None, None, loss, "median PGR", selected, counted.median(), published,
                                        f"{len(counted)} of {len(group)} direct pairs (ceiling above weak)"))
    return pd.DataFrame(rows, columns=list(REFERENCE_COLUMNS))


def _comparison_row(dataset: str, model: str | None, hub_id: str | None, loss: str | None, quantity: str,
                    selected: bool, measured: float, published: reference.Published, basis: str) -> dict[str, Any]:
    return {
        "dataset": dataset, "model": model, "hub_id": hub_id, "reference_model": reference.reference_model(hub_id),
        "loss": loss, "quantity": quantity, "uses_ground_truth_selection": bool(selected),
        "measured": float(measured), "reference": published.value, "approximate": published.approximate,
        "difference": float(measured) - published.value, "basis": basis, "source": reference.SOURCE,
    }
