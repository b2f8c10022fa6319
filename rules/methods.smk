# Methods: a weak-to-strong method of the config's methods: block, a callable in the user's own file or module
# (w2s.methods), run for every lineage beside the losses' students. Its run is w2s/<method>/<lineage>, read by
# evaluation, chains and the report as a student's. It runs in a shadow folder that holds only its declared inputs,
# none of them labelled: a method that looks for labels by relative path or by globbing results/ finds nothing.


rule run_method:
    input:
        unpack(method_inputs),
        unpack(features_input(strong_model)),
        unpack(converted_model(strong_model)),
        code=script_code("run_method.py"),
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/w2s/{method}/{chain}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/w2s/{method}/{chain}/predictions.parquet",
        history="results/{dataset}/seed{seed}/w2s/{method}/{chain}/history.parquet",
        sweep="results/{dataset}/seed{seed}/w2s/{method}/{chain}/sweep.parquet",
    params:
        model_entry=lambda w: model_entry(strong_model(w)),
        training=lambda w: w2s_experiment.training_job_params(config, strong_model(w)),
        # The method's entry and params: a params change reruns exactly its runs and what reads them.
        method=lambda w: config["methods"][w.method],
        task=lambda w: training_task_params(w, w2s_experiment.split_chain(w.chain)),
        # The dataset's question and label words, for methods that prompt or build contrast pairs.
        prompt=lambda w: {
            **w2s_experiment.method_prompt_params(config, w.dataset),
            "dtype": training_params(strong_model(w))["dtype"],
        },
    shadow:
        "minimal"
    log:
        "results/logs/{dataset}/seed{seed}/w2s/{method}/{chain}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/w2s/{method}/{chain}.tsv"
    threads: 4
    resources:
        **model_job_resources(strong_model, "train"),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/run_method.py"
