# Checkpoints converted once to transformers' native code, so that no job runs a hub repository's
# remote code: Qwen-1 (`convert: qwen1`) becomes a Qwen2 folder that every job of the model loads.

import math


rule convert_qwen1:
    input:
        code=script_code("convert_qwen1.py"),
    output:
        directory("results/models/{model}"),
    params:
        hub_id=lambda w: config["models"][w.model]["hub_id"],
        revision=lambda w: config["models"][w.model]["revision"],
    log:
        "results/logs/convert_qwen1/{model}.log",
    resources:
        gpu=0,
        # One source shard (about 2 GB for Qwen-1's) and its converted copy at a time, and the tokenizer.
        mem_mb=16000,
        # Downloading and rewriting about 2 GB of bf16 weights per billion parameters: 3 minutes each
        # (slower than 15 MB/s would not fit), after an hour for everything else.
        runtime=lambda w: 60 + math.ceil(3 * config["models"][w.model].get("params_b", 100)),
    conda:
        "../environment.yml"
    script:
        "../workflow/scripts/convert_qwen1.py"
