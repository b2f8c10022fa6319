"""The report page in a real headless Chromium with the network off: every chart draws, nothing errs.

Figure names are read from the page, so a new figure is checked without touching this file.
Chromium comes from Debian's package; `make install` installs it when it is missing.
"""

from __future__ import annotations

import json
import re
import struct
from pathlib import Path

import pandas as pd
import pytest
from browser import BrowserMissing, render_page, table_after_clicks
from helpers import (
    PNG_MAGIC,
    synthetic_curves,
    synthetic_provenance,
    synthetic_selection_summary,
    synthetic_summarize_tables,
)

from w2s.report.page import build_report
from w2s.report.views import ReportInputs

CDN_SCRIPT = "https://cdn.jsdelivr.net/npm/vega@6"
REMOTE_DATA = "https://example.com/rows.json"
# Bounds the wait for a figure that never draws; the intact ones draw within about a second.
FAILING_PAGE_TIMEOUT_S = 4.0
# A sweep's worth of datasets, read on a 1280-pixel laptop screen.
SWEEP_DATASETS = [f"dataset_{i:02d}" for i in range(20)]
LAPTOP = {"width": 1280, "height": 900}
# Figures with a panel, or a row of panels, per dataset.
PER_DATASET_FIGURES = ("accuracy", "pgr", "agreement", "chains", "curves")


@pytest.fixture(scope="module")
def report_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The fullest report the summary tests build: ground-truth selection, prompted models, every table,
    training curves and provenance."""
    files = build_report(ReportInputs(synthetic_selection_summary(), **synthetic_summarize_tables(), curves=synthetic_curves(),
                                      provenance=synthetic_provenance()), tmp_path_factory.mktemp("browser"), "browser")
    return files["html"]


@pytest.fixture(scope="module")
def sweep_page(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The same runs and curves repeated over 20 datasets."""
    summary, curves = synthetic_selection_summary(), synthetic_curves()
    summary = pd.concat([summary.assign(dataset=name) for name in SWEEP_DATASETS], ignore_index=True)
    curves = pd.concat([curves.assign(dataset=name) for name in SWEEP_DATASETS], ignore_index=True)
    files = build_report(ReportInputs(summary, curves=curves), tmp_path_factory.mktemp("sweep"), "sweep")
    return files["html"]


def _write_variant(directory: Path, text: str) -> Path:
    """A changed copy of the report page, in its own folder."""
    variant = directory / "variant.html"
    variant.write_text(text, encoding="utf-8")
    return variant


def _png_size(png: Path) -> tuple[int, int]:
    data = png.read_bytes()
    assert data[:8] == PNG_MAGIC
    width, height = struct.unpack(">II", data[16:24])  # the IHDR chunk follows the signature
    return width, height


