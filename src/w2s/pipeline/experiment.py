"""The experiment a valid config describes: its lineages (pairs, chains, generative finetuning twins),
supervisors, data axes and slices, and the params each job receives, as plain functions of the config with
its schema defaults filled in (w2s.pipeline.schema.apply_defaults)."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np

from w2s import revisions, tasks
from w2s.data import catalogue, reading
from w2s.pipeline.schema import ENSEMBLE_DEFAULTS, SCHEMA, TRAINING_DEFAULTS, without_defaults
from w2s.training.settings import TrainingSettings

CHAIN_SEPARATOR = "__"
# A generatively finetuned twin is named after its model: gpt2-xl -> gpt2-xl-genft. Inside the model-name
# alphabet, so paths, wildcards and object-store keys (where '+' may read as a space) take it as they are.
GENERATIVE_SUFFIX = "-genft"


def supervisor_entry(config: dict[str, Any], name: str) -> dict[str, Any]:
    """A supervisors entry with the schema's defaults (an ensemble's combine and weighting), sorted keys."""
    entry = config["supervisors"][name]
    return canonical(entry if "simulate" in entry else {**ENSEMBLE_DEFAULTS, **entry})


def supervisor_kind(config: dict[str, Any], name: str) -> str:
    """What supervises as `name`: a model trained on ground truth, a simulated supervisor or an ensemble."""
    entry = config.get("supervisors", {}).get(name)
    if entry is None:
        return "model"
    return "simulated" if "simulate" in entry else "ensemble"


def supervisor_method(config: dict[str, Any], name: str) -> str:
    """How supervisor `name` makes its labels, in words for tables and legends."""
    kind = supervisor_kind(config, name)
    if kind == "model":
        return "trained on ground truth"
    entry = supervisor_entry(config, name)
    if kind == "simulated":
        place = {"random": "at random", "longest": "on the longest inputs",
                 "least_confident": f"where {entry.get('strong')} is least confident",
                 "column": f"on the highest {entry.get('column')}"}[entry["simulate"]]
        return f"simulated: {entry['like']}'s error count, errors {place}"
    weighted = "confidence-weighted " if entry["weighting"] == "confidence" else ""
    return f"ensemble: {weighted}{entry['combine']} of {', '.join(entry['ensemble'])}"


def supervisor_dependencies(config: dict[str, Any], name: str) -> list[str]:
    """The models whose ground-truth runs a supervisor reads: like and strong, or an ensemble's members."""
    entry = config["supervisors"][name]
    if "simulate" in entry:
        return [entry["like"], *([entry["strong"]] if "strong" in entry else [])]
    return list(entry["ensemble"])


def generative_variants(config: dict[str, Any]) -> dict[str, str]:
    """Each generatively finetuned twin's name and the model it is the twin of, in generative_finetuning's order."""
    block = config.get("generative_finetuning")
    return {f"{name}{GENERATIVE_SUFFIX}": name for name in block["models"]} if block else {}


def generative_base(config: dict[str, Any], model: str) -> str:
    """The model a twin was made from; any other model is its own."""
    return generative_variants(config).get(model, model)


def generative_params(config: dict[str, Any]) -> dict[str, Any]:
    """What a generative_finetuning job trains with: the block (its defaults filled in by apply_defaults), without
    the models and splits that choose its jobs and inputs."""
    block = config["generative_finetuning"]
    return canonical({key: value for key, value in block.items() if key not in ("models", "splits")})


def unpinned_datasets(config: dict[str, Any], lock: dict[str, dict[str, str]]) -> list[str]:
    """The datasets read from the hub at no pinned commit (not in the config, the registry or the `lock` file): each
    would be read at its branch's head. One read from local files or folders, or a package, has no hub commit."""
    local = ("data_files", "image_folder", "imagenet_root")
    return sorted(name for name, entry in config["datasets"].items()
                  if not any(entry.get(key) for key in local) and name not in catalogue.PACKAGED_DATASETS
                  and reading.data_source(name, entry, lock).pinned_by == "unpinned")


def model_entry(config: dict[str, Any], model: str, lock: dict[str, dict[str, str]]) -> dict[str, Any]:
    """A model's config entry as its jobs receive it: sorted keys, so reordering it in the YAML reruns nothing, and
    the `lock` file's revision where the config pins none (w2s.revisions.pin_model_entry). A model with `convert`
    also names its converted folder, which the loaders read instead of the hub. A generative_finetuning twin's is
    its model's with the stage's settings, which its jobs load from the stage's checkpoint."""
    variants = generative_variants(config)
    if model in variants:
        return canonical({**model_entry(config, variants[model], lock), "generative_finetuning": generative_params(config)})
    entry = revisions.pin_model_entry(dict(config["models"][model]), lock)
    if "convert" in entry:
        entry["converted"] = f"results/models/{model}"
    return canonical(entry)


