"""Run names, the runs a config plans and each run's context (w2s.pipeline.runs, w2s.pipeline.run_context), as
plain functions of the config the workflow reads (defaults and generative variants filled in)."""

from __future__ import annotations

import pytest

from helpers import SCHEMA
from w2s.evaluation.identity import IDENTITY_COLUMNS, IDENTITY_KEYS, IDENTITY_NUMERIC_COLUMNS, run_identity
from w2s.pipeline import experiment, schema, validation
from w2s.pipeline.run_context import run_context
from w2s.pipeline.runs import (all_runs, ft_weak_lp_gt_run, ft_weak_lp_gt_runs, ground_truth_run, parse_run,
                               root_run, run_axis, student_run, supervisor_run)

PROBE = {"mode": "probe", "model_selection": "weak_holdout"}


def workflow_config(config: dict) -> dict:
    """`config` validated, then as rules/common.smk hands it to the package: schema defaults, generative twins."""
    validation.validate_config(config, SCHEMA)
    return experiment.with_generative_variants(schema.apply_defaults(config, SCHEMA))


@pytest.fixture
def config() -> dict:
    """A probe weak model (a), a finetuned student (b), a probe student at a chain's end (c), a simulated supervisor,
    prompting, ft(weak) + lp(gt) and a data axis."""
    return workflow_config({
        "seeds": [0], "w2s_slices": 2,
        "datasets": {"sst2": {"n_train": 16, "n_test": 4}},
        "models": {"a": {"hub_id": "org/a", "params_b": 0.1, "training": PROBE},
                   "b": {"hub_id": "org/b", "params_b": 1.0},
                   "c": {"path": "z", "training": PROBE}},
        "supervisors": {"a-random": {"simulate": "random", "like": "a"}},
        "ladder": ["a", "a-random", "b"], "chains": [["a", "b", "c"]],
        "losses": {"xent": {}}, "prompting": {"models": ["b"], "shots": [0, 2]},
        "analyses": {"ft_weak_lp_gt": True}, "axes": {"n_weak_labels": [2]},
    })


def test_every_run_of_a_config_is_planned_in_order(config: dict) -> None:
    assert all_runs(config) == [
        "gt/a", "gt/b", "gt/c", "w2s/xent/a__b", "w2s/xent/a-random__b", "w2s/xent/a__b__c",
        "w2s/xent/a__b/n_weak_labels2", "w2s/xent/a-random__b/n_weak_labels2", "sim/a-random",
        "ftlp/xent/a__b", "ftlp/xent/a-random__b", "prompt/b/0shot", "prompt/b/2shot",
    ]


def test_ft_weak_lp_gt_is_planned_for_finetuned_students_only(config: dict) -> None:
    """b finetunes, so its students get ft(weak) + lp(gt); c is a probe, whose ground-truth probe on its own frozen
    features would be its ceiling, so a__b__c gets none."""
    assert ft_weak_lp_gt_runs(config) == ["ftlp/xent/a__b", "ftlp/xent/a-random__b"]
    assert ft_weak_lp_gt_runs({**config, "analyses": {"ft_weak_lp_gt": False}}) == []


def test_every_run_name_round_trips_through_parse_run(config: dict) -> None:
    rebuilt = []
    for run in all_runs(config):
        kind, loss, chain = parse_run(run)
        axis = run_axis(run)
        rebuilt.append({
            "ground_truth": lambda: ground_truth_run(chain[0], axis),
            "simulated": lambda: root_run(config, chain[0]),
            "student": lambda: student_run(loss, chain, axis),
            "ft_weak_lp_gt": lambda: ft_weak_lp_gt_run(loss, chain),
            "prompt": lambda: run,
        }[kind]())
    assert rebuilt == all_runs(config)
    assert parse_run("w2s/xent/a__b__c") == ("student", "xent", ["a", "b", "c"])
    assert parse_run("gt/a/n_gt_rows3") == ("ground_truth", None, ["a"])
    assert run_axis("gt/a/n_gt_rows3") == ("n_gt_rows", 3)
    assert run_axis("w2s/xent/a__b") is None


def test_a_steps_supervisor_is_the_root_then_the_previous_student(config: dict) -> None:
    assert supervisor_run(config, "xent", ["a", "b"]) == "gt/a"
    assert supervisor_run(config, "xent", ["a", "b"], ("n_gt_rows", 3)) == "gt/a/n_gt_rows3"
    assert supervisor_run(config, "xent", ["a-random", "b"]) == "sim/a-random"
    assert supervisor_run(config, "xent", ["a", "b", "c"]) == "w2s/xent/a__b"


MODEL_WEAK = {"weak_kind": "model", "weak_method": "trained on ground truth", "weak_structure": None,
              "weak_like": None, "weak_members": None}


