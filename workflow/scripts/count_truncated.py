from w2s.pipeline.gpus import start_gpu_job

start_gpu_job(snakemake)  # first: it claims the job's GPUs before anything imports torch

from w2s.models.text import job_model_entry  # noqa: E402
from w2s.models.truncation import write_truncation  # noqa: E402

write_truncation(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    max_length=snakemake.params.max_length,
    split_paths={k: v for k, v in snakemake.input.items() if k in ("train_gt", "train_w2s", "test")},
    out_path=snakemake.output[0],
)
