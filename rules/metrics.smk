# Metrics: accuracy and AUROC of every trained model; for students also PGR against the
# lineage's first (weak) and last (ceiling) ground-truth models, agreement with the supervisor and the
# paired difference from vanilla xent; then the summary tables, every run's training curve in one
# table, and the leaderboard of losses and methods.


rule evaluate:
    input:
        unpack(evaluation_inputs),
        code=script_code("evaluate.py"),
    output:
        "results/{dataset}/seed{seed}/{run}/metrics.json",
    params:
        bootstrap_samples=config["report"]["bootstrap_samples"],
        context=run_context,
    log:
        "results/logs/{dataset}/seed{seed}/evaluate/{run}.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/evaluate.py"


rule summarize:
    input:
        metrics=all_metrics(),
        code=script_code("summarize.py"),
    output:
        parquet="results/summary.parquet",
        csv=report(
            "results/summary.csv", category="Tables", caption="../workflow/report/tables.rst"
        ),
        seeds_csv=report(
            "results/summary_seeds.csv", category="Tables", caption="../workflow/report/tables.rst"
        ),
        losses_csv=report(
            "results/summary_losses.csv", category="Tables", caption="../workflow/report/tables.rst"
        ),
        reference_csv=report(
            "results/reference_comparison.csv", category="Tables", caption="../workflow/report/tables.rst"
        ),
    log:
        "results/logs/summarize.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/summarize.py"


rule training_curves:
    input:
        histories=[f"results/{d}/seed{s}/{r}/history.parquet" for d, s, r in each_trained_run()],
        code=script_code("training_curves.py"),
    output:
        "results/training_curves.parquet",
    params:
        runs=curve_runs(),
    log:
        "results/logs/training_curves.log",
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/training_curves.py"


rule leaderboard:
    input:
        summary="results/summary.parquet",
        curves="results/training_curves.parquet",
        code=script_code("leaderboard.py"),
    output:
        report("results/leaderboard.csv", category="Tables", caption="../workflow/report/tables.rst"),
    log:
        "results/logs/leaderboard.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/leaderboard.py"
