from w2s.evaluation.summary import summarize
from w2s.runlog import log_to

log_to(snakemake.log[0])
summarize(list(snakemake.input.metrics), dict(snakemake.output.items()))
