"""A config's methods block (config/schema.yaml, w2s.pipeline.validation): a method's name, entry and datasets are
checked before any job, and its runs join the losses' in the run listings (w2s.pipeline.runs)."""

from __future__ import annotations

import pytest

from helpers import SCHEMA, minimal_config, validation_error
from w2s.pipeline.runs import trained_runs
from w2s.pipeline.schema import apply_defaults
from w2s.pipeline.validation import validate_config


def with_methods(**methods: dict) -> dict:
    return {**minimal_config(), "methods": methods}


def test_a_method_gets_a_run_for_every_lineage_after_the_losses() -> None:
    config = apply_defaults(with_methods(conf={"entry": "w2s.methods.confident:confident"}), SCHEMA)
    validate_config(config, SCHEMA)
    assert config["methods"]["conf"] == {"entry": "w2s.methods.confident:confident", "params": {}}
    students = [run for run in trained_runs(config) if run.startswith("w2s/")]
    assert students == [f"w2s/{name}/{lineage}" for name in ("xent", "logconf", "conf")
                        for lineage in ("a__b", "a__b__c")]


def test_a_method_restricted_to_models_runs_only_the_lineages_it_trains_them_in() -> None:
    """minimal_config's lineages are a → b and a → b → c: a method for b alone trains b in the first only."""
    config = apply_defaults(with_methods(prompted={"entry": "mine.py:run", "models": ["b"]},
                                         both={"entry": "mine.py:run", "models": ["b", "c"]}), SCHEMA)
    validate_config(config, SCHEMA)
    students = [run for run in trained_runs(config) if run.startswith(("w2s/prompted/", "w2s/both/"))]
    assert students == ["w2s/prompted/a__b", "w2s/both/a__b", "w2s/both/a__b__c"]


@pytest.mark.parametrize(("methods", "said"), [
    ({"mine": {"entry": "mine.py:run", "models": ["gpt9"]}},
     "unknown model 'gpt9' in methods.mine.models; valid models are: a, b, c"),
    ({"xent": {"entry": "mine.py:run"}}, "methods.xent: 'xent' is also a loss; give the method a name of its own"),
    ({"window": {"entry": "mine.py:run"}}, "methods.window: 'window' is also a loss"),
    ({"a__b": {"entry": "mine.py:run"}}, "methods.a__b: a method's name is part of file paths"),
    ({"mine": {"entry": "mine.py:"}}, "methods.mine.entry: '' after the ':' of 'mine.py:' is not a Python function"),
    ({"mine": {"entry": "mine.py:run", "param": {}}}, "Additional properties are not allowed ('param' was unexpected)"),
    ({"mine": {"params": {}}}, "'entry' is a required property"),
])
def test_a_wrong_method_is_refused_with_what_to_fix(methods: dict, said: str) -> None:
    assert said in validation_error(with_methods(**methods))


def test_methods_refuse_a_generative_dataset() -> None:
    config = with_methods(mine={"entry": "mine.py:run"})
    config["datasets"] = {"chess_puzzles": {"n_train": 8, "n_test": 4, "kind": "generative"}}
    config["losses"] = {"xent": {}}
    assert "methods.mine: methods take class probabilities, but dataset 'chess_puzzles' is a generative task" \
        in validation_error(config)
