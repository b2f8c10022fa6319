"""The figure frame every report figure shares (panel sizes, a row of panels per dataset, the palette), and the
core figures: test accuracy against the ground-truth ceiling, the PGR heatmap and student–supervisor agreement."""

from __future__ import annotations

from dataclasses import dataclass

import altair as alt
import pandas as pd

from w2s.report.aggregation import CEILING, GT_SELECTION, ceiling_label, model_order, seed_mean, students
from w2s.report.markup import esc

# Vega's tableau10 palette, spelled out so that the ceiling can be drawn in black beside it.
PALETTE = ("#4c78a8", "#f58518", "#e45756", "#72b7b2", "#54a24b", "#eeca3b", "#b279a2", "#ff9da6", "#9d755d", "#bab0ac")
MODEL_AXIS = alt.Axis(labelAngle=-30)
# Width a figure's panels may take together on a 1280-pixel screen: the page less its margins, the y axis
# and the legend that Vega places beside them.
PANELS_WIDTH = 1040
# Room between wrapped panels beside the panel itself: axis labels, title and Vega-Lite's spacing.
PANEL_MARGIN = 70


@dataclass(frozen=True)
class Figure:
    """A figure view's content under its heading: a sentence, then the chart, or the note that replaces it when a
    core view has no data, then any HTML that follows it (a table, a list)."""

    sentence: str
    chart: alt.TopLevelMixin | None
    note: str = ""
    after_html: str = ""


def faceted(chart: alt.TopLevelMixin, *, width: int | alt.Step, height: int | alt.Step | None = None,
            row: str = "dataset", column: alt.Column | None = None, wrap: int | None = None,
            independent: dict[str, str] | None = None) -> alt.FacetChart:
    """The frame of every figure: panels `width` by `height` pixels, a row of panels per value of `row` (each
    dataset), a column per value of `column`; or, with `wrap` set to the number of panels, the panels wrapped into
    rows that fit the page, each with its own x axis (wrapped rows otherwise show the x labels under the last row
    only). `independent` scales, e.g. {"y": "independent"}, let each panel keep its own range."""
    sized = chart.properties(width=width) if height is None else chart.properties(width=width, height=height)
    if wrap is not None:
        return sized.facet(facet=alt.Facet(f"{row}:N", title=None),
                           columns=wrap_columns(wrap, width)).resolve_axis(x="independent")
    panels = {"row": alt.Row(f"{row}:N", title=None)} | ({} if column is None else {"column": column})
    framed = sized.facet(**panels)
    return framed if independent is None else framed.resolve_scale(**independent)


