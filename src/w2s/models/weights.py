"""Checking that from_pretrained loaded the checkpoint's weights, and not re-initialised ones.

transformers 5 initialises whatever it did not load after loading, and a model's own code can
re-draw loaded weights then without a warning (Qwen-1's `_init_weights` re-draws every
`attn.c_proj.weight`). `verify_loaded_weights` compares every loaded parameter and persistent
buffer with the checkpoint file's tensor, named and cast the way transformers 5.23 loads it.

A file whose values were edited passes that comparison (the model is loaded from it), so each file's
sha256 is computed too, once per file in a process, and compared with the one recorded when the file
arrived: the hub's LFS sha256, which the Hugging Face cache names the file's blob by, or the one a
Qwen-1 conversion wrote to its conversion.json. The hashes go into the report and the job's log.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import time
from collections.abc import Callable, Iterator
from copy import deepcopy
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import torch
from torch import nn

from w2s.models.source import ModelLoadError, ModelSource

# Above this many parameters a model is checked on a sample of rows per tensor, so the check costs
# seconds rather than a second read of tens of gigabytes. gpt2-xl (1.6e9) and Qwen-1.8B (1.8e9)
# are still compared in full; Qwen-7B and larger are sampled.
LARGE_MODEL_PARAMETERS = 2_000_000_000
# Rows read per tensor of a sampled model: evenly spaced along dim 0, the first included.
SAMPLED_ROWS = 8
# Differing tensors named in an error message; the rest are counted.
NAMED_IN_ERROR = 5


class WeightsMismatchError(ModelLoadError):
    """Loaded weights differ from the checkpoint's, or a parameter has no tensor in it."""


@dataclass(frozen=True)
class WeightsFile:
    """A checkpoint file as loaded: its size and sha256, and who recorded the same sha256 before, if anyone."""

    path: str
    bytes: int
    sha256: str
    recorded_by: str | None = None

    def line(self) -> str:
        recorded = f", {self.recorded_by}" if self.recorded_by else ""
        return f"weights file {self.path}: {self.bytes:,} bytes, sha256 {self.sha256}{recorded}"


@dataclass(frozen=True)
class WeightsReport:
    """What `verify_loaded_weights` compared: every tensor in full, or rows of each when `sampled`."""

    source: str
    checkpoint: tuple[str, ...]  # the files compared against
    tensors: int  # parameters and persistent buffers compared
    elements_compared: int
    elements: int  # of those tensors, all elements
    sampled: bool
    seconds: float
    files: tuple[WeightsFile, ...] = ()  # the checkpoint files, hashed

    @property
    def sha256(self) -> tuple[str, ...]:
        return tuple(file.sha256 for file in self.files)

    def summary(self) -> str:
        extent = (f"{self.elements_compared:,} of {self.elements:,} elements (rows sampled per tensor)"
                  if self.sampled else f"all {self.elements:,} elements")
        files = ", ".join(Path(f).name for f in self.checkpoint)
        return (f"weights of {self.source} equal {files}: {self.tensors} tensors, {extent}, "
                f"checked in {self.seconds:.1f} s")


@dataclass(frozen=True)
class _Difference:
    name: str
    differing: int  # elements
    compared: int
    largest: float  # absolute difference; nan where the shapes differ
    detail: str = ""

    def describe(self) -> str:
        if self.detail:
            return f"{self.name}: {self.detail}"
        return (f"{self.name} differs in {self.differing:,} of {self.compared:,} compared elements "
                f"(largest difference {self.largest:.3g})")


# A checkpoint tensor, read in full or as rows [::step] of dim 0.
_Reader = Callable[[int], torch.Tensor]


