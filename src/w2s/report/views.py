"""The report's views and their one registration point, VIEWS: each view's heading, the test of whether the
report's inputs hold rows for it (whether the config asked for its analysis), and its builder. A view without
rows is left out of the page; the core views (accuracy, PGR, the summary tables) are always shown."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import pandas as pd

from w2s.evaluation.summary import SEED_METRICS
from w2s.report import analyses, fitting
from w2s.report.aggregation import axis_of, with_selection_marked
from w2s.report.leaderboard import has_leaderboard, leaderboard_html
from w2s.report.figures import Figure, accuracy_figure, agreement_figure, has_agreement, pgr_figure
from w2s.report.tables import provenance_html, summary_tables_html

REQUIRED_COLUMNS = (
    "dataset", "seed", "run", "kind", "model", "model_rank", "params_b", "loss", "lineage", "chain_length",
    "weak_model", "accuracy", "auroc", "ceiling_accuracy", "pgr", "pgr_ci_low", "pgr_ci_high",
    "pgr_undefined_reason", "agreement_supervisor_right", "agreement_supervisor_wrong",
)
# Columns the report reads from summarize's seeds, losses and reference tables.
SEED_REQUIRED_COLUMNS = (
    "dataset", "run", "n_seeds", *(f"{m}_{s}" for m in SEED_METRICS for s in ("mean", "seed_ci_low", "seed_ci_high")),
)
LOSS_REQUIRED_COLUMNS = (
    "loss", "lineage", "datasets", "pairs", "pgr_median", "pgr_mean", "pgr_pairs_counted", "pgr_pairs_excluded",
    "pgr_auroc_median", "pgr_auroc_mean", "pgr_auroc_pairs_counted", "pgr_auroc_pairs_excluded",
)
REFERENCE_REQUIRED_COLUMNS = (
    "dataset", "model", "hub_id", "loss", "quantity", "measured", "reference", "approximate", "difference", "basis",
)


@dataclass(frozen=True)
class ReportInputs:
    """What a report is drawn from: summarize's per-run `summary`, and where given its `seed_summary`,
    `loss_summary` and `reference` tables (each rendered as a table), the training_curves table `curves`,
    evaluation.regularisation_sweep's table `sweep`, the `leaderboard` (w2s.evaluation.leaderboard) and the
    `provenance` record (shown last)."""

    summary: pd.DataFrame
    seed_summary: pd.DataFrame | None = None
    loss_summary: pd.DataFrame | None = None
    reference: pd.DataFrame | None = None
    curves: pd.DataFrame | None = None
    sweep: pd.DataFrame | None = None
    leaderboard: pd.DataFrame | None = None
    provenance: dict[str, Any] | None = None

    def __post_init__(self) -> None:
        expected = (("summary", self.summary, REQUIRED_COLUMNS),
                    ("seed_summary", self.seed_summary, SEED_REQUIRED_COLUMNS),
                    ("loss_summary", self.loss_summary, LOSS_REQUIRED_COLUMNS),
                    ("reference", self.reference, REFERENCE_REQUIRED_COLUMNS))
        for name, table, columns in expected:
            missing = [] if table is None else [c for c in columns if c not in table.columns]
            if missing:
                raise ValueError(f"{name} lacks columns {missing}")


@dataclass(frozen=True)
class Report:
    """The inputs as the views read them: `every_run` is the summary with ground-truth selection and supervisor
    kinds marked (aggregation.with_selection_marked), `summary` the same without the data axes' runs, which vary
    the data, not the method, so that only their own view shows them."""

    inputs: ReportInputs
    summary: pd.DataFrame
    every_run: pd.DataFrame

    @classmethod
    def of(cls, inputs: ReportInputs) -> Report:
        every_run = with_selection_marked(inputs.summary)
        return cls(inputs, every_run[axis_of(every_run).isna()], every_run)


@dataclass(frozen=True)
class View:
    """One section of the page: its heading, whether the report holds rows for it, and its content, a Figure
    (drawn, and written as figures/<name>.png) or the HTML of a section of tables."""

    heading: str
    shown: Callable[[Report], bool]
    build: Callable[[Report], Figure | str]


def _always(report: Report) -> bool:
    return True


# The registration point: every section of the page, in page order, by name (a figure's anchor and PNG name).
VIEWS: dict[str, View] = {
    "accuracy": View("Test accuracy against strong model", _always, lambda r: accuracy_figure(r.summary)),
    "pgr": View("PGR per weak and strong model", _always, lambda r: pgr_figure(r.summary)),
    "regularisation": View("Overfitting to weak supervision: PGR against L2 strength",
                           lambda r: fitting.has_sweep(r.inputs.sweep), lambda r: fitting.sweep_figure(r.inputs.sweep)),
    "agreement": View("Student–supervisor agreement", lambda r: has_agreement(r.summary),
                      lambda r: agreement_figure(r.summary)),
    "error_structure": View("Simulated weak supervisors: which errors students imitate",
                            lambda r: analyses.has_simulated_supervisors(r.summary),
                            lambda r: analyses.error_structure_figure(r.summary)),
    "ensembles": View("Ensembles of weak supervisors against their members",
                      lambda r: analyses.has_ensembles(r.summary), lambda r: analyses.ensemble_figure(r.summary)),
    "chains": View("Bootstrap chains vs direct supervision", lambda r: analyses.has_chains(r.summary),
                   lambda r: analyses.chain_figure(r.summary)),
    "curves": View("Training curves", lambda r: fitting.has_training_curves(r.inputs.curves),
                   lambda r: fitting.curves_figure(r.inputs.curves)),
    "ft_weak_lp_gt": View("ft(weak) + lp(gt): what the student's features hold",
                          lambda r: analyses.has_ft_weak_lp_gt(r.summary),
                          lambda r: analyses.ft_weak_lp_gt_figure(r.summary)),
    "data_axes": View("PGR against the amount of data", lambda r: analyses.has_data_axes(r.every_run),
                      lambda r: analyses.data_axes_figure(r.every_run)),
    "leaderboard": View("Leaderboard of losses and methods", lambda r: has_leaderboard(r.inputs.leaderboard),
                        lambda r: leaderboard_html(r.inputs.leaderboard)),
    "tables": View("Summary tables", _always, lambda r: summary_tables_html(
        r.summary, r.inputs.seed_summary, r.inputs.loss_summary, r.inputs.reference, r.inputs.curves)),
    "provenance": View("Provenance", lambda r: r.inputs.provenance is not None,
                       lambda r: provenance_html(r.inputs.provenance)),
}
