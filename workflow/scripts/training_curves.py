from w2s.evaluation.curves import training_curves
from w2s.runlog import log_to

log_to(snakemake.log[0])
training_curves(list(snakemake.input.histories), snakemake.params.runs, snakemake.output[0])
