"""Figures of the optional analyses, each drawn only where the config asked for it: ft(weak) + lp(gt), the data
axes, simulated supervisors' error structures, ensembles of supervisors and bootstrap chains. Each figure has a
test of whether the summary holds rows for it beside it."""

from __future__ import annotations

import altair as alt
import numpy as np
import pandas as pd

from w2s.evaluation.metrics import gap_recovered
from w2s.report.aggregation import (
    CEILING,
    axis_of,
    ceiling_label,
    column_or_nan,
    seed_mean,
    students,
)
from w2s.report.figures import MODEL_AXIS, Figure, faceted, lines_with_points, panel_width, supervision_scale
from w2s.report.markup import formatted, table_html

FT_WEAK_LP_GT = "ft(weak) + lp(gt)"
# A probe-mode student's features are its model's frozen features, so its ground-truth probe is the ceiling.
FT_WEAK_LP_GT_PROBE = " (probe student: = ceiling)"
FT_WEAK_LP_GT_VALUES = ["weak_accuracy", "student_accuracy", "accuracy", "ceiling_accuracy", "student_pgr", "pgr"]


def has_ft_weak_lp_gt(summary: pd.DataFrame) -> bool:
    """Whether the config ran ft(weak) + lp(gt) (config analyses.ft_weak_lp_gt)."""
    return bool(summary["kind"].eq("ft_weak_lp_gt").any())


def _ft_weak_lp_gt_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Seed means of every ft(weak) + lp(gt) run with its student's, weak model's and ceiling's accuracy and
    both PGRs, labelled by lineage and loss. A probe-mode student has no run of its own, its probe being the
    ceiling by construction: on each dataset with runs, it is shown at its ceiling's accuracy, its label saying so."""
    runs = summary[summary["kind"] == "ft_weak_lp_gt"]
    mode = column_or_nan(summary, "mode")
    student_mode = mode.set_axis(pd.MultiIndex.from_frame(summary[["dataset", "seed", "run"]]))
    probe_run = np.array([student_mode.get((d, s, r)) == "probe"
                          for d, s, r in zip(runs["dataset"], runs["seed"], runs["student_run"])], dtype=bool)
    probed = set(zip(runs["dataset"], runs["seed"], runs["student_run"]))
    probe_students = summary[(summary["kind"] == "student") & mode.eq("probe") & summary["dataset"].isin(runs["dataset"])]
    unprobed = np.array([key not in probed for key in
                         zip(probe_students["dataset"], probe_students["seed"], probe_students["run"])], dtype=bool)
    probe_students = probe_students.loc[unprobed]  # a mask, also when empty (an empty list would pick columns)
    at_ceiling = probe_students.assign(
        student_accuracy=probe_students["accuracy"], student_pgr=probe_students["pgr"],
        accuracy=probe_students["ceiling_accuracy"],
        pgr=gap_recovered(probe_students["ceiling_accuracy"], probe_students["weak_accuracy"],
                          probe_students["ceiling_accuracy"]))
    rows = pd.concat([frame for frame in (runs.assign(probe=probe_run), at_ceiling.assign(probe=True))
                      if not frame.empty], ignore_index=True)
    rows["student"] = (rows["lineage"].astype(str) + " [" + rows["loss"].astype(str) + "]"
                       + np.where(rows["probe"], FT_WEAK_LP_GT_PROBE, ""))
    return seed_mean(rows, ["dataset", "student"], FT_WEAK_LP_GT_VALUES)


