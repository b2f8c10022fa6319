# Config validation and the helpers that name every artifact.

import fnmatch
import functools
import importlib.util
import os
import re
import sys
from pathlib import Path, PurePosixPath

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

from w2s import tasks as w2s_tasks
from w2s.pipeline import codedeps as w2s_codedeps
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.data import sources as w2s_data
from w2s.report import provenance as w2s_provenance
from w2s.pipeline import resources as w2s_resources
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
GENERATIVE_VARIANTS = w2s_experiment.generative_variants(config)


# environment.yml installs the package from here when rules run under --sdm conda.
os.environ.setdefault("W2S_ROOT", workflow.basedir)
# The files the run reads besides its code, whose git state the provenance record names (w2s.report.provenance).
os.environ[w2s_provenance.CONFIG_FILES_ENV] = os.pathsep.join(str(Path(f).resolve()) for f in workflow.configfiles)

# Hub commits that preflight resolved for repositories nothing else pins (w2s.revisions).
HUB_LOCK = w2s_revisions.workflow_lock(workflow.configfiles, Path(workflow.basedir) / "config" / "config.yaml")


def data_source(dataset):
    """Where a dataset is read: its hub repository, commit and why that commit (w2s.data.sources.data_source)."""
    return w2s_data.data_source(dataset, config["datasets"][dataset], HUB_LOCK)


def unpinned_datasets():
    return sorted(d for d in config["datasets"]
                  if not dataset_files_configured(d) and data_source(d).pinned_by == "unpinned")


def dataset_files_configured(dataset):
    """Read from local files or folders (or a package), so no hub commit applies."""
    entry = config["datasets"][dataset]
    local = ("data_files", "image_folder", "imagenet_root")
    return any(entry.get(key) for key in local) or dataset in w2s_data.PACKAGED_DATASETS


def task_params(dataset):
    """A dataset's task (w2s.tasks) as jobs receive it: its kind and number of classes (generative: and
    generation.max_new_tokens)."""
    return w2s_tasks.dataset_task(config["datasets"][dataset], config["generation"]["max_new_tokens"]).params()


def training_task_params(wildcards, lineage):
    """A training job's task: task_params, and for a generative task also the slices of train_w2s the run
    generates on, those its weak labels are read from (w2s.pipeline.experiment.generated_slices); `lineage` is
    the run's model, or its chain."""
    task = task_params(wildcards.dataset)
    if task["kind"] != "generative":
        return task
    slices = w2s_experiment.generated_slices(config, lineage, wildcards_axis(wildcards))
    return {**task, "generated_slices": slices, "n_slices": config["w2s_slices"]}


def reads_text(dataset):
    return w2s_tasks.dataset_task(config["datasets"][dataset]).input_column == "text"


if unpinned_datasets():
    sys.stderr.write(
        f"Warning: {', '.join(unpinned_datasets())} pinned nowhere: each would be read at its branch's head "
        "when prepared. Run `python -m w2s.pipeline.preflight <config>` where the hub is reachable; it writes their "
        f"commits to {os.environ[w2s_revisions.WORKFLOW_LOCK_ENV]}, which you commit.\n"
    )

SPLITS = ["train_gt", "train_w2s", "test"]
TRAINED_MODELS = w2s_experiment.trained_models(config, variants=True)
STUDENT_CHAINS = w2s_experiment.student_chains(config, variants=True)
# Supervisors that are no trained model (w2s.data.supervisors), by kind: their runs are sim/<name> and ens/<name>.
SIMULATED = [s for s in config["supervisors"] if w2s_experiment.supervisor_kind(config, s) == "simulated"]
ENSEMBLES = [s for s in config["supervisors"] if w2s_experiment.supervisor_kind(config, s) == "ensemble"]


def names_pattern(names):
    """A wildcard constraint matching exactly these names; one that matches nothing when there are none."""
    return "|".join(map(re.escape, names)) or "(?!)"
# (axis, n) of every data-axis value (config axes): runs of the direct pairs on n rows (w2s.pipeline.config).
DATA_AXIS_VALUES = w2s_experiment.data_axis_values(config)


