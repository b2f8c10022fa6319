from w2s.data.supervisors import Ensemble, write_ensemble
from w2s.runlog import log_to

log_to(snakemake.log[0])
write_ensemble(
    member_paths=list(snakemake.input.members),
    ensemble=Ensemble(snakemake.params.combine, snakemake.params.weighting),
    out_path=snakemake.output[0],
)
