"""Validation of a config: the schema, then every cross-reference and constraint the schema cannot state,
each failure a ConfigError that says what to change; and the check of its local data files."""

from __future__ import annotations

import math
import re
from pathlib import Path
from typing import Any

import jsonschema
import yaml

from w2s import tasks
from w2s.data.catalogue import CHESS_DATASETS, DATASETS
from w2s.data.local_files import check_local_files, is_remote
from w2s.data.spec import DatasetError
from w2s.pipeline.experiment import (CHAIN_SEPARATOR, data_axis_values, generative_variants, slice_rows,
                                     student_chains, train_gt_rows, trained_models, training_params)
from w2s.methods import entries
from w2s.pipeline.runs import all_runs, unmatched_run_patterns
from w2s.training.loss_registry import GENERATIVE_LOSSES, LOSSES

COMMIT_PATTERN = r"[0-9a-f]{40}"


class ConfigError(ValueError):
    """The configuration cannot describe an experiment; the message says what to change."""

def _check(condition: bool, message: str) -> None:
    if not condition:
        raise ConfigError(message)


def _known(kind: str, name: str, valid: list[str] | set[str], where: str) -> None:
    _check(
        name in valid,
        f"unknown {kind} '{name}' in {where}; valid {kind}{'es' if kind.endswith('s') else 's'} are: "
        f"{', '.join(sorted(valid))}",
    )


def validate_config(config: Any, schema_path: str | Path) -> None:
    """Raise ConfigError naming the first problem; checks the schema, then cross-references."""
    schema = yaml.safe_load(Path(schema_path).read_text())
    _check(isinstance(config, dict), "the config must be a YAML mapping")
    errors = sorted(jsonschema.Draft202012Validator(schema).iter_errors(config), key=str)
    if errors:
        err = errors[0]
        where = "/".join(str(p) for p in err.absolute_path) or "the top level"
        if err.validator == "oneOf" and err.absolute_path and err.absolute_path[0] == "models":
            raise ConfigError(f"config error at {where}: set exactly one of hub_id, path or package (a transformers "
                              "model), or family torchvision or timm with a name (an image model)")
        if err.validator == "oneOf" and err.absolute_path and err.absolute_path[0] == "supervisors":
            raise ConfigError(f"config error at {where}: a supervisor is either {{simulate: random, longest, "
                              "least_confident or column, like: <model>, strong: <model> (least_confident only), "
                              "column: <name> (column only)} or {ensemble: [<model>, ...], combine: mean or vote, "
                              "weighting: none or confidence}, with no other key")
        # A pattern says what is allowed in regex; the schema's description says it in words.
        hint = err.schema.get("description") if err.validator == "pattern" and isinstance(err.schema, dict) else None
        raise ConfigError(f"config error at {where}: {err.message}" + (f"; expected {hint}" if hint else ""))

    for name, entry in config["datasets"].items():
        _check_dataset(name, entry)
    for name, params in config["losses"].items():
        _check_loss_entry(name, params)
    models = config["models"]
    for name, entry in models.items():
        _check(CHAIN_SEPARATOR not in name, f"model name '{name}' must not contain '{CHAIN_SEPARATOR}'")
        for loss, params in entry.get("loss_params", {}).items():
            _check(loss in config["losses"],
                   f"models.{name}.loss_params sets '{loss}', which is not in losses; add it there or remove it")
            _check_loss_params(loss_base(config, loss), params, f"models.{name}.loss_params.{loss}")
        if entry.get("trust_remote_code") and "hub_id" in entry:
            _check(
                re.fullmatch(COMMIT_PATTERN, entry.get("revision", "")) is not None,
                f"model '{name}' sets trust_remote_code, so it must pin revision to a commit (40 hex digits, "
                f"not {entry.get('revision', 'nothing')}): the hub's code runs on your machine, and a tag or "
                "branch can be moved to other code",
            )
        if "convert" in entry:
            _check(re.fullmatch(COMMIT_PATTERN, entry["revision"]) is not None,
                   f"model '{name}' sets convert, so it must pin revision to a commit (40 hex digits, not "
                   f"{entry['revision']}): its conversion is made once, from one commit's weights")
            _check(not entry.get("trust_remote_code"),
                   f"model '{name}' sets convert, which loads it without remote code; remove trust_remote_code")
    _check_generative_finetuning(config)
    for name in models:
        params = training_params(config, name)
        grid = params["probe"]["l2_grid"]
        _check(params["mode"] != "probe" or params["model_selection"] != "final" or len(grid) == 1,
               f"model '{name}' is a probe with model_selection final and {len(grid)} L2 "
               "strengths in training.probe.l2_grid: nothing is held out to choose among them; set model_selection "
               "to weak_holdout or give one strength")
    supervisors = config.get("supervisors", {})
    for name, entry in supervisors.items():
        _check_supervisor(name, entry, config)
    for name in config["ladder"]:
        _known("model", name, {*models, *supervisors}, "ladder")
    for chain in config.get("chains", []):
        for name in chain:
            _known("model", name, {*models, *supervisors}, f"chain {' -> '.join(chain)}")
        _check(len(set(chain)) == len(chain), f"chain {' -> '.join(chain)} repeats a model")
        later = [name for name in chain[1:] if name in supervisors]
        _check(not later, f"chain {' -> '.join(chain)}: supervisor '{later[0] if later else ''}' is no model, so it "
                          "cannot learn; a supervisor can only be a chain's first member")
        _check(
            len(chain) - 1 <= config["w2s_slices"],
            f"chain {' -> '.join(chain)} has {len(chain) - 1} steps but w2s_slices is "
            f"{config['w2s_slices']}; each step needs its own slice, so raise w2s_slices",
        )
    for name in config.get("prompting", {}).get("models", []):
        _known("model", name, models.keys(), "prompting.models")
    for name, entry in config.get("methods", {}).items():
        _check_method(name, entry, config)
    _check_task_kinds(config)
    _check_split_sizes(config)
    _check_axes(config)


