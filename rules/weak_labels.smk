# Weak labels: a supervisor's predictions on its slice of train_w2s. A ground-truth model
# labels slice 1 for direct students; the student at step k of a chain labels slice k + 1.


rule weak_labels:
    input:
        # The label-free view: weak labels carry the hash of its (id, text) pairs, never a true label.
        train_w2s=lambda w: unlabelled_path(w, "train_w2s"),
        predictions="results/{dataset}/seed{seed}/{run}/predictions.parquet",
        code=script_code("weak_labels.py"),
    output:
        "results/{dataset}/seed{seed}/{run}/weak_labels.parquet",
    params:
        slice_index=lambda w: len(parse_run(w.run)[2]),
        n_slices=config["w2s_slices"],
    log:
        "results/logs/{dataset}/seed{seed}/weak_labels/{run}.log",
    resources:
        gpu=0,
        mem_mb=2000,
        runtime=10,
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/weak_labels.py"
