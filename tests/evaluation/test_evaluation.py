"""evaluate and summarize on small prediction and metrics files whose every number is worked out by hand."""

from __future__ import annotations

import json
import math
from pathlib import Path
from typing import Any

import pandas as pd
import pytest

from helpers import (
    CEILING_PROBS,
    EVALUATION_CONTEXT,
    EXAMPLE_COPIES,
    STUDENT_PROBS,
    WEAK_PROBS,
    add_ood_predictions,
    run_evaluate,
    write_ood_split,
    write_predictions,
)
from w2s.evaluation.summary import summarize


def student_predictions(tmp_path: Path) -> dict[str, str]:
    roles = (("self", STUDENT_PROBS), ("supervisor", WEAK_PROBS), ("weak", WEAK_PROBS), ("ceiling", CEILING_PROBS))
    return {role: write_predictions(tmp_path / f"{role}.parquet", probs, shuffle_seed=i)
            for i, (role, probs) in enumerate(roles)}


def test_student_metrics_by_hand(tmp_path: Path) -> None:
    context = {**EVALUATION_CONTEXT, "run": "w2s/xent/gpt2__gpt2-medium", "kind": "student", "model": "gpt2-medium"}
    result = run_evaluate(tmp_path, student_predictions(tmp_path), context)
    assert result["n_test"] == 8 * EXAMPLE_COPIES and result["test_positive_fraction"] == 0.5
    assert result["accuracy"] == 0.75 and result["weak_accuracy"] == 0.625 and result["ceiling_accuracy"] == 1.0
    assert result["auroc"] == 15 / 16 and result["weak_auroc"] == 10 / 16 and result["ceiling_auroc"] == 1.0
    assert result["pgr"] == pytest.approx((0.75 - 0.625) / (1 - 0.625))  # 1/3
    assert result["pgr_auroc"] == pytest.approx((15 / 16 - 10 / 16) / (1 - 10 / 16))  # 5/6
    assert result["pgr_undefined_reason"] is None and result["pgr_auroc_undefined_reason"] is None
    # Same prediction on rows 0, 4, 7; the weak supervisor is right on 0 2 4 6 7 and wrong on 1 3 5.
    assert result["agreement"] == 3 / 8
    assert result["agreement_supervisor_right"] == 3 / 5
    assert result["agreement_supervisor_wrong"] == 0.0
    for key, point in (("accuracy_ci", 0.75), ("auroc_ci", 15 / 16), ("pgr_ci", 1 / 3), ("pgr_auroc_ci", 5 / 6),
                       ("agreement_ci", 3 / 8)):
        low, high = result[key]
        assert low <= point <= high, key
    assert {k: result[k] for k in EVALUATION_CONTEXT} == EVALUATION_CONTEXT
    assert "label_balance" not in result


def test_a_student_is_scored_against_xent_and_its_prediction_spread_by_hand(tmp_path: Path) -> None:
    """logconf's student beside xent's (here the weak probabilities: right on 5 of 8 rows, the student on 6): the
    paired difference 6/8 - 5/8. The student gives class 1 to 4 of 8 rows, the supervisor to 3 of 8: chance
    agreement 0.5 · 3/8 + 0.5 · 5/8 = 0.5."""
    predictions = {**student_predictions(tmp_path),
                   "reference": write_predictions(tmp_path / "xent.parquet", WEAK_PROBS, shuffle_seed=9)}
    context = {**EVALUATION_CONTEXT, "run": "w2s/logconf/gpt2__gpt2-medium", "kind": "student", "model": "gpt2-medium"}
    result = run_evaluate(tmp_path, predictions, context)
    assert result["vs_xent_accuracy_diff"] == pytest.approx(1 / 8)
    low, high = result["vs_xent_accuracy_diff_ci"]
    assert low <= 1 / 8 <= high
    assert (result["max_predicted_fraction"], result["chance_agreement"]) == (0.5, 0.5)
    assert "vs_xent_accuracy_diff" not in run_evaluate(tmp_path, student_predictions(tmp_path), context)