def _check_method(name: str, entry: dict[str, Any], config: dict[str, Any]) -> None:
    """A method's name fits file paths and is no loss's, its entry has one of the forms of w2s.methods.entries, and
    no dataset is generative: methods take class probabilities (docs/methods.md, "Weak-to-strong methods as
    plug-ins")."""
    where = f"methods.{name}"
    _check(re.fullmatch(VARIANT_NAME_PATTERN, name) is not None,
           f"{where}: a method's name is part of file paths, so it takes letters, digits, '.', '-' and single '_' "
           "only (no '__', no '/'); rename it")
    _check(name not in config["losses"] and name not in LOSSES,
           f"{where}: '{name}' is also a loss; give the method a name of its own")
    problem = entries.check_entry(entry["entry"])
    _check(problem is None, f"{where}.entry: {problem}")
    for model in entry.get("models", []):
        _known("model", model, set(config["models"]), f"{where}.models")
    for dataset, dataset_entry in config["datasets"].items():
        _check(not tasks.dataset_task(dataset_entry).is_generative,
               f"{where}: methods take class probabilities, but dataset '{dataset}' is a generative task; run "
               "methods from a config of classification tasks")


def _check_supervisor(name: str, entry: dict[str, Any], config: dict[str, Any]) -> None:
    """A simulated or ensemble supervisor names models that train on ground truth, and what its structure reads."""
    where = f"supervisors.{name}"
    _check(name not in config["models"], f"{where}: '{name}' is also a model; give the supervisor another name")
    for dataset, dataset_entry in config["datasets"].items():
        _check(not tasks.dataset_task(dataset_entry).is_generative,
               f"{where}: simulated and ensemble supervisors label classes, but dataset '{dataset}' is a generative "
               "task whose weak labels are generated texts; run supervisors from a config of classification tasks")
    if "simulate" in entry:
        structure = entry["simulate"]
        _known("model", entry["like"], config["models"].keys(), f"{where}.like")
        _check((structure == "least_confident") == ("strong" in entry),
               f"{where}: strong names the model whose doubt places the errors, which simulate least_confident needs "
               "and no other structure reads" + ("; add strong: <model>" if structure == "least_confident"
                                                 else "; remove strong"))
        if "strong" in entry:
            _known("model", entry["strong"], config["models"].keys(), f"{where}.strong")
        _check((structure == "column") == ("column" in entry),
               f"{where}: column names the prepared split's column whose highest values get the errors, which "
               "simulate column needs and no other structure reads"
               + ("; add column: <name>" if structure == "column" else "; remove column"))
        if structure == "longest":
            for dataset, dataset_entry in config["datasets"].items():
                _check(tasks.dataset_task(dataset_entry).spec.input_column == "text",
                       f"{where}: simulate longest places errors on the longest texts, but dataset '{dataset}' has "
                       "images; use random, least_confident or column")
        return
    members = entry["ensemble"]
    _check(len(members) >= 2, f"{where}: an ensemble combines several models but lists {len(members)}; name at "
                              "least two, or put the one model in the ladder itself")
    _check(len(set(members)) == len(members), f"{where}: the ensemble lists a model twice; list each once")
    for member in members:
        _known("model", member, config["models"].keys(), f"{where}.ensemble")


