"""The experiment report: one offline HTML page of the registered views (report.views), Altair charts and summary
tables, and a PNG per figure.

Every chart is drawn from seed means computed with pandas, so the embedded specs stay small
(a few hundred rows at most) and the page needs no network: Vega, Vega-Lite and vega-embed are
inlined from vl-convert's bundle, and the PNGs are rendered by vl-convert as well.
"""

from __future__ import annotations

import json
from functools import lru_cache
from pathlib import Path

import altair as alt
import pandas as pd
import vl_convert as vlc

from w2s import io
from w2s.report.aggregation import GT_SELECTION
from w2s.report.figures import Figure
from w2s.report.markup import esc
from w2s.report.views import VIEWS, Report, ReportInputs

# The Vega-Lite release Altair writes specs for, as vl-convert names it ("6.4").
VL_VERSION = ".".join(alt.SCHEMA_VERSION.lstrip("v").split(".")[:2])
EMBED_OPTIONS = {"renderer": "svg", "actions": {"export": True, "source": False, "compiled": False, "editor": False}}


def build_report(inputs: ReportInputs, out_dir: str | Path, title: str) -> dict[str, Path]:
    """Write `report.html` and `figures/<name>.png`; return every file written by name ("html" for the page).

    Every view of report.views.VIEWS whose rows the inputs hold gets its section, in order; a figure without
    data gets a note on the page and no PNG. A stale PNG of a view without one is removed, so `figures/` always
    matches the page. The page is written last, so its presence means the figures beside it are complete.
    """
    report = Report.of(inputs)
    sections = [(name, view.heading, view.build(report)) for name, view in VIEWS.items() if view.shown(report)]
    out = Path(out_dir)
    written: dict[str, Path] = {}
    (out / "figures").mkdir(parents=True, exist_ok=True)
    for name, _, content in sections:
        if isinstance(content, Figure) and content.chart is not None:
            image = vlc.vegalite_to_png(content.chart.to_dict(), vl_version=VL_VERSION, scale=2)
            written[name] = out / "figures" / f"{name}.png"
            io.write_bytes(image, written[name])
    for name in VIEWS.keys() - written.keys():
        (out / "figures" / f"{name}.png").unlink(missing_ok=True)
    written["html"] = out / "report.html"
    io.write_bytes(_page(title, report.summary, sections).encode("utf-8"), written["html"])
    return written


# Sorts a table.sortable by the clicked column: by each cell's data-sort number where it has one (empty ones last),
# else by its text; a second click on the same column reverses the order.
SORT_SCRIPT = """
for (const table of document.querySelectorAll("table.sortable")) {
  table.querySelectorAll("th").forEach((th, column) => th.addEventListener("click", () => {
    const descending = th.dataset.order !== "descending";
    table.querySelectorAll("th").forEach(other => delete other.dataset.order);
    th.dataset.order = descending ? "descending" : "ascending";
    const key = row => { const cell = row.cells[column]; return cell.dataset.sort ?? cell.textContent; };
    const rows = Array.from(table.tBodies[0].rows);
    rows.sort((a, b) => {
      const x = key(a), y = key(b);
      if (x === "" || y === "") return (x === "") - (y === "");
      const order = isNaN(x) || isNaN(y) ? String(x).localeCompare(String(y)) : Number(x) - Number(y);
      return descending ? -order : order;
    });
    rows.forEach(row => table.tBodies[0].appendChild(row));
  }));
}
"""


def _page(title: str, summary: pd.DataFrame, sections: list[tuple[str, str, Figure | str]]) -> str:
    """The whole report: headed sections, each spec in a JSON script tag that the inlined vega-embed renders."""
    seeds = ", ".join(str(s) for s in sorted(summary["seed"].dropna().unique())) or "(none)"
    selection_note = ""
    if summary["gt_selected"].any():
        selection_note = (f" Runs marked “{esc(GT_SELECTION.strip(' ()'))}” chose their checkpoint with "
                          "ground-truth labels, so they are not pure weak supervision.")
    return f"""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>{esc(title)}</title>
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
table.sortable th {{ cursor: pointer; }}
table.provenance td:first-child {{ white-space: nowrap; word-break: normal; }}
</style>
</head>
<body>
<h1>{esc(title)}</h1>
<p>{len(summary)} evaluated models; values are means over seeds {esc(seeds)} unless stated.{selection_note}</p>
{"".join(_section_html(*section) for section in sections)}
<script type="text/javascript">{_javascript_bundle()}</script>
<script type="text/javascript">{SORT_SCRIPT}</script>
<script type="text/javascript">
for (const el of document.querySelectorAll("script.vega-spec")) {{
  vegaEmbed("#" + el.dataset.target, JSON.parse(el.textContent), {json.dumps(EMBED_OPTIONS)}).catch(console.error);
}}
</script>
</body>
</html>
"""


def _section_html(name: str, heading: str, content: Figure | str) -> str:
    """A view's section: its heading, then a table section's HTML or a figure's sentence and chart."""
    head = f"<section><h2>{esc(heading)}</h2>"
    if isinstance(content, str):
        return f"{head}{content}</section>"
    head += f"<p>{esc(content.sentence)}</p>"
    if content.chart is None:
        return f"{head}<p class=\"note\">{esc(content.note)}</p>{content.after_html}</section>"
    # "<" escaped so that no string in the data can close the script element early.
    spec = json.dumps(content.chart.to_dict(), allow_nan=False).replace("<", "\\u003c")
    target = f"fig-{name}"
    return (f"{head}<div id=\"{target}\"></div>"
            f"<script type=\"application/json\" class=\"vega-spec\" data-target=\"{target}\">{spec}</script>"
            f"{content.after_html}</section>")


@lru_cache(maxsize=1)
def _javascript_bundle() -> str:
    """Vega, Vega-Lite and vega-embed as one script (about 1 MB); cached because bundling takes seconds."""
    return vlc.javascript_bundle(vl_version=VL_VERSION)
