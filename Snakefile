# Weak-to-strong generalization (Burns et al. 2023) as a DAG of artifacts:
#   prepared data -> ground-truth models (weak supervisors and strong ceilings), simulated and ensemble supervisors
#   -> weak labels -> students (direct pairs and bootstrap chain steps), by loss or by plug-in method
#   and prompting baselines -> metrics -> summary tables -> report.
# The real reproduction reads config/config.yaml; pass --configfile for another experiment.

if not config:

    configfile: "config/config.yaml"


report: "workflow/report/workflow.rst"


include: "rules/common.smk"
include: "rules/data.smk"
include: "rules/models.smk"
include: "rules/generative_finetuning.smk"
include: "rules/features.smk"
include: "rules/ground_truth.smk"
include: "rules/supervisors.smk"
include: "rules/weak_labels.smk"
include: "rules/students.smk"
include: "rules/methods.smk"
include: "rules/ftlp.smk"
include: "rules/prompting.smk"
include: "rules/metrics.smk"
include: "rules/report.smk"


rule all:
    default_target: True
    input:
        "results/report/report.html",
        "results/summary.csv",
        "results/summary_seeds.csv",
        "results/summary_losses.csv",
        "results/reference_comparison.csv",
        "results/leaderboard.csv",


# A failed job's own message, last: Snakemake's report of the job (its inputs, outputs, command) comes after
# what the job printed, and would bury it.
onerror:
    from w2s import runlog as w2s_runlog

    w2s_runlog.report_failures(log)