def ft_weak_lp_gt_figure(summary: pd.DataFrame) -> Figure:
    """ft(weak) + lp(gt) beside its student, the weak model and the ceiling: how much of the ceiling the student's
    features hold after weak supervision (the paper's saliency argument)."""
    means = _ft_weak_lp_gt_rows(summary)
    labels = {"weak_accuracy": "weak model", "student_accuracy": "student (ft(weak))", "accuracy": FT_WEAK_LP_GT}
    data = means.melt(id_vars=["dataset", "student", "seeds"], value_vars=[*labels, "ceiling_accuracy"],
                      var_name="model", value_name="test accuracy").dropna(subset=["test accuracy"])
    data["model"] = data["model"].map({**labels, "ceiling_accuracy": CEILING})
    scale = supervision_scale(list(labels.values()), [CEILING])
    chart = faceted(
        alt.Chart(data).mark_point(filled=True, size=80).encode(
            x=alt.X("test accuracy:Q", title="test accuracy (mean over seeds)", scale=alt.Scale(zero=False, padding=12)),
            y=alt.Y("student:N", title=None, axis=alt.Axis(labelLimit=420)),
            color=alt.Color("model:N", title=None, scale=scale),
            shape=alt.Shape("model:N", title=None, scale=alt.Scale(domain=scale.domain)),
            tooltip=["dataset:N", "student:N", "model:N", alt.Tooltip("test accuracy:Q", format=".3f"), "seeds:Q"],
        ), width=panel_width(1, 560, 320))
    columns = {"student": "student [loss]", "seeds": "seeds", "weak_accuracy": "weak", "student_accuracy":
               "student", "student_pgr": "student PGR", "accuracy": FT_WEAK_LP_GT, "pgr": f"{FT_WEAK_LP_GT} PGR",
               "ceiling_accuracy": "ceiling"}
    shown = means[["dataset", *columns]].rename(columns=columns)
    table = table_html(formatted(shown, [c for k, c in columns.items() if k not in ("student", "seeds")]), "")
    return Figure(
        "For each student, a linear probe fit with ground-truth labels on train_gt over the student's own frozen "
        "features (ft(weak) + lp(gt)), beside the student, its weak model and the ceiling; the table gives test "
        "accuracy and PGR against the same weak model and ceiling. A probe-mode student's features are the strong "
        "model's frozen features, so its ground-truth probe is the ceiling itself (marked “= ceiling”).",
        chart, after_html=table,
    )


AXIS_TITLES = {"n_weak_labels": "weak labels the student trained on",
               "n_gt_rows": "ground-truth rows the weak model trained on"}


def has_data_axes(every_run: pd.DataFrame) -> bool:
    """Whether a direct student varied a data axis (config axes)."""
    return bool(axis_of(students(every_run, direct=True)).isin(list(AXIS_TITLES)).any())


def data_axes_figure(every_run: pd.DataFrame) -> Figure:
    """PGR of the direct pairs against each data axis, the run on every row included at its full count."""
    direct = students(every_run, direct=True)
    axis = axis_of(direct)
    panels = []
    for name in AXIS_TITLES:
        varied = direct[axis == name]
        if varied.empty:
            continue
        keys = varied[["dataset", "lineage", "loss"]].drop_duplicates()
        every_row = direct[axis.isna()].merge(keys, on=["dataset", "lineage", "loss"])
        rows = pd.concat([varied, every_row], ignore_index=True).assign(axis=AXIS_TITLES[name], n=lambda f: f[name])
        panels.append(seed_mean(rows.dropna(subset=["pgr", "n"]), ["dataset", "axis", "lineage", "loss", "n"],
                                ["pgr"]))
    data = pd.concat(panels, ignore_index=True)
    chart = faceted(
        lines_with_points(
            data,
            dash=alt.StrokeDash("loss:N", title="loss"),
            x=alt.X("n:Q", title="rows", scale=alt.Scale(type="log")),
            y=alt.Y("pgr:Q", title="PGR (mean over seeds)"),
            color=alt.Color("lineage:N", title="weak → strong"),
            tooltip=["dataset:N", "axis:N", "lineage:N", "loss:N", "n:Q", alt.Tooltip("pgr:Q", format=".3f"),
                     "seeds:Q"],
        ), width=panel_width(data["axis"].nunique(), 300, 220), height=200,
        column=alt.Column("axis:N", title=None), independent={"x": "independent"})
    return Figure(
        "PGR of each direct weak → strong pair against the number of weak labels its student trained on, and "
        "against the number of ground-truth rows its weak model trained on (PGR then against that weak model); "
        "the other axis at every row, the largest point the run on every row. Subsets are nested per seed.",
        chart,
    )


def _simulated_students(summary: pd.DataFrame) -> pd.DataFrame:
    direct = students(summary, direct=True)
    return direct[column_or_nan(direct, "weak_kind").eq("simulated")]


def has_simulated_supervisors(summary: pd.DataFrame) -> bool:
    """Whether a direct student learned from a simulated supervisor (config supervisors)."""
    return not _simulated_students(summary).empty