def test_a_student_is_scored_on_the_out_of_distribution_split_by_hand(tmp_path: Path) -> None:
    """Every model predicts the ood split as it predicts test (the same probabilities, once): the ood_ keys equal
    the test's. The supervisor, a simulated one, predicted no ood rows: no ood agreement."""
    predictions = {**student_predictions(tmp_path),
                   "reference": write_predictions(tmp_path / "xent.parquet", WEAK_PROBS, shuffle_seed=9)}
    for role, probs in (("self", STUDENT_PROBS), ("weak", WEAK_PROBS), ("ceiling", CEILING_PROBS),
                        ("reference", WEAK_PROBS)):
        add_ood_predictions(predictions[role], probs)
    context = {**EVALUATION_CONTEXT, "run": "w2s/logconf/gpt2__gpt2-medium", "kind": "student", "model": "gpt2-medium"}
    result = run_evaluate(tmp_path, predictions, context, ood_test_path=write_ood_split(tmp_path / "ood.parquet"))
    assert (result["ood_n_test"], result["ood_accuracy"], result["ood_auroc"]) == (8, 0.75, 15 / 16)
    assert (result["ood_weak_accuracy"], result["ood_ceiling_accuracy"]) == (0.625, 1.0)
    assert result["ood_pgr"] == pytest.approx(1 / 3) and result["ood_vs_xent_accuracy_diff"] == pytest.approx(1 / 8)
    assert result["ood_accuracy_ci"][0] <= 0.75 <= result["ood_accuracy_ci"][1]
    assert "ood_agreement" not in result
    # A run without ood predictions (a prompted model's) has no ood keys.
    plain = run_evaluate(tmp_path, student_predictions(tmp_path), context,
                         ood_test_path=str(tmp_path / "ood.parquet"))
    assert not any(key.startswith("ood_") for key in plain)


def test_pgr_on_auroc_is_undefined_when_the_ceiling_does_not_beat_weak(tmp_path: Path) -> None:
    predictions = student_predictions(tmp_path)
    predictions["ceiling"] = predictions["weak"]
    context = {**EVALUATION_CONTEXT, "run": "w2s/xent/gpt2__gpt2-medium", "kind": "student", "model": "gpt2-medium"}
    result = run_evaluate(tmp_path, predictions, context)
    assert result["pgr"] is None and result["pgr_auroc"] is None
    assert "0.6250" in result["pgr_undefined_reason"] and "0.6250" in result["pgr_auroc_undefined_reason"]
    assert result["pgr_ci"] is None and result["pgr_auroc_ci"] is None


def test_prompt_run_is_evaluated_without_pgr(tmp_path: Path) -> None:
    context = {**EVALUATION_CONTEXT, "run": "prompt/qwen-7b/5shot", "kind": "prompt", "model": "qwen-7b", "shots": 5,
               "mode": "prompt"}
    result = run_evaluate(tmp_path, {"self": write_predictions(tmp_path / "p.parquet", WEAK_PROBS)}, context)
    assert result["accuracy"] == 0.625 and result["auroc"] == 10 / 16
    assert result["shots"] == 5 and result["kind"] == "prompt"
    low, high = result["accuracy_ci"]
    assert low <= 0.625 <= high
    assert not {"pgr", "pgr_auroc", "weak_accuracy", "agreement"} & set(result)


def test_label_balance_is_stored_and_flattened(tmp_path: Path) -> None:
    balance = {"train_gt": {"n": 10, "positive_fraction": 0.4}, "train_w2s": {"n": 10, "positive_fraction": 0.6},
               "test": {"n": 8, "positive_fraction": 0.5}}
    context = {**EVALUATION_CONTEXT, "run": "gt/gpt2", "kind": "ground_truth", "model": "gpt2"}
    result = run_evaluate(tmp_path, {"self": write_predictions(tmp_path / "p.parquet", CEILING_PROBS)}, context,
                          label_balance=balance)
    assert result["label_balance"] == balance
    assert result["train_gt_positive_fraction"] == 0.4
    assert result["train_w2s_positive_fraction"] == 0.6
    assert result["test_positive_fraction"] == 0.5


