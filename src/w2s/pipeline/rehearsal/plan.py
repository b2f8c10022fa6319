"""Which jobs the rehearsal runs: the config's whole DAG as Snakemake plans it, each job's signature (the code path
it takes), and, when the DAG is too large, a small set of runs whose jobs still cover every signature.

A signature is what decides a job's code path, not its data: the rule, the model's kind (w2s.pipeline.rehearsal.
miniatures.model_kind) and, for training jobs, mode, optimizer, dtype, gradient checkpointing, model selection,
whether it shards over several processes, the loss and the task's kind; a dataset's conversion for prepare_data;
the supervisor's kind for weak labels, and so on (signature). Two jobs with one signature run the same code on
other rows or sizes, so one of them stands for both.

Selection is greedy set cover over runs ('<dataset>/seed<seed>/<run>', the units config only_runs names): each step
adds the run whose metrics job brings the most uncovered signatures per job it adds to the plan, counting a
training job as TRAINING_COST jobs and a sharded one as SHARDED_COST.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from w2s import tasks
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline.runs import parse_run
from w2s.pipeline import validation as w2s_validation
from w2s.pipeline.rehearsal.miniatures import model_kind

TRAINING_RULES = ("train_ground_truth", "train_ground_truth_n_gt_rows", "train_student", "train_student_n_weak_labels",
                  "train_student_n_gt_rows", "train_ft_weak_lp_gt")
# Jobs every run of a config ends in, whatever runs it builds.
FINAL_RULES = ("summarize", "training_curves", "leaderboard", "provenance", "report", "all")
TRAINING_COST, SHARDED_COST = 3, 5


@dataclass
class Job:
    """One job of a dry run: its rule, wildcards, resources, inputs and outputs."""

    rule: str
    wildcards: dict[str, str] = field(default_factory=dict)
    resources: dict[str, str] = field(default_factory=dict)
    inputs: list[str] = field(default_factory=list)
    outputs: list[str] = field(default_factory=list)

    @property
    def processes(self) -> int:
        return int(self.resources.get("processes", 1))

    def describe(self) -> str:
        where = ", ".join(f"{key}={value}" for key, value in self.wildcards.items())
        return f"{self.rule} ({where})" if where else self.rule


def parse_dry_run(output: str) -> list[Job]:
    """The jobs of `snakemake -n`'s listing (without -q): one block per job, from its `rule NAME:` line."""
    jobs: list[Job] = []
    for line in output.splitlines():
        header = re.fullmatch(r"(?:local)?rule (\w+):", line)
        if header:
            jobs.append(Job(header.group(1)))
            continue
        field_line = re.fullmatch(r"    (input|output|wildcards|resources): (.*)", line)
        if not jobs or not field_line:
            continue
        key, value = field_line.groups()
        items = [item.strip() for item in value.split(", ")]
        if key in ("input", "output"):
            setattr(jobs[-1], key + "s", [item.removesuffix(" (cached)") for item in items])
        else:
            setattr(jobs[-1], key, dict(item.split("=", 1) for item in items if "=" in item))
    return jobs


def _training_facets(config: dict[str, Any], model: str) -> tuple[str, ...]:
    """The model's kind and the training settings that choose a code path, in words. A probe head reads cached
    features in float64, whatever the backbone, its dtype and pooling: those choose embed_features' path only."""
    training = w2s_experiment.training_params(config, model)
    selection = f"selection {training['model_selection']}"
    if training["mode"] == "probe":
        return ("probe", selection)
    base = w2s_experiment.generative_base(config, model)
    facets = [model_kind(config["models"][base]), training["mode"], training["optimizer"], training["dtype"],
              selection, f"pooling {training.get('pooling')}"]
    if training.get("gradient_checkpointing"):
        facets.append("gradient checkpointing")
    if base != model:
        facets.append("after generative finetuning")
    return tuple(facets)


def _embedding_facets(config: dict[str, Any], model: str) -> tuple[str, ...]:
    """What chooses a frozen embedding's path: the model's kind, dtype and pooling."""
    training = w2s_experiment.training_params(config, model)
    base = w2s_experiment.generative_base(config, model)
    facets = (model_kind(config["models"][base]), training["dtype"], f"pooling {training.get('pooling')}")
    return facets + (("after generative finetuning",) if base != model else ())


def _task_kind(config: dict[str, Any], dataset: str) -> str:
    return tasks.dataset_task(config["datasets"][dataset]).kind


