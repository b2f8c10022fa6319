from w2s.data.packaged import VADER_MEMBER, VADER_NYT_MEMBER, fetch_vader_snippets
from w2s.runlog import log_to

log_to(snakemake.log[0])
fetch_vader_snippets({VADER_MEMBER: snakemake.output.movies, VADER_NYT_MEMBER: snakemake.output.nyt_editorials})
