"""What a job that loads a model asks its scheduler for, derived from the model's size.

rules/common.smk turns these values into Snakemake resources. The local scheduler counts `gpu`
and `mem_mb`; the SLURM executor turns them into --gpus (--gpus=MODEL:N with `gpu_model`),
--cpus-per-gpu, --mem and --time, and the Kubernetes executor into nvidia.com/gpu, cpu and memory
requests. The config's `resources` blocks win key by key: the top-level one sets defaults for
every model, a model's own block overrides them. Partition and account are not here: they belong
to the user's profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Literal

from w2s.pipeline.config import SCHEMA, schema_defaults

JobKind = Literal["train", "embed", "prompt"]

RESOURCE_KEYS = ("gpu", "mem_mb", "runtime", "cpus_per_gpu", "gpu_model")
# The schema's resources defaults: one A100 or H100 with 80 GB (resources.gpu_memory_gb describes other
# GPUs), and the 4 threads every model rule declares, so a one-GPU job gets the CPUs its torch threads use.
RESOURCE_DEFAULTS: dict[str, Any] = schema_defaults(SCHEMA["properties"]["resources"])
GPU_MEMORY_GB: float = RESOURCE_DEFAULTS["gpu_memory_gb"]
CPUS_PER_GPU: int = RESOURCE_DEFAULTS["cpus_per_gpu"]
# GPU bytes per parameter. Full finetuning keeps float32 weights and gradients (4 + 4) and AdamW's
# two float32 moments (8); Adafactor factorises its second moment, so its state is negligible.
# LoRA trains small adapters on a frozen float32 backbone. Inference holds the weights in the
# compute dtype.
FULL_TRAINING_BYTES_PER_PARAM = {"adamw": 16, "adafactor": 8}
LORA_BYTES_PER_PARAM = 4
WEIGHT_BYTES = {"float32": 4, "bfloat16": 2, "float16": 2}
# Activations (with gradient checkpointing for the large models) and the CUDA context.
GPU_MEMORY_OVERHEAD = 1.1
# Host memory: data, tokenizer and Python, plus twice the weights as loaded (state dict and model
# exist together while from_pretrained runs). Training loads float32 master weights.
HOST_BASE_GB = 16
# Runtime is a limit, not an estimate: a job killed at its limit loses all its work, so it is
# generous. Minutes of base and per billion parameters, rounded up to whole hours.
TRAIN_MINUTES = (60, 80)
INFERENCE_MINUTES = (30, 20)
# Without params_b nothing can be derived: one GPU, 16 GB and the former fixed limits.
UNSIZED_RUNTIME = {"train": 120, "embed": 60, "prompt": 60}
UNSIZED_MEM_MB = 16000
# A linear head on cached features: no GPU and little memory, whatever the model's size.
PROBE_HEAD = {"gpu": 0, "mem_mb": 2000, "runtime": 30}
# A many-class probe head (ImageNet: 1000 classes on 2048-d features, 16,000 rows) costs about 10 s per
# L-BFGS step on one CPU core and seconds per fit on a GPU, where w2s.training.probe fits it.
MANY_CLASS_PROBE_HEAD = {"gpu": 1, "mem_mb": 16000, "runtime": 120}


@dataclass(frozen=True)
class JobResources:
    gpu: int
    mem_mb: int
    runtime: int  # minutes
    cpus_per_gpu: int
    gpu_model: str | None = None

    def as_dict(self) -> dict[str, int | str | None]:
        return {key: getattr(self, key) for key in RESOURCE_KEYS}


def gpu_bytes_per_param(kind: JobKind, mode: str, optimizer: str, dtype: str) -> float:
    if kind != "train":
        return WEIGHT_BYTES[dtype]
    if mode == "lora":
        return LORA_BYTES_PER_PARAM
    return FULL_TRAINING_BYTES_PER_PARAM[optimizer]


def derive(
    params_b: float | None,
    kind: JobKind,
    *,
    mode: str = "full",
    optimizer: str = "adamw",
    dtype: str = "float32",
    gpu_memory_gb: float = GPU_MEMORY_GB,
    cpus_per_gpu: int = CPUS_PER_GPU,
) -> JobResources:
    """Resources of a `kind` job on a model of `params_b` billion parameters trained in `mode`.

    GPUs: as many as the weights, gradients and optimiser state need (model parallel on one node);
    host memory and runtime grow with the size too. Probe heads are not derived (PROBE_HEAD).
    """
    if params_b is None:
        return JobResources(gpu=1, mem_mb=UNSIZED_MEM_MB, runtime=UNSIZED_RUNTIME[kind], cpus_per_gpu=cpus_per_gpu)
    gpu_gb = params_b * gpu_bytes_per_param(kind, mode, optimizer, dtype) * GPU_MEMORY_OVERHEAD
    loaded_bytes = WEIGHT_BYTES["float32"] if kind == "train" else WEIGHT_BYTES[dtype]
    host_gb = HOST_BASE_GB + 2 * params_b * loaded_bytes
    base, per_billion = TRAIN_MINUTES if kind == "train" else INFERENCE_MINUTES
    return JobResources(
        gpu=max(1, math.ceil(gpu_gb / gpu_memory_gb)),
        mem_mb=1000 * math.ceil(host_gb),
        runtime=60 * math.ceil((base + per_billion * params_b) / 60),
        cpus_per_gpu=cpus_per_gpu,
    )


def model_job_resources(
    model_entry: dict[str, Any], training: dict[str, Any], kind: JobKind, defaults: dict[str, Any] | None = None,
    n_classes: int = 2,
) -> dict[str, int | str | None]:
    """Snakemake resources of a `kind` job on one model.

    `training` is the model's merged training block (w2s.pipeline.config.training_params), `defaults` the
    config's top-level resources block (the schema's defaults where it has no value). A binary probe
    head trains on cached features: PROBE_HEAD, whatever the config says; a probe head of a task with
    `n_classes` > 2 asks for one GPU (MANY_CLASS_PROBE_HEAD), then the model's own `resources:`. A
    pretrained head only predicts, so it asks for what an embedding job does. Otherwise the derived
    values, then `defaults`, then the model's own `resources:`, key by key.
    """
    defaults = {**RESOURCE_DEFAULTS, **(defaults or {})}
    cpus_per_gpu = defaults["cpus_per_gpu"]
    if kind == "train" and training["mode"] == "probe":
        if n_classes > 2:
            many = JobResources(**MANY_CLASS_PROBE_HEAD, cpus_per_gpu=cpus_per_gpu, gpu_model=defaults.get("gpu_model"))
            return {**many.as_dict(), **model_entry.get("resources", {})}
        return JobResources(**PROBE_HEAD, cpus_per_gpu=cpus_per_gpu).as_dict()
    if kind == "train" and training["mode"] == "pretrained_head":
        kind = "embed"  # its "training" job is one forward pass over the data, like an embedding job
    derived = derive(
        model_entry.get("params_b"), kind, mode=training["mode"], optimizer=training["optimizer"],
        dtype=training["dtype"], gpu_memory_gb=defaults["gpu_memory_gb"],
        cpus_per_gpu=cpus_per_gpu,
    )
    chosen = replace(derived, gpu_model=defaults.get("gpu_model")).as_dict()
    return {**chosen, **model_entry.get("resources", {})}