def test_every_chart_renders_offline_without_errors(report_page: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "report.png"
    render = render_page(report_page, screenshot=screenshot)
    assert {"accuracy", "pgr", "agreement", "chains", "curves"} <= render.figures, render.describe()
    assert render.rendered == render.figures, render.describe()
    assert render.console_errors == [], render.describe()
    assert render.console_warnings == [], render.describe()
    assert render.page_errors == [], render.describe()
    assert render.blocked_requests == [], render.describe()
    width, height = _png_size(screenshot)
    # Full page: the report is far taller than Playwright's 1280x720 viewport.
    assert width == 1280 and height > 720


def test_twenty_dataset_report_fits_a_laptop_screen(sweep_page: Path, tmp_path: Path) -> None:
    screenshot = tmp_path / "sweep.png"
    render = render_page(sweep_page, screenshot=screenshot, viewport=LAPTOP)
    assert render.rendered == render.figures, render.describe()
    assert render.scroll_width <= LAPTOP["width"], render.describe()
    for figure in PER_DATASET_FIGURES:
        datasets = sorted(set(render.texts[figure]) & set(SWEEP_DATASETS))
        assert datasets == SWEEP_DATASETS, (figure, render.texts[figure])
    assert _png_size(screenshot)[0] == LAPTOP["width"]


def test_corrupted_spec_is_reported(report_page: Path, tmp_path: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    target = 'data-target="fig-accuracy">'
    assert page.count(target) == 1
    broken = _write_variant(tmp_path, page.replace(target, target + ","))  # no longer parses as JSON
    render = render_page(broken, timeout_s=FAILING_PAGE_TIMEOUT_S)
    assert "accuracy" in render.figures
    assert "accuracy" not in render.rendered, render.describe()
    assert [e for e in render.page_errors if e.startswith("SyntaxError")], render.describe()


def test_network_use_is_blocked_and_reported(report_page: Path, tmp_path: Path) -> None:
    page = report_page.read_text(encoding="utf-8")
    remote_spec = json.dumps({"data": {"url": REMOTE_DATA}, "mark": "point",
                              "encoding": {"x": {"field": "a", "type": "quantitative"}}})
    spec = re.compile(r'(data-target="fig-chains">).*?(</script>)', flags=re.S)
    page, replaced = spec.subn(lambda m: m[1] + remote_spec + m[2], page)
    assert replaced == 1
    page = page.replace("</head>", f'<script src="{CDN_SCRIPT}"></script></head>', 1)
    render = render_page(_write_variant(tmp_path, page), timeout_s=FAILING_PAGE_TIMEOUT_S)
    assert sorted(render.blocked_requests) == sorted([CDN_SCRIPT, REMOTE_DATA]), render.describe()
    assert render.rendered == render.figures - {"chains"}, render.describe()
    assert render.console_errors, render.describe()


def test_missing_browser_says_how_to_install(report_page: Path, tmp_path: Path) -> None:
    with pytest.raises(BrowserMissing, match="run `make install`"):
        render_page(report_page, chromium=tmp_path / "chromium")


def test_the_leaderboard_sorts_by_the_clicked_column(tmp_path: Path) -> None:
    """The leaderboard's tables sort in the page itself: by median PGR, descending on the first click and
    ascending on the second, missing values last either way; by a text column alphabetically."""
    from w2s.evaluation.leaderboard import ACROSS_DATASETS, COLUMNS

    rows = [{"scope": ACROSS_DATASETS, "training": name, "lineage": "minilm → mpnet", "chain_length": 2,
             "dataset": ACROSS_DATASETS, "datasets": 2, "n_seeds": 3, "pgr_median": pgr, "accuracy_mean": 0.8,
             "vs_xent_accuracy_diff": 0.0, "uses_ground_truth_selection": False, "near_constant": name == "lazy",
             "teacher_unused": name == "lazy", "selection_within_noise": 0}
            for name, pgr in (("xent", 0.41), ("confident", 0.52), ("lazy", float("nan")), ("ccs", -0.2))]
    table = pd.DataFrame(rows).reindex(columns=list(COLUMNS))
    files = build_report(ReportInputs(synthetic_selection_summary(), leaderboard=table), tmp_path, "leaderboard")
    try:
        initial = table_after_clicks(files["html"], "leaderboard-median", [])
        descending = table_after_clicks(files["html"], "leaderboard-median", ["median PGR"])
        ascending = table_after_clicks(files["html"], "leaderboard-median", ["median PGR", "median PGR"],
                                       screenshot=tmp_path / "leaderboard.png")
        by_name = table_after_clicks(files["html"], "leaderboard-median", ["loss or method", "loss or method"])
    except BrowserMissing as missing:
        pytest.fail(str(missing))
    assert [r[0] for r in initial] == ["confident", "xent", "ccs", "lazy"]  # the page's own order: best first
    assert [r[0] for r in descending] == ["confident", "xent", "ccs", "lazy"]
    assert [r[0] for r in ascending] == ["ccs", "xent", "confident", "lazy"]
    assert [r[0] for r in by_name] == ["ccs", "confident", "lazy", "xent"]
    assert [r[4] for r in ascending] == ["-0.200", "0.410", "0.520", "–"]
    assert ascending[3][-1] == "near-constant predictions; teacher unused"
    assert _png_size(tmp_path / "leaderboard.png")[0] > 0