def signature(job: Job, config: dict[str, Any]) -> tuple[Any, ...]:
    """The code path a job of `config` takes (see the module's docstring)."""
    w = job.wildcards
    if job.rule == "prepare_data":
        return (job.rule, w["dataset"])
    if job.rule in ("count_truncated", "generative_finetuning"):
        return (job.rule, model_kind(config["models"][w2s_experiment.generative_base(config, w["model"])]))
    if job.rule == "embed_features":
        return (job.rule, *_embedding_facets(config, w["model"]), _task_kind(config, w["dataset"]))
    if job.rule == "embed_student_features":  # a finetuned student's checkpoint, whatever loss trained it
        return (job.rule, *_training_facets(config, w2s_experiment.split_chain(w["chain"])[-1]),
                _task_kind(config, w["dataset"]))
    if job.rule in TRAINING_RULES:
        model = w.get("model") or w2s_experiment.split_chain(w["chain"])[-1]
        loss = w2s_validation.loss_base(config, w["loss"]) if "loss" in w else None
        if job.rule == "train_ft_weak_lp_gt":  # a probe head on the student's features, whatever the student
            return (job.rule, model_kind(config["models"][w2s_experiment.generative_base(config, model)]),
                    _task_kind(config, w["dataset"]))
        # Sharded over any number of processes (the rehearsal's 2 stand for the real run's N) or not.
        sharded = "sharded" if job.processes > 1 else None
        return (job.rule, *_training_facets(config, model), sharded, loss, _task_kind(config, w["dataset"]))
    if job.rule in ("weak_labels", "evaluate"):
        return (job.rule, parse_run(w["run"])[0], _task_kind(config, w["dataset"]))
    if job.rule == "prompt_baseline":
        return (job.rule, model_kind(config["models"][w["model"]]), "few-shot" if int(w["shots"]) else "zero-shot")
    if job.rule == "simulate_supervisor":
        return (job.rule, config["supervisors"][w["supervisor"]]["simulate"])
    if job.rule == "ensemble_supervisor":
        entry = config["supervisors"][w["supervisor"]]
        return (job.rule, entry.get("combine"), entry.get("weighting"))
    return (job.rule,)


def describe_signature(key: tuple[Any, ...]) -> str:
    return " × ".join(str(part) for part in key if part is not None)


@dataclass
class Plan:
    """The rehearsal's share of a DAG: its jobs, the runs config only_runs names (empty: every run), and the
    signatures they cover."""

    jobs: list[Job]
    runs: list[str]
    signatures: set[tuple[Any, ...]]


def _dependencies(jobs: list[Job]) -> list[set[int]]:
    producer = {output: index for index, job in enumerate(jobs) for output in job.outputs}
    return [{producer[path] for path in job.inputs if path in producer} for job in jobs]


def _closure(start: Iterable[int], dependencies: list[set[int]]) -> set[int]:
    seen: set[int] = set()
    stack = list(start)
    while stack:
        index = stack.pop()
        if index not in seen:
            seen.add(index)
            stack.extend(dependencies[index] - seen)
    return seen


def _cost(job: Job) -> int:
    if job.rule in TRAINING_RULES:
        return SHARDED_COST if job.processes > 1 else TRAINING_COST
    return 1


def select(jobs: list[Job], config: dict[str, Any]) -> Plan:
    """Runs whose jobs, with every dataset's prepare_data and the final jobs, cover every signature of `jobs`."""
    keys = [signature(job, config) for job in jobs]
    dependencies = _dependencies(jobs)
    # Every dataset's preparation with what it needs, and the final jobs themselves (not all they read).
    chosen = _closure((i for i, job in enumerate(jobs) if job.rule == "prepare_data"), dependencies)
    chosen |= {i for i, job in enumerate(jobs) if job.rule in FINAL_RULES}
    runs = {f"{job.wildcards['dataset']}/seed{job.wildcards['seed']}/{job.wildcards['run']}": index
            for index, job in enumerate(jobs) if job.rule == "evaluate"}
    closures = {run: _closure([index], dependencies) for run, index in runs.items()}
    covered = {keys[i] for i in chosen}
    picked: list[str] = []
    while True:
        best, best_score = None, 0.0
        for run in sorted(closures):
            added = closures[run] - chosen
            gain = len({keys[i] for i in added} - covered)
            if gain:
                score = gain / sum(_cost(jobs[i]) for i in added)
                if score > best_score:
                    best, best_score = run, score
        if best is None:
            break
        picked.append(best)
        chosen |= closures[best]
        covered |= {keys[i] for i in closures[best]}
    return Plan([jobs[i] for i in sorted(chosen)], picked, covered)
