from w2s.evaluation.leaderboard import write_leaderboard
from w2s.runlog import log_to

log_to(snakemake.log[0])
write_leaderboard(snakemake.input.summary, snakemake.input.curves, snakemake.output[0])
