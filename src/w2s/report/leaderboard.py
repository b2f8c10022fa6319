"""The report's leaderboard section: results/leaderboard.csv (w2s.evaluation.leaderboard) as two sortable tables, the
median PGR across datasets per loss or method and lineage, then each dataset's cell with its spread over seeds,
its paired difference from vanilla xent and its flags. A click on a column heading sorts by it (page.SORT_SCRIPT)."""

from __future__ import annotations

from typing import Any

import pandas as pd

from w2s.evaluation.leaderboard import ACROSS_DATASETS
from w2s.report.markup import esc


def has_leaderboard(table: pd.DataFrame | None) -> bool:
    return table is not None and not table.empty


def _number(value: Any, places: int = 3) -> tuple[str, str]:
    """A cell's text and the value it sorts by (missing values sort last)."""
    if pd.isna(value):
        return "–", ""
    return f"{value:.{places}f}", repr(float(value))


def _flags(row: pd.Series) -> str:
    flags = []
    if row["near_constant"]:
        flags.append("near-constant predictions")
    if row["teacher_unused"]:
        flags.append("teacher unused")
    if row["selection_within_noise"]:
        flags.append(f"selection within noise ({int(row['selection_within_noise'])} runs)")
    if row["uses_ground_truth_selection"]:
        flags.append("ground-truth selection")
    return "; ".join(flags)


def _interval(row: pd.Series, prefix: str = "") -> tuple[str, str]:
    text, value = _number(row[f"{prefix}vs_xent_accuracy_diff"])
    if pd.notna(row[f"{prefix}vs_xent_ci_low"]):
        text += f" [{row[f'{prefix}vs_xent_ci_low']:.3f}, {row[f'{prefix}vs_xent_ci_high']:.3f}]"
    return text, value


def _spread(row: pd.Series, metric: str) -> tuple[str, str]:
    text, value = _number(row[f"{metric}_mean"])
    if f"{metric}_sd" in row and pd.notna(row[f"{metric}_sd"]):
        text += f" ± {row[f'{metric}_sd']:.3f}"
    return text, value


def _table(rows: pd.DataFrame, columns: list[tuple[str, Any]], name: str) -> str:
    head = "".join(f'<th scope="col" title="click to sort">{esc(title)}</th>' for title, _ in columns)
    body = []
    for _, row in rows.iterrows():
        cells = []
        for _, cell in columns:
            text, value = cell(row)
            sort = f' data-sort="{esc(value)}"' if value is not None else ""
            cells.append(f"<td{sort}>{esc(text)}</td>")
        body.append(f"<tr>{''.join(cells)}</tr>")
    return (f'<table class="summary sortable" id="leaderboard-{name}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{''.join(body)}</tbody></table>")


def _text(column: str) -> Any:
    return lambda row: (str(row[column]), None)


def leaderboard_html(table: pd.DataFrame) -> str:
    """Both tables, best median PGR first, with a sentence on how each column is computed."""
    across = table[table["scope"] == ACROSS_DATASETS].sort_values("pgr_median", ascending=False, na_position="last")
    cells = table[table["scope"] != ACROSS_DATASETS].sort_values(["dataset", "lineage", "pgr_mean"],
                                                                 ascending=[True, True, False])
    # Out-of-distribution columns where a dataset has an ood_test split.
    ood = "ood_pgr_mean" in table and table["ood_pgr_mean"].notna().any()
    summary = _table(across, [
        ("loss or method", _text("training")), ("lineage", _text("lineage")),
        ("datasets", lambda r: (str(int(r["datasets"])), repr(float(r["datasets"])))),
        ("seeds", lambda r: (str(int(r["n_seeds"])), repr(float(r["n_seeds"])))),
        ("median PGR", lambda r: _number(r["pgr_median"])), ("mean accuracy", lambda r: _number(r["accuracy_mean"])),
        ("accuracy − xent (mean over datasets)", lambda r: _number(r["vs_xent_accuracy_diff"])),
        *([("OOD median PGR", lambda r: _number(r["ood_pgr_median"])),
           ("OOD accuracy − xent", lambda r: _number(r["ood_vs_xent_accuracy_diff"]))] if ood else []),
        ("flags", lambda r: (_flags(r), None)),
    ], "median")
    per_dataset = _table(cells, [
        ("dataset", _text("dataset")), ("loss or method", _text("training")), ("lineage", _text("lineage")),
        ("seeds", lambda r: (str(int(r["n_seeds"])), repr(float(r["n_seeds"])))),
        ("PGR (mean ± sd over seeds)", lambda r: _spread(r, "pgr")),
        ("accuracy (mean ± sd)", lambda r: _spread(r, "accuracy")),
        ("agreement with supervisor", lambda r: _number(r["agreement_mean"])),
        ("chance agreement", lambda r: _number(r["chance_agreement_mean"])),
        ("accuracy − xent [95% paired interval]", _interval),
        *([("OOD PGR (mean ± sd)", lambda r: _spread(r, "ood_pgr")),
           ("OOD accuracy − xent [95% paired interval]", lambda r: _interval(r, "ood_"))] if ood else []),
        ("flags", lambda r: (_flags(r), None)),
    ], "datasets")
    return (
        "<p>Every loss and weak-to-strong method (methods: docs/methods.md) on every lineage. Median PGR is taken "
        "across datasets over each dataset's mean over seeds, the paper's summary statistic. “accuracy − xent” is "
        "the difference in test accuracy from vanilla xent's student of the same lineage, with a 95% interval "
        "from paired bootstrap resamples of the test rows, the seeds combined. Flags: near-constant predictions "
        "(one class for at least 95% of a seed's test rows), teacher unused (agreement with the supervisor no "
        "higher than chance agreement at the same class shares), selection within noise (runs whose chosen L2 "
        "strength or checkpoint beat the runner-up by less than one standard error of its holdout score). Click "
        "a column heading to sort. OOD columns: the same on the dataset's out-of-distribution test split.</p>"
        f"{summary}<h3>Per dataset</h3>{per_dataset}"
    )
