# Frozen features for probe-mode models: computed once per model, dataset and seed, and
# shared by that model's ground-truth head and every student head it trains.

rule embed_features:
    input:
        unpack(unlabelled_paths),
        unpack(converted_model(lambda w: w.model)),
        unpack(generative_checkpoint(lambda w: w.model, "embed")),
        code=script_code("embed_features.py"),
    output:
        "results/{dataset}/seed{seed}/features/{model}.safetensors",
    params:
        model_entry=lambda w: model_entry(w.model),
        training=lambda w: {k: training_params(w.model)[k] for k in EMBEDDING_KEYS},
        task=lambda w: task_params(w.dataset),
    log:
        "results/logs/{dataset}/seed{seed}/embed_features/{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/embed_features/{model}.tsv"
    threads: 4
    resources:
        **model_job_resources(lambda w: w.model, "embed"),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/embed_features.py"
