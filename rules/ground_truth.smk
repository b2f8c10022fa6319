# Ground-truth models: every model finetuned on train_gt's true labels. The same run is the
# weak supervisor when the model is the smaller of a pair, and the ceiling when it is the larger.

rule train_ground_truth:
    input:
        unpack(ground_truth_data),
        unpack(features_input(lambda w: w.model)),
        unpack(converted_model(lambda w: w.model)),
        unpack(generative_checkpoint(lambda w: w.model, "train")),
        code=script_code("train_model.py"),
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/gt/{model}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/gt/{model}/predictions.parquet",
        history="results/{dataset}/seed{seed}/gt/{model}/history.parquet",
        # Test predictions at every L2 strength of a probe's grid (other modes: of their one model).
        sweep="results/{dataset}/seed{seed}/gt/{model}/sweep.parquet",
    params:
        model_entry=lambda w: model_entry(w.model),
        training=lambda w: w2s_config.training_job_params(config, w.model),
        loss="xent",
        loss_params={},
        task=lambda w: task_params(w.dataset),
    log:
        "results/logs/{dataset}/seed{seed}/gt/{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/gt/{model}.tsv"
    threads: 4
    resources:
        **model_job_resources(lambda w: w.model, "train"),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_model.py"