def _check_generative_finetuning(config: dict[str, Any]) -> None:
    """The models of generative_finetuning are trained transformers models of text tasks, and their twins'
    names are free and named nowhere: twins are made, never written."""
    twins = generative_variants(config)
    if not twins:
        return
    models = config["models"]
    for twin, name in twins.items():
        _known("model", name, models.keys(), "generative_finetuning.models")
        _check(name in trained_models(config),
               f"generative_finetuning.models names '{name}', which is in neither the ladder nor a chain, so its "
               "twin would train nothing; add it to the ladder or remove it from generative_finetuning.models")
        family = tasks.model_family(models[name])
        _check(family == "transformers",
               f"generative_finetuning.models names '{name}', a {family} model; the stage trains a causal language "
               "model's next-token loss, so name transformers causal language models only")
        _check(twin not in models,
               f"model name '{twin}' is taken: generative_finetuning makes that twin of '{name}'; rename the model")
    for dataset, entry in config["datasets"].items():
        kind = tasks.dataset_task(entry).spec
        _check(kind.input_column in ("text", "prompt"),
               f"dataset '{dataset}' is a {kind.name} task, but generative finetuning learns from texts; run it "
               "from a config of text or generative tasks")
    written = [("ladder", config["ladder"]), *((f"chain {' -> '.join(c)}", c) for c in config.get("chains", [])),
               ("prompting.models", config.get("prompting", {}).get("models", []))]
    for where, names in written:
        for name in names:
            _check(name not in twins,
                   f"{where} names '{name}', the twin generative_finetuning makes of '{twins.get(name)}', which gets "
                   f"a twin of every lineage that ends in '{twins.get(name)}'; write '{twins.get(name)}' instead")


# The keys that describe a dataset outside the catalogue, where the catalogue's registry says nothing.
STANDARD_SOURCE_KEYS = ("hub_id", "data_files", "image_folder", "imagenet_root")
STANDARD_ONLY_KEYS = ("kind", "n_classes", "hub_id", "hub_config", "splits", "input_column", "label_column",
                      "label_names", "image_folder", "imagenet_root")


