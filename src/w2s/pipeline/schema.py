"""The config schema (config/schema.yaml) and its defaults: where the schema is read from, each node's `default:`
values, and a config with them filled in (apply_defaults, the one place a config's blocks get their defaults: rules
read every value without a fallback). Two kinds of default are filled where they are read, since a config holds no
place for them: training's (TRAINING_DEFAULTS, layered under the config's and each model's training block by
w2s.pipeline.experiment.training_params) and an ensemble supervisor's (ENSEMBLE_DEFAULTS, one branch of a oneOf,
by w2s.pipeline.experiment.supervisor_entry)."""

from __future__ import annotations

import copy
import os
from pathlib import Path
from typing import Any

import yaml

from w2s import WORKFLOW_DIR_ENV

# The checkout whose config/schema.yaml the package reads: under Snakemake the workflow's own (WORKFLOW_DIR_ENV,
# which rules/common.smk sets and its jobs inherit), so a package installed from another checkout still reads this
# run's defaults; elsewhere the package's own source checkout (an editable install). Other installs pass --schema.
CHECKOUT = Path(os.environ.get(WORKFLOW_DIR_ENV) or Path(__file__).resolve().parents[3])
SHIPPED_SCHEMA = CHECKOUT / "config" / "schema.yaml"

def schema_defaults(node: dict[str, Any]) -> dict[str, Any]:
    """The `default:` of each property of an object schema node; a nested object with no default of
    its own gets its properties' defaults (training.lora and training.probe)."""
    defaults = {}
    for key, prop in node.get("properties", {}).items():
        if "default" in prop:
            defaults[key] = copy.deepcopy(prop["default"])
        elif "properties" in prop and (nested := schema_defaults(prop)):
            defaults[key] = nested
    return defaults


def apply_defaults(config: dict[str, Any], schema_path: str | Path) -> dict[str, Any]:
    """A copy of a valid `config` with every schema `default:` filled in where the key is missing: chains,
    the report and resources blocks, each dataset's balance. A `$ref` is not followed: a model's own
    training block overrides the top-level one key by key, so training defaults are applied by
    training_params, layer under layer, never written into either block."""
    return _with_defaults(config, yaml.safe_load(Path(schema_path).read_text()))


def _with_defaults(value: Any, node: dict[str, Any]) -> Any:
    if not isinstance(value, dict):
        return copy.deepcopy(value)
    properties = node.get("properties", {})
    filled = {key: copy.deepcopy(item) for key, item in value.items()}
    for key, prop in properties.items():
        if key not in filled and "default" in prop:
            filled[key] = copy.deepcopy(prop["default"])
        if key in filled:
            filled[key] = _with_defaults(filled[key], prop)
    others = node.get("additionalProperties")
    if isinstance(others, dict):
        for key in filled.keys() - properties.keys():
            filled[key] = _with_defaults(filled[key], others)
    return filled


def without_defaults(entry: dict[str, Any], node: dict[str, Any]) -> dict[str, Any]:
    """`entry` without the keys whose value is the schema's default, so that a config that leaves a key
    to its default and one that spells it out give a rule the same params (and rerun nothing)."""
    defaults = schema_defaults(node)
    return {key: value for key, value in entry.items() if key not in defaults or value != defaults[key]}


SCHEMA = yaml.safe_load(SHIPPED_SCHEMA.read_text())
# Every default lives in the schema's `default:` values; these are read from there.
TRAINING_DEFAULTS: dict[str, Any] = schema_defaults(SCHEMA["$defs"]["training"])
PROMPTING_DEFAULTS: dict[str, Any] = schema_defaults(SCHEMA["properties"]["prompting"])
ENSEMBLE_DEFAULTS: dict[str, Any] = schema_defaults(
    SCHEMA["properties"]["supervisors"]["additionalProperties"]["oneOf"][1])
GENERATIVE_DEFAULTS: dict[str, Any] = schema_defaults(SCHEMA["properties"]["generative_finetuning"])
