# This job's GPUs are claimed before torch loads: CUDA reads CUDA_VISIBLE_DEVICES once.
from w2s.pipeline.gpus import claim_gpus

claim_gpus(snakemake.resources.gpu)

from w2s.models.prompting import PromptSettings, prompt_baseline  # noqa: E402
from w2s.models.text import job_model_entry  # noqa: E402
from w2s.runlog import log_to  # noqa: E402

log_to(snakemake.log[0], snakemake.threads)
prompt_baseline(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    settings=PromptSettings.from_params(snakemake.params.prompting),
    shots=int(snakemake.wildcards.shots),
    seed=int(snakemake.wildcards.seed),
    split_paths={k: snakemake.input[k] for k in ("train_gt", "test")},
    out_path=snakemake.output[0],
)