def _check_dataset(name: str, entry: dict[str, Any]) -> None:
    """A catalogue dataset (w2s.data.catalogue.DATASETS) is read as the registry says, a binary text task but for
    those of another kind (chess_puzzles, generative), whose entry states it; any other name is a dataset in a
    standard (input, label) schema, which must say where it is and its K. Only chess puzzles have max_moves."""
    # The kinds are those w2s.tasks.KINDS registers; the schema does not list them again.
    _known("task kind", entry.get("kind", tasks.DEFAULT_KIND), set(tasks.KINDS), f"datasets.{name}.kind")
    _check("max_moves" not in entry or name in CHESS_DATASETS,
           f"dataset '{name}' sets max_moves, the highest move number of a chess puzzle kept at preparation, but only "
           f"{', '.join(CHESS_DATASETS)} has moves; remove max_moves")
    if name in DATASETS:
        kind = DATASETS[name].task.kind
        if kind != tasks.DEFAULT_KIND:
            # Jobs read a dataset's kind from its config entry, so one the catalogue fixes must be written there.
            _check(entry.get("kind") == kind, f"dataset '{name}' is a {kind} task in the catalogue; set kind: {kind} "
                                              "in its entry")
        extra = [key for key in STANDARD_ONLY_KEYS if key in entry and not (key == "kind" and kind != tasks.DEFAULT_KIND)]
        task = "binary" if kind == tasks.DEFAULT_KIND else kind
        _check(not extra, f"dataset '{name}' is in the catalogue, which fixes its source and its {task} task; "
                          f"remove {', '.join(extra)}, or give the dataset another name to read it as a standard one")
        return
    sources = [key for key in STANDARD_SOURCE_KEYS if key in entry]
    _check(len(sources) == 1,
           f"dataset '{name}' is not in the catalogue ({', '.join(sorted(DATASETS))}), so it must say where its "
           f"rows are with exactly one of {', '.join(STANDARD_SOURCE_KEYS)}" + (f", not {', '.join(sources)}" if sources else ""))
    kind = tasks.dataset_task(entry).spec
    if kind.name == tasks.GENERATIVE:
        _check("n_classes" not in entry,
               f"dataset '{name}' is a generative task, whose rows are a prompt and a target text, not one of K "
               "classes: n_classes does not apply to it; remove n_classes")
        _check(not entry.get("balance"),
               f"dataset '{name}' is a generative task: balance evens out class counts, and its rows have target "
               "texts, not classes; remove balance")
        _check("label_names" not in entry,
               f"dataset '{name}' is a generative task, whose targets are texts, not classes to name; remove "
               "label_names")
        return
    _check("n_classes" in entry, f"dataset '{name}' is not in the catalogue, so it must give n_classes (K: its labels "
                                 "are 0..K-1)")
    folder = next((key for key in ("image_folder", "imagenet_root") if key in entry), None)
    if "label_names" in entry:
        names = [str(label) for label in entry["label_names"]]
        _check(len(names) == entry["n_classes"],
               f"dataset '{name}': label_names names {len(names)} classes but n_classes is {entry['n_classes']}; "
               "list one name per class, class 0 first, or set n_classes to their number")
        _check(len(set(names)) == len(names),
               f"dataset '{name}': label_names lists {', '.join(sorted(n for n in set(names) if names.count(n) > 1))} "
               "twice (names match the data's labels as text, so 1 and '1' are one name); list each once")
        _check(folder is None, f"dataset '{name}' reads {folder}, whose class folders name the classes (sorted); "
                               "remove label_names")
    if folder is not None:
        _check(kind.input_column == "image",
               f"dataset '{name}' reads {folder}, a folder of images, so its kind must be image_classification")
        _check(entry.get("splits", {}).get("test") is None,
               f"dataset '{name}' reads one folder of images ({folder}): its test rows are drawn from it, so "
               "remove splits.test")


