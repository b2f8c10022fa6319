# The report: one self-contained HTML page that works offline, a PNG per figure, and the
# provenance of every number on it. `snakemake --report report.zip` packs the same artifacts.


rule provenance:
    input:
        benchmarks=benchmark_files(),
        curves="results/training_curves.parquet",
        data=prepared_data_files(),
        code=script_code("provenance.py"),
    output:
        "results/report/provenance.json",
    params:
        # The config's hash, so that a config change rebuilds the record that names it.
        config_sha256=CONFIG_SHA256,
    log:
        "results/logs/provenance.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/provenance.py"


rule report:
    input:
        summary="results/summary.parquet",
        seeds="results/summary_seeds.csv",
        losses="results/summary_losses.csv",
        reference="results/reference_comparison.csv",
        curves="results/training_curves.parquet",
        leaderboard="results/leaderboard.csv",
        # Probe heads' test predictions at every L2 strength, for the regularisation sweep.
        # Data-axis runs vary the data, not the fit, and have a view of their own.
        sweeps=[f"results/{d}/seed{s}/{r}/sweep.parquet" for d, s, r in each_trained_run() if not run_axis(r)],
        # The labelled test split of each sweep, in the same order: sweeps hold no labels.
        sweep_tests=[f"results/data/{d}/seed{s}/test.parquet" for d, s, r in each_trained_run() if not run_axis(r)],
        provenance="results/report/provenance.json",
        code=script_code("report.py"),
    output:
        html=report("results/report/report.html", category="Report",
                    caption="../workflow/report/report.rst"),
        figures=report(directory("results/report/figures"), patterns=["{name}.png"], category="Figures",
                       caption="../workflow/report/figures.rst"),
    params:
        out_dir=lambda w, output: str(Path(output.html).parent),
        title=config["report"]["title"],
        runs=[run for run in curve_runs() if not run_axis(run["run"])],
    log:
        "results/logs/report.log",
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/report.py"