def wrap_columns(panels: int, panel_width: int) -> int:
    """Facet columns so that a row of panels `panel_width` wide fits the page: a 20-dataset sweep wraps
    into rows instead of running off the screen sideways."""
    return max(1, min(panels, PANELS_WIDTH // (panel_width + PANEL_MARGIN)))


def panel_width(columns: int, preferred: int, narrowest: int) -> int:
    """Width of each of `columns` side-by-side panels: `preferred` where they fit the page, else shared out
    down to `narrowest`."""
    return max(narrowest, min(preferred, PANELS_WIDTH // max(1, columns) - PANEL_MARGIN))


def supervision_scale(series: list[str], ceilings: list[str]) -> alt.Scale:
    """Palette colours for the supervision series; black for the ceiling, grey where it was selected on ground truth."""
    ceilings = [c for c in (CEILING, CEILING + GT_SELECTION) if c in ceilings]
    shades = {CEILING: "black", CEILING + GT_SELECTION: "#777777"}
    return alt.Scale(domain=[*series, *ceilings], range=[*colours(len(series)), *(shades[c] for c in ceilings)])


def colours(n: int) -> list[str]:
    """n palette colours, repeating when there are more series than colours."""
    return [PALETTE[i % len(PALETTE)] for i in range(n)]


def lines_with_points(data: pd.DataFrame, dash: alt.StrokeDash, shape: alt.Shape | None = None,
                      **encoding: object) -> alt.LayerChart:
    """Lines plus a point per value, as two layers so the dash legend shows dashes rather than points."""
    base = alt.Chart().encode(**encoding)
    points = base.mark_point(filled=True, size=50, opacity=1)
    if shape is not None:
        points = points.encode(shape=shape)
    return alt.layer(base.mark_line().encode(strokeDash=dash), points, data=data)


def accuracy_figure(summary: pd.DataFrame) -> Figure:
    """The paper's main figure: direct students per weak supervisor and loss against the ground-truth ceiling."""
    order = model_order(summary)
    direct = seed_mean(students(summary, direct=True),
                       ["dataset", "model", "model_rank", "weak_model", "loss"], ["accuracy"])
    direct["series"] = "weak: " + direct["weak_model"].astype(str)
    ceiling = seed_mean(summary[summary["kind"] == "ground_truth"], ["dataset", "model", "model_rank", "gt_selected"],
                        ["accuracy"])
    ceiling["series"], ceiling["loss"] = ceiling_label(ceiling["gt_selected"]), "ground-truth labels"
    data = pd.concat([direct, ceiling.drop(columns="gt_selected")], ignore_index=True).dropna(subset=["accuracy"])
    chart = None
    if not data.empty:
        weak = sorted(direct["weak_model"].unique(), key=lambda m: order.index(m) if m in order else len(order))
        series = [f"weak: {m}" for m in weak]
        chart = faceted(
            lines_with_points(
                data,
                dash=alt.StrokeDash("loss:N", title="loss (line)"),
                shape=alt.Shape("loss:N", title="loss (marker)"),
                x=alt.X("model:N", sort=order, title="strong model", axis=MODEL_AXIS),
                y=alt.Y("accuracy:Q", title="test accuracy (mean over seeds)", scale=alt.Scale(zero=False)),
                color=alt.Color("series:N", title="supervision",
                                scale=supervision_scale(series, ceiling["series"].unique().tolist())),
                tooltip=["dataset:N", "series:N", "loss:N", "model:N",
                         alt.Tooltip("accuracy:Q", format=".3f"), "seeds:Q"],
            ), width=260, height=220, wrap=data["dataset"].nunique())
    return Figure(
        "Each coloured line is one weak supervisor whose labels trained the strong models on the x axis "
        "(direct weak→strong students, one dash style per loss); the black line is each model trained on "
        "ground-truth labels, the ceiling a student could reach.",
        chart, note="No direct students or ground-truth models in the summary.",
    )


def pgr_figure(summary: pd.DataFrame) -> Figure:
    """PGR of every direct weak → strong pair as a heatmap per dataset and loss, each cell with its interval."""
    order = model_order(summary)
    direct = students(summary, direct=True)
    keys = ["dataset", "weak_model", "model", "loss"]
    cells = seed_mean(direct.dropna(subset=["pgr"]), keys, ["pgr", "pgr_ci_low", "pgr_ci_high"])
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
        chart = faceted(alt.layer(defined_cells, undefined_cells, value, interval, data=data),
                        width=alt.Step(_pgr_cell_width(data)), height=alt.Step(44),
                        column=alt.Column("loss:N", title="loss"))
    undefined_runs = students(summary)[lambda rows: rows["pgr"].isna()]
    listing = ""
    if not undefined_runs.empty:
        rows = undefined_runs.sort_values(["dataset", "lineage", "loss", "seed"])
        items = "".join(
            f"<li>{esc(r.dataset)}, seed {r.seed}, {esc(r.lineage)} ({esc(r.loss)}): "
            f"{esc(r.pgr_undefined_reason if isinstance(r.pgr_undefined_reason, str) else 'reason not recorded')}</li>"
            for r in rows.itertuples()
        )
        listing = f"<p>PGR undefined, not averaged:</p><ul class=\"undefined\">{items}</ul>"
    return Figure(
        "Performance gap recovered, (student − weak) / (ceiling − weak), for every direct weak → strong pair, one "
        "panel per loss: the mean over seeds with a defined PGR, and below it the mean of the seeds' 95% bootstrap "
        "intervals. Colours saturate at −1 and 1; grey cells have no defined PGR. Bootstrap chains are compared "
        "with direct supervision further down.",
        chart, note="No direct weak → strong students in the summary.", after_html=listing,
    )


def _pgr_cell_width(cells: pd.DataFrame) -> int:
    """Heatmap cell width: 78 pixels, the width of its interval's text, unless the losses' panels of all
    strong models would then run past the page."""
    per_panel = cells["model"].nunique()
    return max(40, min(78, panel_width(cells["loss"].nunique(), 78 * per_panel, 40) // per_panel))


AGREEMENT_COLUMNS = ["agreement_supervisor_right", "agreement_supervisor_wrong"]


def has_agreement(summary: pd.DataFrame) -> bool:
    """Whether any direct student has an agreement value to draw."""
    return bool(students(summary, direct=True)[AGREEMENT_COLUMNS].notna().any(axis=None))


def agreement_figure(summary: pd.DataFrame) -> Figure:
    """Agreement split by supervisor correctness, the paper's view of students imitating their supervisor's errors."""
    means = seed_mean(students(summary, direct=True), ["dataset", "model", "model_rank", "weak_model", "loss"],
                      AGREEMENT_COLUMNS)
    data = means.melt(
        id_vars=["dataset", "model", "model_rank", "weak_model", "loss", "seeds"],
        value_vars=AGREEMENT_COLUMNS, var_name="supervisor", value_name="agreement",
    ).dropna(subset=["agreement"])
    data["supervisor"] = data["supervisor"].map({"agreement_supervisor_right": "supervisor right",
                                                 "agreement_supervisor_wrong": "supervisor wrong"})
    order = model_order(summary)
    chart = faceted(
        lines_with_points(
            data,
            dash=alt.StrokeDash("supervisor:N", title="on examples where"),
            x=alt.X("model:N", sort=order, title="strong model", axis=MODEL_AXIS),
            y=alt.Y("agreement:Q", title="student–supervisor agreement", scale=alt.Scale(domain=[0, 1])),
            color=alt.Color("weak_model:N", title="weak supervisor", sort=order),
            tooltip=["dataset:N", "loss:N", "weak_model:N", "model:N", "supervisor:N",
                     alt.Tooltip("agreement:Q", format=".3f"), "seeds:Q"],
        ), width=panel_width(data["loss"].nunique(), 220, 140), height=200,
        column=alt.Column("loss:N", title="loss"))
    return Figure(
        "How often a direct student predicts its weak supervisor's label, on test examples the supervisor gets right "
        "versus wrong; high agreement where the supervisor is wrong means the student imitates its errors.",
        chart,
    )
