"""What a model job asks its scheduler for: derived from size and training mode, overridable."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from w2s.pipeline.experiment import ft_weak_lp_gt_params, training_params
from w2s.pipeline.schema import apply_defaults
from w2s.pipeline.resources import (
    FULL_TRAINING_BYTES_PER_PARAM,
    SHARDED_ACTIVATIONS_GB,
    derive,
    generative_job_resources,
    gpu_bytes_per_param,
    job_resources,
    model_job_resources,
)

REPO = Path(__file__).resolve().parents[2]


def shipped(name: str) -> dict:
    return yaml.safe_load((REPO / "config" / name).read_text())


def test_full_finetuning_needs_16_bytes_a_parameter_with_adamw_and_8_with_adafactor() -> None:
    assert gpu_bytes_per_param("train", "full", "adamw", "bfloat16") == 16
    assert gpu_bytes_per_param("train", "full", "adafactor", "bfloat16") == 8
    assert gpu_bytes_per_param("train", "lora", "adamw", "bfloat16") == 4
    assert gpu_bytes_per_param("embed", "probe", "adamw", "bfloat16") == 2
    assert gpu_bytes_per_param("prompt", "full", "adamw", "float32") == 4


def test_gpus_are_as_many_as_the_sharded_training_state_needs() -> None:
    # 7.7B x 16 bytes = 123.2 GB sharded; each 80 GB GPU also holds 2 + 0.06 x 7.7 = 2.46 GB of activations,
    # so 77.54 GB of state: two GPUs; on 40 GB GPUs (37.54 GB each), four.
    assert derive(7.7, "train").gpu == 2
    assert derive(7.7, "train", gpu_memory_gb=40).gpu == 4
    # 14.2B: 227.2 GB over 77.15 GB a GPU, three, where layers spread with 10% over would need four.
    assert (derive(14.2, "train").gpu, derive(14.2, "train", sharded=False).gpu) == (3, 4)
    # The same model with LoRA holds only its frozen float32 weights: 30.8 GB.
    assert derive(7.7, "train", mode="lora").gpu == 1
    # 72.7B x 8 bytes (Adafactor) = 581.6 GB over 80 - 6.36 GB: eight GPUs, where AdamW would need sixteen.
    assert derive(72.7, "train", optimizer="adafactor").gpu == 8
    assert derive(72.7, "train").gpu == 16
    # One process per GPU: every GPU computes, so the limit is the one-GPU time over the GPUs.
    assert derive(72.7, "train", optimizer="adafactor").processes == 8
    assert derive(72.7, "train", optimizer="adafactor").runtime == 60 * 14  # 60 + 80 x 72.7 / 8 = 787 minutes
    assert derive(72.7, "train", optimizer="adafactor", sharded=False).runtime == 5880


def test_activations_that_fill_a_gpu_are_refused() -> None:
    with pytest.raises(ValueError, match="a 72.7B model's activations alone fill a 4 GB GPU when sharded"):
        derive(72.7, "train", gpu_memory_gb=4)


def test_only_finetuning_runs_in_several_processes() -> None:
    entry = {"path": "x", "params_b": 14.2}
    full = {"mode": "full", "optimizer": "adamw", "dtype": "bfloat16"}
    assert model_job_resources(entry, full, "train")["processes"] == 3
    # Generative training, embedding and prompting spread the layers over their GPUs in one process.
    assert model_job_resources(entry, full, "train", sharded=False)["processes"] == 1
    assert model_job_resources(entry, full, "embed")["processes"] == 1
    # Without GPUs a model's processes share the CPUs; with GPUs there is one per GPU.
    cpu = {"path": "x", "resources": {"gpu": 0, "processes": 2}}
    assert model_job_resources(cpu, full, "train")["processes"] == 2
    assert model_job_resources(cpu, full, "prompt")["processes"] == 1
    assert model_job_resources({"path": "x", "resources": {"gpu": 4}}, full, "train")["processes"] == 4
    with pytest.raises(ValueError, match="resources.processes is 2 but its training job has 3 GPUs; .* set processes "
                                         "to 3 or leave it out"):
        model_job_resources({**entry, "resources": {"processes": 2}}, full, "train")


def test_host_memory_and_runtime_grow_with_size() -> None:
    # 16 GB + twice the float32 weights; 60 + 80 minutes a billion, up to the hour.
    small = derive(0.124, "train")
    assert (small.mem_mb, small.runtime, small.cpus_per_gpu) == (17000, 120, 4)
    # Sharded over 3 GPUs, each computing a third of the rows: 60 + 80 x 14.2 / 3 = 439 minutes; in one process
    # with the layers spread, 60 + 80 x 14.2 = 1196. Rank 0 alone loads the weights: the same host memory.
    large = derive(14.2, "train")
    assert (large.mem_mb, large.runtime) == (130000, 480)
    assert (derive(14.2, "train", sharded=False).runtime, derive(14.2, "train", sharded=False).mem_mb) == (1200, 130000)
    # Inference loads the weights in the compute dtype: 16 GB + 2 x 14.2 x 2 bytes; 30 + 20 a billion.
    prompt = derive(14.2, "prompt", dtype="bfloat16")
    assert (prompt.gpu, prompt.mem_mb, prompt.runtime) == (1, 73000, 360)


def test_a_model_of_unknown_size_gets_one_gpu_and_the_former_limits() -> None:
    assert derive(None, "train").as_dict() == {"gpu": 1, "mem_mb": 16000, "runtime": 120, "cpus_per_gpu": 4,
                                              "gpu_model": None, "processes": 1}
    assert derive(None, "embed").runtime == 60


def test_the_real_ladder_asks_for_one_to_eight_gpus() -> None:
    config = shipped("config.yaml")
    requests = {
        name: model_job_resources(entry, training_params(config, name), "train")
        for name, entry in config["models"].items()
    }
    assert {name: r["gpu"] for name, r in requests.items()} == {
        "gpt2": 1, "gpt2-medium": 1, "gpt2-large": 1, "gpt2-xl": 1, "qwen-1.8b": 1,
        "qwen-7b": 2, "qwen-14b": 3, "qwen-72b": 8,
    }
    assert requests["qwen-72b"] == {"gpu": 8, "mem_mb": 598000, "runtime": 840, "cpus_per_gpu": 4,
                                    "gpu_model": None, "processes": 8}


def test_model_selection_keeps_its_snapshot_in_host_memory_so_qwen_14b_fits_three_80_gb_gpus() -> None:
    config = shipped("config.yaml")
    entry = config["models"]["qwen-14b"]
    selecting = {**training_params(config, "qwen-14b"), "model_selection": "weak_holdout"}
    resources = model_job_resources(entry, selecting, "train")
    assert resources == model_job_resources(entry, {**selecting, "model_selection": "final"}, "train")
    assert (resources["gpu"], resources["mem_mb"]) == (3, 130000)
    # Each GPU: 14.2B x 16 bytes over 3, and 2 + 0.06 x 14.2 GB of gathered layers and context: 78.6 GB of 80. The
    # best weights' 14.2 x 4 / 3 = 18.9 GB more would make 97.5; the host holds them, 56.8 GB of its 130 GB, after
    # loading's 2 x 56.8 GB are freed.
    fixed_gb, gb_per_billion = SHARDED_ACTIVATIONS_GB
    per_gpu = 14.2 * FULL_TRAINING_BYTES_PER_PARAM["adamw"] / 3 + fixed_gb + gb_per_billion * 14.2
    assert round(per_gpu, 1) == 78.6
    assert round(per_gpu + 14.2 * 4 / 3, 1) == 97.5
    assert resources["mem_mb"] >= 1000 * (16 + 14.2 * 4)


def test_config_resources_win_key_by_key() -> None:
    entry = {"path": "x", "params_b": 7.7, "resources": {"runtime": 90, "gpu_model": "a100"}}
    training = {"mode": "full", "optimizer": "adamw", "dtype": "bfloat16"}
    defaults = {"gpu_memory_gb": 40, "cpus_per_gpu": 8, "gpu_model": "h100"}
    assert model_job_resources(entry, training, "train", defaults) == {
        "gpu": 4, "mem_mb": 78000, "runtime": 90, "cpus_per_gpu": 8, "gpu_model": "a100", "processes": 4}
    assert model_job_resources({"path": "x", "params_b": 7.7}, training, "train", defaults)["gpu_model"] == "h100"


def test_probe_heads_get_no_gpu_whatever_the_config_says() -> None:
    entry = {"path": "x", "params_b": 7.7, "resources": {"gpu": 2, "mem_mb": 64000}}
    head = model_job_resources(entry, {"mode": "probe", "optimizer": "adamw", "dtype": "float32"}, "train")
    assert head == {"gpu": 0, "mem_mb": 2000, "runtime": 30, "cpus_per_gpu": 4, "gpu_model": None, "processes": 1}
    # Its features are extracted by a job that does load the model, with the model's resources.
    embed = model_job_resources(entry, {"mode": "probe", "optimizer": "adamw", "dtype": "float32"}, "embed")
    assert (embed["gpu"], embed["mem_mb"]) == (2, 64000)


def test_many_class_probe_heads_get_a_gpu_unless_the_model_says_otherwise() -> None:
    training = {"mode": "probe", "optimizer": "adamw", "dtype": "float32"}
    head = model_job_resources({"family": "timm", "name": "resnet50"}, training, "train", n_classes=1000)
    assert head == {"gpu": 1, "mem_mb": 16000, "runtime": 120, "cpus_per_gpu": 4, "gpu_model": None, "processes": 1}
    cpu_only = model_job_resources({"family": "timm", "name": "vit", "resources": {"gpu": 0}}, training, "train",
                                   {"gpu_model": "a100"}, n_classes=10)
    assert cpu_only == {"gpu": 0, "mem_mb": 16000, "runtime": 120, "cpus_per_gpu": 4, "gpu_model": "a100",
                        "processes": 1}


def test_a_pretrained_head_asks_for_an_embedding_jobs_resources() -> None:
    entry = {"family": "torchvision", "name": "alexnet", "params_b": 0.061}
    pretrained = {"mode": "pretrained_head", "optimizer": "adamw", "dtype": "bfloat16"}
    assert model_job_resources(entry, pretrained, "train") == model_job_resources(entry, pretrained, "embed")


def test_a_jobs_resources_from_the_config() -> None:
    """job_resources: a 7B model's finetuning is sharded over as many GPUs as its training state needs, one process
    each (7 x 16 bytes over 80 - 2 - 0.06 x 7 GB free: 2); a 1B model's fits one GPU; a probe head of either (its
    ft(weak) + lp(gt) block) takes no GPU; generative finetuning does not shard."""
    config = apply_defaults({
        "seeds": [0], "w2s_slices": 2, "datasets": {"sst2": {"n_train": 16, "n_test": 4}},
        "models": {"big": {"hub_id": "org/big", "params_b": 7}, "small": {"hub_id": "org/small", "params_b": 1}},
        "ladder": ["small", "big"], "losses": {"xent": {}},
        "generative_finetuning": {"models": ["big"]},
    }, REPO / "config" / "schema.yaml")
    assert job_resources(config, "big", "train", "sst2") == {
        "gpu": 2, "mem_mb": 72000, "runtime": 360, "cpus_per_gpu": 4, "gpu_model": None, "processes": 2}
    assert job_resources(config, "small", "train", "sst2") == {
        "gpu": 1, "mem_mb": 24000, "runtime": 180, "cpus_per_gpu": 4, "gpu_model": None, "processes": 1}
    assert job_resources(config, "big", "train", "sst2", training=ft_weak_lp_gt_params) == {
        "gpu": 0, "mem_mb": 2000, "runtime": 30, "cpus_per_gpu": 4, "gpu_model": None, "processes": 1}
    # One process, the layers spread: 7 x 16 x 1.1 GB over 80 GB GPUs, runtime 60 + 80 x 7 minutes in hours.
    assert generative_job_resources(config, "big") == {
        "gpu": 2, "mem_mb": 72000, "runtime": 660, "cpus_per_gpu": 4, "gpu_model": None, "processes": 1}
