"""The experiment report: one offline HTML page of Altair charts and summary tables, and a PNG per figure.

Every chart is drawn from seed means computed here with pandas, so the embedded specs stay small
(a few hundred rows at most) and the page needs no network: Vega, Vega-Lite and vega-embed are
inlined from vl-convert's bundle, and the PNGs are rendered by vl-convert as well.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any

import altair as alt
import numpy as np
import pandas as pd
import vl_convert as vlc

from w2s import io
from w2s.evaluation.reference import SOURCE as REFERENCE_SOURCE
from w2s.evaluation.summary import SEED_METRICS, uses_ground_truth_selection

# The Vega-Lite release Altair writes specs for, as vl-convert names it ("6.4").
VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])

CEILING = "ground truth (ceiling)"
# Kinds of weak supervisor that are no trained model (w2s.data.supervisors), named beside them everywhere.
SUPERVISOR_KINDS = ("simulated", "ensemble")
# Appended to every label of a run that picked its checkpoint with ground-truth labels: such a run
# is not plain weak supervision and must never be read as one.
GT_SELECTION = " (GT early stopping)"
REQUIRED_COLUMNS = (
    "dataset", "seed", "run", "kind", "model", "model_rank", "params_b", "loss", "lineage", "chain_length",
    "weak_model", "accuracy", "auroc", "ceiling_accuracy", "pgr", "pgr_ci_low", "pgr_ci_high",
    "pgr_undefined_reason", "agreement_supervisor_right", "agreement_supervisor_wrong",
)
# Columns build_report reads from summarize's seeds, losses and reference tables.
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
METRIC_NAMES = {"accuracy": "accuracy", "auroc": "AUROC", "pgr": "PGR", "pgr_auroc": "PGR (AUROC)",
                "agreement": "agreement"}
# Vega's tableau10 palette, spelled out so that the ceiling can be drawn in black beside it.
PALETTE = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac")
MODEL_AXIS = alt.Axis(labelAngle=-30)
# Training-loss points drawn over all runs, under Altair's 5,000-row limit for embedded data.
CURVE_POINT_BUDGET = 4000
# Width a figure's panels may take together on a 1280-pixel screen: the page less its margins, the y axis
# and the legend that Vega places beside them.
PANELS_WIDTH = 1040
# Room between wrapped panels beside the panel itself: axis labels, title and Vega-Lite's spacing.
PANEL_MARGIN = 70
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}


@dataclass(frozen=True)
class _Figure:
    """One report section: a chart, or the note that replaces it when the view has no data."""

    name: str
    heading: str
    sentence: str
    chart: alt.TopLevelMixin | None
    note: str = ""
    after_html: str = ""


def build_report(summary: pd.DataFrame, out_dir: str | Path, title: str, *,
                 seed_summary: pd.DataFrame | None = None, loss_summary: pd.DataFrame | None = None,
                 reference: pd.DataFrame | None = None, curves: pd.DataFrame | None = None,
                 sweep: pd.DataFrame | None = None, provenance: dict[str, Any] | None = None) -> dict[str, Path]:
    """Write `report.html` and `figures/<name>.png`; return every file written by name ("html" for the page).

    `summary` is summarize's per-run table; `seed_summary`, `loss_summary` and `reference` are its
    seeds, losses and reference tables, each rendered as a table when given. `curves` is the
    training_curves table, `sweep` evaluation.regularisation_sweep's table and `provenance` the
    provenance record, shown last. A figure without data
    gets a note on the page and no PNG (a stale PNG of that name is removed, so `figures/` always
    matches the page). The page is written last, so its presence means the figures beside it are complete.
    """
    expected = (("summary", summary, REQUIRED_COLUMNS), ("seed_summary", seed_summary, SEED_REQUIRED_COLUMNS),
                ("loss_summary", loss_summary, LOSS_REQUIRED_COLUMNS),
                ("reference", reference, REFERENCE_REQUIRED_COLUMNS))
    for name, table, columns in expected:
        missing = [] if table is None else [c for c in columns if c not in table.columns]
        if missing:
            raise ValueError(f"{name} lacks columns {missing}")
    summary = _with_selection_marked(summary)
    # The data axes' runs vary the data, not the method: only their own view shows them.
    with_axes, summary = summary, summary[_axis_of(summary).isna()]
    out = Path(out_dir)
    figures = [_accuracy_figure(summary), _pgr_figure(summary), _sweep_figure(sweep), _agreement_figure(summary),
               _error_structure_figure(summary), _ensemble_figure(summary), _chain_figure(summary),
               _curves_figure(curves)]
    # Views of the opt-in analyses and axes appear where the config asked for them.
    figures += [figure for figure in (_ft_weak_lp_gt_figure(summary), _data_axes_figure(with_axes))
                if figure.chart is not None]
    written: dict[str, Path] = {}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for figure in figures:
        png = out / "figures" / f"{figure.name}.png"
        if figure.chart is None:
            png.unlink(missing_ok=True)
        else:
            image = vlc.vegalite_to_png(figure.chart.to_dict(), vl_version=VL_VERSION, scale=2)
            io.write_bytes(image, png)
            written[figure.name] = png
    tables = _summary_tables(summary, seed_summary, loss_summary, reference, curves)
    if provenance is not None:
        tables += _provenance_html(provenance)
    written["html"] = out / "report.html"
    io.write_bytes(_page(title, summary, figures, tables).encode("utf-8"), written["html"])
    return written


# ---------------------------------------------------------------- aggregation


def _seed_mean(frame: pd.DataFrame, keys: list[str], values: list[str]) -> pd.DataFrame:
    """Mean of `values` over seeds (NaN skipped), with the number of seeds behind each row."""
    grouped = frame.groupby(keys, dropna=False, sort=False)
    means = grouped[values].mean()
    means["seeds"] = grouped["seed"].nunique()
    return means.reset_index()


def _with_selection_marked(summary: pd.DataFrame) -> pd.DataFrame:
    """The summary with a boolean `gt_selected` column, and the loss of every such student marked,
    so that each figure and table naming a student's loss names its ground-truth selection too; and
    every weak supervisor that is no trained model named with its kind, "(simulated)" or "(ensemble)",
    in every figure's legend and axis (`weak_name` keeps the bare name)."""
    marked = summary.assign(gt_selected=uses_ground_truth_selection(summary))
    marked["loss"] = _marked(marked["loss"], marked["gt_selected"] & (marked["kind"] == "student"))
    marked["weak_name"] = marked["weak_model"]
    kinds = marked.get("weak_kind", pd.Series(np.nan, index=marked.index))
    labelled = kinds.isin(SUPERVISOR_KINDS)
    marked.loc[labelled, "weak_model"] = (marked.loc[labelled, "weak_model"].astype(str) + " ("
                                          + kinds[labelled].astype(str) + ")")
    return marked


def _ceiling_label(gt_selected: pd.Series) -> pd.Series:
    return gt_selected.map({True: CEILING + GT_SELECTION, False: CEILING})


def _supervision_scale(series: list[str], ceilings: list[str]) -> alt.Scale:
    """Palette colours for the supervision series; black for the ceiling, grey where it was selected on ground truth."""
    ceilings = [c for c in (CEILING, CEILING + GT_SELECTION) if c in ceilings]
    shades = {CEILING: "black", CEILING + GT_SELECTION: "#777777"}
    return alt.Scale(domain=[*series, *ceilings], range=[*_colours(len(series)), *(shades[c] for c in ceilings)])