def with_generative_variants(config: dict[str, Any]) -> dict[str, Any]:
    """`config`'s models with an entry for every twin: a copy of its model's entry (source, size, training mode,
    loss_params, resources), so the twin trains as its model does from another starting point."""
    models = dict(config["models"])
    models.update({twin: copy.deepcopy(models[name]) for twin, name in generative_variants(config).items()})
    return {**config, "models": models}

def canonical(value: Any) -> Any:
    """`value` with every mapping's keys sorted. Snakemake compares a rule's params as written, so
    the same settings in another key order would otherwise rerun the jobs that read them."""
    if isinstance(value, dict):
        return {key: canonical(value[key]) for key in sorted(value)}
    if isinstance(value, list):
        return [canonical(item) for item in value]
    return value


def task_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """A dataset's task (w2s.tasks) as jobs receive it: its kind and number of classes (generative: and
    generation.max_new_tokens)."""
    return tasks.dataset_task(config["datasets"][dataset], config["generation"]["max_new_tokens"]).params()


def training_task_params(config: dict[str, Any], dataset: str, lineage: list[str],
                         axis: tuple[str, int] | None) -> dict[str, Any]:
    """A training job's task: task_params, and for a generative task also the slices of train_w2s the run generates
    on, those its weak labels are read from (generated_slices); `lineage` is the run's model, or its chain, and
    `axis` its data-axis value."""
    task = task_params(config, dataset)
    if task["kind"] != "generative":
        return task
    return {**task, "generated_slices": generated_slices(config, lineage, axis), "n_slices": config["w2s_slices"]}


def training_params(config: dict[str, Any], model: str) -> dict[str, Any]:
    """The schema's defaults, then the config's training block, then the model's own overrides; the lora and
    probe blocks merge key by key."""
    params = copy.deepcopy(TRAINING_DEFAULTS)
    blocks = {name: params[name] for name in ("lora", "probe")}
    for layer in (config.get("training", {}), config["models"][model].get("training", {})):
        params.update(layer)
        for name, block in blocks.items():
            block.update(layer.get(name, {}))
    params.update(blocks)
    return params


def training_job_params(config: dict[str, Any], model: str) -> dict[str, Any]:
    """The training params a training job receives, and that Snakemake compares to rerun it: a probe
    head's without the minibatch optimiser's keys, so changing lr reruns no probe; finetuning's
    without the probe block, so changing the L2 grid reruns probes only."""
    params = training_params(config, model)
    return canonical({key: params[key] for key in TrainingSettings.received_keys(params["mode"])})


def ft_weak_lp_gt_params(config: dict[str, Any], model: str) -> dict[str, Any]:
    """The training params of ft(weak) + lp(gt) on student model `model`'s features: the model's own in probe
    mode, its probe block's L2 grid chosen on a held-out holdout_frac of train_gt (true labels, as in every
    ground-truth run) when the grid has more than one strength. A probe-mode model's are its own, unchanged."""
    params = training_params(config, model)
    if params["mode"] != "probe":
        params["mode"] = "probe"
        params["model_selection"] = "weak_holdout" if len(params["probe"]["l2_grid"]) > 1 else "final"
    return canonical({key: params[key] for key in TrainingSettings.received_keys("probe")})


def student_loss_params(config: dict[str, Any], loss: str, model: str) -> dict[str, Any]:
    """The hyperparameters of losses entry `loss` (a loss or a named variant, without its `loss:` key),
    overridden by the student model's own loss_params for that entry."""
    own = {key: value for key, value in config["losses"][loss].items() if key != "loss"}
    return canonical({**own, **config["models"][model].get("loss_params", {}).get(loss, {})})


def prompting_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The prompting block (its defaults filled in by apply_defaults), then the dataset's own question and words."""
    block = {k: v for k, v in config["prompting"].items() if k not in ("models", "shots")}
    return canonical({**block, **config["datasets"][dataset].get("prompt", {})})


def method_prompt_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """The question and label words a method prompts with or builds contrast pairs from (w2s.methods), with the
    prompt's token limit and batch size: as prompting_params, from the schema's defaults where the config has no
    prompting block."""
    spec = SCHEMA["properties"]["prompting"]["properties"]
    block = {k: v for k, v in config.get("prompting", {}).items() if k not in ("models", "shots")}
    defaults = {k: v["default"] for k, v in spec.items() if "default" in v}
    return canonical({**defaults, **block, **config["datasets"][dataset].get("prompt", {})})


