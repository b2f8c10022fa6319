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
        training=lambda w: w2s_experiment.training_job_params(config, w.model),
        loss="xent",
        loss_params={},
        task=lambda w: training_task_params(w, [w.model]),
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


# The data axis n_gt_rows (config axes): a direct pair's weak model on a seeded, nested subset of n train_gt
# rows, which labels the slice for that axis value's students.
use rule train_ground_truth as train_ground_truth_n_gt_rows with:
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/gt/{model}/n_gt_rows{n_gt_rows}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/gt/{model}/n_gt_rows{n_gt_rows}/predictions.parquet",
        history="results/{dataset}/seed{seed}/gt/{model}/n_gt_rows{n_gt_rows}/history.parquet",
        sweep="results/{dataset}/seed{seed}/gt/{model}/n_gt_rows{n_gt_rows}/sweep.parquet",
    params:
        model_entry=lambda w: model_entry(w.model),
        training=lambda w: w2s_experiment.training_job_params(config, w.model),
        loss="xent",
        loss_params={},
        task=lambda w: training_task_params(w, [w.model]),
        n_rows=lambda w: int(w.n_gt_rows),
    log:
        "results/logs/{dataset}/seed{seed}/gt/{model}/n_gt_rows{n_gt_rows}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/gt/{model}/n_gt_rows{n_gt_rows}.tsv"
