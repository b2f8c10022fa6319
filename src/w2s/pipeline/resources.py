"""What a job that loads a model asks its scheduler for, derived from the model's size.

job_resources and generative_job_resources give a job's values from the config; rules/common.smk turns them into
Snakemake resources, one callable per key. `processes` is the number of training processes
a job runs (w2s.training.distributed): one per GPU for full and LoRA finetuning, whose model is sharded over
them (FSDP); 1 for every other job, whose model, if larger than one GPU, is spread layer by layer
(device_map). A model's resources.processes sets it where the job has no GPU (CPU processes over gloo). The local scheduler counts `gpu`
and `mem_mb`; the SLURM executor turns them into --gpus (--gpus=MODEL:N with `gpu_model`),
--cpus-per-gpu, --mem and --time, and the Kubernetes executor into nvidia.com/gpu, cpu and memory
requests. The config's `resources` blocks win key by key: the top-level one sets defaults for
every model, a model's own block overrides them. Partition and account are not here: they belong
to the user's profile.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from typing import Any, Callable, Literal

from w2s.pipeline.experiment import task_params, training_params
from w2s.pipeline.schema import SCHEMA, schema_defaults

JobKind = Literal["train", "embed", "prompt"]

RESOURCE_KEYS = ("gpu", "mem_mb", "runtime", "cpus_per_gpu", "gpu_model", "processes")
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
# Activations (with gradient checkpointing for the large models) and the CUDA context, where a model is
# spread layer by layer over its GPUs (device_map: inference, and training in one process).
GPU_MEMORY_OVERHEAD = 1.1
# Sharded training (FSDP) holds 1/N of the training state on each GPU, and besides it: the bf16 weights of
# about three gathered layers (the one computing, the next one prefetched, and the bf16 gradients of one)
# at 2 bytes a parameter, for models of ~100 layers about 0.06 GB per billion parameters; plus the CUDA and
# NCCL context and a minibatch's checkpointed layer inputs, about 2 GB.
SHARDED_ACTIVATIONS_GB = (2.0, 0.06)
# Host memory: data, tokenizer and Python, plus twice the weights as loaded (state dict and model
# exist together while from_pretrained runs). Training loads float32 master weights; sharded, only the
# first process loads them and sends the others their shards. Model selection (model_selection other than
# final) keeps a snapshot of the best weights in host memory, never on the GPUs, sharded or not
# (w2s.training.distributed.snapshot): 4 bytes a trainable parameter over all processes, from training's first
# selection to its end, after the loaded weights are gone; the 2 x 4 bytes of loading cover it. On the GPUs it
# would not fit: Qwen-14B's 3 GPUs would each hold 14.2 x 4 / 3 = 18.9 GB more, 97.5 GB of 80.
HOST_BASE_GB = 16
# Runtime is a limit, not an estimate: a job killed at its limit loses all its work, so it is
# generous. Minutes of base and per billion parameters, rounded up to whole hours.
TRAIN_MINUTES = (60, 80)
INFERENCE_MINUTES = (30, 20)
# Without params_b nothing can be derived: one GPU, 16 GB and the former fixed limits.
UNSIZED_RUNTIME = {"train": 120, "embed": 60, "prompt": 60}
UNSIZED_MEM_MB = 16000
# A linear head on cached features: no GPU and little memory, whatever the model's size.
PROBE_HEAD = {"gpu": 0, "mem_mb": 2000, "runtime": 30, "processes": 1}
# A many-class probe head (ImageNet: 1000 classes on 2048-d features, 16,000 rows) costs about 10 s per
# L-BFGS step on one CPU core and seconds per fit on a GPU, where w2s.training.probe fits it.
MANY_CLASS_PROBE_HEAD = {"gpu": 1, "mem_mb": 16000, "runtime": 120, "processes": 1}
# The training modes whose model is sharded over a job's GPUs.
SHARDED_MODES = ("full", "lora")


@dataclass(frozen=True)
class JobResources:
    gpu: int
    mem_mb: int
    runtime: int  # minutes
    cpus_per_gpu: int
    gpu_model: str | None = None
    processes: int = 1

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
    sharded: bool = True,
) -> JobResources:
    """Resources of a `kind` job on a model of `params_b` billion parameters trained in `mode`.

    Training that shards (`sharded`, full or lora): as many GPUs N as make the training state (weights,
    gradients, optimiser state) over N plus the activations (SHARDED_ACTIVATIONS_GB) fit one GPU, one process
    each, and runtime divided by N, since every GPU computes its rows of every batch. Other jobs: as many GPUs
    as the weights (and training state) need with the layers spread over them, in one process, where one
    GPU computes at a time. Host memory and runtime grow with the size too. Probe heads are not derived
    (PROBE_HEAD).
    """
    if params_b is None:
        return JobResources(gpu=1, mem_mb=UNSIZED_MEM_MB, runtime=UNSIZED_RUNTIME[kind], cpus_per_gpu=cpus_per_gpu)
    state_gb = params_b * gpu_bytes_per_param(kind, mode, optimizer, dtype)
    loaded_bytes = WEIGHT_BYTES["float32"] if kind == "train" else WEIGHT_BYTES[dtype]
    mem_mb = 1000 * math.ceil(HOST_BASE_GB + 2 * params_b * loaded_bytes)
    base, per_billion = TRAIN_MINUTES if kind == "train" else INFERENCE_MINUTES
    if kind == "train" and sharded and mode in SHARDED_MODES:
        fixed_gb, gb_per_billion = SHARDED_ACTIVATIONS_GB
        free_gb = gpu_memory_gb - fixed_gb - gb_per_billion * params_b
        if free_gb <= 0:
            raise ValueError(f"a {params_b}B model's activations alone fill a {gpu_memory_gb} GB GPU when sharded; "
                             "set resources.gpu_memory_gb to your GPUs' memory or the model's resources by hand")
        gpus = max(1, math.ceil(state_gb / free_gb))
        return JobResources(
            gpu=gpus,
            mem_mb=mem_mb,
            runtime=60 * math.ceil((base + per_billion * params_b / gpus) / 60),
            cpus_per_gpu=cpus_per_gpu,
            processes=gpus,
        )
    return JobResources(
        gpu=max(1, math.ceil(state_gb * GPU_MEMORY_OVERHEAD / gpu_memory_gb)),
        mem_mb=mem_mb,
        runtime=60 * math.ceil((base + per_billion * params_b) / 60),
        cpus_per_gpu=cpus_per_gpu,
    )


def model_job_resources(
    model_entry: dict[str, Any], training: dict[str, Any], kind: JobKind, defaults: dict[str, Any] | None = None,
    n_classes: int = 2, sharded: bool = True,
) -> dict[str, int | str | None]:
    """Snakemake resources of a `kind` job on one model.

    `training` is the model's merged training block (w2s.pipeline.experiment.training_params), `defaults` the
    config's top-level resources block (the schema's defaults where it has no value). A binary probe
    head trains on cached features: PROBE_HEAD, whatever the config says; a probe head of a task with
    `n_classes` > 2 asks for one GPU (MANY_CLASS_PROBE_HEAD), then the model's own `resources:`. A
    pretrained head only predicts, so it asks for what an embedding job does. Otherwise the derived
    values, then `defaults`, then the model's own `resources:`, key by key. Finetuning shards its model
    over its GPUs, one process each, unless not `sharded` (a generative task's); every other job runs in
    one process, whatever the model's resources.processes says.
    """
    defaults = {**RESOURCE_DEFAULTS, **(defaults or {})}
    cpus_per_gpu = defaults["cpus_per_gpu"]
    own = model_entry.get("resources", {})
    if kind == "train" and training["mode"] == "probe":
        if n_classes > 2:
            many = JobResources(**MANY_CLASS_PROBE_HEAD, cpus_per_gpu=cpus_per_gpu, gpu_model=defaults.get("gpu_model"))
            return {**many.as_dict(), **own, "processes": 1}
        return JobResources(**PROBE_HEAD, cpus_per_gpu=cpus_per_gpu).as_dict()
    if kind == "train" and training["mode"] == "pretrained_head":
        kind = "embed"  # its "training" job is one forward pass over the data, like an embedding job
    sharding = kind == "train" and sharded and training["mode"] in SHARDED_MODES
    derived = derive(
        model_entry.get("params_b"), kind, mode=training["mode"], optimizer=training["optimizer"],
        dtype=training["dtype"], gpu_memory_gb=defaults["gpu_memory_gb"],
        cpus_per_gpu=cpus_per_gpu, sharded=sharding,
    )
    chosen = {**replace(derived, gpu_model=defaults.get("gpu_model")).as_dict(), **own}
    if not sharding:
        return {**chosen, "processes": 1}
    processes = own.get("processes", max(1, chosen["gpu"]))
    if chosen["gpu"] > 0 and processes != chosen["gpu"]:
        raise ValueError(f"a model's resources.processes is {processes} but its training job has {chosen['gpu']} GPUs; "
                         f"sharded training runs one process per GPU, so set processes to {chosen['gpu']} or leave it "
                         "out (it differs from gpu only without GPUs, gpu: 0, where the processes share the CPUs)")
    return {**chosen, "processes": processes}


def job_resources(config: dict[str, Any], model: str, kind: JobKind, dataset: str,
                  training: Callable[[dict[str, Any], str], dict[str, Any]] = training_params) -> dict[str, int | str | None]:
    """What a `kind` job (train, embed or prompt) on `model` and `dataset` asks the scheduler for: derived from
    params_b, the training mode (of `training(config, model)`, the job's training block) and the task's number of
    classes, then the config's resources blocks (model_job_resources). A generative task's training does not shard:
    one process."""
    task = task_params(config, dataset)
    return model_job_resources(config["models"][model], training(config, model), kind, config["resources"],
                               n_classes=task["n_classes"], sharded=task["kind"] != "generative")


def generative_job_resources(config: dict[str, Any], model: str) -> dict[str, int | str | None]:
    """A generative_finetuning job's resources on `model`: full finetuning with the stage's optimizer and dtype,
    whatever the model's own training mode, then the config's resources blocks; in one process, the layers spread
    over the GPUs (generative finetuning does not shard)."""
    stage = config["generative_finetuning"]
    training = {"mode": "full", "optimizer": stage["optimizer"], "dtype": stage["dtype"]}
    return model_job_resources(config["models"][model], training, "train", config["resources"], sharded=False)
