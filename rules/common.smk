# Config loading, and the input functions: thin wrappers that pass the config and a job's wildcards to the package
# (w2s.pipeline: runs for run names, artifacts for paths, run_context, resources).

import functools
import importlib.util
import os
import re
import sys
from pathlib import Path

# Before w2s is imported: under this variable (w2s.WORKFLOW_DIR_ENV) the package reads config/schema.yaml from
# this workflow's folder, not its own, and a job whose w2s lives elsewhere warns; jobs inherit it.
WORKFLOW_DIR_ENV = "W2S_WORKFLOW_DIR"
os.environ[WORKFLOW_DIR_ENV] = workflow.basedir
# One checkout, one package: a venv's editable install of another checkout would run that checkout's code in
# every job, whatever this one's rules say. Found without importing it, so that an older package cannot run
# first; not found, the import below says so.
W2S_SPEC = importlib.util.find_spec("w2s")
W2S_OWN = Path(workflow.basedir).resolve() / "src" / "w2s"
if W2S_SPEC and Path(W2S_SPEC.origin).resolve().parent != W2S_OWN:
    sys.stderr.write(
        f"Warning: the workflow in {workflow.basedir} imports the w2s package in "
        f"{Path(W2S_SPEC.origin).resolve().parent}, not its own ({W2S_OWN}): its jobs would run that code. Install "
        f"this checkout's (`pip install -e {workflow.basedir}`) or put it first "
        f"(`export PYTHONPATH={W2S_OWN.parent}`).\n"
    )

from w2s.data import reading as w2s_reading
from w2s.pipeline import artifacts as w2s_artifacts
from w2s.pipeline import codedeps as w2s_codedeps
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import resources as w2s_resources
from w2s.pipeline import run_context as w2s_run_context
from w2s.pipeline import runs as w2s_runs
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.pipeline.artifacts import SPLITS
from w2s.pipeline.runs import parse_run, run_axis
from w2s.report import provenance as w2s_provenance
from w2s import revisions as w2s_revisions
from w2s.training import settings as w2s_settings

try:
    w2s_validation.validate_config(config, workflow.source_path("../config/schema.yaml"))
    w2s_validation.check_data_files(config, Path.cwd())
except w2s_validation.ConfigError as err:
    sys.exit(f"Invalid config: {err}")
# The provenance record names the config as written, whose hash a reader can check against the file.
CONFIG_SHA256 = w2s_provenance.config_sha256(config)
# The schema's defaults, filled in once: rules read every top-level value without a fallback.
config.update(w2s_schema.apply_defaults(config, workflow.source_path("../config/schema.yaml")))
# A generative_finetuning twin ('<model>-genft') is a model entry like its model's, started from the stage.
config.update(w2s_experiment.with_generative_variants(config))
try:
    w2s_validation.check_only_runs(config)
except w2s_validation.ConfigError as err:
    sys.exit(f"Invalid config: {err}")

# environment.yml installs the package from here when rules run under --sdm conda.
os.environ.setdefault("W2S_ROOT", workflow.basedir)
# The files the run reads besides its code, whose git state the provenance record names (w2s.report.provenance).
os.environ[w2s_provenance.CONFIG_FILES_ENV] = os.pathsep.join(str(Path(f).resolve()) for f in workflow.configfiles)
# Hub commits that preflight resolved for repositories nothing else pins (w2s.revisions).
HUB_LOCK = w2s_revisions.workflow_lock(workflow.configfiles, Path(workflow.basedir) / "config" / "config.yaml")


def data_source(dataset):
    """Where a dataset is read: its hub repository, commit and why that commit (w2s.data.reading.data_source)."""
    return w2s_reading.data_source(dataset, config["datasets"][dataset], HUB_LOCK)


UNPINNED = w2s_experiment.unpinned_datasets(config, HUB_LOCK)
if UNPINNED:
    sys.stderr.write(
        f"Warning: {', '.join(UNPINNED)} pinned nowhere: each would be read at its branch's head "
        "when prepared. Run `python -m w2s.pipeline.preflight <config>` where the hub is reachable; it writes their "
        f"commits to {os.environ[w2s_revisions.WORKFLOW_LOCK_ENV]}, which you commit.\n"
    )