wildcard_constraints:
    dataset="|".join(map(re.escape, config["datasets"])),
    seed=r"\d+",
    model="|".join(map(re.escape, config["models"])),
    loss="|".join(map(re.escape, config["losses"])),
    split="|".join(SPLITS),
    chain=r"[A-Za-z0-9.-]+(__[A-Za-z0-9.-]+)+",
    run=r"gt/[A-Za-z0-9.-]+(/n_gt_rows\d+)?|sim/[A-Za-z0-9.-]+|ens/[A-Za-z0-9.-]+"
    r"|(w2s|ftlp)/[A-Za-z0-9._-]+/[A-Za-z0-9.-]+(__[A-Za-z0-9.-]+)+(/(n_gt_rows|n_weak_labels)\d+)?"
    r"|prompt/[A-Za-z0-9.-]+/\d+shot",
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
    return {s: f"results/data/{wildcards.dataset}/seed{wildcards.seed}/{s}.parquet" for s in SPLITS}


def unlabelled_path(wildcards, split):
    """A split's label-free view (id, text), written by prepare_data beside the labelled split."""
    return f"results/data/{wildcards.dataset}/seed{wildcards.seed}/unlabelled/{split}.parquet"


def unlabelled_paths(wildcards):
    return {s: unlabelled_path(wildcards, s) for s in SPLITS}


def ground_truth_data(wildcards):
    """A ground-truth model learns train_gt's labels and predicts train_w2s and test from their texts."""
    return {"train_gt": data_paths(wildcards)["train_gt"],
            **{s: unlabelled_path(wildcards, s) for s in ("train_w2s", "test")}}


def training_params(model):
    return w2s_experiment.training_params(config, model)


def ft_weak_lp_gt_params(model):
    return w2s_experiment.ft_weak_lp_gt_params(config, model)


def model_entry(model):
    """A model's config entry with sorted keys, so reordering it in the YAML reruns nothing, and the
    lock file's revision where the config pins none. A model with `convert` also names its converted
    folder, which the loaders read instead of the hub. A generative_finetuning twin's is its model's with
    the stage's settings, which its jobs load from the stage's checkpoint (generative_checkpoint)."""
    if model in GENERATIVE_VARIANTS:
        base = model_entry(GENERATIVE_VARIANTS[model])
        return w2s_experiment.canonical({**base, "generative_finetuning": w2s_experiment.generative_params(config)})
    entry = w2s_revisions.pin_model_entry(dict(config["models"][model]), HUB_LOCK)
    if "convert" in entry:
        entry["converted"] = f"results/models/{model}"
    return w2s_experiment.canonical(entry)


def converted_model(model):
    """The converted checkpoint a job on `model` (a function of the wildcards) loads; nothing for a
    model without `convert`."""

    def inputs(wildcards):
        name = model(wildcards)
        if name in GENERATIVE_VARIANTS:  # starts from its generative_checkpoint instead
            return {}
        return {"converted_model": f"results/models/{name}"} if "convert" in config["models"][name] else {}

    return inputs


def generative_checkpoint(model, job):
    """The generative finetuning checkpoint a `job` ("train" or "embed") on a twin (`model`, a function of the
    wildcards) loads, made for the job's dataset and seed: a probe's weights load where its features are
    embedded, other modes' where they train. Nothing for other models and jobs."""

    def inputs(wildcards):
        name = model(wildcards)
        if name not in GENERATIVE_VARIANTS or is_probe(name) != (job == "embed"):
            return {}
        stage = f"results/{wildcards.dataset}/seed{wildcards.seed}/genft/{GENERATIVE_VARIANTS[name]}"
        return {"generative_checkpoint": f"{stage}/checkpoint"}

    return inputs


