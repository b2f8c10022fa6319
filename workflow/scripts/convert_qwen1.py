from w2s.models.qwen1 import fetch_and_convert
from w2s.runlog import log_to

log_to(snakemake.log[0])
fetch_and_convert(snakemake.params.hub_id, snakemake.params.revision, snakemake.output[0])