def task_params(dataset):
    return w2s_experiment.task_params(config, dataset)


def training_task_params(wildcards, lineage):
    return w2s_experiment.training_task_params(config, wildcards.dataset, lineage, wildcards_axis(wildcards))


# Supervisors that are no trained model (w2s.data.supervisors), by kind: their runs are sim/<name> and ens/<name>.
SIMULATED = [s for s in config["supervisors"] if w2s_experiment.supervisor_kind(config, s) == "simulated"]
ENSEMBLES = [s for s in config["supervisors"] if w2s_experiment.supervisor_kind(config, s) == "ensemble"]


def names_pattern(names):
    """A wildcard constraint matching exactly these names; one that matches nothing when there are none."""
    return "|".join(map(re.escape, names)) or "(?!)"


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    seed=r"\d+",
    model="|".join(map(re.escape, config["models"])),
    loss="|".join(map(re.escape, config["losses"])),
    method=names_pattern(config["methods"]),
    split="|".join(SPLITS),
    chain=w2s_runs.CHAIN_PATTERN,
    run=w2s_runs.RUN_PATTERN,
    shots=r"\d+",
    n_gt_rows=r"\d+",
    n_weak_labels=r"\d+",


@functools.cache
def _script_files(script):
    """workflow/scripts/<script> and every package module it imports, directly or not (w2s.pipeline.codedeps)."""
    root = Path(workflow.basedir)
    path = root / "workflow" / "scripts" / script
    if not path.is_file():
        raise ValueError(f"no script {path}: script_code takes a file name in workflow/scripts/")
    return [path, *w2s_codedeps.import_closure(path, root / "src" / "w2s")]


# The code digests, one per script: under the working directory (the rehearsal's -d folder too), beside
# Snakemake's own record of what ran there, where a deleted folder is written anew at the code's file times.
CODE_DIGESTS = Path(".snakemake", "w2s-code")


def script_code(script):
    """A rule's code input: the digest of its script and the package modules the script imports, derived at DAG
    build time and rewritten only when their content changes (w2s.pipeline.codedeps.write_digest), so that
    changing any of them reruns the job and nothing else does, a touch or a checkout and back included. As a
    source file (workflow.source_path) it resolves wherever the workdir is and stays out of a default storage
    provider (Kubernetes), where each job's own load of the workflow writes it; local() would instead pin the
    job to this machine whenever there is no shared filesystem."""
    return workflow.source_path(str(_code_digest(script)))


@functools.cache
def _code_digest(script):
    digest = Path.cwd() / CODE_DIGESTS / f"{script}.sha256"
    return w2s_codedeps.write_digest(digest, _script_files(script), workflow.basedir)


def data_paths(wildcards):
    return w2s_artifacts.data_paths(wildcards.dataset, wildcards.seed)


def unlabelled_path(wildcards, split):
    return w2s_artifacts.unlabelled_path(wildcards.dataset, wildcards.seed, split)


def ood_test_files(wildcards):
    """The file an out-of-distribution test split is read from, where its config names one (ood_test.data_files)."""
    ood = config["datasets"][wildcards.dataset]["ood_test"]
    return {"ood_file": ood["data_files"]} if "data_files" in ood else {}


def ood_test_input(wildcards):
    """The dataset's label-free out-of-distribution test split, where it has one (config ood_test)."""
    return w2s_artifacts.ood_test_input(config, wildcards.dataset, wildcards.seed)


def unlabelled_paths(wildcards):
    return {**{s: unlabelled_path(wildcards, s) for s in SPLITS}, **ood_test_input(wildcards)}


def ground_truth_data(wildcards):
    """A ground-truth model learns train_gt's labels and predicts train_w2s, test (and an out-of-distribution test
    split) from their texts."""
    return {"train_gt": data_paths(wildcards)["train_gt"],
            **{s: unlabelled_path(wildcards, s) for s in ("train_w2s", "test")}, **ood_test_input(wildcards)}


