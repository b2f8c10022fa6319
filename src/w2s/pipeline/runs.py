"""Run names and the runs a config plans: the grammar of a run id (gt/<model>, sim/<name>, ens/<name>,
w2s/<loss>/<chain>, ftlp/<loss>/<chain>, prompt/<model>/<k>shot, each with an optional data-axis segment), and the
listings of every run, as plain functions of the config with its defaults and generative variants filled in
(rules/common.smk)."""

from __future__ import annotations

import fnmatch
import re
from pathlib import PurePosixPath
from typing import Any

from w2s.pipeline.experiment import (DATA_AXES, data_axis_values, join_chain, pairs, split_chain, student_chains,
                                     supervisor_kind, trained_models, training_params)

Axis = tuple[str, int]

RUN_KINDS = {"gt": "ground_truth", "sim": "simulated", "ens": "ensemble", "prompt": "prompt", "w2s": "student",
             "ftlp": "ft_weak_lp_gt"}
# The wildcard constraints of a chain (m1__m2[__m3...]) and of a run id, in the alphabet of model and loss names.
CHAIN_PATTERN = r"[A-Za-z0-9.-]+(__[A-Za-z0-9.-]+)+"
RUN_PATTERN = (r"gt/[A-Za-z0-9.-]+(/n_gt_rows\d+)?|sim/[A-Za-z0-9.-]+|ens/[A-Za-z0-9.-]+"
               r"|(w2s|ftlp)/[A-Za-z0-9._-]+/[A-Za-z0-9.-]+(__[A-Za-z0-9.-]+)+(/(n_gt_rows|n_weak_labels)\d+)?"
               r"|prompt/[A-Za-z0-9.-]+/\d+shot")
# The run of a lineage's first member, by its kind (w2s.pipeline.experiment.supervisor_kind).
ROOT_RUN_PREFIX = {"simulated": "sim", "ensemble": "ens"}


def axis_segments(axis: Axis | None) -> list[str]:
    """The run id's last segment for a data-axis value (axis, n), e.g. n_weak_labels500; none for every row."""
    return [] if axis is None else [f"{axis[0]}{axis[1]}"]


def student_run(loss: str, chain: list[str], axis: Axis | None = None) -> str:
    return str(PurePosixPath("w2s", loss, join_chain(chain), *axis_segments(axis)))


def ground_truth_run(model: str, axis: Axis | None = None) -> str:
    """A model's ground-truth run: on every train_gt row, or on n of them for the axis n_gt_rows."""
    return str(PurePosixPath("gt", model, *axis_segments(axis if axis and axis[0] == "n_gt_rows" else None)))


def root_run(config: dict[str, Any], name: str, axis: Axis | None = None) -> str:
    """A lineage's first member's run: a model's ground-truth run (on n rows for n_gt_rows), or a simulated or
    ensemble supervisor's."""
    kind = supervisor_kind(config, name)
    return ground_truth_run(name, axis) if kind == "model" else f"{ROOT_RUN_PREFIX[kind]}/{name}"


def supervisor_run(config: dict[str, Any], loss: str, chain: list[str], axis: Axis | None = None) -> str:
    """Who labels a step's data: M1's ground-truth model (on n rows for n_gt_rows; or a simulated or ensemble
    supervisor), then each step's student."""
    if len(chain) == 2:
        return root_run(config, chain[0], axis)
    return student_run(loss, chain[:-1])


def ft_weak_lp_gt_run(loss: str, chain: list[str]) -> str:
    """The ground-truth probe on the features of student w2s/<loss>/<chain> (config analyses.ft_weak_lp_gt)."""
    return f"ftlp/{loss}/{join_chain(chain)}"


def parse_run(run: str) -> tuple[str, str | None, list[str]]:
    """(kind, loss, chain) of a run id: gt/gpt2, sim/gpt2-random, ens/small-ensemble, w2s/xent/gpt2__gpt2-medium,
    ftlp/xent/gpt2__gpt2-medium or prompt/gpt2/5shot, with or without a data axis's last segment (run_axis)."""
    parts = run.split("/")
    if parts[0] in ("gt", "sim", "ens", "prompt"):
        return RUN_KINDS[parts[0]], None, [parts[1]]
    return RUN_KINDS[parts[0]], parts[1], split_chain(parts[2])


def run_axis(run: str) -> Axis | None:
    """(axis, n) of a data-axis run (gt/small/n_gt_rows500, w2s/xent/small__big/n_weak_labels1000), else None."""
    found = re.search(f"(?:^|[/])({'|'.join(DATA_AXES)})(\\d+)$", run)
    return None if found is None else (found.group(1), int(found.group(2)))


def prompt_shots(run: str) -> int:
    """The number of examples in a prompt run's prompt (prompt/<model>/<k>shot)."""
    return int(re.search(r"(\d+)shot$", run).group(1))  # type: ignore[union-attr]


