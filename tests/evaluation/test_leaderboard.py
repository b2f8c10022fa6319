"""The method leaderboard (w2s.evaluation.leaderboard) on a hand-made summary: seed means and spreads, the median
across datasets, the seeds' paired intervals against xent combined, and each flag of a degenerate method."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from w2s.evaluation.leaderboard import ACROSS_DATASETS, leaderboard, selection_margins

# (training, dataset, seed): PGR; every run is the lineage minilm → mpnet.
PGR = {("xent", "a", 0): 0.4, ("xent", "a", 1): 0.6, ("xent", "b", 0): 0.2, ("xent", "b", 1): 0.2,
       ("confident", "a", 0): 0.5, ("confident", "a", 1): 0.7, ("confident", "b", 0): 0.3, ("confident", "b", 1): 0.5,
       ("lazy", "a", 0): -1.0, ("lazy", "b", 0): -1.0}


def _run(training: str, dataset: str, seed: int, pgr: float) -> dict[str, object]:
    lazy = training == "lazy"
    compared = training != "xent"
    return {
        "dataset": dataset, "seed": seed, "run": f"w2s/{training}/minilm__mpnet", "kind": "student", "loss": training,
        "lineage": "minilm → mpnet", "chain_length": 2, "weak_model": "minilm", "model": "mpnet", "data_axis": None,
        "pgr": pgr, "accuracy": 0.7 + pgr / 10, "agreement": 0.5 if lazy else 0.9, "chance_agreement": 0.5,
        "max_predicted_fraction": 1.0 if lazy else 0.6,
        "vs_xent_accuracy_diff": 0.02 if compared else None,
        "vs_xent_accuracy_diff_ci_low": 0.0 if compared else None,
        "vs_xent_accuracy_diff_ci_high": 0.04 if compared else None,
    }


def _tables() -> tuple[pd.DataFrame, pd.DataFrame]:
    runs = pd.DataFrame([_run(t, d, s, p) for (t, d, s), p in PGR.items()])
    runs = pd.concat([runs, pd.DataFrame([{"dataset": "a", "seed": 0, "run": "gt/mpnet", "kind": "ground_truth",
                                           "loss": None, "lineage": "mpnet", "data_axis": None, "pgr": None}])])
    # confident on a: seed 0 chose 0.84 over 0.82 on 50 rows (one standard error 0.052), seed 1 0.90 over 0.70.
    curves = pd.DataFrame({
        "dataset": "a", "run": "w2s/confident/minilm__mpnet", "seed": [0, 0, 1, 1],
        "holdout_accuracy": [0.82, 0.84, 0.90, 0.70], "selection_rows": 50.0})
    return runs, curves


def test_each_cell_holds_seed_means_spreads_and_the_paired_interval() -> None:
    table = leaderboard(*_tables())
    cells = table[table["scope"] == "dataset"].set_index(["training", "dataset"])
    assert cells.loc[("xent", "a"), "pgr_mean"] == pytest.approx(0.5)
    assert cells.loc[("xent", "a"), "pgr_sd"] == pytest.approx(math.sqrt(0.02))
    assert cells.loc[("xent", "a"), "vs_xent_accuracy_diff"] == 0.0
    assert cells.loc[("confident", "b"), "accuracy_mean"] == pytest.approx(0.74)
    # Each seed's interval [0, 0.04] is 3.92 standard errors wide; two seeds: 1.96 · sqrt(2) · 0.04 / 3.92 / 2.
    half = 1.96 * math.sqrt(2) * (0.04 / 3.92) / 2
    assert cells.loc[("confident", "a"), ["vs_xent_ci_low", "vs_xent_ci_high"]].tolist() == pytest.approx(
        [0.02 - half, 0.02 + half])
    assert cells.loc[("lazy", "a"), "n_seeds"] == 1 and np.isnan(cells.loc[("lazy", "a"), "pgr_sd"])


def test_the_median_across_datasets_ranks_the_methods() -> None:
    table = leaderboard(*_tables())
    across = table[table["scope"] == ACROSS_DATASETS].set_index("training")
    assert across["pgr_median"].to_dict() == pytest.approx({"confident": 0.5, "lazy": -1.0, "xent": 0.35})
    assert across["datasets"].to_dict() == {"confident": 2, "lazy": 2, "xent": 2}
    assert list(table["scope"]) == [ACROSS_DATASETS] * 3 + ["dataset"] * 6


def test_flags_name_the_degenerate_method_and_the_selection_within_noise() -> None:
    table = leaderboard(*_tables()).set_index(["scope", "training", "dataset"])
    lazy = table.loc[(ACROSS_DATASETS, "lazy", ACROSS_DATASETS)]
    assert (bool(lazy["near_constant"]), bool(lazy["teacher_unused"])) == (True, True)
    confident = table.loc[("dataset", "confident", "a")]
    assert (bool(confident["near_constant"]), bool(confident["teacher_unused"])) == (False, False)
    assert confident["selection_within_noise"] == 1  # seed 0 only
    assert table.loc[("dataset", "xent", "a"), "selection_within_noise"] == 0
    margins = selection_margins(_tables()[1]).set_index("seed")
    assert margins["selection_margin"].tolist() == pytest.approx([0.02, 0.20])
    assert margins.loc[0, "selection_se"] == pytest.approx(math.sqrt(0.84 * 0.16 / 50))


def test_a_summary_without_students_gives_an_empty_leaderboard() -> None:
    runs, curves = _tables()
    assert leaderboard(runs[runs["kind"] != "student"], curves).empty
