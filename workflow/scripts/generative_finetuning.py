from pathlib import Path

from w2s.pipeline.gpus import start_gpu_job

start_gpu_job(snakemake)  # first: it claims the job's GPUs before anything imports torch

from w2s.models.text import job_model_entry  # noqa: E402
from w2s.training.settings import GenerativeFinetuningSettings  # noqa: E402
from w2s.training.unsupervised_lm import generative_finetune  # noqa: E402

generative_finetune(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=GenerativeFinetuningSettings.from_params(snakemake.params.settings),
    seed=int(snakemake.wildcards.seed),
    # The label-free views of the configured splits, in the config's order.
    text_paths=list(snakemake.input.texts),
    out=dict(snakemake.output.items()),
    # Beside the outputs, not one of them: Snakemake deletes an incomplete job's outputs before a rerun.
    resume_dir=Path(snakemake.output.history).parent / ".resume",
    code_paths=[snakemake.input.code],  # the digest of this script and the modules it imports
)
