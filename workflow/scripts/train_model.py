from pathlib import Path

from w2s.pipeline.gpus import start_gpu_job

start_gpu_job(snakemake)  # first: it claims the job's GPUs before anything imports torch

from w2s.models.text import job_model_entry  # noqa: E402
from w2s.training.launch import train  # noqa: E402
from w2s.training.settings import TrainingSettings  # noqa: E402

# With several processes (one per GPU, or CPU processes where the job has no GPU) the model is sharded
# over them (FSDP), each started by torchrun with these same values (the settings as their plain params).
train(snakemake.resources.processes, dict(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=TrainingSettings.from_params(snakemake.params.training),
    seed=int(snakemake.wildcards.seed),
    # train_gt (labelled) for ground-truth runs only; train_w2s, test and an out-of-distribution test as label-free views.
    split_paths={k: snakemake.input[k] for k in ("train_gt", "train_w2s", "test", "ood_test")
                 if k in snakemake.input.keys()},
    out=dict(snakemake.output.items()),
    loss=snakemake.params.loss,
    loss_params=snakemake.params.loss_params,
    weak_labels_path=snakemake.input.get("weak_labels"),
    features_path=snakemake.input.get("features"),
    oracle_labels_path=snakemake.input.get("oracle_labels"),
    # Beside the outputs, not one of them: Snakemake deletes an incomplete job's outputs before a rerun.
    resume_dir=str(Path(snakemake.output.predictions).parent / ".resume"),
    code_paths=[snakemake.input.code],  # the digest of this script and the modules it imports
    task=snakemake.params.task,
    # a data axis: train on a seeded nested subset of this many rows (rules with no axis give none)
    n_rows=snakemake.params.get("n_rows"),
), snakemake.log[0], snakemake.threads)