def training_params(model):
    return w2s_experiment.training_params(config, model)


def ft_weak_lp_gt_params(model):
    return w2s_experiment.ft_weak_lp_gt_params(config, model)


def model_entry(model):
    return w2s_experiment.model_entry(config, model, HUB_LOCK)


def converted_model(model):
    """A job's converted checkpoint, `model` mapping its wildcards to its model (w2s.pipeline.artifacts)."""
    return lambda w: w2s_artifacts.converted_model(config, model(w))


def generative_checkpoint(model, job):
    """A twin's generative finetuning checkpoint, for a `job` ("train" or "embed") (w2s.pipeline.artifacts)."""
    return lambda w: w2s_artifacts.generative_checkpoint(config, model(w), job, w.dataset, w.seed)


def per_key(resources):
    """Snakemake resources, one callable per key, from `resources` (the wildcards -> every key's value)."""

    def value(key):
        return lambda w: resources(w)[key]

    return {key: value(key) for key in w2s_resources.RESOURCE_KEYS}


def generative_job_resources():
    return per_key(lambda w: w2s_resources.generative_job_resources(config, w.model))


def model_job_resources(model, kind, training=w2s_experiment.training_params):
    """`resources: **model_job_resources(...)`, where `model` maps the job's wildcards to its model and `training`
    (config, model) to the job's training block (w2s.pipeline.resources.job_resources)."""
    return per_key(lambda w: w2s_resources.job_resources(config, model(w), kind, w.dataset, training))


def wildcards_axis(wildcards):
    """(axis, n) of a training job's data-axis wildcard, or None."""
    return next(((axis, int(wildcards[axis])) for axis in w2s_experiment.DATA_AXES if axis in wildcards.keys()), None)


@functools.cache
def each_trained_run():
    """(dataset, seed, run) of every training job, in a fixed order."""
    return w2s_runs.each_run(config, w2s_runs.trained_runs(config))


def curve_runs():
    return w2s_runs.curve_runs(config, each_trained_run())


def all_metrics():
    return w2s_runs.metrics_files(config)


def benchmark_files():
    return w2s_artifacts.benchmark_files(config, each_trained_run())


def prepared_data_files():
    return w2s_artifacts.prepared_data_files(config)


def dataset_files(wildcards):
    return w2s_artifacts.dataset_files(config, wildcards.dataset)


# What embed_features reads, in the order its rule passes them.
EMBEDDING_KEYS = w2s_settings.EmbeddingSettings.keys()


def features_input(model):
    """The features file a probe-mode model trains on; nothing in finetuning (w2s.pipeline.artifacts)."""
    return lambda w: w2s_artifacts.features_input(config, model(w), w.dataset, w.seed)


def student_inputs(wildcards):
    chain = w2s_experiment.split_chain(wildcards.chain)
    return w2s_artifacts.student_inputs(config, wildcards.dataset, wildcards.seed, wildcards.loss, chain,
                                        wildcards_axis(wildcards))


def method_inputs(wildcards):
    chain = w2s_experiment.split_chain(wildcards.chain)
    return w2s_artifacts.method_inputs(config, wildcards.dataset, wildcards.seed, wildcards.method, chain)


def strong_model(wildcards):
    return w2s_experiment.split_chain(wildcards.chain)[-1]


def prediction_file(wildcards, run):
    return w2s_artifacts.prediction_file(wildcards.dataset, wildcards.seed, run)


def evaluation_inputs(wildcards):
    return w2s_artifacts.evaluation_inputs(config, wildcards.dataset, wildcards.seed, wildcards.run)


def run_context(wildcards):
    """The evaluate job's context param: a plain dict (w2s.pipeline.run_context)."""
    return w2s_run_context.run_context(config, wildcards.dataset, wildcards.seed, wildcards.run)


def simulated_entry(wildcards):
    return w2s_experiment.supervisor_entry(config, wildcards.supervisor)


def simulation_inputs(wildcards):
    return w2s_artifacts.simulation_inputs(config, wildcards.dataset, wildcards.seed, wildcards.supervisor)
