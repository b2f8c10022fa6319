"""The typed settings jobs read (w2s.training.settings, w2s.models.prompting.PromptSettings): built from
the params rules pass, refusing stale params by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from job_settings import job_params
from w2s.models.prompting import PromptSettings
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline.schema import PROMPTING_DEFAULTS
from w2s.models.lora import LoraSettings
from w2s.params import SettingsError
from w2s.training.settings import EmbeddingSettings, ProbeSettings, Schedule, TrainingSettings

SCHEMA = Path(__file__).resolve().parents[2] / "config" / "schema.yaml"
STALE = "The params were not made by this version's rules; rerun the job through the workflow"


def test_finetuning_settings_are_the_schemas_defaults() -> None:
    settings = TrainingSettings.from_params(job_params())
    training = yaml.safe_load(SCHEMA.read_text())["$defs"]["training"]["properties"]
    for name in ("mode", "lr", "epochs", "batch_size", "dtype", "checkpoint_every", "holdout_frac"):
        assert getattr(settings, name) == training[name]["default"], name
    assert settings.lora == LoraSettings(r=8, alpha=16, dropout=0.0, target_modules="all-linear")
    assert settings.probe is None  # finetuning reads no probe block
    assert settings.schedule(3) == Schedule(lr=1e-5, epochs=2, batch_size=32, minibatch_size=32, weight_decay=0.0,
                                            warmup_frac=0.0, max_grad_norm=1.0, seed=3, optimizer="adamw")


def test_a_probe_heads_settings_have_its_block_and_no_minibatch_keys() -> None:
    settings = TrainingSettings.from_params(job_params(mode="probe", probe={"l2_grid": [0.1, 1]}))
    assert settings.probe == ProbeSettings(l2_grid=(0.1, 1.0), tolerance=1e-6, max_iter=1000, max_rounds=50)
    assert (settings.lr, settings.lora, settings.checkpoint_every) == (None, None, None)
    with pytest.raises(SettingsError, match="^mode probe trains no minibatches, so it has no lr, epochs, batch_size, "
                                            "minibatch_size, weight_decay, warmup_frac, max_grad_norm, optimizer$"):
        settings.schedule(0)


def test_the_settings_name_every_training_key_of_the_schema() -> None:
    """A key the schema allows but the settings do not name would never reach a job."""
    training = yaml.safe_load(SCHEMA.read_text())["$defs"]["training"]["properties"]
    assert sorted(TrainingSettings.received_keys("full") + ("probe",)) == sorted(training)


@pytest.mark.parametrize("mode", ["full", "lora", "probe", "pretrained_head"])
def test_the_keys_a_rule_passes_are_the_keys_the_settings_read(mode: str) -> None:
    params = job_params(mode=mode)
    assert sorted(params) == sorted(TrainingSettings.received_keys(mode))
    assert TrainingSettings.from_params(params).mode == mode
    if mode == "pretrained_head":
        assert sorted(params) == ["dtype", "eval_batch_size", "holdout_frac", "max_length", "mode", "model_selection",
                                  "pooling"]


@pytest.mark.parametrize("mode", ["full", "lora", "probe", "pretrained_head"])
def test_settings_travel_to_torchrun_workers_as_their_params_and_come_back_the_same(mode: str) -> None:
    """A sharded job's workers receive the settings as JSON (w2s.training.launch) and build them again."""
    params = job_params(mode=mode, **({"probe": {"l2_grid": [0.1, 1]}} if mode == "probe" else {}),
                        **({"lora": {"target_modules": ["q", "v"]}} if mode == "lora" else {}))
    settings = TrainingSettings.from_params(params)
    plain = json.loads(json.dumps(settings.params()))
    assert plain == json.loads(json.dumps(params))
    assert TrainingSettings.from_params(plain) == settings
    assert TrainingSettings.from_params(plain).identity() == settings.identity()  # the resume run key's input


def test_an_unknown_training_key_is_refused_by_name() -> None:
    with pytest.raises(SettingsError, match=f"^training params of mode full: unknown keys learning_rate. {STALE}$"):
        TrainingSettings.from_params({**job_params(), "learning_rate": 1e-3})


def test_a_missing_training_key_is_refused_by_name() -> None:
    params = job_params()
    del params["lr"], params["dtype"]
    with pytest.raises(SettingsError, match=f"^training params of mode full: missing keys dtype, lr. {STALE}$"):
        TrainingSettings.from_params(params)


def test_a_probe_given_finetunings_params_is_refused() -> None:
    """Params of a model switched to probe mode, made by code that still passed every key."""
    params = {**job_params(), "mode": "probe", "probe": job_params(mode="probe")["probe"]}
    with pytest.raises(SettingsError, match="^training params of mode probe: unknown keys batch_size, "
                                            "checkpoint_every, compile, epochs, evals_per_epoch, gradient_checkpointing, "
                                            "lora, lr, max_grad_norm, minibatch_size, optimizer, warmup_frac, "
                                            "weight_decay. "):
        TrainingSettings.from_params(params)


def test_unknown_and_missing_keys_of_the_nested_blocks_are_refused() -> None:
    params = job_params(mode="lora")
    with pytest.raises(SettingsError, match="^training params' lora block: unknown keys rank; missing keys r. "):
        TrainingSettings.from_params({**params, "lora": {**{k: v for k, v in params["lora"].items() if k != "r"},
                                                          "rank": 4}})
    probe = job_params(mode="probe")
    del probe["probe"]["max_rounds"]
    with pytest.raises(SettingsError, match="^training params' probe block: missing keys max_rounds. "):
        TrainingSettings.from_params(probe)
    with pytest.raises(SettingsError, match="^training params: missing keys mode. "):
        TrainingSettings.from_params({})


def test_embedding_settings_are_what_the_embed_features_rule_passes() -> None:
    # The rule passes these keys in this order (rules/common.smk EMBEDDING_KEYS): the params stay as they were.
    assert EmbeddingSettings.keys() == ("pooling", "max_length", "dtype", "eval_batch_size")
    params = {key: job_params(mode="probe")[key] for key in EmbeddingSettings.keys()}
    assert EmbeddingSettings.from_params(params) == EmbeddingSettings("mean", 512, "float32", 64)
    with pytest.raises(SettingsError, match=f"^embedding params: unknown keys lr; missing keys pooling. {STALE}$"):
        EmbeddingSettings.from_params({**{k: v for k, v in params.items() if k != "pooling"}, "lr": 1e-5})


def test_prompt_settings_are_what_the_prompt_baseline_rule_passes() -> None:
    config = {"prompting": {**PROMPTING_DEFAULTS, "models": ["m"], "shots": [0], "max_length": 256},
              "datasets": {"sst2": {"prompt": {"question": "Positive?"}}}}  # the block as apply_defaults fills it
    params = {**w2s_experiment.prompting_params(config, "sst2"), "dtype": "bfloat16"}  # as rules/prompting.smk builds them
    assert PromptSettings.from_params(params) == PromptSettings("Positive?", (" No", " Yes"), 256, 8, "bfloat16")
    with pytest.raises(SettingsError, match=f"^prompting params: missing keys dtype. {STALE}$"):
        PromptSettings.from_params(w2s_experiment.prompting_params(config, "sst2"))
    with pytest.raises(SettingsError, match="^prompting params: unknown keys shots. "):
        PromptSettings.from_params({**params, "shots": [0]})
