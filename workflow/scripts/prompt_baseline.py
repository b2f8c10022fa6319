from w2s.pipeline.gpus import start_gpu_job

start_gpu_job(snakemake)  # first: it claims the job's GPUs before anything imports torch

from w2s.models.prompting import PromptSettings, prompt_baseline  # noqa: E402
from w2s.models.text import job_model_entry  # noqa: E402

prompt_baseline(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=PromptSettings.from_params(snakemake.params.prompting),
    shots=int(snakemake.wildcards.shots),
    seed=int(snakemake.wildcards.seed),
    split_paths={k: snakemake.input[k] for k in ("train_gt", "test")},
    out_path=snakemake.output[0],
)