def test_predictions_must_match_the_kind(tmp_path: Path) -> None:
    predictions = student_predictions(tmp_path)
    student = {**EVALUATION_CONTEXT, "run": "w2s/xent/gpt2__gpt2-medium", "kind": "student", "model": "gpt2-medium"}
    with pytest.raises(ValueError, match="ceiling"):
        run_evaluate(tmp_path, {k: v for k, v in predictions.items() if k != "ceiling"}, student)
    ground_truth = {**EVALUATION_CONTEXT, "run": "gt/gpt2", "kind": "ground_truth", "model": "gpt2"}
    with pytest.raises(ValueError, match="compared with no other model"):
        run_evaluate(tmp_path, predictions, ground_truth)


# ---------------------------------------------------------------- summarize

HUB = {"gpt2": "openai-community/gpt2", "gpt2-medium": "openai-community/gpt2-medium",
       "gpt2-large": "openai-community/gpt2-large", "minilm": "sentence-transformers/all-MiniLM-L6-v2",
       "mystery": "someone/mystery-model"}


def record(dataset: str, seed: int, run: str, kind: str, model: str, **fields: Any) -> dict[str, Any]:
    return {"dataset": dataset, "seed": seed, "run": run, "kind": kind, "model": model, "hub_id": HUB[model],
            "mode": "full", "model_selection": "final", "uses_ground_truth_selection": False, "shots": None,
            "loss": None, "lineage": model, "chain_length": 1, "weak_model": model, "model_rank": 0,
            "params_b": None, "supervisor_run": None, **fields}


def student(dataset: str, seed: int, loss: str, chain: list[str], accuracy: float, weak: float, ceiling: float,
            auroc: float = 0.75, weak_auroc: float = 0.7, ceiling_auroc: float = 0.8, **fields: Any) -> dict[str, Any]:
    return record(dataset, seed, f"w2s/{loss}/{'__'.join(chain)}", "student", chain[-1], loss=loss,
                  lineage=" → ".join(chain), chain_length=len(chain), weak_model=chain[0],
                  accuracy=accuracy, weak_accuracy=weak, ceiling_accuracy=ceiling, auroc=auroc,
                  weak_auroc=weak_auroc, ceiling_auroc=ceiling_auroc, pgr=None, pgr_ci=None, **fields)


PAIR = ["gpt2", "gpt2-medium"]
RECORDS = [
    # sciq, xent over two seeds: PGR 0.2 and 0.0, mean 0.1; from seed means (0.61 - 0.60) / (0.75 - 0.60) = 1/15.
    student("sciq", 0, "xent", PAIR, 0.62, 0.60, 0.70),
    student("sciq", 1, "xent", PAIR, 0.60, 0.60, 0.80),
    student("boolq", 0, "xent", PAIR, 0.72, 0.70, 0.80),  # PGR 0.2
    student("cosmos_qa", 0, "xent", PAIR, 0.79, 0.70, 0.80),  # PGR 0.9
    # Ceiling below weak: excluded from PGR; PGR on AUROC (0.96 - 0.9) / (0.95 - 0.9) = 1.2 still counts.
    student("amazon_polarity", 0, "xent", PAIR, 0.95, 0.95, 0.94, auroc=0.96, weak_auroc=0.9, ceiling_auroc=0.95),
    student("sciq", 0, "logconf", PAIR, 0.65, 0.60, 0.70),  # PGR 0.5
    student("sciq", 0, "xent", ["gpt2", "gpt2-medium", "gpt2-large"], 0.66, 0.60, 0.90),  # a chain: PGR 0.2
    # Checkpoint picked on ground truth: PGR 0.4, never pooled with the others.
    student("sciq", 0, "xent", ["gpt2", "gpt2-large"], 0.64, 0.60, 0.70, uses_ground_truth_selection=True,
            model_selection="ground_truth_holdout"),
    # A simulated supervisor's student: PGR 0.7, in a row of its own.
    student("sciq", 0, "xent", ["gpt2-random", "gpt2-medium"], 0.67, 0.60, 0.70, weak_kind="simulated"),
    record("sciq", 0, "gt/gpt2", "ground_truth", "gpt2", accuracy=0.60, accuracy_ci=[0.55, 0.65],
           pgr_ci_valid_fraction=1.0, train_gt_positive_fraction=0.45,
           label_balance={"test": {"n": 1000, "positive_fraction": 0.5}}),
    record("sciq", 1, "gt/gpt2", "ground_truth", "gpt2", accuracy=0.64, accuracy_ci=[0.59, 0.69]),
    record("sciq", 2, "gt/gpt2", "ground_truth", "gpt2", accuracy=0.65, accuracy_ci=[0.60, 0.70]),
    record("sciq", 0, "gt/gpt2-medium", "ground_truth", "gpt2-medium", accuracy=0.70),
    # Not the reference's configuration: a probe on a reference model, and a model the reference never ran.
    record("sciq", 0, "gt/gpt2-probe", "ground_truth", "gpt2", mode="probe", accuracy=0.5),
    record("sciq", 0, "gt/mystery", "ground_truth", "mystery", accuracy=0.99),
    record("sciq", 0, "prompt/gpt2-medium/5shot", "prompt", "gpt2-medium", mode="prompt", shots=5, accuracy=0.58),
]
OUTPUTS = ("parquet", "csv", "seeds_csv", "losses_csv", "reference_csv")