def dataset_entry_params(config: dict[str, Any], dataset: str) -> dict[str, Any]:
    """A dataset's entry as its prepare_data job receives it: without the values apply_defaults filled in
    (a default equals leaving the key out), with sorted keys."""
    return canonical(without_defaults(config["datasets"][dataset],
                                      SCHEMA["properties"]["datasets"]["additionalProperties"]))


# The data axes (config `axes`): how many train_gt rows a direct pair's weak model trains on, and how many weak
# labels its student trains on. Each value is a run of its own, the other axis at every row.
DATA_AXES = ("n_gt_rows", "n_weak_labels")


def data_axis_values(config: dict[str, Any]) -> list[tuple[str, int]]:
    """(axis, n) of every configured data-axis run, in the config's order."""
    axes = config.get("axes", {})
    return [(axis, int(n)) for axis in DATA_AXES for n in axes.get(axis, [])]


def train_gt_rows(entry: dict[str, Any]) -> int:
    """Rows of a dataset's train_gt: its entry's n_train_gt, by default half of n_train (rounded down), as
    prepare cuts them (w2s.data.preparation); train_w2s gets the rest of n_train."""
    return int(entry.get("n_train_gt", entry["n_train"] // 2))


def slice_rows(n_train: int, n_slices: int, index: int, n_train_gt: int | None = None) -> int:
    """Rows of train_w2s's slice `index` (1-based), as prepare and w2s_slice cut them (w2s.data.preparation, w2s.data.splits); train_gt
    has n_train_gt rows, by default n_train // 2."""
    n_gt = n_train // 2 if n_train_gt is None else n_train_gt
    bounds = np.linspace(0, n_train - n_gt, n_slices + 1).astype(int)
    return int(bounds[index] - bounds[index - 1])


def generated_slices(config: dict[str, Any], lineage: list[str], axis: tuple[str, int] | None) -> list[int]:
    """The slices of train_w2s a generative run generates on: those its weak labels are read from. A run's
    `lineage` is its model for a ground-truth run, else its chain; with a data axis it is that axis's run.
    A ground-truth model labels slice 1 where it supervises a direct student or roots a chain (and on n
    train_gt rows, the weak model of the axis n_gt_rows), chain step k labels slice k + 1 where a longer chain
    extends it, and no other run supervises (the axes' students, the strongest models, the last steps)."""
    if axis is not None:
        return [1] if axis[0] == "n_gt_rows" and len(lineage) == 1 else []
    supervises = any(student[:-1] == lineage for student in student_chains(config, variants=True))
    return [len(lineage)] if supervises else []


def pairs(config: dict[str, Any]) -> list[tuple[str, str]]:
    """Every earlier ladder member supervising every later one that is a model: a supervisor never learns."""
    ladder, supervisors = config["ladder"], config.get("supervisors", {})
    return [(weak, strong) for i, weak in enumerate(ladder) for strong in ladder[i + 1 :] if strong not in supervisors]


def student_chains(config: dict[str, Any], variants: bool = False) -> list[list[str]]:
    """Every student's lineage: direct pairs and every prefix of length >= 2 of every chain; with `variants`,
    each lineage that ends in a model of generative_finetuning is followed by its twin's: the same supervisors,
    the twin as the student."""
    lineages = [list(p) for p in pairs(config)]
    for chain in config.get("chains", []):
        lineages.extend(chain[:k] for k in range(2, len(chain) + 1))
    unique: list[list[str]] = []
    for lineage in lineages:
        if lineage not in unique:
            unique.append(lineage)
    if not variants:
        return unique
    twin_of = {name: twin for twin, name in generative_variants(config).items()}
    return [variant for lineage in unique
            for variant in ([lineage, [*lineage[:-1], twin_of[lineage[-1]]]] if lineage[-1] in twin_of else [lineage])]


def trained_models(config: dict[str, Any], variants: bool = False) -> list[str]:
    """Models that need a ground-truth run: the ladder's and every chain's models, then those the supervisors
    read (w2s.data.supervisors); with `variants`, each generative_finetuning twin right after its model."""
    supervisors = config.get("supervisors", {})
    names: list[str] = []
    for name in [*config["ladder"], *(m for chain in config.get("chains", []) for m in chain),
                 *(m for s in supervisors for m in supervisor_dependencies(config, s))]:
        if name not in names and name not in supervisors:
            names.append(name)
    if not variants:
        return names
    twin_of = {name: twin for twin, name in generative_variants(config).items()}
    return [variant for name in names for variant in ([name, twin_of[name]] if name in twin_of else [name])]


def join_chain(chain: list[str]) -> str:
    return CHAIN_SEPARATOR.join(chain)


def split_chain(chain: str) -> list[str]:
    return chain.split(CHAIN_SEPARATOR)