def generative_job_resources():
    """A generative_finetuning job's resources, one callable per key: full finetuning of the model with the
    stage's optimizer and dtype, whatever the model's own training mode, then the config's resources blocks;
    in one process, the layers spread over the GPUs (generative finetuning does not shard)."""

    def value(key):
        def of(wildcards):
            stage = config["generative_finetuning"]
            training = {"mode": "full", "optimizer": stage["optimizer"], "dtype": stage["dtype"]}
            return w2s_resources.model_job_resources(config["models"][wildcards.model], training, "train",
                                                     config["resources"], sharded=False)[key]

        return of

    return {key: value(key) for key in w2s_resources.RESOURCE_KEYS}


def is_probe(model):
    return training_params(model)["mode"] == "probe"


def job_resources(model, kind, dataset, training=training_params):
    """What a `kind` job (train, embed or prompt) on `model` and `dataset` asks the scheduler for:
    derived from params_b, the training mode (of `training(model)`, the job's training block) and the
    task's number of classes, then the config's resources blocks (w2s.pipeline.resources). A generative
    task's training does not shard: one process."""
    task = task_params(dataset)
    return w2s_resources.model_job_resources(
        config["models"][model], training(model), kind, config["resources"],
        n_classes=task["n_classes"], sharded=task["kind"] != "generative",
    )


def model_job_resources(model, kind, training=training_params):
    """A rule's resources, one callable per key: `resources: **model_job_resources(...)`, where
    `model` maps the job's wildcards to its model and `training` a model to the job's training block."""

    def value(key):
        return lambda wildcards: job_resources(model(wildcards), kind, wildcards.dataset, training)[key]

    return {key: value(key) for key in w2s_resources.RESOURCE_KEYS}


def axis_segments(axis):
    """The run id's last segment for a data-axis value (axis, n), e.g. n_weak_labels500; none for every row."""
    return [] if axis is None else [f"{axis[0]}{axis[1]}"]


def student_run(loss, chain, axis=None):
    return str(PurePosixPath("w2s", loss, w2s_experiment.join_chain(chain), *axis_segments(axis)))


def ground_truth_run(model, axis=None):
    """A model's ground-truth run: on every train_gt row, or on n of them for the axis n_gt_rows."""
    return str(PurePosixPath("gt", model, *axis_segments(axis if axis and axis[0] == "n_gt_rows" else None)))


# The run of a lineage's first member, by its kind (w2s.pipeline.experiment.supervisor_kind).
ROOT_RUN_PREFIX = {"simulated": "sim", "ensemble": "ens"}


def root_run(name, axis=None):
    """A lineage's first member's run: a model's ground-truth run (on n rows for n_gt_rows), or a simulated or
    ensemble supervisor's."""
    kind = w2s_experiment.supervisor_kind(config, name)
    return ground_truth_run(name, axis) if kind == "model" else f"{ROOT_RUN_PREFIX[kind]}/{name}"


def supervisor_run(loss, chain, axis=None):
    """Who labels a step's data: M1's ground-truth model (on n rows for n_gt_rows; or a simulated or ensemble
    supervisor), then each step's student."""
    if len(chain) == 2:
        return root_run(chain[0], axis)
    return student_run(loss, chain[:-1])


def ft_weak_lp_gt_run(loss, chain):
    """The ground-truth probe on the features of student w2s/<loss>/<chain> (config analyses.ft_weak_lp_gt)."""
    return f"ftlp/{loss}/{w2s_experiment.join_chain(chain)}"


RUN_KINDS = {"gt": "ground_truth", "sim": "simulated", "ens": "ensemble", "prompt": "prompt", "w2s": "student",
             "ftlp": "ft_weak_lp_gt"}


def parse_run(run):
    """(kind, loss, chain) of a run id: gt/gpt2, sim/gpt2-random, ens/small-ensemble, w2s/xent/gpt2__gpt2-medium,
    ftlp/xent/gpt2__gpt2-medium or prompt/gpt2/5shot, with or without a data axis's last segment (run_axis)."""
    parts = run.split("/")
    if parts[0] in ("gt", "sim", "ens", "prompt"):
        return RUN_KINDS[parts[0]], None, [parts[1]]
    return RUN_KINDS[parts[0]], parts[1], w2s_experiment.split_chain(parts[2])