@pytest.fixture(scope="module")
def summarized(tmp_path_factory: pytest.TempPathFactory) -> dict[str, pd.DataFrame]:
    root = tmp_path_factory.mktemp("summary")
    paths = []
    for i, rec in enumerate(RECORDS):
        path = root / f"metrics{i}.json"
        path.write_text(json.dumps(rec))
        paths.append(str(path))
    outputs = {name: str(root / f"{name}.out") for name in OUTPUTS}
    summarize(paths, outputs)
    return {"parquet": pd.read_parquet(outputs["parquet"]),
            **{name: pd.read_csv(outputs[name]) for name in OUTPUTS if name != "parquet"}}


def test_per_run_table_carries_every_scalar(summarized: dict[str, pd.DataFrame]) -> None:
    runs = summarized["parquet"]
    assert len(runs) == len(RECORDS)
    assert list(runs.columns[:4]) == ["dataset", "seed", "run", "kind"]
    gt = runs[(runs["run"] == "gt/gpt2") & (runs["seed"] == 0)].iloc[0]
    assert (gt["accuracy_ci_low"], gt["accuracy_ci_high"]) == (0.55, 0.65)
    assert gt["pgr_ci_valid_fraction"] == 1.0 and gt["train_gt_positive_fraction"] == 0.45
    assert "label_balance" not in runs.columns and "accuracy_ci" not in runs.columns
    assert runs["pgr_ci_low"].isna().all() and runs["pgr_auroc_ci_low"].isna().all()
    assert summarized["csv"].shape == runs.shape


def test_seed_summary(summarized: dict[str, pd.DataFrame]) -> None:
    seeds = summarized["seeds_csv"].set_index(["dataset", "run"])
    three = seeds.loc[("sciq", "gt/gpt2")]
    assert three["n_seeds"] == 3 and three["accuracy_n_seeds"] == 3
    assert three["accuracy_mean"] == pytest.approx((0.60 + 0.64 + 0.65) / 3)
    # One seed repeated three times has chance 1/27 > 2.5%: the percentiles are the lowest and highest seed.
    assert (three["accuracy_seed_ci_low"], three["accuracy_seed_ci_high"]) == pytest.approx((0.60, 0.65))
    one = seeds.loc[("sciq", "gt/gpt2-medium")]
    assert one["n_seeds"] == 1 and one["accuracy_mean"] == 0.70
    assert math.isnan(one["accuracy_seed_ci_low"]) and math.isnan(one["accuracy_seed_ci_high"])
    prompt = seeds.loc[("sciq", "prompt/gpt2-medium/5shot")]
    assert prompt["shots"] == 5 and prompt["pgr_n_seeds"] == 0 and math.isnan(prompt["pgr_mean"])
    assert len(seeds) == len({(r["dataset"], r["run"]) for r in RECORDS})


