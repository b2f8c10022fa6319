from w2s.data.preparation import write_ood_test
from w2s.data.reading import DataSource
from w2s.runlog import log_to

log_to(snakemake.log[0])
write_ood_test(
    dataset=snakemake.wildcards.dataset,
    n_test=snakemake.params.ood["n_test"],
    seed=int(snakemake.wildcards.seed),
    ood=snakemake.params.ood,
    data_file=snakemake.input.get("ood_file"),
    outputs=dict(snakemake.output.items()),
    balance=snakemake.params.balance,
    source=DataSource.from_record(snakemake.params.source),
    entry=snakemake.params.entry,
)
