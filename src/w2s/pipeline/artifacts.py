"""The names of the workflow's artifacts: the path of every file a job reads or writes under results/, and the
inputs of the jobs whose inputs depend on the run (a student's, an evaluation's, a simulated supervisor's), as
plain functions of the config (with its defaults and generative variants filled in, rules/common.smk), which
passes them the job's wildcards."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from w2s import tasks
from w2s.methods import entries
from w2s.pipeline.experiment import (generative_base, generative_variants, supervisor_entry,
                                     task_params, trained_models, training_params)
from w2s.pipeline.runs import (Axis, each_run, ft_weak_lp_gt_runs, parse_run, prompt_runs, root_run, run_axis,
                               student_run, supervisor_run)

SPLITS = ["train_gt", "train_w2s", "test"]


def seed_dir(dataset: str, seed: int | str) -> str:
    return f"results/{dataset}/seed{seed}"


def data_paths(dataset: str, seed: int | str) -> dict[str, str]:
    """The labelled splits prepare_data writes."""
    return {s: f"results/data/{dataset}/seed{seed}/{s}.parquet" for s in SPLITS}


def unlabelled_path(dataset: str, seed: int | str, split: str) -> str:
    """A split's label-free view (id, text), written by prepare_data beside the labelled split."""
    return f"results/data/{dataset}/seed{seed}/unlabelled/{split}.parquet"


def ood_test_input(config: dict[str, Any], dataset: str, seed: int | str, labelled: bool = False) -> dict[str, str]:
    """A dataset's out-of-distribution test split (config ood_test), label-free or `labelled`, keyed ood_test, for
    every job that predicts or scores it; nothing for a dataset without one."""
    if "ood_test" not in config["datasets"][dataset]:
        return {}
    folder = f"results/data/{dataset}/seed{seed}"
    return {"ood_test": f"{folder}/ood_test.parquet" if labelled else unlabelled_path(dataset, seed, "ood_test")}


def prediction_file(dataset: str, seed: int | str, run: str) -> str:
    return f"{seed_dir(dataset, seed)}/{run}/predictions.parquet"


def weak_labels_file(dataset: str, seed: int | str, run: str) -> str:
    return f"{seed_dir(dataset, seed)}/{run}/weak_labels.parquet"


def is_probe(config: dict[str, Any], model: str) -> bool:
    return training_params(config, model)["mode"] == "probe"


def converted_model(config: dict[str, Any], model: str) -> dict[str, str]:
    """The converted checkpoint a job on `model` loads; nothing for a model without `convert`, or a generative
    finetuning twin, which starts from its generative_checkpoint instead."""
    if model in generative_variants(config) or "convert" not in config["models"][model]:
        return {}
    return {"converted_model": f"results/models/{model}"}


def generative_checkpoint(config: dict[str, Any], model: str, job: str, dataset: str,
                          seed: int | str) -> dict[str, str]:
    """The generative finetuning checkpoint a `job` ("train" or "embed") on a twin `model` loads, made for the job's
    dataset and seed: a probe's weights load where its features are embedded, other modes' where they train.
    Nothing for other models and jobs."""
    variants = generative_variants(config)
    if model not in variants or is_probe(config, model) != (job == "embed"):
        return {}
    return {"generative_checkpoint": f"{seed_dir(dataset, seed)}/genft/{variants[model]}/checkpoint"}


def features_input(config: dict[str, Any], model: str, dataset: str, seed: int | str) -> dict[str, str]:
    """The features file a probe-mode model trains on; nothing in finetuning."""
    return {"features": f"{seed_dir(dataset, seed)}/features/{model}.safetensors"} if is_probe(config, model) else {}


def student_inputs(config: dict[str, Any], dataset: str, seed: int | str, loss: str, chain: list[str],
                   axis: Axis | None) -> dict[str, str]:
    """What a student reads: label-free views of train_w2s and test, and its supervisor's weak labels.
    No true label reaches it, except the labelled train_w2s as `oracle_labels` when its model opts in
    to ground_truth_holdout (and its metrics then say uses_ground_truth_selection)."""
    inputs = {
        "train_w2s": unlabelled_path(dataset, seed, "train_w2s"),
        "test": unlabelled_path(dataset, seed, "test"),
        "weak_labels": weak_labels_file(dataset, seed, supervisor_run(config, loss, chain, axis)),
        **ood_test_input(config, dataset, seed),
    }
    if training_params(config, chain[-1])["model_selection"] == "ground_truth_holdout":
        inputs["oracle_labels"] = data_paths(dataset, seed)["train_w2s"]
    return inputs


def method_inputs(config: dict[str, Any], dataset: str, seed: int | str, method: str, chain: list[str],
                  workdir: Path = Path(".")) -> dict[str, str]:
    """What a method job reads: a student's label-free inputs, never the oracle of ground_truth_holdout, and the
    method's source file (w2s.methods.entries), so that an edit to it reruns the method's runs."""
    inputs = student_inputs(config, dataset, seed, method, chain, None)
    inputs.pop("oracle_labels", None)
    return {**inputs, "method_code": str(entries.source_file(config["methods"][method]["entry"], workdir))}


# What every other loss and method is compared with on the leaderboard, row by row: vanilla weak-to-strong.
REFERENCE_TRAINING = "xent"