def run_axis(run):
    """(axis, n) of a data-axis run (gt/small/n_gt_rows500, w2s/xent/small__big/n_weak_labels1000), else None."""
    found = re.search(f"(?:^|[/])({'|'.join(w2s_experiment.DATA_AXES)})(\\d+)$", run)
    return None if found is None else (found.group(1), int(found.group(2)))


def wildcards_axis(wildcards):
    """(axis, n) of a training job's data-axis wildcard, or None."""
    return next(((axis, int(wildcards[axis])) for axis in w2s_experiment.DATA_AXES if axis in wildcards.keys()), None)


def supervisor_runs():
    """The runs of every simulated and ensemble supervisor, evaluated like a ground-truth model."""
    return [root_run(s) for s in config["supervisors"]]


def prompt_runs():
    prompting = config.get("prompting", {"models": [], "shots": []})
    return [f"prompt/{m}/{k}shot" for m in prompting["models"] for k in prompting["shots"]]


def trained_runs():
    runs = [f"gt/{m}" for m in TRAINED_MODELS]
    runs += [student_run(loss, chain) for loss in config["losses"] for chain in STUDENT_CHAINS]
    return runs + data_axis_runs()


def data_axis_runs():
    """Every data-axis value's runs: the weak models of the direct pairs on n train_gt rows (n_gt_rows), and
    each loss's direct students on the weak labels of those (n_gt_rows) or on n of their slice (n_weak_labels)."""
    pairs = w2s_experiment.pairs(config)
    # A simulated or ensemble supervisor trains on no ground truth, so n_gt_rows varies nothing of it.
    trained = [pair for pair in pairs if w2s_experiment.supervisor_kind(config, pair[0]) == "model"]
    weak_models = list(dict.fromkeys(weak for weak, _ in trained))
    runs = [ground_truth_run(m, axis) for axis in DATA_AXIS_VALUES if axis[0] == "n_gt_rows" for m in weak_models]
    return runs + [student_run(loss, list(pair), axis) for axis in DATA_AXIS_VALUES for loss in config["losses"]
                   for pair in (trained if axis[0] == "n_gt_rows" else pairs)]


def ft_weak_lp_gt_runs():
    """ft(weak) + lp(gt) of every student (every loss and lineage), when config analyses.ft_weak_lp_gt is on."""
    if not config["analyses"]["ft_weak_lp_gt"]:
        return []
    return [ft_weak_lp_gt_run(loss, chain) for loss in config["losses"] for chain in STUDENT_CHAINS]


def all_runs():
    return trained_runs() + supervisor_runs() + ft_weak_lp_gt_runs() + prompt_runs()


def selected(dataset, seed, run):
    """Whether config only_runs lets this run be built: every run when it is empty."""
    name = f"{dataset}/seed{seed}/{run}"
    return not config["only_runs"] or any(fnmatch.fnmatchcase(name, pattern) for pattern in config["only_runs"])


@functools.cache
def each_trained_run():
    """(dataset, seed, run) of every training job, in a fixed order."""
    return [(d, s, r) for d in config["datasets"] for s in config["seeds"] for r in trained_runs() if selected(d, s, r)]


def each_run(runs):
    """(dataset, seed, run) of each of `runs` in every dataset and seed that config only_runs selects."""
    return [(d, s, r) for d in config["datasets"] for s in config["seeds"] for r in runs if selected(d, s, r)]


def trains_model(dataset, seed, model):
    """Whether a selected training run on this dataset and seed ends in `model`."""
    return any(parse_run(r)[2][-1] == model for d, s, r in each_trained_run() if (d, s) == (dataset, seed))


def curve_runs():
    """The identity of each history that training_curves reads, in its input order."""
    identities = []
    for dataset, seed, run in each_trained_run():
        kind, loss, chain = parse_run(run)
        identities.append({
            "dataset": dataset, "seed": seed, "run": run, "kind": kind, "model": chain[-1], "loss": loss,
            "lineage": " → ".join(chain), "model_selection": training_params(chain[-1])["model_selection"],
        })
    return identities


