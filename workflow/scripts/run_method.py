from w2s.pipeline.gpus import start_gpu_job

start_gpu_job(snakemake)  # first: it claims the job's GPUs before anything imports torch

from w2s.methods.runner import run_method  # noqa: E402
from w2s.models.prompting import PromptSettings  # noqa: E402
from w2s.models.text import job_model_entry  # noqa: E402
from w2s.pipeline.experiment import split_chain  # noqa: E402
from w2s.runlog import log_to  # noqa: E402
from w2s.training.settings import TrainingSettings  # noqa: E402

log_to(snakemake.log[0], snakemake.threads)
if snakemake.resources.processes != 1:
    raise SystemExit(f"method {snakemake.wildcards.method} runs in one process, but its model asks for "
                     f"{snakemake.resources.processes}; set the model's resources.processes to 1")
run_method(
    name=snakemake.wildcards.method,
    method=snakemake.params.method,
    model=split_chain(snakemake.wildcards.chain)[-1],
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=TrainingSettings.from_params(snakemake.params.training),
    seed=int(snakemake.wildcards.seed),
    # Label-free views only: the shadow folder holds no labelled split.
    split_paths={k: snakemake.input[k] for k in ("train_w2s", "test", "ood_test") if k in snakemake.input.keys()},
    weak_labels_path=snakemake.input.weak_labels,
    features_path=snakemake.input.get("features"),
    out=dict(snakemake.output.items()),
    task=snakemake.params.task,
    prompt=PromptSettings.from_params(snakemake.params.prompt),
)
