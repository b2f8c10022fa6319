from w2s.jobs import embed_features
from w2s.runlog import log_to

log_to(snakemake.log[0], snakemake.threads)
embed_features(
    model_entry=snakemake.params.model_entry,
    params=snakemake.params.training,
    split_paths={k: v for k, v in snakemake.input.items() if k in ("train_gt", "train_w2s", "test")},
    out_path=snakemake.output[0],
)