def error_structure_figure(summary: pd.DataFrame) -> Figure:
    """Students of simulated supervisors beside those of the real weak model whose error count they copy: PGR
    and agreement on the supervisor's errors per error structure."""
    direct = students(summary, direct=True)
    simulated = _simulated_students(summary)
    real = direct.merge(simulated[["dataset", "model", "loss", "weak_like"]].drop_duplicates(),
                        left_on=["dataset", "model", "loss", "weak_name"],
                        right_on=["dataset", "model", "loss", "weak_like"], suffixes=("", "_of"))
    real = real.drop(columns="weak_like_of", errors="ignore").assign(weak_method="the real model's own errors")
    rows = pd.concat([real, simulated], ignore_index=True)
    keys = ["dataset", "model", "loss", "weak_model", "weak_method"]
    means = seed_mean(rows, keys, ["pgr", "pgr_ci_low", "pgr_ci_high", "agreement_supervisor_wrong"])
    data = means.melt(id_vars=[*keys, "seeds", "pgr_ci_low", "pgr_ci_high"],
                      value_vars=["pgr", "agreement_supervisor_wrong"], var_name="metric", value_name="value")
    data["metric"] = data["metric"].map({"pgr": "PGR", "agreement_supervisor_wrong": "agreement on its errors"})
    on_pgr = data["metric"] == "PGR"
    data[["pgr_ci_low", "pgr_ci_high"]] = data[["pgr_ci_low", "pgr_ci_high"]].where(on_pgr)
    data = data.dropna(subset=["value"])
    order = list(dict.fromkeys(rows["weak_model"]))
    base = alt.Chart().encode(
        x=alt.X("weak_model:N", sort=order, title="weak supervisor (error structure)", axis=MODEL_AXIS),
        color=alt.Color("model:N", title="strong model"),
    )
    tooltip = ["dataset:N", "weak_model:N", "weak_method:N", "model:N", "loss:N", "metric:N",
               alt.Tooltip("value:Q", format=".3f"), alt.Tooltip("pgr_ci_low:Q", format=".3f"),
               alt.Tooltip("pgr_ci_high:Q", format=".3f"), "seeds:Q"]
    points = base.mark_point(filled=True, size=60).encode(
        y=alt.Y("value:Q", title="mean over seeds"), shape=alt.Shape("loss:N", title="loss"), tooltip=tooltip)
    intervals = base.mark_rule().encode(y="pgr_ci_low:Q", y2="pgr_ci_high:Q").transform_filter(
        "isValid(datum.pgr_ci_low)")
    chart = faceted(alt.layer(intervals, points, data=data), width=panel_width(2, 320, 200), height=200,
                    column=alt.Column("metric:N", title=None), independent={"y": "independent"})
    return Figure(
        "Each simulated supervisor makes exactly as many errors as a real weak model on every split it labels, "
        "placed by one structure (at random, on the longest inputs, where a strong model is least confident, or "
        "on a column's highest values); the first column of each panel is the real model itself. Left: the "
        "students' PGR with the mean of the seeds' 95% intervals (an interval that spans 0 recovers nothing "
        "measurable). Right: how often the student predicts its supervisor's label on test examples where the "
        "supervisor is wrong.",
        chart,
    )


def _ensembles(summary: pd.DataFrame) -> pd.DataFrame:
    if "weak_members" not in summary:
        return pd.DataFrame()
    return summary[summary["kind"] == "ensemble"][["dataset", "weak_name", "weak_members"]].drop_duplicates()


def has_ensembles(summary: pd.DataFrame) -> bool:
    """Whether the summary holds an ensemble supervisor (config supervisors)."""
    return not _ensembles(summary).empty


