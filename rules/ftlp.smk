# ft(weak) + lp(gt) (config analyses.ft_weak_lp_gt): a linear probe fit with ground-truth labels on train_gt over
# a student's own frozen features, to ask how much of the ceiling its features hold after weak supervision.


# A finetuned student's features: its checkpoint's pooled hidden states of every split, the input its head read.
# Only finetuned students have one: a probe-mode student's features are its model's frozen ones (w2s.pipeline.runs).
rule embed_student_features:
    input:
        unpack(unlabelled_paths),
        unpack(converted_model(strong_model)),
        checkpoint="results/{dataset}/seed{seed}/w2s/{loss}/{chain}/checkpoint",
        code=script_code("embed_features.py"),
    output:
        "results/{dataset}/seed{seed}/ftlp/{loss}/{chain}/features.safetensors",
    params:
        model_entry=lambda w: model_entry(strong_model(w)),
        training=lambda w: {k: training_params(strong_model(w))[k] for k in EMBEDDING_KEYS},
        task=lambda w: task_params(w.dataset),
    log:
        "results/logs/{dataset}/seed{seed}/embed_features/ftlp/{loss}/{chain}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/embed_features/ftlp/{loss}/{chain}.tsv"
    threads: 4
    resources:
        **model_job_resources(strong_model, "embed"),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/embed_features.py"


# The ground-truth probe itself: a ground-truth run in probe mode, on the student's features.
use rule train_ground_truth as train_ft_weak_lp_gt with:
    input:
        unpack(ground_truth_data),
        # a finetuned student's features (a probe student's would be its model's frozen ones: w2s.pipeline.runs)
        features="results/{dataset}/seed{seed}/ftlp/{loss}/{chain}/features.safetensors",
        code=script_code("train_model.py"),
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/ftlp/{loss}/{chain}/checkpoint"),
        predictions="results/{dataset}/seed{seed}/ftlp/{loss}/{chain}/predictions.parquet",
        history="results/{dataset}/seed{seed}/ftlp/{loss}/{chain}/history.parquet",
        sweep="results/{dataset}/seed{seed}/ftlp/{loss}/{chain}/sweep.parquet",
    params:
        model_entry=lambda w: model_entry(strong_model(w)),
        training=lambda w: ft_weak_lp_gt_params(strong_model(w)),
        loss="xent",
        loss_params={},
        task=lambda w: task_params(w.dataset),
    log:
        "results/logs/{dataset}/seed{seed}/ftlp/{loss}/{chain}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/ftlp/{loss}/{chain}.tsv"
    resources:
        # a probe head on cached features, whatever the student's own mode: no GPU, one process
        **model_job_resources(strong_model, "train", training=w2s_experiment.ft_weak_lp_gt_params),
