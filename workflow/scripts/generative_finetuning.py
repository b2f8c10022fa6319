# This job's GPUs are claimed before torch loads: CUDA reads CUDA_VISIBLE_DEVICES once.
from pathlib import Path

from w2s.pipeline.gpus import claim_gpus

claim_gpus(snakemake.resources.gpu)

from w2s.models.text import job_model_entry  # noqa: E402
from w2s.runlog import log_to  # noqa: E402
from w2s.training.lm_finetune import GenerativeSettings, generative_finetune  # noqa: E402

log_to(snakemake.log[0], snakemake.threads)
generative_finetune(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=GenerativeSettings.from_params(snakemake.params.settings),
    seed=int(snakemake.wildcards.seed),
    # The label-free views of the configured splits, in the config's order.
    text_paths=list(snakemake.input.texts),
    out=dict(snakemake.output.items()),
    # Beside the outputs, not one of them: Snakemake deletes an incomplete job's outputs before a rerun.
    resume_dir=Path(snakemake.output.history).parent / ".resume",
    code_paths=[snakemake.input.code],  # the digest of this script and the modules it imports
)
