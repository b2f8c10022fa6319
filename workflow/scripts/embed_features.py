from w2s.pipeline.gpus import start_gpu_job

start_gpu_job(snakemake)  # first: it claims the job's GPUs before anything imports torch

from w2s.models.text import job_model_entry  # noqa: E402
from w2s.training.features import embed_features  # noqa: E402
from w2s.training.settings import EmbeddingSettings  # noqa: E402

embed_features(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=EmbeddingSettings.from_params(snakemake.params.training),
    split_paths={k: v for k, v in snakemake.input.items() if k in ("train_gt", "train_w2s", "test", "ood_test")},
    out_path=snakemake.output[0],
    task=snakemake.params.task,
    # a finetuned student's checkpoint, for ft(weak) + lp(gt)'s features (rule embed_student_features)
    checkpoint=snakemake.input.get("checkpoint"),
)
