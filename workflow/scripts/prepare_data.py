from w2s.data.preparation import write_prepared
from w2s.data.reading import DataSource
from w2s.pipeline.filetimes import write_manifest
from w2s.runlog import log_to

log_to(snakemake.log[0])
outputs = dict(snakemake.output.items())
file_times = outputs.pop("file_times")
write_prepared(
    dataset=snakemake.wildcards.dataset,
    n_train=snakemake.params.n_train,
    n_test=snakemake.params.n_test,
    seed=int(snakemake.wildcards.seed),
    data_files={k: v for k, v in snakemake.input.items() if k in ("train", "test")} or None,
    outputs=outputs,
    balance=snakemake.params.balance,
    source=DataSource.from_record(snakemake.params.source),
    entry=snakemake.params.entry,
)
# Last, so that it records the final bytes and times of every other output.
write_manifest(file_times, outputs.values())
