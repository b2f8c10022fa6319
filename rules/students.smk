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
        training=lambda w: w2s_config.training_job_params(config, strong_model(w)),
        # The loss of LOSSES the job trains with; a named variant's own name lives in the paths only.
        loss=lambda w: w2s_config.loss_base(config, w.loss),
        loss_params=lambda w: w2s_config.student_loss_params(config, w.loss, strong_model(w)),
        task=lambda w: task_params(w.dataset),
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