def all_metrics():
    return [f"results/{dataset}/seed{seed}/{run}/metrics.json" for dataset, seed, run in each_run(all_runs())]


def benchmark_files():
    """The benchmark file of every job that loads a model: training, feature extraction, prompting."""
    runs = list(each_trained_run())
    runs += each_run(ft_weak_lp_gt_runs() + prompt_runs())
    runs += [(d, s, f"embed_features/{r}") for d, s, r in each_run(ft_weak_lp_gt_runs())
             if not is_probe(parse_run(r)[2][-1])]
    runs += [(d, s, f"embed_features/{m}") for d in config["datasets"] for s in config["seeds"]
             for m in TRAINED_MODELS if is_probe(m) and trains_model(d, s, m)]
    runs += [(d, s, f"genft/{m}") for d in config["datasets"] for s in config["seeds"]
             for twin, m in GENERATIVE_VARIANTS.items() if trains_model(d, s, twin)]
    return [f"results/benchmarks/{d}/seed{s}/{r}.tsv" for d, s, r in runs]


def prepared_data_files():
    names = [f"{s}.parquet" for s in SPLITS] + [f"unlabelled/{s}.parquet" for s in SPLITS]
    names += ["label_balance.json", "source.json"]
    return [f"results/data/{d}/seed{s}/{n}" for d in config["datasets"] for s in config["seeds"] for n in names]


def dataset_files(wildcards):
    """Local files in the hub schema, or the folder of images, when the dataset reads from disk
    instead of the hub."""
    entry = config["datasets"][wildcards.dataset]
    folders = {key: entry[key] for key in ("image_folder", "imagenet_root") if key in entry}
    if folders:
        return folders
    files = entry.get("data_files", {})
    if not files and wildcards.dataset == "vader_movies":
        return {"train": "results/downloads/vader_movies/movieReviewSnippets_GroundTruth.txt"}
    return files


# What embed_features reads, in the order its rule passes them.
EMBEDDING_KEYS = w2s_settings.EmbeddingSettings.keys()


def features_input(model):
    """The features file a probe-mode model trains on; nothing in full finetuning."""

    def inputs(wildcards):
        name = model(wildcards)
        if not is_probe(name):
            return {}
        return {"features": f"results/{wildcards.dataset}/seed{wildcards.seed}/features/{name}.safetensors"}

    return inputs


def student_inputs(wildcards):
    """What a student reads: label-free views of train_w2s and test, and its supervisor's weak labels.
    No true label reaches it, except the labelled train_w2s as `oracle_labels` when its model opts in
    to ground_truth_holdout (and its metrics then say uses_ground_truth_selection)."""
    chain = w2s_experiment.split_chain(wildcards.chain)
    supervisor = supervisor_run(wildcards.loss, chain, wildcards_axis(wildcards))
    inputs = {
        "train_w2s": unlabelled_path(wildcards, "train_w2s"),
        "test": unlabelled_path(wildcards, "test"),
        "weak_labels": f"results/{wildcards.dataset}/seed{wildcards.seed}/{supervisor}/weak_labels.parquet",
    }
    if training_params(chain[-1])["model_selection"] == "ground_truth_holdout":
        inputs["oracle_labels"] = data_paths(wildcards)["train_w2s"]
    return inputs


def strong_model(wildcards):
    return w2s_experiment.split_chain(wildcards.chain)[-1]


def prediction_file(wildcards, run):
    return f"results/{wildcards.dataset}/seed{wildcards.seed}/{run}/predictions.parquet"


def ft_weak_lp_gt_features(wildcards):
    """The features ft(weak) + lp(gt) fits on: the finetuned student's, embedded from its checkpoint, or for a
    probe-mode student the strong model's cached frozen features, which are the student's own."""
    seed_dir = f"results/{wildcards.dataset}/seed{wildcards.seed}"
    model = strong_model(wildcards)
    if is_probe(model):
        return {"features": f"{seed_dir}/features/{model}.safetensors"}
    return {"features": f"{seed_dir}/ftlp/{wildcards.loss}/{wildcards.chain}/features.safetensors"}


