# Prompting baselines: a causal strong model labels test zero-shot or from k ground-truth
# demonstrations, with no training; compared with finetuned models in the report (§5.2.1).


rule prompt_baseline:
    input:
        unpack(data_paths),
        unpack(converted_model(lambda w: w.model)),
        code=script_code("prompt_baseline.py"),
    output:
        "results/{dataset}/seed{seed}/prompt/{model}/{shots}shot/predictions.parquet",
    params:
        model_entry=lambda w: model_entry(w.model),
        prompting=lambda w: {
            **w2s_experiment.prompting_params(config, w.dataset),
            "dtype": training_params(w.model)["dtype"],
        },
    log:
        "results/logs/{dataset}/seed{seed}/prompt/{model}/{shots}shot.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/prompt/{model}/{shots}shot.tsv"
    threads: 4
    resources:
        **model_job_resources(lambda w: w.model, "prompt"),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prompt_baseline.py"
