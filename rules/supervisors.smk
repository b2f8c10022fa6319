# Supervisors that are no trained model (w2s.data.supervisors): simulated weak labels with a real weak
# model's error count and a chosen error structure, and ensembles of weak models. Each writes a prediction
# file on train_w2s and test like a ground-truth run, which weak_labels and evaluate read as any supervisor's.


rule simulate_supervisor:
    input:
        unpack(simulation_inputs),
        code=script_code("simulate_supervisor.py"),
    output:
        "results/{dataset}/seed{seed}/sim/{supervisor}/predictions.parquet",
    wildcard_constraints:
        supervisor=names_pattern(SIMULATED),
    params:
        structure=lambda w: simulated_entry(w)["simulate"],
        column=lambda w: simulated_entry(w).get("column"),
        n_slices=config["w2s_slices"],
    log:
        "results/logs/{dataset}/seed{seed}/sim/{supervisor}.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/simulate_supervisor.py"


rule ensemble_supervisor:
    input:
        members=lambda w: [prediction_file(w, f"gt/{m}") for m in config["supervisors"][w.supervisor]["ensemble"]],
        code=script_code("ensemble_supervisor.py"),
    output:
        "results/{dataset}/seed{seed}/ens/{supervisor}/predictions.parquet",
    wildcard_constraints:
        supervisor=names_pattern(ENSEMBLES),
    params:
        combine=lambda w: w2s_experiment.supervisor_entry(config, w.supervisor)["combine"],
        weighting=lambda w: w2s_experiment.supervisor_entry(config, w.supervisor)["weighting"],
    log:
        "results/logs/{dataset}/seed{seed}/ens/{supervisor}.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/ensemble_supervisor.py"