def evaluation_inputs(wildcards):
    kind, loss, chain = parse_run(wildcards.run)
    axis = run_axis(wildcards.run)
    inputs = {
        "self": prediction_file(wildcards, wildcards.run),
        # Predictions hold no labels; the true labels come from the labelled test split, read here only.
        "test": data_paths(wildcards)["test"],
        "label_balance": f"results/data/{wildcards.dataset}/seed{wildcards.seed}/label_balance.json",
    }
    # Images are never truncated; a text model's metrics report how many texts were (a simulated or ensemble
    # supervisor reads none).
    if kind in ("ground_truth", "student", "ft_weak_lp_gt") and reads_text(wildcards.dataset):
        # A twin reads its model's tokenizer and max_length, so its model's counts are its own.
        counted = w2s_experiment.generative_base(config, chain[-1])
        inputs["truncation"] = f"results/{wildcards.dataset}/seed{wildcards.seed}/truncation/{counted}.json"
    if kind == "student":
        inputs["supervisor"] = prediction_file(wildcards, supervisor_run(loss, chain, axis))
        if task_params(wildcards.dataset)["kind"] == "generative":
            # What it learned from: its metrics count the empty weak labels (and, chess, the legal moves).
            supervisor = supervisor_run(loss, chain, axis)
            inputs["weak_labels"] = f"results/{wildcards.dataset}/seed{wildcards.seed}/{supervisor}/weak_labels.parquet"
    if kind == "ft_weak_lp_gt":
        inputs["student"] = prediction_file(wildcards, student_run(loss, chain))
    if kind in ("student", "ft_weak_lp_gt"):
        # PGR against the weak model that labelled the lineage's data, and the ceiling on every train_gt row.
        inputs["weak"] = prediction_file(wildcards, root_run(chain[0], axis))
        inputs["ceiling"] = prediction_file(wildcards, f"gt/{chain[-1]}")
    return inputs


def weak_context(name):
    """What supervises a lineage from its root `name`: a model, a simulated or an ensemble supervisor, in words."""
    entry = config["supervisors"].get(name, {})
    return {
        "weak_kind": w2s_experiment.supervisor_kind(config, name),
        "weak_method": w2s_experiment.supervisor_method(config, name),
        "weak_structure": entry.get("simulate"),
        "weak_like": entry.get("like"),
        "weak_members": ", ".join(entry["ensemble"]) if "ensemble" in entry else None,
    }


def trained_rows(kind, chain, axis, dataset):
    """(n_gt_rows, n_weak_labels) of a run: the train_gt rows its lineage's weak model (or a ground-truth run
    itself) trained on, and the weak labels a student trained on (its step's slice, or the axis's n)."""
    if kind not in ("ground_truth", "student"):
        return None, None
    entry = config["datasets"][dataset]
    n_train_gt = w2s_experiment.train_gt_rows(entry)
    n_gt_rows = axis[1] if axis and axis[0] == "n_gt_rows" else n_train_gt
    if kind == "ground_truth":
        return n_gt_rows, None
    if axis and axis[0] == "n_weak_labels":
        return n_gt_rows, axis[1]
    return n_gt_rows, w2s_experiment.slice_rows(entry["n_train"], config["w2s_slices"], len(chain) - 1, n_train_gt)


