"""Figures of how the models fit: training curves of every run trained in steps, and the regularisation sweep of
probe students (PGR against L2 strength). Each figure has a test of whether its table holds rows for it beside it."""

from __future__ import annotations

import altair as alt
import pandas as pd

from w2s.report.aggregation import marked_labels
from w2s.report.figures import Figure, faceted, panel_width

# Training-loss points drawn over all runs, under Altair's 5,000-row limit for embedded data.
CURVE_POINT_BUDGET = 4000


def _stepped(curves: pd.DataFrame | None) -> pd.DataFrame:
    """The curves of runs trained in steps: probe heads, fit to convergence per L2 strength, have none."""
    if curves is None:
        return pd.DataFrame()
    return curves[curves["l2"].isna()] if "l2" in curves else curves


def has_training_curves(curves: pd.DataFrame | None) -> bool:
    """Whether any run was trained in steps."""
    return not _stepped(curves).empty


def _curve_series(curves: pd.DataFrame) -> pd.Series:
    """One legend entry per run: the lineage, then the loss of a student (marked where it was selected on
    ground truth) or "ground truth"."""
    student = curves["kind"] == "student"
    what = marked_labels(curves["loss"].where(student, "ground truth"),
                         curves["model_selection"].eq("ground_truth_holdout") & student)
    return curves["lineage"].astype(str) + " [" + what.astype(str) + "]"


def _curve_points(curves: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Seed means of training loss, binned to at most CURVE_POINT_BUDGET points over all runs, and of
    held-out accuracy at every evaluation; both with the training progress in epochs."""
    keys = ["dataset", "series", "run"]
    curves = curves.assign(series=_curve_series(curves))
    n_runs = max(1, curves.groupby(["dataset", "run"]).ngroups)
    bins_per_run = max(10, CURVE_POINT_BUDGET // n_runs)
    steps = curves.groupby(["dataset", "run"])["step"].transform("max") + 1
    curves["bin"] = (curves["step"] * bins_per_run // steps).astype(int)
    loss = (curves.groupby([*keys, "seed", "bin"], sort=False)[["epoch", "train_loss"]].mean()
            .groupby([*keys, "bin"], sort=False).mean().reset_index().drop(columns="bin"))
    evaluated = curves.dropna(subset=["holdout_accuracy"])
    holdout = (evaluated.groupby([*keys, "step"], sort=False)[["epoch", "holdout_accuracy"]].mean()
               .reset_index().drop(columns="step"))
    return loss, holdout


def curves_figure(curves: pd.DataFrame) -> Figure:
    """Training loss per step, and accuracy on held-out training rows against their training labels;
    probe heads, fit to convergence per L2 strength, have no steps and are in the probe table instead."""
    loss, holdout = _curve_points(_stepped(curves))
    highlight = alt.selection_point(fields=["series"], bind="legend")
    colour = alt.Color("series:N", title="run (click to highlight)", legend=alt.Legend(symbolLimit=0))
    opacity = alt.condition(highlight, alt.value(1.0), alt.value(0.15))
    x = alt.X("epoch:Q", title="epoch")
    datasets = loss["dataset"].nunique()
    loss_chart = faceted(alt.Chart(loss).mark_line().encode(
        x=x, y=alt.Y("train_loss:Q", title="training loss (mean over seeds)"), color=colour, opacity=opacity,
        tooltip=["dataset:N", "series:N", alt.Tooltip("epoch:Q", format=".2f"),
                 alt.Tooltip("train_loss:Q", format=".4f")],
    ).add_params(highlight), width=300, height=180, wrap=datasets)
    chart = loss_chart
    if not holdout.empty:
        accuracy_base = alt.Chart().encode(
            x=x, y=alt.Y("holdout_accuracy:Q", title="held-out accuracy vs training labels",
                         scale=alt.Scale(zero=False)),
            color=colour, opacity=opacity,
            tooltip=["dataset:N", "series:N", alt.Tooltip("epoch:Q", format=".2f"),
                     alt.Tooltip("holdout_accuracy:Q", format=".3f")],
        )
        # The highlight is defined once, in the loss chart; signals are shared across the concatenation.
        accuracy_chart = faceted(alt.layer(accuracy_base.mark_line(), accuracy_base.mark_point(filled=True, size=30),
                                           data=holdout), width=300, height=180, wrap=datasets)
        chart = alt.vconcat(loss_chart, accuracy_chart)
    return Figure(
        "Training loss per optimiser step of every trained model (mean over seeds, binned when there are many "
        "steps) and, for runs that select their checkpoint on held-out rows, the accuracy on those rows against "
        "the labels they were trained on: weak labels for students, ground truth for ground-truth models.",
        chart,
    )


def _sweep_points(sweep: pd.DataFrame | None) -> pd.DataFrame:
    """The sweep's rows with a PGR at an L2 strength: students that are not probes have no strengths."""
    if sweep is None or sweep.empty:
        return pd.DataFrame()
    return sweep.dropna(subset=["pgr", "l2"])


def has_sweep(sweep: pd.DataFrame | None) -> bool:
    """Whether a direct student was trained as a probe, so was refit at every L2 strength."""
    return not _sweep_points(sweep).empty


def sweep_figure(sweep: pd.DataFrame) -> Figure:
    """PGR of every direct student at every L2 strength of its probe, weak and ceiling at their chosen ones."""
    points = _sweep_points(sweep)
    points = points.assign(loss=marked_labels(points["loss"], points["model_selection"].eq("ground_truth_holdout")))
    means = (points.groupby(["dataset", "lineage", "loss", "l2"], sort=False)
             .agg(pgr=("pgr", "mean"), accuracy=("accuracy", "mean"), chosen=("chosen", "any"),
                  seeds=("seed", "nunique")).reset_index())
    means["chosen"] = means["chosen"].map({True: "chosen on the holdout", False: "not chosen"})
    base = alt.Chart().encode(
        x=alt.X("l2:Q", title="L2 strength of the student's probe (log)", scale=alt.Scale(type="log")),
        y=alt.Y("pgr:Q", title="PGR on test (mean over seeds)"),
        color=alt.Color("loss:N", title="loss"),
    )
    tooltip = ["dataset:N", "lineage:N", "loss:N", alt.Tooltip("l2:Q", format=".1e"),
               alt.Tooltip("pgr:Q", format=".3f"), alt.Tooltip("accuracy:Q", format=".3f"), "chosen:N", "seeds:Q"]
    marks = base.mark_point(size=40, filled=True).encode(tooltip=tooltip)
    chosen = base.mark_point(size=220, filled=True, shape="diamond").encode(tooltip=tooltip).transform_filter(
        "datum.chosen == 'chosen on the holdout'")
    references = alt.Chart(pd.DataFrame({"pgr": [0.0, 1.0]})).mark_rule(strokeDash=[4, 4], color="#888888").encode(
        y="pgr:Q")
    chart = faceted(alt.layer(base.mark_line(), marks, chosen, references, data=means),
                    width=panel_width(means["lineage"].nunique(), 240, 140), height=180,
                    column=alt.Column("lineage:N", title="weak → strong"))
    return Figure(
        "Each direct weak → strong student's probe refit at every L2 strength of the grid, its test PGR against the "
        "weak model and the ceiling at their own chosen strengths (dashed: 0, the weak model; 1, the ceiling). "
        "Weaker regularisation lets the student fit its supervisor's errors. The large diamond is the strength "
        "chosen on held-out rows against the weak labels; the other strengths' test scores are only drawn, never "
        "used to choose.",
        chart,
    )