def verify_loaded_weights(model: nn.Module, source: ModelSource,
                          sample_above: int = LARGE_MODEL_PARAMETERS) -> WeightsReport:
    """Compare `model`, just returned by from_pretrained(source.location, **source.kwargs), with its
    checkpoint. Models with more than `sample_above` parameters are compared on `SAMPLED_ROWS`
    rows of each tensor (tensors that transformers assembles from several checkpoint tensors, and
    GGUF files, in full). Raises WeightsMismatchError naming every parameter that differs or that
    the checkpoint lacks; returns what was compared."""
    start = time.perf_counter()
    parameters = {id(p): p for p in model.parameters()}
    sampled = sum(p.numel() for p in parameters.values()) > sample_above
    files = checkpoint_files(source, getattr(model.config, "transformers_weights", None))
    readers = _gguf_tensors(model, files[0]) if "gguf_file" in source.kwargs else _safetensors_tensors(model, files)
    differences: list[_Difference] = []
    tensors = compared_elements = elements = 0
    for names, loaded in _loaded_tensors(model):
        name = next((n for n in names if n in readers), None)
        if name is None:
            if id(loaded) in parameters:
                differences.append(_Difference(names[0], loaded.numel(), loaded.numel(), float("nan"),
                                               "not in the checkpoint, so from_pretrained initialised it"))
            continue  # a buffer the model computes itself (rotary frequencies, position ids)
        step = _row_step(loaded, sampled)
        expected = readers[name](step)
        actual = _rows(_offloaded(model, names[0]) if loaded.device.type == "meta" else loaded, step)
        difference = _compare(names[0], actual, expected)
        if difference is not None:
            differences.append(difference)
        tensors += 1
        compared_elements += actual.numel()
        elements += loaded.numel()
    if differences:
        raise WeightsMismatchError(_mismatch_message(model, source, differences))
    return WeightsReport(source.description, files, tensors, compared_elements, elements, sampled,
                         time.perf_counter() - start, tuple(checked_file(path) for path in files))


def _loaded_tensors(model: nn.Module) -> Iterator[tuple[list[str], torch.Tensor]]:
    """Each parameter and persistent buffer once, with all its names: tied weights share one tensor
    under several names, and the checkpoint may hold it under any of them."""
    names: dict[int, list[str]] = {}
    tensors: dict[int, torch.Tensor] = {}
    for name, tensor in model.state_dict(keep_vars=True).items():
        names.setdefault(id(tensor), []).append(name)
        tensors[id(tensor)] = tensor
    for key, tensor in tensors.items():
        yield names[key], tensor


def _offloaded(model: nn.Module, name: str) -> torch.Tensor:
    """A tensor that accelerate moved off the GPUs (device_map offloading): its module keeps it in
    its hook's weights map, and the parameter itself is an empty placeholder."""
    module_name, _, leaf = name.rpartition(".")
    hook = getattr(model.get_submodule(module_name), "_hf_hook", None)
    weights_map = getattr(hook, "weights_map", None)
    if weights_map is None:
        raise WeightsMismatchError(f"{name} holds no values (it is on the meta device) and no offloading "
                                   "hook keeps them; the model was not fully loaded")
    return weights_map[leaf]