def run_context(wildcards):
    kind, loss, chain = parse_run(wildcards.run)
    if kind in ("simulated", "ensemble"):
        return supervisor_context(wildcards, kind, chain[0])
    axis = run_axis(wildcards.run)
    model = chain[-1]
    training = ft_weak_lp_gt_params(model) if kind == "ft_weak_lp_gt" else training_params(model)
    selection = training["model_selection"] if kind != "prompt" else "final"
    n_gt_rows, n_weak_labels = trained_rows(kind, chain, axis, wildcards.dataset)
    context = {
        "dataset": wildcards.dataset,
        "seed": int(wildcards.seed),
        "run": wildcards.run,
        "kind": kind,
        "model": model,
        "model_rank": TRAINED_MODELS.index(model) if model in TRAINED_MODELS else None,
        "params_b": config["models"][model].get("params_b"),
        "loss": loss,
        "lineage": " → ".join(chain),
        "chain_length": len(chain),
        "weak_model": chain[0],
        "supervisor_run": supervisor_run(loss, chain, axis) if kind == "student" else None,
        "student_run": student_run(loss, chain) if kind == "ft_weak_lp_gt" else None,
        "data_axis": axis[0] if axis else None,
        "n_gt_rows": n_gt_rows,
        "n_weak_labels": n_weak_labels,
        "hub_id": config["models"][model].get("hub_id"),
        "mode": "prompt" if kind == "prompt" else training["mode"],
        "task_kind": task_params(wildcards.dataset)["kind"],
        "n_classes": task_params(wildcards.dataset)["n_classes"],
        "shots": int(re.search(r"(\d+)shot$", wildcards.run).group(1)) if kind == "prompt" else None,
        "model_selection": selection,
        # Selecting a student on true labels breaks the weak-supervision premise.
        "uses_ground_truth_selection": kind == "student" and selection == "ground_truth_holdout",
        **weak_context(chain[0]),
    }
    if GENERATIVE_VARIANTS:
        # Whether the model started from generative finetuning, and the same run without it, for the report.
        context["generative_finetuning"] = model in GENERATIVE_VARIANTS
        base_chain = [w2s_experiment.generative_base(config, m) for m in chain]
        context["run_without_generative_finetuning"] = (
            None if model not in GENERATIVE_VARIANTS
            else f"gt/{base_chain[-1]}" if kind == "ground_truth" else student_run(loss, base_chain))
    return context


def supervisor_context(wildcards, kind, name):
    """A simulated or ensemble supervisor's identity in its metrics: no model, mode or training of its own."""
    return {
        "dataset": wildcards.dataset, "seed": int(wildcards.seed), "run": wildcards.run, "kind": kind,
        "model": name, "model_rank": None, "params_b": None, "loss": None, "lineage": name, "chain_length": 1,
        "weak_model": name, "supervisor_run": None, "student_run": None, "data_axis": None, "n_gt_rows": None,
        "n_weak_labels": None, "hub_id": None, "mode": kind,
        "task_kind": task_params(wildcards.dataset)["kind"], "n_classes": task_params(wildcards.dataset)["n_classes"],
        "shots": None, "model_selection": None, "uses_ground_truth_selection": False,
        "supervisor": w2s_experiment.supervisor_entry(config, name), **weak_context(name),
    }


def simulated_entry(wildcards):
    return w2s_experiment.supervisor_entry(config, wildcards.supervisor)


def simulation_inputs(wildcards):
    """The labelled splits it places errors on, the real weak model whose error count it copies and, for
    least_confident, the strong ground-truth model whose doubt places them."""
    entry = simulated_entry(wildcards)
    inputs = {s: data_paths(wildcards)[s] for s in ("train_w2s", "test")}
    inputs["like"] = prediction_file(wildcards, f"gt/{entry['like']}")
    if "strong" in entry:
        inputs["strong"] = prediction_file(wildcards, f"gt/{entry['strong']}")
    return inputs


def unmatched_run_patterns():
    """The patterns of config only_runs that match no run of the config (a typo would otherwise build nothing)."""
    names = [f"{d}/seed{s}/{r}" for d in config["datasets"] for s in config["seeds"] for r in all_runs()]
    return [pattern for pattern in config["only_runs"] if not fnmatch.filter(names, pattern)]


if unmatched_run_patterns():
    sys.exit(f"Invalid config: only_runs {', '.join(map(repr, unmatched_run_patterns()))} match no run of this "
             f"config; a run is named '<dataset>/seed<seed>/<run>', e.g. "
             f"'{next(iter(config['datasets']))}/seed{config['seeds'][0]}/{all_runs()[0]}'")
