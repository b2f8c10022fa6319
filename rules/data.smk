# Prepared data: each dataset as (id, input, label) rows in three disjoint splits, the input a text or
# an image (w2s.tasks), and each split's label-free view (id, input) for the jobs that must not see labels.


rule fetch_vader_movies:
    input:
        code=script_code("fetch_vader_movies.py"),
    output:
        movies="results/downloads/vader_movies/movieReviewSnippets_GroundTruth.txt",
        # Rated the same way, from the same sdist: the demo's out-of-distribution test (config ood_test).
        nyt_editorials="results/downloads/vader_movies/nytEditorialSnippets_GroundTruth.txt",
    log:
        "results/logs/fetch_vader_movies.log",
    resources:
        gpu=0,
        mem_mb=1000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/fetch_vader_movies.py"


rule prepare_data:
    input:
        unpack(dataset_files),
        code=script_code("prepare_data.py"),
    output:
        train_gt="results/data/{dataset}/seed{seed}/train_gt.parquet",
        train_w2s="results/data/{dataset}/seed{seed}/train_w2s.parquet",
        test="results/data/{dataset}/seed{seed}/test.parquet",
        # Label-free views (id, text): the only split files students and weak-label jobs read.
        train_gt_unlabelled="results/data/{dataset}/seed{seed}/unlabelled/train_gt.parquet",
        train_w2s_unlabelled="results/data/{dataset}/seed{seed}/unlabelled/train_w2s.parquet",
        test_unlabelled="results/data/{dataset}/seed{seed}/unlabelled/test.parquet",
        label_balance="results/data/{dataset}/seed{seed}/label_balance.json",
        # the hub repository and commit read (or each local file's sha256)
        source="results/data/{dataset}/seed{seed}/source.json",
        # md5 and mtime of the files above, so that `make fetch` can undo the times a DVC
        # checkout rewrites (see w2s.pipeline.filetimes).
        file_times="results/data/{dataset}/seed{seed}/file_times.json",
    params:
        n_train=lambda w: config["datasets"][w.dataset]["n_train"],
        n_test=lambda w: config["datasets"][w.dataset]["n_test"],
        balance=lambda w: config["datasets"][w.dataset]["balance"],
        source=lambda w: data_source(w.dataset).record(),
        # a dataset outside the catalogue: its kind, K, columns and where its rows are
        entry=lambda w: w2s_experiment.dataset_entry_params(config, w.dataset),
    log:
        "results/logs/{dataset}/seed{seed}/prepare_data.log",
    resources:
        gpu=0,
        mem_mb=8000,
        runtime=60,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_data.py"


# A dataset's out-of-distribution test split (config ood_test): rows of another file in the dataset's own format,
# or of another split of its hub repository, converted alike; every model predicts it beside test.
rule prepare_ood_test:
    input:
        unpack(ood_test_files),
        code=script_code("prepare_ood_test.py"),
    output:
        ood_test="results/data/{dataset}/seed{seed}/ood_test.parquet",
        ood_test_unlabelled="results/data/{dataset}/seed{seed}/unlabelled/ood_test.parquet",
        source="results/data/{dataset}/seed{seed}/ood_test_source.json",
    params:
        ood=lambda w: config["datasets"][w.dataset]["ood_test"],
        balance=lambda w: config["datasets"][w.dataset]["balance"],
        source=lambda w: data_source(w.dataset).record(),
        entry=lambda w: w2s_experiment.dataset_entry_params(config, w.dataset),
    log:
        "results/logs/{dataset}/seed{seed}/prepare_ood_test.log",
    resources:
        gpu=0,
        mem_mb=8000,
        runtime=60,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/prepare_ood_test.py"


# How many texts of each split exceed a model's max_length tokens and are truncated; the model's
# metrics report it. Only the tokenizer is loaded.
rule count_truncated:
    input:
        unpack(data_paths),
        unpack(converted_model(lambda w: w.model)),
        code=script_code("count_truncated.py"),
    output:
        "results/{dataset}/seed{seed}/truncation/{model}.json",
    params:
        model_entry=lambda w: model_entry(w.model),
        max_length=lambda w: training_params(w.model)["max_length"],
    log:
        "results/logs/{dataset}/seed{seed}/count_truncated/{model}.log",
    resources:
        gpu=0,
        mem_mb=4000,
        runtime=30,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/count_truncated.py"
