from w2s.data.packaged import fetch_vader_movies
from w2s.runlog import log_to

log_to(snakemake.log[0])
fetch_vader_movies(snakemake.output[0])
