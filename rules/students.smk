# Students: the last model of a lineage trained with a loss on weak labels from the lineage's
# previous member. A lineage of two models is a direct weak-to-strong pair; longer ones are the
# steps of a bootstrap chain, and chains share every step they have in common.


rule train_student:
    input:
        unpack(student_inputs),
        unpack(features_input(strong_model)),
        unpack(converted_model(strong_model)),
        unpack(generative_checkpoint(strong_model, "train")),
        code=script_code("train_model.py"),
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/w2s/{loss}/{chain}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/predictions.parquet",
        history="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/history.parquet",
        # Test predictions at every L2 strength of a probe's grid (other modes: of their one model).
        sweep="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/sweep.parquet",
    params:
        model_entry=lambda w: model_entry(strong_model(w)),
        training=lambda w: w2s_experiment.training_job_params(config, strong_model(w)),
        # The loss of LOSSES the job trains with; a named variant's own name lives in the paths only.
        loss=lambda w: w2s_validation.loss_base(config, w.loss),
        loss_params=lambda w: w2s_experiment.student_loss_params(config, w.loss, strong_model(w)),
        task=lambda w: training_task_params(w, w2s_experiment.split_chain(w.chain)),
    log:
        "results/logs/{dataset}/seed{seed}/w2s/{loss}/{chain}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/w2s/{loss}/{chain}.tsv"
    threads: 4
    resources:
        **model_job_resources(strong_model, "train"),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/train_model.py"


# The data axes (config axes), direct pairs only: a student on n of its slice's weak labels (n_weak_labels), or
# on the weak labels of its weak model trained on n train_gt rows (n_gt_rows; student_inputs picks them).
use rule train_student as train_student_n_weak_labels with:
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_weak_labels{n_weak_labels}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_weak_labels{n_weak_labels}/predictions.parquet",
        history="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_weak_labels{n_weak_labels}/history.parquet",
        sweep="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_weak_labels{n_weak_labels}/sweep.parquet",
    params:
        model_entry=lambda w: model_entry(strong_model(w)),
        training=lambda w: w2s_experiment.training_job_params(config, strong_model(w)),
        loss=lambda w: w2s_validation.loss_base(config, w.loss),
        loss_params=lambda w: w2s_experiment.student_loss_params(config, w.loss, strong_model(w)),
        task=lambda w: training_task_params(w, w2s_experiment.split_chain(w.chain)),
        n_rows=lambda w: int(w.n_weak_labels),
    log:
        "results/logs/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_weak_labels{n_weak_labels}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_weak_labels{n_weak_labels}.tsv"


use rule train_student as train_student_n_gt_rows with:
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_gt_rows{n_gt_rows}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_gt_rows{n_gt_rows}/predictions.parquet",
        history="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_gt_rows{n_gt_rows}/history.parquet",
        sweep="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_gt_rows{n_gt_rows}/sweep.parquet",
    log:
        "results/logs/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_gt_rows{n_gt_rows}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/w2s/{loss}/{chain}/n_gt_rows{n_gt_rows}.tsv"
