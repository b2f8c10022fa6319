import pandas as pd

from w2s import io
from w2s.evaluation.curves import regularisation_sweep
from w2s.runlog import log_to
from w2s.report.page import build_report
from w2s.report.views import ReportInputs

log_to(snakemake.log[0])
inputs = ReportInputs(
    summary=pd.read_parquet(snakemake.input.summary),
    seed_summary=pd.read_csv(snakemake.input.seeds),
    loss_summary=pd.read_csv(snakemake.input.losses),
    reference=pd.read_csv(snakemake.input.reference),
    curves=pd.read_parquet(snakemake.input.curves),
    leaderboard=pd.read_csv(snakemake.input.leaderboard),
    sweep=regularisation_sweep(list(snakemake.input.sweeps), list(snakemake.input.sweep_tests),
                               snakemake.params.runs),
    provenance=io.read_json(snakemake.input.provenance),
)
build_report(inputs, snakemake.params.out_dir, snakemake.params.title)