def evaluation_inputs(config: dict[str, Any], dataset: str, seed: int | str, run: str) -> dict[str, str]:
    """What an evaluate job reads: the run's predictions, the labelled test split and the label balance, and, by
    kind, the texts counted as truncated and the predictions it is compared with."""
    kind, loss, chain = parse_run(run)
    axis = run_axis(run)
    inputs = {
        "self": prediction_file(dataset, seed, run),
        # Predictions hold no labels; the true labels come from the labelled test split, read here only.
        "test": data_paths(dataset, seed)["test"],
        "label_balance": f"results/data/{dataset}/seed{seed}/label_balance.json",
        # The labelled out-of-distribution test split, scored where the dataset has one.
        **{f"{key}_labels": path for key, path in ood_test_input(config, dataset, seed, labelled=True).items()},
    }
    # Images are never truncated; a text model's metrics report how many texts were (a simulated or ensemble
    # supervisor reads none).
    reads_text = tasks.dataset_task(config["datasets"][dataset]).input_column == "text"
    if kind in ("ground_truth", "student", "ft_weak_lp_gt") and reads_text:
        # A twin reads its model's tokenizer and max_length, so its model's counts are its own.
        inputs["truncation"] = f"{seed_dir(dataset, seed)}/truncation/{generative_base(config, chain[-1])}.json"
    if kind == "student":
        supervisor = supervisor_run(config, loss, chain, axis)  # type: ignore[arg-type]
        inputs["supervisor"] = prediction_file(dataset, seed, supervisor)
        if loss != REFERENCE_TRAINING and REFERENCE_TRAINING in config["losses"] and axis is None \
                and task_params(config, dataset)["kind"] != "generative":
            # The leaderboard's paired comparison with vanilla xent's student of the same lineage.
            inputs["reference"] = prediction_file(dataset, seed, student_run(REFERENCE_TRAINING, chain))  # type: ignore[arg-type]
        if task_params(config, dataset)["kind"] == "generative":
            # What it learned from: its metrics count the empty weak labels (and, chess, the legal moves).
            inputs["weak_labels"] = weak_labels_file(dataset, seed, supervisor)
    if kind == "ft_weak_lp_gt":
        inputs["student"] = prediction_file(dataset, seed, student_run(loss, chain))  # type: ignore[arg-type]
    if kind in ("student", "ft_weak_lp_gt"):
        # PGR against the weak model that labelled the lineage's data, and the ceiling on every train_gt row.
        inputs["weak"] = prediction_file(dataset, seed, root_run(config, chain[0], axis))
        inputs["ceiling"] = prediction_file(dataset, seed, f"gt/{chain[-1]}")
    return inputs


def simulation_inputs(config: dict[str, Any], dataset: str, seed: int | str, supervisor: str) -> dict[str, str]:
    """The labelled splits a simulated supervisor places errors on, the real weak model whose error count it copies
    and, for least_confident, the strong ground-truth model whose doubt places them."""
    entry = supervisor_entry(config, supervisor)
    inputs = {s: data_paths(dataset, seed)[s] for s in ("train_w2s", "test")}
    inputs["like"] = prediction_file(dataset, seed, f"gt/{entry['like']}")
    if "strong" in entry:
        inputs["strong"] = prediction_file(dataset, seed, f"gt/{entry['strong']}")
    return inputs


def dataset_files(config: dict[str, Any], dataset: str) -> dict[str, str]:
    """Local files in the hub schema, or the folder of images, when the dataset reads from disk
    instead of the hub."""
    entry = config["datasets"][dataset]
    folders = {key: entry[key] for key in ("image_folder", "imagenet_root") if key in entry}
    if folders:
        return folders
    files = entry.get("data_files", {})
    if not files and dataset == "vader_movies":
        return {"train": "results/downloads/vader_movies/movieReviewSnippets_GroundTruth.txt"}
    return files


def prepared_data_files(config: dict[str, Any]) -> list[str]:
    names = [f"{s}.parquet" for s in SPLITS] + [f"unlabelled/{s}.parquet" for s in SPLITS]
    names += ["label_balance.json", "source.json"]
    # A dataset's out-of-distribution test split, where it has one.
    ood = ["ood_test.parquet", "unlabelled/ood_test.parquet", "ood_test_source.json"]
    return [f"results/data/{d}/seed{s}/{n}" for d in config["datasets"] for s in config["seeds"]
            for n in names + (ood if "ood_test" in config["datasets"][d] else [])]


def benchmark_files(config: dict[str, Any], trained: list[tuple[str, int, str]]) -> list[str]:
    """The benchmark file of every job that loads a model: training (each of `trained`, (dataset, seed, run) of
    the training jobs), feature extraction, prompting."""

    def trains_model(dataset: str, seed: int, model: str) -> bool:
        return any(parse_run(r)[2][-1] == model for d, s, r in trained if (d, s) == (dataset, seed))

    runs = [*trained, *each_run(config, ft_weak_lp_gt_runs(config) + prompt_runs(config))]
    # Every planned ft(weak) + lp(gt) student is finetuned (ft_weak_lp_gt_runs), so its features are embedded.
    runs += [(d, s, f"embed_features/{r}") for d, s, r in each_run(config, ft_weak_lp_gt_runs(config))]
    each_seed = [(d, s) for d in config["datasets"] for s in config["seeds"]]
    runs += [(d, s, f"embed_features/{m}") for d, s in each_seed
             for m in trained_models(config, variants=True) if is_probe(config, m) and trains_model(d, s, m)]
    runs += [(d, s, f"genft/{m}") for d, s in each_seed
             for twin, m in generative_variants(config).items() if trains_model(d, s, twin)]
    return [f"results/benchmarks/{d}/seed{s}/{r}.tsv" for d, s, r in runs]
