# Generative finetuning (paper Section 5.2): each model of generative_finetuning.models is trained once per
# dataset and seed with its next-token loss on the label-free texts of the configured splits. Its twin
# '<model>-genft' starts from this checkpoint in every job: the twin's ground-truth run and its students.


rule generative_finetuning:
    input:
        unpack(converted_model(lambda w: w.model)),
        texts=lambda w: [unlabelled_path(w, s) for s in config["generative_finetuning"]["splits"]],
        code=script_code("generative_finetuning.py"),
    output:
        checkpoint=directory("results/{dataset}/seed{seed}/genft/{model}/checkpoint"),
        history="results/{dataset}/seed{seed}/genft/{model}/history.parquet",
    params:
        model_entry=lambda w: model_entry(w.model),
        settings=lambda w: w2s_experiment.generative_params(config),
    log:
        "results/logs/{dataset}/seed{seed}/genft/{model}.log",
    benchmark:
        "results/benchmarks/{dataset}/seed{seed}/genft/{model}.tsv"
    threads: 4
    resources:
        **generative_job_resources(),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/generative_finetuning.py"
