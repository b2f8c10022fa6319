# Ground-truth models: every model finetuned on train_gt's true labels. The same run is the
# weak supervisor when the model is the smaller of a pair, and the ceiling when it is the larger.

rule train_ground_truth:
    input:
        unpack(data_paths),
        unpack(features_input(lambda w: w.model)),
        code=TRAINING_CODE,
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/gt/{model}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/gt/{model}/predictions.parquet",
        history="results/{dataset}/seed{seed}/gt/{model}/history.parquet",
    params:
        model_entry=lambda w: config["models"][w.model],
        training=lambda w: training_params(w.model),
        loss="xent",
        loss_params={},
    log:
        "results/logs/{dataset}/seed{seed}/gt/{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/gt/{model}.tsv"
    threads: 4
    resources:
        gpu=lambda w: run_resources(w.model, "gpu", 1),
        mem_mb=lambda w: run_resources(w.model, "mem_mb", 16000),
        runtime=lambda w: run_resources(w.model, "runtime", 120),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_model.py"
