from w2s.models.truncation import write_truncation
from w2s.models.text import job_model_entry
from w2s.runlog import log_to

log_to(snakemake.log[0])
write_truncation(
    model_entry=job_model_entry(snakemake.params.model_entry, snakemake.input),
    max_length=snakemake.params.max_length,
    split_paths={k: v for k, v in snakemake.input.items() if k in ("train_gt", "train_w2s", "test")},
    out_path=snakemake.output[0],
)