def _check_task_kinds(config: dict[str, Any]) -> None:
    """Every model reads every dataset's input (w2s.tasks: a kind's model families), trains in a mode the kind
    supports, and a pretrained head (which learns nothing) is never a student."""
    models = config["models"]
    prompted = config.get("prompting", {}).get("models", [])
    used = trained_models(config) + [m for m in prompted if m not in trained_models(config)]
    for dataset, entry in config["datasets"].items():
        task = tasks.dataset_task(entry)
        kind = task.spec
        for model in used:
            family = tasks.model_family(models[model])
            _check(family in kind.model_families,
                   f"dataset '{dataset}' is a {kind.name} task, which {', '.join(kind.model_families)} models read, but "
                   f"model '{model}' is a {family} model; run image and text tasks from separate configs")
            mode = training_params(config, model)["mode"]
            _check(mode in kind.modes,
                   f"model '{model}' trains in mode {mode}, which a {kind.name} task does not support; use one of "
                   f"{', '.join(kind.modes)}")
        if config.get("prompting", {}).get("models"):
            _check(task.is_binary and kind.input_column == "text",
                   f"dataset '{dataset}' is a " + ("generative" if task.is_generative else
                                                   f"{task.n_classes}-class {kind.name}")
                   + " task, but prompting baselines ask binary text questions with two label words; remove the "
                   "prompting block")
        if "ood_test" in entry:
            _check(not task.is_generative and kind.input_column == "text",
                   f"dataset '{dataset}': ood_test is for text classification, but it is a "
                   + ("generative" if task.is_generative else kind.name) + " task; remove its ood_test")
        if task.is_generative:
            for loss in config["losses"]:
                _check(loss_base(config, loss) in GENERATIVE_LOSSES,
                       f"dataset '{dataset}' is a generative task, which trains students with next-token "
                       f"cross-entropy on the weak model's generated tokens ({', '.join(sorted(GENERATIVE_LOSSES))}); "
                       f"loss '{loss}' is defined on class probabilities and has no generative form here, so "
                       "remove it from losses or run the generative task from its own config")
    for chain in student_chains(config):
        student = chain[-1]
        _check(training_params(config, student)["mode"] != "pretrained_head",
               f"model '{student}' uses its pretrained head with no training (mode pretrained_head), so it cannot "
               f"learn from {chain[-2]}'s weak labels in lineage {' -> '.join(chain)}; put it first in the ladder "
               "and chains, as a weak supervisor only")


# A variant's name is a path segment (results/.../w2s/<name>/...) and a label in tables and plots.
VARIANT_NAME_PATTERN = r"[A-Za-z0-9.-]+(_[A-Za-z0-9.-]+)*"


def _check_loss_entry(name: str, params: dict[str, Any]) -> None:
    """A losses entry: a loss of LOSSES with its hyperparameters, or a named variant whose `loss:` says which."""
    if name not in LOSSES:
        _check("loss" in params,
               f"unknown loss '{name}' in losses; valid losses are: {', '.join(sorted(LOSSES))}; a variant of one "
               f"of them with a name of its own says which with `loss:`, e.g. {name}: {{loss: logconf}}")
        _check(re.fullmatch(VARIANT_NAME_PATTERN, name) is not None,
               f"losses.{name}: a variant's name is part of file paths, so it takes letters, digits, '.', '-' "
               "and single '_' only (no '__', no '/'); rename it")
    base = params.get("loss", name)
    _known("loss", base, LOSSES.keys(), f"losses.{name}.loss")
    _check(base == name or name not in LOSSES,
           f"losses.{name}: '{name}' is itself a loss, so it cannot be a variant of '{base}'; give the variant "
           "a name of its own")
    _check_loss_params(base, {k: v for k, v in params.items() if k != "loss"}, f"losses.{name}")


def loss_base(config: dict[str, Any], name: str) -> str:
    """The loss of LOSSES that a losses entry trains with: its `loss:` for a named variant, else its name."""
    return config["losses"][name].get("loss", name)


def _check_loss_params(loss: str, params: dict[str, Any], where: str) -> None:
    """A loss's params against its registered hyperparameters and their ranges (w2s.training.loss_registry)."""
    accepted = LOSSES[loss].hyperparameters
    for key, value in params.items():
        _check(
            key in accepted,
            f"{where}: loss '{loss}' has no hyperparameter '{key}'; it takes: {', '.join(sorted(accepted)) or 'none'}",
        )
        hyperparameter = accepted[key]
        is_number = isinstance(value, (int, float)) and not isinstance(value, bool)
        _check(
            is_number and math.isfinite(value) and hyperparameter.low <= value <= hyperparameter.high,
            f"{where}: loss '{loss}' needs {key} {hyperparameter.allowed}, not {value!r}",
        )