def ensemble_figure(summary: pd.DataFrame) -> Figure:
    """Each ensemble supervisor beside each of its members: their own test accuracy, and the accuracy and PGR of
    their direct students into the same strong model with the same loss."""
    kinds = column_or_nan(summary, "weak_kind")
    frames: list[pd.DataFrame] = []
    for ensemble in _ensembles(summary).itertuples():
        names = [ensemble.weak_name, *str(ensemble.weak_members).split(", ")]
        here = summary[summary["dataset"] == ensemble.dataset]
        own = here[here["kind"].isin(["ground_truth", "ensemble"]) & here["model"].isin(names)
                   & (here["kind"].eq("ensemble") == here["model"].eq(ensemble.weak_name))]
        own = own.assign(metric="supervisor's accuracy", value=own["accuracy"], series="the supervisor itself",
                         supervisor=own["weak_model"])
        direct = students(here, direct=True)
        direct = direct[direct["weak_name"].isin(names) & (kinds.loc[direct.index].eq("ensemble")
                                                           == direct["weak_name"].eq(ensemble.weak_name))]
        series = direct["model"].astype(str) + ", " + direct["loss"].astype(str)
        for metric, column in (("student's accuracy", "accuracy"), ("student's PGR", "pgr")):
            frames.append(direct.assign(metric=metric, value=direct[column], series=series,
                                        supervisor=direct["weak_model"]))
        frames.append(own)
        frames[-3:] = [f.assign(panel=f"{ensemble.dataset}: {ensemble.weak_name}") for f in frames[-3:]]
    rows = pd.concat(frames, ignore_index=True).dropna(subset=["value"])
    data = seed_mean(rows, ["panel", "metric", "supervisor", "series"], ["value"])
    chart = faceted(
        alt.Chart(data).mark_point(filled=True, size=60).encode(
            x=alt.X("supervisor:N", title="supervisor", axis=MODEL_AXIS),
            y=alt.Y("value:Q", title="mean over seeds", scale=alt.Scale(zero=False)),
            color=alt.Color("series:N", title="strong model, loss"),
            tooltip=["panel:N", "metric:N", "supervisor:N", "series:N", alt.Tooltip("value:Q", format=".3f"),
                     "seeds:Q"],
        ), width=panel_width(3, 220, 160), height=180, row="panel",
        column=alt.Column("metric:N", title=None), independent={"y": "independent"})
    return Figure(
        "Per dataset and ensemble: the test accuracy of the ensemble and of each member (their ground-truth runs), "
        "and the test accuracy and PGR of their direct students into the same strong model with the same loss. "
        "Each student's PGR is measured against its own supervisor.",
        chart,
    )


def has_chains(summary: pd.DataFrame) -> bool:
    """Whether a student is a bootstrap chain step (a ladder of three models or more)."""
    return not students(summary, direct=False).empty


def chain_figure(summary: pd.DataFrame) -> Figure:
    """Each bootstrap chain step beside direct supervision from the same root and its ceiling."""
    keys = ["dataset", "weak_model", "model", "loss"]
    chains = seed_mean(students(summary, direct=False), [*keys, "run", "lineage", "chain_length"],
                       ["accuracy", "ceiling_accuracy"])
    direct = seed_mean(students(summary, direct=True), keys, ["accuracy"]).rename(
        columns={"accuracy": "direct_accuracy", "seeds": "direct_seeds"})
    chains = chains.merge(direct.drop(columns="direct_seeds"), on=keys, how="left")
    chains["chain"] = chains["lineage"].astype(str) + " [" + chains["loss"].astype(str) + "]"
    labels = {"accuracy": "bootstrap chain", "direct_accuracy": "direct weak → strong"}
    ceiling_selected = (summary[summary["kind"] == "ground_truth"].groupby(["dataset", "model"])["gt_selected"]
                        .any().rename("ceiling_selected").reset_index())
    data = chains.merge(ceiling_selected, on=["dataset", "model"], how="left").melt(
        id_vars=["dataset", "chain", "ceiling_selected"], value_vars=[*labels, "ceiling_accuracy"],
        var_name="supervision", value_name="test accuracy").dropna(subset=["test accuracy"])
    is_ceiling = data["supervision"] == "ceiling_accuracy"
    data["supervision"] = data["supervision"].map(labels).where(
        ~is_ceiling, ceiling_label(data["ceiling_selected"].eq(True)))
    data = data.drop(columns="ceiling_selected")
    scale = supervision_scale(list(labels.values()), data["supervision"].unique().tolist())
    chart = faceted(
        alt.Chart(data).mark_point(filled=True, size=80).encode(
            x=alt.X("test accuracy:Q", title="test accuracy (mean over seeds)", scale=alt.Scale(zero=False, padding=12)),
            y=alt.Y("chain:N", title=None, axis=alt.Axis(labelLimit=320)),
            color=alt.Color("supervision:N", title=None, scale=scale),
            shape=alt.Shape("supervision:N", title=None, scale=alt.Scale(domain=scale.domain)),
            tooltip=["dataset:N", "chain:N", "supervision:N", alt.Tooltip("test accuracy:Q", format=".3f")],
        ), width=320)
    return Figure(
        "For each bootstrap chain step (weak → intermediate … → strong), its test accuracy beside the student trained "
        "directly by the same root weak model with the same final model and loss, and that model's ceiling.",
        chart,
    )