def test_a_students_context(config: dict) -> None:
    context = run_context(config, "sst2", "0", "w2s/xent/a__b")
    assert context == {
        "dataset": "sst2", "seed": 0, "run": "w2s/xent/a__b", "kind": "student", "model": "b", "model_rank": 1,
        "params_b": 1.0, "loss": "xent", "lineage": "a → b", "chain_length": 2, "weak_model": "a",
        "supervisor_run": "gt/a", "student_run": None, "data_axis": None, "n_gt_rows": 8, "n_weak_labels": 4,
        "hub_id": "org/b", "mode": "full", "task_kind": "text_classification", "n_classes": 2, "shots": None,
        "model_selection": "final", "uses_ground_truth_selection": False, **MODEL_WEAK,
    }
    # Snakemake records the param as its repr: the keys' order is part of it.
    assert list(context) == [*IDENTITY_KEYS, *MODEL_WEAK]
    assert type(context) is dict


def test_a_ground_truth_runs_context(config: dict) -> None:
    assert run_context(config, "sst2", "0", "gt/a") == {
        "dataset": "sst2", "seed": 0, "run": "gt/a", "kind": "ground_truth", "model": "a", "model_rank": 0,
        "params_b": 0.1, "loss": None, "lineage": "a", "chain_length": 1, "weak_model": "a", "supervisor_run": None,
        "student_run": None, "data_axis": None, "n_gt_rows": 8, "n_weak_labels": None, "hub_id": "org/a",
        "mode": "probe", "task_kind": "text_classification", "n_classes": 2, "shots": None,
        "model_selection": "weak_holdout", "uses_ground_truth_selection": False, **MODEL_WEAK,
    }


def test_a_simulated_supervisors_context(config: dict) -> None:
    context = run_context(config, "sst2", "0", "sim/a-random")
    assert context == {
        "dataset": "sst2", "seed": 0, "run": "sim/a-random", "kind": "simulated", "model": "a-random",
        "model_rank": None, "params_b": None, "loss": None, "lineage": "a-random", "chain_length": 1,
        "weak_model": "a-random", "supervisor_run": None, "student_run": None, "data_axis": None, "n_gt_rows": None,
        "n_weak_labels": None, "hub_id": None, "mode": "simulated", "task_kind": "text_classification",
        "n_classes": 2, "shots": None, "model_selection": None, "uses_ground_truth_selection": False,
        "supervisor": {"like": "a", "simulate": "random"}, "weak_kind": "simulated",
        "weak_method": "simulated: a's error count, errors at random", "weak_structure": "random", "weak_like": "a",
        "weak_members": None,
    }
    assert list(context) == [*IDENTITY_KEYS, "supervisor", *MODEL_WEAK]


def test_a_prompt_runs_context(config: dict) -> None:
    assert run_context(config, "sst2", "0", "prompt/b/2shot") == {
        "dataset": "sst2", "seed": 0, "run": "prompt/b/2shot", "kind": "prompt", "model": "b", "model_rank": 1,
        "params_b": 1.0, "loss": None, "lineage": "b", "chain_length": 1, "weak_model": "b", "supervisor_run": None,
        "student_run": None, "data_axis": None, "n_gt_rows": None, "n_weak_labels": None, "hub_id": "org/b",
        "mode": "prompt", "task_kind": "text_classification", "n_classes": 2, "shots": 2, "model_selection": "final",
        "uses_ground_truth_selection": False, **MODEL_WEAK,
    }


def test_an_ft_weak_lp_gt_and_a_data_axis_runs_context(config: dict) -> None:
    ftlp = run_context(config, "sst2", "0", "ftlp/xent/a__b")
    assert {k: ftlp[k] for k in ("kind", "student_run", "mode", "model_selection", "n_gt_rows")} == {
        "kind": "ft_weak_lp_gt", "student_run": "w2s/xent/a__b", "mode": "probe", "model_selection": "weak_holdout",
        "n_gt_rows": None}
    axis = run_context(config, "sst2", "0", "w2s/xent/a__b/n_weak_labels2")
    assert (axis["data_axis"], axis["n_gt_rows"], axis["n_weak_labels"]) == ("n_weak_labels", 8, 2)


def test_an_identity_names_every_key_once() -> None:
    assert len(set(IDENTITY_KEYS)) == len(IDENTITY_KEYS) == 23
    assert "n_gt_rows" not in IDENTITY_COLUMNS and "weak_members" in IDENTITY_COLUMNS
    assert set(IDENTITY_NUMERIC_COLUMNS) == {"seed", "n_classes", "model_rank", "params_b", "shots", "chain_length"}
    with pytest.raises(ValueError, match=r"missing \['uses_ground_truth_selection'\]"):
        run_identity(**{key: None for key in IDENTITY_KEYS[:-1]})