def _row_step(tensor: torch.Tensor, sampled: bool) -> int:
    if not sampled or tensor.dim() < 2 or tensor.shape[0] <= SAMPLED_ROWS:
        return 1
    return -(-tensor.shape[0] // SAMPLED_ROWS)


def _rows(tensor: torch.Tensor, step: int) -> torch.Tensor:
    """The compared rows on the CPU, where a GPU or device_map may hold the tensor."""
    return tensor.detach()[::step].cpu() if step > 1 else tensor.detach().cpu()


def _compare(name: str, actual: torch.Tensor, expected: torch.Tensor) -> _Difference | None:
    if actual.shape != expected.shape:
        return _Difference(name, actual.numel(), actual.numel(), float("nan"),
                           f"has shape {tuple(actual.shape)} but the checkpoint's has {tuple(expected.shape)}")
    expected = expected.to(actual.dtype)  # the cast from_pretrained makes to the loaded dtype
    if torch.equal(actual, expected):
        return None
    unequal = actual != expected
    if actual.is_floating_point():
        unequal &= ~(actual.isnan() & expected.isnan())
    differing = int(unequal.sum())
    if differing == 0:
        return None
    gap = (actual[unequal].double() - expected[unequal].double()).abs()
    return _Difference(name, differing, actual.numel(), float(gap.nan_to_num(nan=float("inf")).max()))


def _mismatch_message(model: nn.Module, source: ModelSource, differences: list[_Difference]) -> str:
    listed = "; ".join(d.describe() for d in differences[:NAMED_IN_ERROR])
    if len(differences) > NAMED_IN_ERROR:
        listed += f"; and {len(differences) - NAMED_IN_ERROR} more"
    missing = any(d.detail.startswith("not in the checkpoint") for d in differences)
    meaning = (" A parameter missing from the checkpoint means the checkpoint was written for another "
               "model class or architecture; check the model's files and its config's architectures."
               if missing else "")
    if len(differences) > sum(d.detail != "" for d in differences):
        meaning += (" A tensor that differs was changed after loading; one that differs in every element was "
                    "re-initialised, typically by the model's own (remote) code in its `_init_weights`, which "
                    "transformers 5 runs after loading. Training would start from corrupted weights.")
    if getattr(model.config, "model_type", None) == "qwen":
        meaning += (" Qwen-1's remote code re-draws every attn.c_proj.weight this way: set `convert: qwen1` on "
                    "the model to load it as transformers' own Qwen2, without remote code.")
    return f"the weights loaded from {source.description} are not the checkpoint's: {listed}.{meaning}"


# ---- file hashes -------------------------------------------------------------------------------

SHA256 = re.compile(r"[0-9a-f]{64}")
# The record a Qwen-1 conversion (w2s.models.qwen1) keeps beside its files: each shard and its sha256. Named
# here, where every load reads it, so that a training job's code does not reach the converter.
CONVERSION_RECORD = "conversion.json"
HASH_CHUNK_BYTES = 16 * 2**20
# Each file hashed in this process, by (real path, size, modification time): a job hashes a file once, and a
# file written anew is hashed anew.
_HASHED: dict[tuple[str, int, int], str] = {}


def file_sha256(path: str | Path) -> str:
    real = os.path.realpath(path)
    stat = os.stat(real)
    key = (real, stat.st_size, stat.st_mtime_ns)
    if key not in _HASHED:
        digest = hashlib.sha256()
        with open(real, "rb") as handle:
            while chunk := handle.read(HASH_CHUNK_BYTES):
                digest.update(chunk)
        _HASHED[key] = digest.hexdigest()
    return _HASHED[key]


@dataclass(frozen=True)
class RecordedHash:
    """The sha256 a file had when it arrived, and who recorded it."""

    sha256: str
    recorder: str  # hub (the Hugging Face cache's blob name) or conversion (conversion.json)
    by: str  # completes "weights file ...: N bytes, sha256 ..., "
    changed: str  # what a different sha256 means and what to do, after "but "


def recorded_sha256(path: str | Path) -> RecordedHash | None:
    """The sha256 recorded for a weights file when it arrived: the Hugging Face cache names a downloaded LFS file's
    blob by the hub's sha256 of it; a Qwen-1 conversion writes its files' sha256 to conversion.json beside them."""
    real = Path(os.path.realpath(path))
    if real.parent.name == "blobs" and SHA256.fullmatch(real.name):
        return RecordedHash(real.name, "hub", "the hub's LFS sha256 that the Hugging Face cache stores it under",
                            f"the Hugging Face cache stores it under {real.name}, the hub's LFS sha256 of the file it "
                            f"downloaded: the file changed after the download. Delete {real} and load the model again "
                            "to download it anew")
    manifest = Path(path).parent / CONVERSION_RECORD
    if manifest.is_file():
        record = json.loads(manifest.read_text())
        # A packaged model's conversion into the w2s cache says how it is redone; a convert rule's is a target.
        reconvert = record.get("reconvert", f"delete {manifest.parent} and convert again (snakemake {manifest.parent})")
        for shard in record.get("shards", {}).values():
            if shard.get("file") == Path(path).name and "sha256" in shard:
                return RecordedHash(shard["sha256"], "conversion", f"as {manifest} records it",
                                    f"{manifest} records {shard['sha256']}, the sha256 of the file the conversion "
                                    f"wrote: the file changed after the conversion. {reconvert[0].upper()}"
                                    f"{reconvert[1:]}")
    return None


def checked_file(path: str | Path) -> WeightsFile:
    """A loaded checkpoint file hashed, and refused if its sha256 is not the one recorded when it arrived."""
    sha256, recorded = file_sha256(path), recorded_sha256(path)
    if recorded is not None and recorded.sha256 != sha256:
        raise WeightsMismatchError(f"{path} has sha256 {sha256}, but {recorded.changed}")
    return WeightsFile(str(path), os.path.getsize(path), sha256, recorded.by if recorded else None)


def weights_record(source: ModelSource) -> list[dict[str, Any]]:
    """Each weights file of `source` found here, with its size and sha256, for the provenance record: the sha256
    recorded when the file arrived (sha256_from hub or conversion, which every load checks), else hashed now."""
    record = []
    for path in checkpoint_files(source):
        recorded = recorded_sha256(path)
        record.append({"file": Path(path).name, "bytes": os.path.getsize(path),
                       "sha256": recorded.sha256 if recorded else file_sha256(path),
                       "sha256_from": recorded.recorder if recorded else "hashed"})
    return record


# ---- safetensors checkpoints -------------------------------------------------------------------

def checkpoint_files(source: ModelSource, explicit: str | None = None) -> tuple[str, ...]:
    """The weights files from_pretrained reads for `source`: its GGUF file, or its safetensors files (`explicit`:
    the name a config's transformers_weights gives) in the local folder or in the Hugging Face cache at the same
    revision (local_files_only: from_pretrained has fetched them)."""
    from transformers.utils import cached_file

    if "gguf_file" in source.kwargs:
        return (os.path.join(source.location, source.kwargs["gguf_file"]),)
    lookup = {"revision": source.kwargs.get("revision"), "local_files_only": True,
              "_raise_exceptions_for_missing_entries": False, "_raise_exceptions_for_connection_errors": False}
    for name in ([explicit] if explicit else []) + ["model.safetensors", "model.safetensors.index.json"]:
        path = cached_file(source.location, name, **lookup)
        if path is None:
            continue
        if not name.endswith(".index.json"):
            return (path,)
        shards = sorted(set(json.loads(Path(path).read_text())["weight_map"].values()))
        paths = [cached_file(source.location, shard, **lookup) for shard in shards]
        absent = [shard for shard, shard_path in zip(shards, paths) if shard_path is None]
        if absent:
            raise WeightsMismatchError(f"the checkpoint of {source.description} lists {', '.join(absent)} in "
                                       f"{name}, but no such file is there to check the weights against")
        return tuple(str(p) for p in paths)
    raise WeightsMismatchError(
        f"{source.description} has no model.safetensors or model.safetensors.index.json (in the Hugging Face "
        "cache, for a hub id), so its loaded weights cannot be checked; w2s reads only safetensors "
        "checkpoints, never pickled .bin files: use a revision or a local copy with safetensors weights")


def _safetensors_tensors(model: nn.Module, files: tuple[str, ...]) -> dict[str, _Reader]:
    """Readers of the checkpoint's tensors under the model's names for them, renamed the way
    transformers 5.23 renames keys on load: its conversion mapping for the model (legacy
    gamma/beta, fused experts, ...), then adding or stripping the base model prefix."""
    from safetensors import safe_open

    handles = [safe_open(path, "pt") for path in files]
    slices = {key: handle.get_slice(key) for handle in handles for key in handle.keys()}
    readers: dict[str, _Reader] = {}
    converted: dict[str, Any] = {}  # target name -> transformers' WeightConverter holding its sources
    dtypes = {name: tensor.dtype for name, tensor in model.state_dict(keep_vars=True).items()}
    for key, target, pattern, template in _renamed_keys(model, slices):
        if template is None:
            readers[target] = _slice_reader(slices[key])
            continue
        # Assembled from several checkpoint tensors (fused experts, split qkv): built in full, as
        # transformers does, from the sources cast to the target's dtype first.
        converter = converted.setdefault(target, deepcopy(template))
        converter.add_tensor(target, key, pattern, slices[key][...].to(dtypes[target]))
    for target, converter in converted.items():
        for name, tensor in converter.convert(target, model=model, config=model.config).items():
            readers[name] = _full_reader(tensor[0] if isinstance(tensor, list) else tensor)
    return readers


def _renamed_keys(model: nn.Module, slices: dict[str, Any]) -> Iterator[tuple[str, str, str | None, Any]]:
    """(checkpoint key, model name, the converter's matched source pattern and the converter, or
    None and None where the key is only renamed) for each checkpoint tensor the model uses,
    following transformers.core_model_loading.convert_and_load_state_dict_in_model."""
    from transformers.conversion_mapping import get_model_conversion_mapping
    from transformers.core_model_loading import WeightConverter, dot_natural_key, rename_source_key

    mapping = get_model_conversion_mapping(model)
    renamings = [t for t in mapping if not isinstance(t, WeightConverter)]
    converters = [t for t in mapping if isinstance(t, WeightConverter)]
    by_pattern = {pattern: c for c in converters for pattern in c.source_patterns}
    state = model.state_dict()
    prefix = model.base_model_prefix
    for key in sorted(slices, key=dot_natural_key):  # the order transformers collects them in
        target, pattern = rename_source_key(key, renamings, converters, prefix, state)
        if target not in state and key in state:
            target, pattern = rename_source_key(key, [], [], prefix, state)
        if target not in state:
            continue  # a tensor this model class does not use, e.g. an lm_head under AutoModel
        yield key, target, pattern, None if pattern is None else by_pattern[pattern]


def _slice_reader(tensor_slice: Any) -> _Reader:
    def read(step: int) -> torch.Tensor:
        return tensor_slice[::step] if step > 1 else tensor_slice[...]
    return read


def _full_reader(tensor: torch.Tensor) -> _Reader:
    return lambda step: tensor[::step] if step > 1 else tensor


# ---- shapes from file headers -------------------------------------------------------------------

# A checkpoint tensor's file and shape, read from a safetensors header, local or on the hub.
HeaderShapes = dict[str, tuple[str, tuple[int, ...]]]


def header_shapes(files: tuple[str, ...]) -> HeaderShapes:
    """Each tensor's file and shape from the headers of local safetensors files, without reading a value."""
    from safetensors import safe_open

    shapes: HeaderShapes = {}
    for path in files:
        with safe_open(path, "pt") as handle:
            shapes.update({key: (path, tuple(handle.get_slice(key).get_shape())) for key in handle.keys()})
    return shapes


def mismatched_shapes(model: nn.Module, shapes: HeaderShapes) -> list[str]:
    """The checkpoint tensors (named as transformers renames them on load) whose shape is not that of the
    parameter `model`, built from the checkpoint's config, has for them. Tensors that transformers assembles
    from several (fused experts) are left to the load."""
    state = model.state_dict()
    return [f"the tensor '{key}' in {shapes[key][0]} has shape {shapes[key][1]}, but the model's parameter "
            f"{target} has {tuple(state[target].shape)}"
            for key, target, _, template in _renamed_keys(model, shapes)
            if template is None and shapes[key][1] != tuple(state[target].shape)]


def shape_mismatches(source: ModelSource, auto_class: str) -> list[str]:
    """Why from_pretrained of `auto_class` refused `source` for a size mismatch: mismatched_shapes of an empty
    model built from its config (on the meta device) against the headers of the files from_pretrained read."""
    import transformers
    from transformers import AutoConfig

    config = AutoConfig.from_pretrained(source.location, **source.kwargs)
    with torch.device("meta"):
        model = getattr(transformers, auto_class).from_config(
            config, trust_remote_code=source.kwargs.get("trust_remote_code", False))
    return mismatched_shapes(model, header_shapes(checkpoint_files(source, getattr(config, "transformers_weights",
                                                                                  None))))


# ---- GGUF checkpoints --------------------------------------------------------------------------

def _gguf_tensors(model: nn.Module, path: str) -> dict[str, _Reader]:
    """The GGUF file's tensors dequantised and named as transformers 5.23's GGUF loader for
    architectures without a native GGUF path (llama and the others) does it
    (modeling_gguf_pytorch_utils.load_gguf_checkpoint): gguf's dequantize, the architecture's
    tensor processor (llama un-permutes q and k), gguf's tensor name map onto the model's names.
    The file is read with transformers' own GGUF reader, which skips the tokenizer's strings."""
    import numpy as np
    from gguf import MODEL_ARCH_NAMES, GGMLQuantizationType, dequantize, get_tensor_name_map
    from transformers.integrations.gguf.reader import GgufHeader, load_gguf_state_dict
    from transformers.modeling_gguf_pytorch_utils import TENSOR_PROCESSORS, TensorProcessor

    header = GgufHeader.from_file(path)
    stored = load_gguf_state_dict(header)
    architecture = next(a for a, name in MODEL_ARCH_NAMES.items() if name == header.architecture)
    gguf_to_model = _gguf_names(model, get_tensor_name_map(architecture, model.config.num_hidden_layers))
    processor = TENSOR_PROCESSORS.get(header.architecture, TensorProcessor)(config=model.config.to_dict())
    parsed: dict[str, dict[str, torch.Tensor]] = {"tensors": {}}
    for info in header.tensors:
        # Raw bytes, one row of blocks or values per row of the tensor, as gguf's reader hands them over.
        raw = np.asarray(stored[info.name].data).reshape(*info.shape[:-1], -1)
        values = dequantize(raw, GGMLQuantizationType(info.ggml_type)).reshape(info.shape)
        result = processor.process(weights=values, name=info.name,
                                   tensor_key_mapping=gguf_to_model, parsed_parameters=parsed)
        if result.name in gguf_to_model:
            parsed["tensors"][gguf_to_model[result.name]] = torch.from_numpy(np.copy(result.weights))
    return {name: _full_reader(tensor) for name, tensor in parsed["tensors"].items()}


def _gguf_names(model: nn.Module, name_map: Any) -> dict[str, str]:
    """GGUF tensor name -> the model's name, as transformers' get_gguf_hf_weights_map finds it: the
    full name first, then (as its recursion into submodules does) the name inside ever smaller
    submodules; the first claim of a GGUF name wins. One name map instead of one per submodule."""
    mapping: dict[str, str] = {}
    for name in model.state_dict():
        stem, suffix = name.rsplit(".", 1) if name.endswith((".weight", ".bias")) else (name, "")
        parts = stem.split(".")
        for start in range(len(parts)):
            gguf_name = name_map.get_name(".".join(parts[start:]))
            if gguf_name is not None:
                mapping.setdefault(gguf_name + ("." + suffix if suffix else ""), name)
                break
    return mapping