def test_loss_summary_counts_only_pairs_whose_ceiling_beats_weak(summarized: dict[str, pd.DataFrame]) -> None:
    losses = summarized["losses_csv"]
    row = {(r.loss, r.chain_length, r.uses_ground_truth_selection): r for r in losses.itertuples()
           if r.weak_kind == "model"}
    assert set(row) == {("xent", 2, False), ("logconf", 2, False), ("xent", 3, False), ("xent", 2, True)}
    simulated = losses[losses["weak_kind"] == "simulated"]
    assert (simulated["lineage"].tolist(), simulated["pgr_median"].tolist()) == (
        ["direct, from simulated supervisors"], pytest.approx([0.7]))
    direct = row[("xent", 2, False)]
    assert (direct.pairs, direct.datasets, direct.lineage) == (4, 4, "direct")
    # Counted: 1/15 (sciq, from seed means), 0.2, 0.9; amazon_polarity excluded.
    assert (direct.pgr_pairs_counted, direct.pgr_pairs_excluded) == (3, 1)
    assert direct.pgr_median == pytest.approx(0.2)
    assert direct.pgr_mean == pytest.approx((1 / 15 + 0.2 + 0.9) / 3)
    # On AUROC every pair counts: (0.75 - 0.7) / 0.1 = 0.5 three times, and 1.2.
    assert (direct.pgr_auroc_pairs_counted, direct.pgr_auroc_pairs_excluded) == (4, 0)
    assert direct.pgr_auroc_median == pytest.approx(0.5)
    assert direct.pgr_auroc_mean == pytest.approx((3 * 0.5 + 1.2) / 4)
    assert row[("xent", 3, False)].lineage == "chain of 3 models"
    assert row[("xent", 3, False)].pgr_median == pytest.approx(0.2)
    assert row[("xent", 2, True)].pgr_median == pytest.approx(0.4)


def test_reference_comparison(summarized: dict[str, pd.DataFrame]) -> None:
    comparison = summarized["reference_csv"]
    accuracy = comparison[comparison["quantity"] == "ground-truth accuracy"].set_index("model")
    # gpt2 through openai-community/gpt2; the probe run of the same hub id and the unknown model are ignored.
    assert set(accuracy.index) == {"gpt2", "gpt2-medium"}
    gpt2 = accuracy.loc["gpt2"]
    assert (gpt2["hub_id"], gpt2["reference_model"]) == ("openai-community/gpt2", "gpt2")
    assert gpt2["measured"] == pytest.approx(0.63) and gpt2["reference"] == 0.636
    assert gpt2["difference"] == pytest.approx(0.63 - 0.636) and not gpt2["approximate"]
    assert gpt2["basis"] == "3 seeds"
    pgr = comparison[(comparison["quantity"] == "median PGR") & ~comparison["uses_ground_truth_selection"]]
    measured = {(r.dataset, r.loss): (r.measured, r.reference) for r in pgr.itertuples()}
    # amazon_polarity has no counted pair; the chain is not a direct pair.
    assert measured == {
        ("sciq", "xent"): (pytest.approx(1 / 15), 0.33), ("sciq", "logconf"): (pytest.approx(0.5), 0.31),
        ("boolq", "xent"): (pytest.approx(0.2), 0.05), ("cosmos_qa", "xent"): (pytest.approx(0.9), 0.35),
    }
    selected = comparison[comparison["uses_ground_truth_selection"]]
    assert selected[["dataset", "loss", "measured"]].values.tolist() == [["sciq", "xent", pytest.approx(0.4)]]


def test_reference_comparison_is_empty_with_a_header_when_nothing_matches(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps(record("sciq", 0, "gt/minilm", "ground_truth", "minilm", mode="probe", accuracy=0.7)))
    outputs = {name: str(tmp_path / name) for name in OUTPUTS}
    summarize([str(path)], outputs)
    comparison = pd.read_csv(outputs["reference_csv"])
    assert comparison.empty and {"measured", "reference", "approximate", "difference"} <= set(comparison.columns)
    assert pd.read_csv(outputs["losses_csv"]).empty


def test_summarize_names_missing_outputs(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="reference_csv"):
        summarize([], {name: str(tmp_path / name) for name in OUTPUTS if name != "reference_csv"})
