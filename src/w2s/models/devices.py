"""Where a job's model runs: its device, the words the report uses for it, the dtypes that device computes in
natively, and mixed precision (autocast) there."""

from __future__ import annotations

import contextlib
import os
import platform
from pathlib import Path

import torch

# torch's dtype for each dtype name a config may give.
DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}
# Set to 1 to run bf16 autocast on CPUs without native bf16 (cpu_has_bf16).
EMULATE_BF16_ENV = "W2S_EMULATE_BF16"


def device() -> torch.device:
    return torch.device("cuda" if torch.cuda.is_available() else "cpu")


def describe_device(on: torch.device) -> str:
    """The accelerator or CPU a job ran on, for the report's provenance."""
    if on.type == "cuda":
        return f"{torch.cuda.get_device_name(on)} (CUDA {torch.version.cuda})"
    model_names = [line.split(":", 1)[1].strip() for line in _cpuinfo_lines() if line.startswith("model name")]
    name = model_names[0] if model_names else platform.machine()
    return f"CPU: {name}, {torch.get_num_threads()} threads"


def _cpuinfo_lines() -> list[str]:
    try:
        return Path("/proc/cpuinfo").read_text().splitlines()
    except OSError:
        return []


def cpu_has_bf16() -> bool:
    """Whether this CPU multiplies in bf16 natively: AVX512-BF16 or AMX (whose tiles come with AMX-BF16).

    Not oneDNN's bf16 check, which accepts any AVX512 CPU: there bf16 is emulated, slower than float32.
    EMULATE_BF16_ENV set to 1 (the rehearsal, w2s.pipeline.rehearse) says yes anyway, so that a CPU runs the
    bf16 autocast path a GPU job takes, emulated.
    """
    if os.environ.get(EMULATE_BF16_ENV) == "1":
        return True
    return torch.cpu._is_avx512_bf16_supported() or torch.cpu._is_amx_tile_supported()


def supported_dtype(on: torch.device, dtype: str) -> str:
    """`dtype` where the device runs it natively, else float32: bf16 needs an Ampere or newer GPU or
    a CPU with bf16 instructions; float16 runs on GPUs only."""
    if on.type == "cuda":
        return "float32" if dtype == "bfloat16" and not torch.cuda.is_bf16_supported() else dtype
    return "bfloat16" if dtype == "bfloat16" and cpu_has_bf16() else "float32"


def frozen_weights_dtype(on: torch.device, compute_dtype: str) -> str:
    """The dtype a frozen model's weights load in to compute in `compute_dtype` (from supported_dtype):
    that dtype on GPUs, where memory bounds the model; float32 on CPUs, where autocast then rounds
    only the matmul inputs and outputs to bf16, which halves the features' mean error against bf16
    weights. On the demo's 3,200 snippets that leaves a median error of 0.5 to 0.6% of a feature
    vector's norm for MiniLM, MPNet and SmolLM2, and at most 1.2%, 5.1% and 6.1% on single texts
    (docs/design.md, "bf16 frozen features")."""
    return compute_dtype if on.type == "cuda" else "float32"


def autocast(on: torch.device, dtype: str) -> contextlib.AbstractContextManager:
    """Mixed precision: weights and optimiser state stay float32, matmuls run in `dtype`.

    Pure bf16 weights would lose updates of lr 1e-5 to rounding, so training never stores them.
    """
    dtype = supported_dtype(on, dtype)
    if dtype == "float32":
        return contextlib.nullcontext()
    return torch.autocast(on.type, dtype=DTYPES[dtype])