def supervisor_runs(config: dict[str, Any]) -> list[str]:
    """The runs of every simulated and ensemble supervisor, evaluated like a ground-truth model."""
    return [root_run(config, s) for s in config["supervisors"]]


def prompt_runs(config: dict[str, Any]) -> list[str]:
    prompting = config.get("prompting", {"models": [], "shots": []})
    return [f"prompt/{m}/{k}shot" for m in prompting["models"] for k in prompting["shots"]]


def trained_runs(config: dict[str, Any]) -> list[str]:
    runs = [f"gt/{m}" for m in trained_models(config, variants=True)]
    runs += [student_run(name, chain) for name in student_trainings(config)
             for chain in student_chains(config, variants=True) if trains_lineage(config, name, chain)]
    return runs + data_axis_runs(config)


def student_trainings(config: dict[str, Any]) -> list[str]:
    """What trains a lineage's student, by name: each loss of the losses block, then each method of the methods
    block (w2s.methods); each gives every lineage a run w2s/<name>/<lineage>."""
    return [*config["losses"], *config.get("methods", {})]


def trains_lineage(config: dict[str, Any], training: str, chain: list[str]) -> bool:
    """Whether a loss or method trains this lineage: every loss does; a method with `models` only a lineage whose
    every step after the first is one of them."""
    allowed = config.get("methods", {}).get(training, {}).get("models")
    return allowed is None or all(model in allowed for model in chain[1:])


def data_axis_runs(config: dict[str, Any]) -> list[str]:
    """Every data-axis value's runs: the weak models of the direct pairs on n train_gt rows (n_gt_rows), and
    each loss's direct students on the weak labels of those (n_gt_rows) or on n of their slice (n_weak_labels)."""
    direct = pairs(config)
    # A simulated or ensemble supervisor trains on no ground truth, so n_gt_rows varies nothing of it.
    trained = [pair for pair in direct if supervisor_kind(config, pair[0]) == "model"]
    weak_models = list(dict.fromkeys(weak for weak, _ in trained))
    values = data_axis_values(config)
    runs = [ground_truth_run(m, axis) for axis in values if axis[0] == "n_gt_rows" for m in weak_models]
    return runs + [student_run(loss, list(pair), axis) for axis in values for loss in config["losses"]
                   for pair in (trained if axis[0] == "n_gt_rows" else direct)]


def ft_weak_lp_gt_runs(config: dict[str, Any]) -> list[str]:
    """ft(weak) + lp(gt) of every finetuned student (every loss and lineage), when config analyses.ft_weak_lp_gt is
    on. A probe-mode student's features are its model's frozen ones, so its ground-truth probe is the ceiling by
    construction: it is not planned."""
    if not config["analyses"]["ft_weak_lp_gt"]:
        return []
    return [ft_weak_lp_gt_run(loss, chain) for loss in config["losses"] for chain in student_chains(config, variants=True)
            if training_params(config, chain[-1])["mode"] != "probe"]


def all_runs(config: dict[str, Any]) -> list[str]:
    return trained_runs(config) + supervisor_runs(config) + ft_weak_lp_gt_runs(config) + prompt_runs(config)


def selected(config: dict[str, Any], dataset: str, seed: int, run: str) -> bool:
    """Whether config only_runs lets this run be built: every run when it is empty."""
    name = f"{dataset}/seed{seed}/{run}"
    return not config["only_runs"] or any(fnmatch.fnmatchcase(name, pattern) for pattern in config["only_runs"])


def each_run(config: dict[str, Any], runs: list[str]) -> list[tuple[str, int, str]]:
    """(dataset, seed, run) of each of `runs` in every dataset and seed that config only_runs selects."""
    return [(d, s, r) for d in config["datasets"] for s in config["seeds"] for r in runs if selected(config, d, s, r)]


def curve_runs(config: dict[str, Any], trained: list[tuple[str, int, str]]) -> list[dict[str, Any]]:
    """The identity of each history that training_curves reads, one per (dataset, seed, run) of `trained`."""
    identities = []
    for dataset, seed, run in trained:
        kind, loss, chain = parse_run(run)
        identities.append({
            "dataset": dataset, "seed": seed, "run": run, "kind": kind, "model": chain[-1], "loss": loss,
            "lineage": " → ".join(chain), "model_selection": training_params(config, chain[-1])["model_selection"],
        })
    return identities


def metrics_files(config: dict[str, Any]) -> list[str]:
    """The metrics file of every run that config only_runs selects: what summarize reads."""
    return [f"results/{d}/seed{s}/{r}/metrics.json" for d, s, r in each_run(config, all_runs(config))]


def unmatched_run_patterns(config: dict[str, Any]) -> list[str]:
    """The patterns of config only_runs that match no run of the config (a typo would otherwise build nothing)."""
    names = [f"{d}/seed{s}/{r}" for d in config["datasets"] for s in config["seeds"] for r in all_runs(config)]
    return [pattern for pattern in config["only_runs"] if not fnmatch.filter(names, pattern)]
