import os

import pandas as pd

from w2s import io
from w2s.revisions import WORKFLOW_LOCK_ENV, read_lock
from w2s.runlog import log_to
from w2s.report.provenance import CONFIG_FILES_ENV, collect, run_files

log_to(snakemake.log[0])
record = collect(
    workflow_dir=snakemake.scriptdir,  # git finds the checkout from any folder inside it
    config_sha256=snakemake.params.config_sha256,
    benchmark_paths=list(snakemake.input.benchmarks),
    curves=pd.read_parquet(snakemake.input.curves),
    data_paths=list(snakemake.input.data),
    dvc_lock="dvc.lock",  # DVC runs the workflow from its project root, the working directory
    # The config's hash is a param, so a changed model entry rebuilds this record.
    models=snakemake.config["models"],
    hub_lock=read_lock(os.environ[WORKFLOW_LOCK_ENV]),  # the lock rules/common.smk read
    # Untracked or changed config and data files are named: the commit alone would not reproduce the run.
    read_files=run_files([f for f in os.environ[CONFIG_FILES_ENV].split(os.pathsep) if f],
                         snakemake.config["datasets"]),
)
io.write_json(record, snakemake.output[0])
