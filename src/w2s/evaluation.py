"""Metrics of trained models and the summary table; reads predictions, never loads a model."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd

from w2s import io, metrics

log = logging.getLogger("w2s")


def evaluate(run: str, predictions: dict[str, str], bootstrap_samples: int, seed: int,
             out_path: str, context: dict[str, Any]) -> None:
    """Metrics of one trained model; for a student also PGR and agreement with its supervisor.

    `predictions` maps "self" and, for students, "supervisor", "weak" and "ceiling" to
    prediction files; `context` carries the run's identity into the JSON.
    """
    def test_probs(path: str) -> pd.DataFrame:
        frame = pd.read_parquet(path)
        return frame[frame["split"] == "test"].set_index("id")

    own = test_probs(predictions["self"])
    labels = own["label"].to_numpy()
    result: dict[str, Any] = dict(context)
    result.update({
        "n_test": int(len(own)),
        "test_positive_fraction": float(labels.mean()),
        "accuracy": metrics.accuracy(own["prob"].to_numpy(), labels),
        "auroc": metrics.auroc(own["prob"].to_numpy(), labels),
    })
    if "supervisor" in predictions:
        others = {k: test_probs(predictions[k]).loc[own.index, "prob"].to_numpy()
                  for k in ("supervisor", "weak", "ceiling")}
        weak_acc = metrics.accuracy(others["weak"], labels)
        ceiling_acc = metrics.accuracy(others["ceiling"], labels)
        value, reason = metrics.pgr(result["accuracy"], weak_acc, ceiling_acc)
        interval = metrics.bootstrap_pgr(own["prob"].to_numpy(), others["weak"], others["ceiling"], labels,
                                         bootstrap_samples, seed)
        result.update({
            "weak_accuracy": weak_acc,
            "ceiling_accuracy": ceiling_acc,
            "pgr": value,
            "pgr_undefined_reason": reason,
            "pgr_ci": interval["pgr_ci"],
            "accuracy_ci": interval["accuracy_ci"],
            **metrics.agreement(own["prob"].to_numpy(), others["supervisor"], labels),
        })
    else:
        result["accuracy_ci"] = metrics.bootstrap_accuracy(own["prob"].to_numpy(), labels, bootstrap_samples, seed)
    log.info("%s: %s", run, {k: result[k] for k in ("accuracy", "auroc", "pgr") if k in result})
    io.write_json(result, out_path)


def summarize(metrics_paths: list[str], parquet_path: str, csv_path: str) -> None:
    """One row per trained model, the table the report and users read."""
    rows = []
    for path in metrics_paths:
        m = io.read_json(path)
        accuracy_ci = m.get("accuracy_ci") or [None, None]
        pgr_ci = m.get("pgr_ci") or [None, None]
        rows.append({
            **{k: m.get(k) for k in (
                "dataset", "seed", "run", "kind", "model", "model_rank", "params_b", "loss", "lineage",
                "chain_length", "weak_model", "supervisor_run", "accuracy", "auroc", "weak_accuracy",
                "ceiling_accuracy", "pgr", "pgr_undefined_reason", "agreement",
                "agreement_supervisor_right", "agreement_supervisor_wrong", "n_test")},
            "accuracy_ci_low": accuracy_ci[0], "accuracy_ci_high": accuracy_ci[1],
            "pgr_ci_low": pgr_ci[0], "pgr_ci_high": pgr_ci[1],
        })
    frame = pd.DataFrame(rows).sort_values(["dataset", "seed", "chain_length", "run"]).reset_index(drop=True)
    io.write_parquet(frame, parquet_path)
    io.write_text(frame.to_csv(index=False), csv_path)

