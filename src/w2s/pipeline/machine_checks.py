"""Preflight's machine check: this machine's GPUs against what each model's jobs will ask for
(w2s.pipeline.resources)."""

from __future__ import annotations

from typing import Any, Iterator

from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import resources
from w2s.pipeline.preflight_check import FAIL, OK, Check

def check_machine(config: dict[str, Any], only: set[str] | None = None) -> Iterator[Check]:
    import torch

    count = torch.cuda.device_count()
    memory = [torch.cuda.get_device_properties(i).total_memory / 1e9 for i in range(count)]
    gpus = ", ".join(f"{torch.cuda.get_device_name(i)} {m:.0f} GB" for i, m in enumerate(memory)) or "no GPU"
    yield Check(OK, "machine", "GPUs", f"{count}: {gpus}")
    assumed = config.get("resources", {}).get("gpu_memory_gb", resources.GPU_MEMORY_GB)
    if count and min(memory) < assumed * 0.95:
        yield Check(FAIL, "machine", "GPU memory",
                    f"jobs are sized for {assumed:g} GB GPUs but the smallest here has {min(memory):.0f} GB; "
                    f"set resources.gpu_memory_gb: {int(min(memory))} in the config")
    for name in w2s_experiment.trained_models(config):
        if only is not None and name not in only:
            continue
        params = w2s_experiment.training_params(config, name)
        # A probe's model runs in its feature extraction job; the head trains on CPU.
        kind = "embed" if params["mode"] == "probe" else "train"
        need = int(resources.model_job_resources(config["models"][name], params, kind,
                                                 config.get("resources", {}))["gpu"] or 0)
        job = "feature extraction" if kind == "embed" else "training"
        if need > count:
            yield Check(FAIL, f"model {name}", f"GPUs for {job}",
                        f"each {job} job asks for {need} GPU(s); this machine has {count}. Run it on a cluster "
                        "profile (profiles/slurm), or take the model out of the ladder")
        else:
            yield Check(OK, f"model {name}", f"GPUs for {job}", f"each {job} job asks for {need} of {count} GPU(s)")