def _model_order(summary: pd.DataFrame) -> list[str]:
    """Trained model names from weakest to strongest, the x order of every per-model axis."""
    trained = summary[summary["kind"] != "prompt"]
    return trained.sort_values(["model_rank", "model"]).drop_duplicates("model")["model"].tolist()


def _students(summary: pd.DataFrame, direct: bool | None = None) -> pd.DataFrame:
    """Student rows; `direct` picks weak→strong students (True) or bootstrap chain steps (False)."""
    students = summary[summary["kind"] == "student"]
    if direct is None:
        return students
    return students[(students["chain_length"] == 2) == direct]


# ---------------------------------------------------------------- charts


def _wrap_columns(panels: int, panel_width: int) -> int:
    """Facet columns so that a row of panels `panel_width` wide fits the page: a 20-dataset sweep wraps
    into rows instead of running off the screen sideways."""
    return max(1, min(panels, PANELS_WIDTH // (panel_width + PANEL_MARGIN)))


def _panel_width(columns: int, preferred: int, narrowest: int) -> int:
    """Width of each of `columns` side-by-side panels: `preferred` where they fit the page, else shared out
    down to `narrowest`."""
    return max(narrowest, min(preferred, PANELS_WIDTH // max(1, columns) - PANEL_MARGIN))



def _accuracy_figure(summary: pd.DataFrame) -> _Figure:
    """The paper's main figure: direct students per weak supervisor and loss against the ground-truth ceiling."""
    order = _model_order(summary)
    students = _seed_mean(_students(summary, direct=True),
                          ["dataset", "model", "model_rank", "weak_model", "loss"], ["accuracy"])
    students["series"] = "weak: " + students["weak_model"].astype(str)
    ceiling = _seed_mean(summary[summary["kind"] == "ground_truth"], ["dataset", "model", "model_rank", "gt_selected"],
                         ["accuracy"])
    ceiling["series"], ceiling["loss"] = _ceiling_label(ceiling["gt_selected"]), "ground-truth labels"
    data = pd.concat([students, ceiling.drop(columns="gt_selected")], ignore_index=True).dropna(subset=["accuracy"])
    chart = None
    if not data.empty:
        weak = sorted(students["weak_model"].unique(), key=lambda m: order.index(m) if m in order else len(order))
        series = [f"weak: {m}" for m in weak]
        chart = (
            _lines_with_points(
                data,
                dash=alt.StrokeDash("loss:N", title="loss (line)"),
                shape=alt.Shape("loss:N", title="loss (marker)"),
                x=alt.X("model:N", sort=order, title="strong model", axis=MODEL_AXIS),
                y=alt.Y("accuracy:Q", title="test accuracy (mean over seeds)", scale=alt.Scale(zero=False)),
                color=alt.Color("series:N", title="supervision",
                                scale=_supervision_scale(series, ceiling["series"].unique().tolist())),
                tooltip=["dataset:N", "series:N", "loss:N", "model:N",
                         alt.Tooltip("accuracy:Q", format=".3f"), "seeds:Q"],
            ).properties(width=260, height=220)
            .facet(facet=alt.Facet("dataset:N", title=None), columns=_wrap_columns(data["dataset"].nunique(), 260))
            .resolve_axis(x="independent")  # wrapped rows otherwise show the model names under the last row only
        )
    return _Figure(
        "accuracy", "Test accuracy against strong model",
        "Each coloured line is one weak supervisor whose labels trained the strong models on the x axis "
        "(direct weak→strong students, one dash style per loss); the black line is each model trained on "
        "ground-truth labels, the ceiling a student could reach.",
        chart, note="No direct students or ground-truth models in the summary.",
    )


def _pgr_figure(summary: pd.DataFrame) -> _Figure:
    """PGR of every direct weak → strong pair as a heatmap per dataset and loss, each cell with its interval."""
    order = _model_order(summary)
    direct = _students(summary, direct=True)
    keys = ["dataset", "weak_model", "model", "loss"]
    cells = _seed_mean(direct.dropna(subset=["pgr"]), keys, ["pgr", "pgr_ci_low", "pgr_ci_high"])
    cells["label"] = [f"{v:.2f}" for v in cells["pgr"]]
    cells["interval"] = [f"[{low:.2f}, {high:.2f}]" if pd.notna(low) and pd.notna(high) else ""
                         for low, high in zip(cells["pgr_ci_low"], cells["pgr_ci_high"])]
    # A pair whose PGR is undefined in every seed still gets its cell, grey, so no pair goes missing.
    undefined = direct.groupby(keys, sort=False)["pgr"].count().loc[lambda n: n == 0].reset_index()[keys]
    undefined = undefined.assign(label="undefined", interval="", seeds=0)
    data = pd.concat([cells, undefined], ignore_index=True)
    chart = None
    if not data.empty:
        base = alt.Chart().encode(
            x=alt.X("model:N", sort=order, title="strong model", axis=MODEL_AXIS),
            y=alt.Y("weak_model:N", sort=order, title="weak supervisor"),
        )
        tooltip = ["dataset:N", "weak_model:N", "model:N", "loss:N", alt.Tooltip("pgr:Q", format=".3f"),
                   alt.Tooltip("pgr_ci_low:Q", format=".3f"), alt.Tooltip("pgr_ci_high:Q", format=".3f"), "seeds:Q"]
        defined_cells = base.mark_rect().encode(
            color=alt.Color("pgr:Q", title="PGR", scale=alt.Scale(scheme="redblue", domain=[-1, 1], clamp=True)),
            tooltip=tooltip,
        ).transform_filter("isValid(datum.pgr)")
        undefined_cells = base.mark_rect(color="#dddddd").encode(tooltip=tooltip).transform_filter(
            "!isValid(datum.pgr)")
        value = base.mark_text(baseline="bottom", dy=2, fontWeight="bold").encode(text="label:N")
        interval = base.mark_text(baseline="top", dy=4, fontSize=9).encode(text="interval:N")
        chart = (alt.layer(defined_cells, undefined_cells, value, interval, data=data)
                 .properties(width=alt.Step(_pgr_cell_width(data)), height=alt.Step(44))
                 .facet(row=alt.Row("dataset:N", title=None), column=alt.Column("loss:N", title="loss")))
    students = _students(summary)
    undefined_runs = students[students["pgr"].isna()]
    listing = ""
    if not undefined_runs.empty:
        rows = undefined_runs.sort_values(["dataset", "lineage", "loss", "seed"])
        items = "".join(
            f"<li>{_esc(r.dataset)}, seed {r.seed}, {_esc(r.lineage)} ({_esc(r.loss)}): "
            f"{_esc(r.pgr_undefined_reason if isinstance(r.pgr_undefined_reason, str) else 'reason not recorded')}</li>"
            for r in rows.itertuples()
        )
        listing = f"<p>PGR undefined, not averaged:</p><ul class=\"undefined\">{items}</ul>"
    return _Figure(
        "pgr", "PGR per weak and strong model",
        "Performance gap recovered, (student − weak) / (ceiling − weak), for every direct weak → strong pair, one "
        "panel per loss: the mean over seeds with a defined PGR, and below it the mean of the seeds' 95% bootstrap "
        "intervals. Colours saturate at −1 and 1; grey cells have no defined PGR. Bootstrap chains are compared "
        "with direct supervision further down.",
        chart, note="No direct weak → strong students in the summary.", after_html=listing,
    )


def _axis_of(summary: pd.DataFrame) -> pd.Series:
    """Each run's data axis (n_gt_rows, n_weak_labels), NaN for a run on every row or a summary from before axes."""
    return summary["data_axis"] if "data_axis" in summary else pd.Series(np.nan, index=summary.index, dtype=object)


FT_WEAK_LP_GT = "ft(weak) + lp(gt)"
# A probe-mode student's features are its model's frozen features, so its ground-truth probe is the ceiling.
FT_WEAK_LP_GT_PROBE = " (probe student: = ceiling)"


def _ft_weak_lp_gt_rows(summary: pd.DataFrame) -> pd.DataFrame:
    """Seed means of every ft(weak) + lp(gt) run with its student's, weak model's and ceiling's accuracy and
    both PGRs, labelled by lineage and loss; a probe-mode student's label says its probe is the ceiling."""
    runs = summary[summary["kind"] == "ft_weak_lp_gt"]
    if runs.empty:
        return pd.DataFrame()
    student_mode = summary.set_index(["dataset", "seed", "run"])["mode"]
    probe_student = [student_mode.get((d, s, r)) == "probe"
                     for d, s, r in zip(runs["dataset"], runs["seed"], runs["student_run"])]
    runs = runs.assign(student=runs["lineage"].astype(str) + " [" + runs["loss"].astype(str) + "]"
                       + np.where(probe_student, FT_WEAK_LP_GT_PROBE, ""))
    return _seed_mean(runs, ["dataset", "student"], ["weak_accuracy", "student_accuracy", "accuracy",
                                                     "ceiling_accuracy", "student_pgr", "pgr"])


def _ft_weak_lp_gt_figure(summary: pd.DataFrame) -> _Figure:
    """ft(weak) + lp(gt) beside its student, the weak model and the ceiling: how much of the ceiling the student's
    features hold after weak supervision (the paper's saliency argument)."""
    means = _ft_weak_lp_gt_rows(summary)
    chart, table = None, ""
    if not means.empty:
        labels = {"weak_accuracy": "weak model", "student_accuracy": "student (ft(weak))",
                  "accuracy": FT_WEAK_LP_GT}
        data = means.melt(id_vars=["dataset", "student", "seeds"], value_vars=[*labels, "ceiling_accuracy"],
                          var_name="model", value_name="test accuracy").dropna(subset=["test accuracy"])
        data["model"] = data["model"].map({**labels, "ceiling_accuracy": CEILING})
        scale = _supervision_scale(list(labels.values()), [CEILING])
        chart = (
            alt.Chart(data).mark_point(filled=True, size=80).encode(
                x=alt.X("test accuracy:Q", title="test accuracy (mean over seeds)",
                        scale=alt.Scale(zero=False, padding=12)),
                y=alt.Y("student:N", title=None, axis=alt.Axis(labelLimit=420)),
                color=alt.Color("model:N", title=None, scale=scale),
                shape=alt.Shape("model:N", title=None, scale=alt.Scale(domain=scale.domain)),
                tooltip=["dataset:N", "student:N", "model:N", alt.Tooltip("test accuracy:Q", format=".3f"),
                         "seeds:Q"],
            ).properties(width=_panel_width(1, 560, 320))
            .facet(row=alt.Row("dataset:N", title=None))
        )
        columns = {"student": "student [loss]", "seeds": "seeds", "weak_accuracy": "weak", "student_accuracy":
                   "student", "student_pgr": "student PGR", "accuracy": FT_WEAK_LP_GT, "pgr": f"{FT_WEAK_LP_GT} PGR",
                   "ceiling_accuracy": "ceiling"}
        shown = means[["dataset", *columns]].rename(columns=columns)
        table = _table_html(_formatted(shown, [c for k, c in columns.items() if k not in ("student", "seeds")]), "")
    return _Figure(
        "ft_weak_lp_gt", "ft(weak) + lp(gt): what the student's features hold",
        "For each student, a linear probe fit with ground-truth labels on train_gt over the student's own frozen "
        "features (ft(weak) + lp(gt)), beside the student, its weak model and the ceiling; the table gives test "
        "accuracy and PGR against the same weak model and ceiling. A probe-mode student's features are the strong "
        "model's frozen features, so its ground-truth probe is the ceiling itself (marked “= ceiling”).",
        chart, note="No ft(weak) + lp(gt) runs (config analyses.ft_weak_lp_gt).", after_html=table,
    )


AXIS_TITLES = {"n_weak_labels": "weak labels the student trained on",
               "n_gt_rows": "ground-truth rows the weak model trained on"}


def _data_axes_figure(summary: pd.DataFrame) -> _Figure:
    """PGR of the direct pairs against each data axis, the run on every row included at its full count."""
    direct = _students(summary, direct=True)
    axis = _axis_of(direct)
    panels = []
    for name in AXIS_TITLES:
        varied = direct[axis == name]
        if varied.empty:
            continue
        keys = varied[["dataset", "lineage", "loss"]].drop_duplicates()
        every_row = direct[axis.isna()].merge(keys, on=["dataset", "lineage", "loss"])
        rows = pd.concat([varied, every_row], ignore_index=True).assign(axis=AXIS_TITLES[name], n=lambda f: f[name])
        panels.append(_seed_mean(rows.dropna(subset=["pgr", "n"]), ["dataset", "axis", "lineage", "loss", "n"],
                                 ["pgr"]))
    chart = None
    if panels:
        data = pd.concat(panels, ignore_index=True)
        chart = (
            _lines_with_points(
                data,
                dash=alt.StrokeDash("loss:N", title="loss"),
                x=alt.X("n:Q", title="rows", scale=alt.Scale(type="log")),
                y=alt.Y("pgr:Q", title="PGR (mean over seeds)"),
                color=alt.Color("lineage:N", title="weak → strong"),
                tooltip=["dataset:N", "axis:N", "lineage:N", "loss:N", "n:Q", alt.Tooltip("pgr:Q", format=".3f"),
                         "seeds:Q"],
            ).properties(width=_panel_width(data["axis"].nunique(), 300, 220), height=200)
            .facet(row=alt.Row("dataset:N", title=None), column=alt.Column("axis:N", title=None))
            .resolve_scale(x="independent")
        )
    return _Figure(
        "data_axes", "PGR against the amount of data",
        "PGR of each direct weak → strong pair against the number of weak labels its student trained on, and "
        "against the number of ground-truth rows its weak model trained on (PGR then against that weak model); "
        "the other axis at every row, the largest point the run on every row. Subsets are nested per seed.",
        chart, note="No data-axis runs (config axes).",
    )


def _pgr_cell_width(cells: pd.DataFrame) -> int:
    """Heatmap cell width: 78 pixels, the width of its interval's text, unless the losses' panels of all
    strong models would then run past the page."""
    per_panel = cells["model"].nunique()
    return max(40, min(78, _panel_width(cells["loss"].nunique(), 78 * per_panel, 40) // per_panel))


def _agreement_figure(summary: pd.DataFrame) -> _Figure:
    """Agreement split by supervisor correctness, the paper's view of students imitating their supervisor's errors."""
    means = _seed_mean(_students(summary, direct=True), ["dataset", "model", "model_rank", "weak_model", "loss"],
                       ["agreement_supervisor_right", "agreement_supervisor_wrong"])
    data = means.melt(
        id_vars=["dataset", "model", "model_rank", "weak_model", "loss", "seeds"],
        value_vars=["agreement_supervisor_right", "agreement_supervisor_wrong"],
        var_name="supervisor", value_name="agreement",
    ).dropna(subset=["agreement"])
    data["supervisor"] = data["supervisor"].map({"agreement_supervisor_right": "supervisor right",
                                                 "agreement_supervisor_wrong": "supervisor wrong"})
    chart = None
    if not data.empty:
        order = _model_order(summary)
        chart = (
            _lines_with_points(
                data,
                dash=alt.StrokeDash("supervisor:N", title="on examples where"),
                x=alt.X("model:N", sort=order, title="strong model", axis=MODEL_AXIS),
                y=alt.Y("agreement:Q", title="student–supervisor agreement", scale=alt.Scale(domain=[0, 1])),
                color=alt.Color("weak_model:N", title="weak supervisor", sort=order),
                tooltip=["dataset:N", "loss:N", "weak_model:N", "model:N", "supervisor:N",
                         alt.Tooltip("agreement:Q", format=".3f"), "seeds:Q"],
            ).properties(width=_panel_width(data["loss"].nunique(), 220, 140), height=200)
            .facet(row=alt.Row("dataset:N", title=None), column=alt.Column("loss:N", title="loss"))
        )
    return _Figure(
        "agreement", "Student–supervisor agreement",
        "How often a direct student predicts its weak supervisor's label, on test examples the supervisor gets right "
        "versus wrong; high agreement where the supervisor is wrong means the student imitates its errors.",
        chart, note="No direct students with agreement values in the summary.",
    )


def _error_structure_figure(summary: pd.DataFrame) -> _Figure:
    """Students of simulated supervisors beside those of the real weak model whose error count they copy: PGR
    and agreement on the supervisor's errors per error structure."""
    direct = _students(summary, direct=True)
    simulated = direct[direct.get("weak_kind", pd.Series(np.nan, index=direct.index)).eq("simulated")]
    chart = None
    if not simulated.empty:
        real = direct.merge(simulated[["dataset", "model", "loss", "weak_like"]].drop_duplicates(),
                            left_on=["dataset", "model", "loss", "weak_name"],
                            right_on=["dataset", "model", "loss", "weak_like"], suffixes=("", "_of"))
        real = real.drop(columns="weak_like_of", errors="ignore").assign(weak_method="the real model's own errors")
        rows = pd.concat([real, simulated], ignore_index=True)
        keys = ["dataset", "model", "loss", "weak_model", "weak_method"]
        means = _seed_mean(rows, keys, ["pgr", "pgr_ci_low", "pgr_ci_high", "agreement_supervisor_wrong"])
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
        chart = (alt.layer(intervals, points, data=data)
                 .properties(width=_panel_width(2, 320, 200), height=200)
                 .facet(row=alt.Row("dataset:N", title=None), column=alt.Column("metric:N", title=None))
                 .resolve_scale(y="independent"))
    return _Figure(
        "error_structure", "Simulated weak supervisors: which errors students imitate",
        "Each simulated supervisor makes exactly as many errors as a real weak model on every split it labels, "
        "placed by one structure (at random, on the longest inputs, where a strong model is least confident, or "
        "on a column's highest values); the first column of each panel is the real model itself. Left: the "
        "students' PGR with the mean of the seeds' 95% intervals (an interval that spans 0 recovers nothing "
        "measurable). Right: how often the student predicts its supervisor's label on test examples where the "
        "supervisor is wrong.",
        chart, note="No students of simulated supervisors in the summary.",
    )


def _ensemble_figure(summary: pd.DataFrame) -> _Figure:
    """Each ensemble supervisor beside each of its members: their own test accuracy, and the accuracy and PGR of
    their direct students into the same strong model with the same loss."""
    kinds = summary.get("weak_kind", pd.Series(np.nan, index=summary.index))
    chart = None
    frames: list[pd.DataFrame] = []
    ensembles = pd.DataFrame()
    if "weak_members" in summary:
        ensembles = summary[summary["kind"] == "ensemble"][["dataset", "weak_name", "weak_members"]].drop_duplicates()
    for ensemble in ensembles.itertuples():
        names = [ensemble.weak_name, *str(ensemble.weak_members).split(", ")]
        here = summary[summary["dataset"] == ensemble.dataset]
        own = here[here["kind"].isin(["ground_truth", "ensemble"]) & here["model"].isin(names)
                   & (here["kind"].eq("ensemble") == here["model"].eq(ensemble.weak_name))]
        own = own.assign(metric="supervisor's accuracy", value=own["accuracy"], series="the supervisor itself",
                         supervisor=own["weak_model"])
        students = _students(here, direct=True)
        students = students[students["weak_name"].isin(names) & (kinds.loc[students.index].eq("ensemble")
                                                                 == students["weak_name"].eq(ensemble.weak_name))]
        series = students["model"].astype(str) + ", " + students["loss"].astype(str)
        for metric, column in (("student's accuracy", "accuracy"), ("student's PGR", "pgr")):
            frames.append(students.assign(metric=metric, value=students[column], series=series,
                                          supervisor=students["weak_model"]))
        frames.append(own)
        frames[-3:] = [f.assign(panel=f"{ensemble.dataset}: {ensemble.weak_name}") for f in frames[-3:]]
    if frames:
        rows = pd.concat(frames, ignore_index=True).dropna(subset=["value"])
        data = _seed_mean(rows, ["panel", "metric", "supervisor", "series"], ["value"])
        chart = (alt.Chart(data).mark_point(filled=True, size=60).encode(
            x=alt.X("supervisor:N", title="supervisor", axis=MODEL_AXIS),
            y=alt.Y("value:Q", title="mean over seeds", scale=alt.Scale(zero=False)),
            color=alt.Color("series:N", title="strong model, loss"),
            tooltip=["panel:N", "metric:N", "supervisor:N", "series:N", alt.Tooltip("value:Q", format=".3f"),
                     "seeds:Q"],
        ).properties(width=_panel_width(3, 220, 160), height=180)
            .facet(row=alt.Row("panel:N", title=None), column=alt.Column("metric:N", title=None))
            .resolve_scale(y="independent"))
    return _Figure(
        "ensembles", "Ensembles of weak supervisors against their members",
        "Per dataset and ensemble: the test accuracy of the ensemble and of each member (their ground-truth runs), "
        "and the test accuracy and PGR of their direct students into the same strong model with the same loss. "
        "Each student's PGR is measured against its own supervisor.",
        chart, note="No ensemble supervisors in the summary.",
    )


def _chain_figure(summary: pd.DataFrame) -> _Figure:
    """Each bootstrap chain step beside direct supervision from the same root and its ceiling."""
    keys = ["dataset", "weak_model", "model", "loss"]
    chains = _seed_mean(_students(summary, direct=False), [*keys, "run", "lineage", "chain_length"],
                        ["accuracy", "ceiling_accuracy"])
    chart = None
    if not chains.empty:
        direct = _seed_mean(_students(summary, direct=True), keys, ["accuracy"]).rename(
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
            ~is_ceiling, _ceiling_label(data["ceiling_selected"].eq(True)))
        data = data.drop(columns="ceiling_selected")
        scale = _supervision_scale(list(labels.values()), data["supervision"].unique().tolist())
        chart = (
            alt.Chart(data).mark_point(filled=True, size=80).encode(
                x=alt.X("test accuracy:Q", title="test accuracy (mean over seeds)",
                        scale=alt.Scale(zero=False, padding=12)),
                y=alt.Y("chain:N", title=None, axis=alt.Axis(labelLimit=320)),
                color=alt.Color("supervision:N", title=None, scale=scale),
                shape=alt.Shape("supervision:N", title=None, scale=alt.Scale(domain=scale.domain)),
                tooltip=["dataset:N", "chain:N", "supervision:N", alt.Tooltip("test accuracy:Q", format=".3f")],
            ).properties(width=320)
            .facet(row=alt.Row("dataset:N", title=None))
        )
    return _Figure(
        "chains", "Bootstrap chains vs direct supervision",
        "For each bootstrap chain step (weak → intermediate … → strong), its test accuracy beside the student trained "
        "directly by the same root weak model with the same final model and loss, and that model's ceiling.",
        chart, note="No bootstrap chains in this run (no student has chain length of 3 or more).",
    )


def _curve_series(curves: pd.DataFrame) -> pd.Series:
    """One legend entry per run: the lineage, then the loss of a student (marked where it was selected on
    ground truth) or "ground truth"."""
    student = curves["kind"] == "student"
    what = _marked(curves["loss"].where(student, "ground truth"),
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


def _curves_figure(curves: pd.DataFrame | None) -> _Figure:
    """Training loss per step, and accuracy on held-out training rows against their training labels;
    probe heads, fit to convergence per L2 strength, have no steps and are in the probe table instead."""
    chart = None
    note = "No training curves were given to the report."
    if curves is not None:
        curves = curves[curves["l2"].isna()] if "l2" in curves else curves
        note = "No run was trained in steps: probe heads are listed in the probe fits table."
    if curves is not None and not curves.empty:
        loss, holdout = _curve_points(curves)
        highlight = alt.selection_point(fields=["series"], bind="legend")
        colour = alt.Color("series:N", title="run (click to highlight)", legend=alt.Legend(symbolLimit=0))
        opacity = alt.condition(highlight, alt.value(1.0), alt.value(0.15))
        x = alt.X("epoch:Q", title="epoch")
        panels = alt.Facet("dataset:N", title=None)
        columns = _wrap_columns(loss["dataset"].nunique(), 300)
        loss_chart = alt.Chart(loss).mark_line().encode(
            x=x, y=alt.Y("train_loss:Q", title="training loss (mean over seeds)"), color=colour, opacity=opacity,
            tooltip=["dataset:N", "series:N", alt.Tooltip("epoch:Q", format=".2f"),
                     alt.Tooltip("train_loss:Q", format=".4f")],
        ).add_params(highlight).properties(width=300, height=180).facet(facet=panels, columns=columns).resolve_axis(
            x="independent")
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
            accuracy_chart = (alt.layer(accuracy_base.mark_line(), accuracy_base.mark_point(filled=True, size=30),
                                        data=holdout)
                              .properties(width=300, height=180)
                              .facet(facet=panels, columns=columns).resolve_axis(x="independent"))
            chart = alt.vconcat(loss_chart, accuracy_chart)
    return _Figure(
        "curves", "Training curves",
        "Training loss per optimiser step of every trained model (mean over seeds, binned when there are many "
        "steps) and, for runs that select their checkpoint on held-out rows, the accuracy on those rows against "
        "the labels they were trained on: weak labels for students, ground truth for ground-truth models.",
        chart, note=note,
    )


def _sweep_figure(sweep: pd.DataFrame | None) -> _Figure:
    """PGR of every direct student at every L2 strength of its probe, weak and ceiling at their chosen ones."""
    chart = None
    points = pd.DataFrame()
    if sweep is not None and not sweep.empty:
        points = sweep.dropna(subset=["pgr", "l2"])  # students that are not probes have no strengths
    if not points.empty:
        points = points.assign(loss=_marked(points["loss"], points["model_selection"].eq("ground_truth_holdout")))
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
        points = base.mark_point(size=40, filled=True).encode(tooltip=tooltip)
        chosen = base.mark_point(size=220, filled=True, shape="diamond").encode(tooltip=tooltip).transform_filter(
            "datum.chosen == 'chosen on the holdout'")
        references = alt.Chart(pd.DataFrame({"pgr": [0.0, 1.0]})).mark_rule(strokeDash=[4, 4], color="#888888").encode(
            y="pgr:Q")
        chart = (alt.layer(base.mark_line(), points, chosen, references, data=means)
                 .properties(width=_panel_width(means["lineage"].nunique(), 240, 140), height=180)
                 .facet(row=alt.Row("dataset:N", title=None), column=alt.Column("lineage:N", title="weak → strong")))
    return _Figure(
        "regularisation", "Overfitting to weak supervision: PGR against L2 strength",
        "Each direct weak → strong student's probe refit at every L2 strength of the grid, its test PGR against the "
        "weak model and the ceiling at their own chosen strengths (dashed: 0, the weak model; 1, the ceiling). "
        "Weaker regularisation lets the student fit its supervisor's errors. The large diamond is the strength "
        "chosen on held-out rows against the weak labels; the other strengths' test scores are only drawn, never "
        "used to choose.",
        chart, note="No direct students trained as probes, so no regularisation sweep.",
    )


def _probe_table(curves: pd.DataFrame | None) -> pd.DataFrame:
    """Per probe run and seed: the chosen L2 strength, its holdout accuracy, training loss and convergence."""
    if curves is None or "l2" not in curves or curves["l2"].isna().all():
        return pd.DataFrame()
    probes = curves.dropna(subset=["l2"])
    every_converged = probes.groupby(["dataset", "run", "seed"])["converged"].all().rename("all converged")
    chosen = probes[probes["chosen"].eq(True)].join(every_converged, on=["dataset", "run", "seed"])
    table = pd.DataFrame({
        "dataset": chosen["dataset"], "run": _marked(chosen["run"], chosen["model_selection"].eq(
            "ground_truth_holdout") & chosen["kind"].eq("student")),
        "seed": chosen["seed"], "chosen L2": [f"{v:.0e}" for v in chosen["l2"]],
        "holdout accuracy": chosen["holdout_accuracy"], "training loss": chosen["train_loss"],
        "iterations": chosen["iterations"], "rounds": chosen["rounds"],
        "all converged": chosen["all converged"].map({True: "yes", False: "NO"}),
    }).sort_values(["dataset", "run", "seed"])
    return _formatted(table, ["holdout accuracy", "training loss"])


def _lines_with_points(data: pd.DataFrame, dash: alt.StrokeDash, shape: alt.Shape | None = None,
                       **encoding: object) -> alt.LayerChart:
    """Lines plus a point per value, as two layers so the dash legend shows dashes rather than points."""
    base = alt.Chart().encode(**encoding)
    points = base.mark_point(filled=True, size=50, opacity=1)
    if shape is not None:
        points = points.encode(shape=shape)
    return alt.layer(base.mark_line().encode(strokeDash=dash), points, data=data)


def _colours(n: int) -> list[str]:
    """n palette colours, repeating when there are more series than colours."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


# ---------------------------------------------------------------- tables


def _pgr_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and loss: trained students, how many have a defined PGR, and its median and mean."""
    students = _students(summary)
    grouped = students.groupby(["dataset", "loss"], sort=True)
    table = pd.DataFrame({
        "students": grouped.size(),
        "with defined PGR": grouped["pgr"].count(),
        "median PGR": grouped["pgr"].median(),
        "mean PGR": grouped["pgr"].mean(),
    }).reset_index()
    return _formatted(table, ["median PGR", "mean PGR"])


def _ground_truth_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per dataset and model of models trained on ground-truth labels, the ceilings every
    PGR is measured against, and of prompted models with their number of shots."""
    runs = summary[summary["kind"].isin(["ground_truth", "prompt", *SUPERVISOR_KINDS])]
    generative = runs.get("task_kind", pd.Series(np.nan, index=runs.index)).eq("generative")
    auroc_kind = runs.get("auroc_kind", pd.Series("AUROC", index=runs.index)).astype(object).fillna("AUROC")
    runs = runs.assign(method=[_method(run) for _, run in runs.iterrows()], task=_task_names(runs),
                       auroc_kind=auroc_kind.where(~generative, "none (generative: exact match)"))
    table = _seed_mean(runs, ["dataset", "task", "model", "model_rank", "params_b", "method", "auroc_kind"],
                       ["accuracy", "auroc"])
    table = table.sort_values(["dataset", "model_rank", "model", "method"]).drop(columns="model_rank")
    table = table.rename(columns={"params_b": "params (B)", "accuracy": "test accuracy", "auroc": "AUROC",
                                  "auroc_kind": "AUROC kind"})
    table = table[["dataset", "task", "model", "method", "params (B)", "seeds", "test accuracy", "AUROC", "AUROC kind"]]
    return _formatted(table, ["params (B)", "test accuracy", "AUROC"])


def _generative_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Every run of a generative_finetuning twin beside the same run of its model without the stage (the
    ceiling, or the student with the same supervisors and loss): test accuracy and PGR, means over the seeds
    both have. Empty when no run started from generative finetuning."""
    if "generative_finetuning" not in summary or not summary["generative_finetuning"].eq(True).any():
        return pd.DataFrame()
    twins = summary[summary["generative_finetuning"].eq(True)]
    pairs = twins.merge(summary, left_on=["dataset", "seed", "run_without_generative_finetuning"],
                        right_on=["dataset", "seed", "run"], suffixes=("", "_without"))
    pairs = pairs.assign(run=[CEILING if kind == "ground_truth" else loss
                              for kind, loss in zip(pairs["kind"], pairs["loss"])],
                         lineage=pairs["lineage_without"])
    table = _seed_mean(pairs, ["dataset", "run", "lineage"], ["accuracy_without", "accuracy", "pgr_without", "pgr"])
    table = table.rename(columns={"run": "ceiling or loss", "accuracy_without": "accuracy without",
                                  "accuracy": "accuracy with", "pgr_without": "PGR without", "pgr": "PGR with"})
    table = table[["dataset", "ceiling or loss", "lineage", "seeds", "accuracy without", "accuracy with",
                   "PGR without", "PGR with"]]
    return _formatted(table, ["accuracy without", "accuracy with", "PGR without", "PGR with"])


# A chess run's metrics beyond exact match (w2s.evaluation.runs._chess_metrics), named as the chess table shows them.
CHESS_COLUMNS = {"accuracy": "exact match", "legal_move_rate": "legal moves", "weak_labels_legal_move_rate":
                 "weak labels: legal moves", "weak_labels_empty": "weak labels: empty"}


def _chess_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and run of a chess task, means over seeds: exact match, the share of legal moves among the
    test generations and among the weak labels it learned from, its empty weak labels, then exact match per
    rating band and on the test split's most frequent themes where the data has them (the Lichess CSV).
    Empty when no run is a chess run."""
    if "legal_move_rate" not in summary or summary["legal_move_rate"].isna().all():
        return pd.DataFrame()
    runs = summary[summary["legal_move_rate"].notna()]
    runs = runs.assign(run=_marked(runs["run"], runs["gt_selected"]))
    breakdowns = [c for c in runs.columns if c.startswith(("accuracy_rating_", "accuracy_theme_"))
                  and runs[c].notna().any()]
    values = [c for c in CHESS_COLUMNS if c in runs] + breakdowns
    table = _seed_mean(runs, ["dataset", "run", "chain_length"], values)
    table = table.sort_values(["dataset", "chain_length", "run"]).drop(columns="chain_length")
    names = {**CHESS_COLUMNS, **{c: c.removeprefix("accuracy_rating_") + " rated" if c.startswith("accuracy_rating_")
                                 else c.removeprefix("accuracy_theme_") for c in breakdowns}}
    table = table[["dataset", "run", "seeds", *values]].rename(columns=names)
    rates = [names[c] for c in values if c != "weak_labels_empty"]
    return _rounded(_formatted(table, rates), {names["weak_labels_empty"]: 0} if "weak_labels_empty" in values else {})


def _left_out_puzzles(summary: pd.DataFrame) -> str:
    """The puzzles preparation left out past max_moves, per dataset and seed, in words; "" where none was set."""
    if "puzzles_over_max_moves" not in summary or summary["puzzles_over_max_moves"].isna().all():
        return ""
    counts = summary.dropna(subset=["puzzles_over_max_moves"]).groupby(["dataset", "seed"])["puzzles_over_max_moves"]
    return "; ".join(f"{dataset} seed {seed}: {int(n)}" for (dataset, seed), n in counts.first().items())


def _task_names(runs: pd.DataFrame) -> list[str]:
    """Each run's task in words: its kind and number of classes (w2s.tasks); summaries from before task kinds
    existed are binary text tasks."""
    kinds = runs.get("task_kind", pd.Series(np.nan, index=runs.index))
    classes = runs.get("n_classes", pd.Series(np.nan, index=runs.index))
    return ["generative, exact match" if kind == "generative" else
            f"{kind if isinstance(kind, str) else 'text_classification'}, {int(k) if pd.notna(k) else 2} classes"
            for kind, k in zip(kinds, classes)]


def _method(run: pd.Series) -> str:
    """How a ground-truth or prompted model came by its predictions: training mode, or shots; a simulated or
    ensemble supervisor, how it makes its labels."""
    if run["kind"] in SUPERVISOR_KINDS:
        return str(run["weak_method"])
    if run["kind"] == "prompt":
        shots = run.get("shots")
        label = f"{int(shots)}-shot prompt" if pd.notna(shots) else "prompt"
    else:
        mode = run.get("mode")
        if mode == "pretrained_head":
            label = "pretrained head as is (no training)"
        else:
            label = f"trained ({mode})" if isinstance(mode, str) else "trained"
    return label + (GT_SELECTION if run["gt_selected"] else "")


def _seed_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and run: seeds, and each metric's mean over seeds with its interval over seeds."""
    table = pd.DataFrame({
        "dataset": seeds["dataset"],
        "run": _marked(seeds["run"], uses_ground_truth_selection(seeds)),
        "seeds": seeds["n_seeds"],
    })
    for metric, name in METRIC_NAMES.items():
        table[name] = [
            "–" if pd.isna(mean) else f"{mean:.3f}" if pd.isna(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"
            for mean, low, high in zip(seeds[f"{metric}_mean"], seeds[f"{metric}_seed_ci_low"],
                                       seeds[f"{metric}_seed_ci_high"])
        ]
    return table


def _loss_table(losses: pd.DataFrame) -> pd.DataFrame:
    """Per loss and lineage length: median and mean PGR across datasets, and how many pairs they count."""
    names = {"pgr_median": "median PGR", "pgr_mean": "mean PGR", "pgr_pairs_counted": "pairs counted",
             "pgr_pairs_excluded": "pairs excluded", "pgr_auroc_median": "median PGR (AUROC)",
             "pgr_auroc_mean": "mean PGR (AUROC)", "pgr_auroc_pairs_counted": "pairs counted (AUROC)",
             "pgr_auroc_pairs_excluded": "pairs excluded (AUROC)"}
    table = losses.assign(loss=_marked(losses["loss"], uses_ground_truth_selection(losses)))
    table = table[["loss", "lineage", "datasets", "pairs", *names]].rename(columns=names)
    return _formatted(table, ["median PGR", "mean PGR", "median PGR (AUROC)", "mean PGR (AUROC)"])


def _reference_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Measured values beside the published ones they match; ≈ marks a value published only roughly."""
    table = comparison.assign(
        quantity=_marked(comparison["quantity"], uses_ground_truth_selection(comparison)),
        published=[f"≈{v:.3f}" if approximate else f"{v:.3f}"
                   for v, approximate in zip(comparison["reference"], comparison["approximate"].eq(True))],
    )
    table = table[["dataset", "model", "hub_id", "loss", "quantity", "measured", "published", "difference", "basis"]]
    # Accuracy rows have no loss and median-PGR rows no model.
    table[["model", "hub_id", "loss"]] = table[["model", "hub_id", "loss"]].fillna("–")
    return _formatted(table.rename(columns={"hub_id": "hub id"}), ["measured", "difference"])


def _marked(labels: pd.Series, gt_selected: pd.Series) -> pd.Series:
    return labels.where(~gt_selected, labels.astype(str) + GT_SELECTION)


def _formatted(table: pd.DataFrame, numeric: list[str]) -> pd.DataFrame:
    """Three decimals everywhere, and a dash where a value is undefined, so cells read alike."""
    table = table.copy()
    for column in numeric:
        table[column] = [("–" if pd.isna(v) else f"{v:.3f}") for v in table[column]]
    return table


def _rounded(table: pd.DataFrame, decimals: dict[str, int]) -> pd.DataFrame:
    """Given columns at their own number of decimals, with a dash where a value is missing."""
    table = table.copy()
    for column, places in decimals.items():
        table[column] = [("–" if pd.isna(v) else f"{v:.{places}f}") for v in table[column]]
    return table


def _table_html(table: pd.DataFrame, empty_note: str) -> str:
    """The table, or a note in its place so that an empty table does not look like a rendering fault."""
    if table.empty:
        return f"<p class=\"note\">{_esc(empty_note)}</p>"
    return table.to_html(index=False, border=0, classes="summary", escape=True)


# ---------------------------------------------------------------- page


def _summary_tables(summary: pd.DataFrame, seed_summary: pd.DataFrame | None, loss_summary: pd.DataFrame | None,
                    reference: pd.DataFrame | None, curves: pd.DataFrame | None = None) -> str:
    """The tables section: PGR and ground-truth accuracy from the per-run summary, then each of
    summarize's other tables that was given."""
    parts = [
        "<p>PGR per dataset and loss over every trained student (each run and seed counts once, chain steps "
        "included); median and mean are taken over students with a defined PGR.</p>",
        _table_html(_pgr_table(summary), "No students in the summary."),
        "<p>Test accuracy and AUROC, mean over seeds, of every model trained on ground-truth labels (the ceilings), "
        "of every pretrained head used as it is, of every simulated or ensemble supervisor (a simulated one has "
        "its real model's accuracy by construction; its probabilities are its labels, so its AUROC is that of hard "
        "labels), and of every prompted model, with its number of in-context examples. Each task is scored with its own metrics: AUROC is the binary one for two classes and the "
        "macro one-vs-rest one (the mean over classes of each class against the rest) for more.</p>",
        _table_html(_ground_truth_table(summary), "No ground-truth or prompted models in the summary."),
    ]
    generative = _generative_table(summary)
    if not generative.empty:
        parts += ["<p>Generative finetuning (the paper's Section 5.2): each model of generative_finetuning "
                  "trained with its next-token loss on the task's texts without labels, then as its twin "
                  "(<code>&lt;model&gt;-genft</code>) a ceiling and a student of the same supervisors, beside "
                  "the same run from the hub's weights. Each twin's PGR is measured against its own ceiling; "
                  "the lineage names the model without the stage.</p>",
                  _table_html(generative, "")]
    chess = _chess_table(summary)
    if not chess.empty:
        left_out = _left_out_puzzles(summary)
        parts += ["<p>Chess puzzles, mean over seeds: exact match (a move with or without its check or mate sign), "
                  "the share of test generations that are a legal move where the prompt leaves the game, the same "
                  "for the weak labels a student learned from and how many of them were empty; then exact match per "
                  "puzzle rating band and on the test split's most frequent themes where the data has them (the "
                  "Lichess CSV; the hub's puzzles have neither)."
                  + (f" Puzzles left out at preparation, past max_moves: {_esc(left_out)}." if left_out else "")
                  + "</p>", _table_html(chess, "")]
    if seed_summary is not None:
        parts += ["<p>Per run, each metric's mean over seeds with a 95% bootstrap interval over seeds "
                  "(seeds resampled with replacement; no interval with a single seed).</p>",
                  _table_html(_seed_table(seed_summary), "No runs in the seed summary.")]
    if loss_summary is not None:
        parts += ["<p>PGR per loss and lineage (direct weak→strong pairs, or bootstrap chains of a given length) "
                  "across datasets, from seed means: as in the reference code, a (dataset, pair) counts only when "
                  "its ceiling is above its weak model, and the excluded ones are counted beside.</p>",
                  _table_html(_loss_table(loss_summary), "No students in the loss summary.")]
    probes = _probe_table(curves)
    if not probes.empty:
        parts += ["<p>Probe heads, fit to convergence: per run and seed, the L2 strength chosen on the held-out "
                  "rows (against their training labels: weak labels for students), that accuracy, and the fit on "
                  "every training row at that strength: its final training loss (mean loss, without the penalty), "
                  "L-BFGS iterations and rounds, and whether every fit of the run converged.</p>",
                  _table_html(probes, "")]
    if reference is not None:
        parts += [f"<p>Measured values beside published ones ({_esc(REFERENCE_SOURCE)}) where the dataset, the hub "
                  "id of the model and full finetuning match; median PGR over direct pairs of such models.</p>",
                  _table_html(_reference_table(reference), "No run matches a published configuration.")]
    return "<section><h2>Summary tables</h2>" + "".join(parts) + "</section>"


def _provenance_html(record: dict[str, Any]) -> str:
    """Where the numbers came from: code, config, packages, devices, data version, and each job's cost."""
    git = record["git"]
    if git.get("commit"):
        code = f"git commit {git['commit']}" + (" with uncommitted changes (dirty)" if git.get("dirty") else ", clean")
        uncommitted = [f"{f['path']} ({f['status']})" for f in git.get("files", []) if f["status"] != "committed"]
        if uncommitted:
            code += "; config and data files not committed: " + ", ".join(uncommitted)
    else:
        code = git.get("note", "no git state recorded")
    dvc = record["dvc_data"]
    if dvc.get("recorded"):
        data_version = "; ".join(
            f"{out['path']}: md5 {out['md5']}" + (f", {out['nfiles']} files" if out.get("nfiles") else "")
            for out in dvc["outs"]) + f" (from {dvc['lock_file']})"
    else:
        data_version = dvc["note"]
    devices = "; ".join(f"{d['device']}: {d['runs']} runs" for d in record["training_devices"]) or "–"
    packages = ", ".join(f"{name} {version or 'not installed'}" for name, version in record["packages"].items())
    facts = pd.DataFrame([
        ("code", code), ("config sha256", record["config_sha256"]), ("data version (DVC)", data_version),
        ("training devices", devices), ("report built on", record["built_on"]), ("packages", packages),
    ], columns=["what", "value"])
    artifacts = pd.DataFrame(record["artifacts"], columns=["artifact", "wall_s", "max_rss_mb", "cpu_time_s"])
    artifacts = artifacts.sort_values("wall_s", ascending=False).rename(columns={
        "wall_s": "wall time (s)", "max_rss_mb": "peak memory (MB RSS)", "cpu_time_s": "CPU time (s)"})
    total = artifacts["wall time (s)"].sum()
    data_files = pd.DataFrame(record["data_files"], columns=["path", "md5", "bytes"])
    sources = pd.DataFrame([_source_row(source) for source in record.get("data_sources", [])],
                           columns=["dataset", "read from", "commit", "pinned by"]).drop_duplicates()
    models = pd.DataFrame([_model_row(source) for source in record.get("model_sources", [])],
                          columns=["model", "read from", "revision", "pinned by"])
    return (
        "<section><h2>Provenance</h2>"
        "<p>The code, config, packages and data behind every number above; git and DVC state as when the "
        "report was built.</p>"
        + facts.to_html(index=False, border=0, classes="summary provenance", escape=True)
        + "<p>The data each dataset was prepared from: a hub repository at a commit, or local files.</p>"
        + _table_html(sources, "No data source recorded.")
        + "<p>The models, each from a hub repository at a revision (a commit, tag or branch) or from local files.</p>"
        + _table_html(models, "No model source recorded.")
        + f"<details><summary>Wall time and peak memory of {len(artifacts)} jobs that load a model "
        f"({total:.0f} s in all), from Snakemake's benchmark files</summary>"
        + _table_html(_rounded(artifacts, {"wall time (s)": 1, "peak memory (MB RSS)": 0, "CPU time (s)": 1}),
                      "No benchmark files.")
        + f"</details><details><summary>{len(data_files)} prepared data files and their md5</summary>"
        + _table_html(data_files, "No prepared data files.")
        + "</details></section>"
    )


def _model_row(source: dict[str, Any]) -> tuple[str, str, str, str]:
    if source["hub_id"] is None:
        return source["model"], source["local"], "–", "–"
    return source["model"], source["hub_id"], source["revision"] or "–", source["pinned_by"]


def _source_row(source: dict[str, Any]) -> tuple[str, str, str, str]:
    if source.get("local_files"):
        files = ", ".join(f"{split} sha256 {digest[:12]}" for split, digest in source["local_files"].items())
        return source["dataset"], "local files", files, "their content"
    where = f"{source['hub_id']} ({source['branch']})" + (f", local copy {source['mirror']}" if source["mirror"] else "")
    return source["dataset"], where, source["revision"] or "–", source["pinned_by"]


def _page(title: str, summary: pd.DataFrame, figures: list[_Figure], tables: str) -> str:
    """The whole report: headed sections, each spec in a JSON script tag that the inlined vega-embed renders."""
    seeds = ", ".join(str(s) for s in sorted(summary["seed"].dropna().unique())) or "(none)"
    sections = [*(_figure_html(f) for f in figures), tables]
    selection_note = ""
    if summary["gt_selected"].any():
        selection_note = (f" Runs marked “{_esc(GT_SELECTION.strip(' ()'))}” chose their checkpoint with "
                          "ground-truth labels, so they are not pure weak supervision.")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{_esc(title)}</title>
<style>
body {{ font-family: system-ui, sans-serif; margin: 2em 1em; color: #222; }}
/* Figures take the page's full width; prose stays at a readable line length. */
p, ul, summary {{ max-width: 75em; }}
section {{ margin-bottom: 2.5em; }}
p.note {{ color: #666; font-style: italic; }}
table.summary {{ border-collapse: collapse; margin: 0.5em 0 1.5em; }}
table.summary th, table.summary td {{ padding: 0.25em 0.8em; border-bottom: 1px solid #ddd; text-align: right; }}
table.summary th {{ background: #f4f4f4; }}
table.provenance td {{ text-align: left; word-break: break-all; }}
table.provenance td:first-child {{ white-space: nowrap; word-break: normal; }}
</style>
</head>
<body>
<h1>{_esc(title)}</h1>
<p>{len(summary)} evaluated models; values are means over seeds {_esc(seeds)} unless stated.{selection_note}</p>
{"".join(sections)}
<script type="text/javascript">{_javascript_bundle()}</script>
<script type="text/javascript">
for (const el of document.querySelectorAll("script.vega-spec")) {{
  vegaEmbed("#" + el.dataset.target, JSON.parse(el.textContent), {json.dumps(EMBED_OPTIONS)}).catch(console.error);
}}
</script>
</body>
</html>
"""


def _figure_html(figure: _Figure) -> str:
    """A figure's section; the spec sits in a JSON script tag so the page needs no per-chart code."""
    head = f"<section><h2>{_esc(figure.heading)}</h2><p>{_esc(figure.sentence)}</p>"
    if figure.chart is None:
        return f"{head}<p class=\"note\">{_esc(figure.note)}</p>{figure.after_html}</section>"
    # "<" escaped so that no string in the data can close the script element early.
    spec = json.dumps(figure.chart.to_dict(), allow_nan=False).replace("<", "\\u003c")
    target = f"fig-{figure.name}"
    return (f"{head}<div id=\"{target}\"></div>"
            f"<script type=\"application/json\" class=\"vega-spec\" data-target=\"{target}\">{spec}</script>"
            f"{figure.after_html}</section>")


@lru_cache(maxsize=1)
def _javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (about 1 MB); cached because bundling takes seconds."""
    return vlc.javascript_bundle(vl_version=VL_VERSION)


def _esc(value: object) -> str:
    return html.escape(str(value))