def check_data_files(config: dict[str, Any], workdir: Path) -> list[str]:
    """Every local file a dataset's data_files names exists (relative paths from `workdir`, where the
    workflow runs), and has the shape its entry describes: a test file or test rows drawn from train, the
    columns, labels and rows the entry needs (w2s.data.local_files.check_local_files, which reads only those
    columns). Without this a typo is no error in a run of a dataset prepared before: Snakemake plans nothing
    for existing outputs whose input is missing, so the old data stay; and a file's other faults would stop
    its first job. Returns one line per local file saying what it holds."""
    notes = []
    for name, entry in config["datasets"].items():
        for split, path in entry.get("data_files", {}).items():
            _check(
                is_remote(path) or (workdir / path).is_file(),
                f"dataset '{name}': data_files.{split} is '{path}', which is no file"
                + ("" if Path(path).is_absolute() else f" (relative to {workdir})")
                + "; fix the path",
            )
        for key in ("image_folder", "imagenet_root"):
            if key in entry:
                _check((workdir / entry[key]).is_dir(),
                       f"dataset '{name}': {key} is '{entry[key]}', which is no folder"
                       + ("" if Path(entry[key]).is_absolute() else f" (relative to {workdir})")
                       + "; point it at your local copy (ImageNet is licensed, so nothing downloads it)")
        try:
            notes.extend(check_local_files(name, entry, workdir))
        except DatasetError as err:
            raise ConfigError(str(err)) from err
    return notes


def _check_split_sizes(config: dict[str, Any]) -> None:
    """train_gt's own size (n_train_gt) leaves train_w2s a row for each slice at least."""
    for dataset, entry in config["datasets"].items():
        if "n_train_gt" not in entry:
            continue
        rest = entry["n_train"] - entry["n_train_gt"]
        _check(rest >= config["w2s_slices"],
               f"dataset '{dataset}': n_train_gt {entry['n_train_gt']} leaves {max(rest, 0)} of n_train's "
               f"{entry['n_train']} rows to train_w2s, fewer than w2s_slices ({config['w2s_slices']}), which each need "
               "rows of their own; lower n_train_gt or raise n_train")


def _check_axes(config: dict[str, Any]) -> None:
    """Every axis value subsamples: it is below the rows its axis draws from in every dataset."""
    for dataset, entry in config["datasets"].items():
        n_gt = train_gt_rows(entry)
        n_slice = slice_rows(entry["n_train"], config["w2s_slices"], 1, n_gt)
        available = {"n_gt_rows": (n_gt, "train_gt"), "n_weak_labels": (n_slice, "the first slice of train_w2s")}
        sizes = f"n_train {entry['n_train']}" + (f", n_train_gt {n_gt}" if "n_train_gt" in entry else "")
        for axis, n in data_axis_values(config):
            rows, where = available[axis]
            _check(n < rows, f"axes.{axis} has {n}, but dataset '{dataset}' has {rows} rows in {where} ({sizes}, "
                             f"w2s_slices {config['w2s_slices']}); the run with every row is planned anyway, so give "
                             f"values below {rows} or raise n_train")


def check_only_runs(config: dict[str, Any]) -> None:
    """Every pattern of config only_runs (with its defaults filled in) matches a run of the config: a typo would
    otherwise build nothing."""
    unmatched = unmatched_run_patterns(config)
    _check(not unmatched,
           f"only_runs {', '.join(map(repr, unmatched))} match no run of this config; a run is named "
           f"'<dataset>/seed<seed>/<run>', e.g. '{next(iter(config['datasets']))}/seed{config['seeds'][0]}/"
           f"{all_runs(config)[0]}'")
