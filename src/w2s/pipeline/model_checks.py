"""Preflight's model checks: each model's config, tokenizer and weights load in the configured dtype, equal their
checkpoint (and, where the hub is reachable, the hub's sha256 of each file), and take one forward and backward
pass on two rows at max_length; with load_weights off, the weights files' headers are read and each tensor's shape
checked against the config instead."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any, Iterator

from w2s import revisions, tasks
from w2s.pipeline.preflight_check import FAIL, OK, Check, CheckFailed, CheckSkipped, lock_note, run_check

if TYPE_CHECKING:
    from w2s.models.weights import WeightsReport

TWO_ROWS = ("The first row to check the model on. " * 400, "A second, shorter row.")


def check_model(name: str, entry: dict[str, Any], params: dict[str, Any], lock: dict[str, dict[str, str]],
                lock_path: Path | None, *, load_weights: bool, causal_lm: bool) -> Iterator[Check]:
    item = f"model {name}"
    if tasks.model_family(entry) != "transformers":
        yield from check_image_model(name, entry, load_weights=load_weights)
        return
    if "hub_id" in entry and "revision" not in entry and "converted" not in entry:
        locked = revisions.locked_revision(lock, "model", entry["hub_id"], revisions.MAIN_BRANCH)
        if locked is None:
            resolved: dict[str, str] = {}

            def resolve() -> str:
                resolved["head"] = revisions.resolve_head("model", entry["hub_id"], revisions.MAIN_BRANCH)
                return lock_note("model", entry["hub_id"], revisions.MAIN_BRANCH, resolved["head"], lock_path)

            row = run_check(item, "revision", resolve)
            yield row
            if row.status == FAIL:
                return
            locked = resolved["head"]
        entry = {**entry, "revision": locked}
    if "converted" in entry and not Path(entry["converted"]).is_dir():
        if not load_weights:
            yield from check_unconverted(item, entry)
            return
        row = run_check(item, "convert", lambda: _convert(entry))
        yield row
        if row.status == FAIL:
            return
    source_row = run_check(item, "source", lambda: _describe_source(entry))
    yield source_row
    if source_row.status == FAIL:
        return
    yield run_check(item, "config", lambda: _config(entry))
    tokenizer: dict[str, Any] = {}
    row = run_check(item, "tokenizer", lambda: _tokenizer(entry, tokenizer))
    yield row
    if not load_weights:
        if "hub_id" in entry and "converted" not in entry:
            yield run_check(item, "weights headers", lambda: _hub_headers(entry))
        return
    model: dict[str, Any] = {}
    loaded = run_check(item, "weights", lambda: _load(entry, params, model))
    yield loaded
    if loaded.status == OK and "hub_id" in entry:
        yield run_check(item, "weights sha256", lambda: _hub_sha256(entry, model["report"]))
    if loaded.status == FAIL or row.status == FAIL:
        return
    check = "forward" if params["mode"] == "probe" else "forward and backward"
    yield run_check(item, check, lambda: _forward_backward(model["backbone"], tokenizer["tokenizer"], params))
    del model["backbone"]
    if causal_lm:
        yield run_check(item, "causal LM", lambda: _causal_lm(entry, params))


def check_image_model(name: str, entry: dict[str, Any], *, load_weights: bool) -> Iterator[Check]:
    """A torchvision or timm model: its weights resolve by name (no download), then, with weights, it
    loads the usual way (downloading to torchvision's or the hub's cache) and embeds one image."""
    item = f"model {name}"
    row = run_check(item, "source", lambda: _image_source(entry))
    yield row
    if row.status == FAIL or not load_weights:
        return
    yield run_check(item, "weights and forward", lambda: _image_forward(entry))


def _image_source(entry: dict[str, Any]) -> str:
    if entry["family"] == "torchvision":
        import torchvision

        if entry["name"] not in torchvision.models.list_models():
            raise CheckFailed(f"torchvision has no model '{entry['name']}'")
        if entry.get("weights") is None:
            return f"torchvision {entry['name']}, randomly initialised"
        weights = torchvision.models.get_weight(entry["weights"])
        return f"torchvision {entry['name']} with {entry['weights']}: {len(weights.meta['categories'])} classes"
    import timm

    if not timm.is_model(entry["name"]):
        raise CheckFailed(f"timm has no model '{entry['name']}'")
    if "checkpoint" in entry:
        return f"timm {entry['name']} with the state dict {entry['checkpoint']}"
    if entry.get("pretrained", True):
        return f"timm {entry['name']} from the hub repository {timm.models.get_pretrained_cfg(entry['name']).hf_hub_id}"
    return f"timm {entry['name']}, randomly initialised"


def _image_forward(entry: dict[str, Any]) -> str:
    import io as bytes_io

    from PIL import Image

    from w2s.models import vision
    model = vision.load_image_model(vision.model_keys(entry))
    buffer = bytes_io.BytesIO()
    Image.new("RGB", (256, 256), (128, 64, 32)).save(buffer, format="PNG")
    features = vision.embed_images(model, [buffer.getvalue()], 1)
    return f"features {tuple(features.shape)}, its own head: {model.head_classes or 'none'} classes"


def check_unconverted(item: str, entry: dict[str, Any]) -> Iterator[Check]:
    """A Qwen-1 checkpoint not yet converted, checked without its weights (--no-weights): config.json, qwen.tiktoken
    and the safetensors headers come from the hub; the converted config and the tokenizer are built from them."""
    from w2s.models import qwen1

    found: dict[str, qwen1.HubCheckpoint] = {}

    def headers() -> str:
        found["checkpoint"] = checkpoint = qwen1.inspect_hub_checkpoint(entry["hub_id"], entry["revision"])
        files = f"{checkpoint.files} file" + ("s" if checkpoint.files > 1 else "")
        return (f"{checkpoint.tensors} tensors in {files}, {', '.join(checkpoint.dtypes)}, "
                f"{_megabytes(checkpoint.tensor_bytes)} of weights at {entry['hub_id']}@{entry['revision']}, each named "
                "and shaped as config.json describes Qwen-1; read from the file headers, nothing downloaded or converted")

    row = run_check(item, "checkpoint headers", headers)
    yield row
    if row.status == FAIL:
        return
    checkpoint = found["checkpoint"]
    yield run_check(item, "config", lambda: "qwen2 after conversion: " + _sizes(qwen1.qwen2_config(checkpoint.config)))
    yield run_check(item, "tokenizer", lambda: _tokenizer_summary(
        qwen1.build_tokenizer(checkpoint.tiktoken, model_max_length=checkpoint.config["seq_length"]), {}))


def _megabytes(n_bytes: int) -> str:
    return f"{n_bytes / 1e9:,.2f} GB" if n_bytes >= 1e9 else f"{n_bytes / 1e6:,.2f} MB"


def _hub_headers(entry: dict[str, Any]) -> str:
    """A hub model's weights as their safetensors headers describe them (names, dtypes, shapes, sizes), each shape
    checked against an empty model built from the config; no weight is downloaded."""
    import huggingface_hub

    from w2s.models import text, weights

    at = f"{entry['hub_id']}@{entry.get('revision', revisions.MAIN_BRANCH)}"
    try:
        metadata = huggingface_hub.get_safetensors_metadata(entry["hub_id"], revision=entry.get("revision"))
    except Exception as err:  # httpx errors, offline mode, the hub's own refusals
        if text.hub_unreachable(err):
            raise CheckSkipped(f"could not reach the hub to read the weights' headers at {at} "
                               f"({type(err).__name__}); run preflight where the hub is reachable to check them") from err
        raise
    shapes = {name: (f"{file} of {at}", tuple(info.shape))
              for file, header in sorted(metadata.files_metadata.items()) for name, info in header.tensors.items()}
    mismatches = weights.mismatched_shapes(text.empty_backbone(entry), shapes)
    if mismatches:
        raise CheckFailed(f"the weights do not fit the model config.json describes: {'; '.join(mismatches[:5])}"
                          + (f"; and {len(mismatches) - 5} more" if len(mismatches) > 5 else ""))
    infos = [info for header in metadata.files_metadata.values() for info in header.tensors.values()]
    n_files = len(metadata.files_metadata)
    return (f"{len(infos)} tensors in {n_files} file{'s' if n_files > 1 else ''}, "
            f"{', '.join(sorted({_dtype_name(info.dtype) for info in infos}))}, "
            f"{_megabytes(sum(i.data_offsets[1] - i.data_offsets[0] for i in infos))} of weights at {at}, each shaped "
            "as config.json describes the model; read from the file headers, nothing downloaded")


def _dtype_name(code: str) -> str:
    from w2s.models.qwen1 import SAFETENSORS_DTYPES

    return SAFETENSORS_DTYPES.get(code, code)


def _convert(entry: dict[str, Any]) -> str:
    from w2s.models import qwen1

    started = time.monotonic()
    qwen1.fetch_and_convert(entry["hub_id"], entry["revision"], entry["converted"])
    return f"converted into {entry['converted']} in {time.monotonic() - started:.0f} s (the convert rule's artifact)"


def _describe_source(entry: dict[str, Any]) -> str:
    from w2s.models import text

    source = text.resolve_source(entry)
    size = _download_size(entry) if "hub_id" in entry and "converted" not in entry else ""
    return f"{source.description}{size}"


def _download_size(entry: dict[str, Any]) -> str:
    """The weights' size on the hub, told before they download; unknown with the hub out of reach, where the
    Hugging Face cache may still hold the model."""
    from huggingface_hub import HfApi

    from w2s.models import text

    try:
        info = HfApi().model_info(entry["hub_id"], revision=entry.get("revision"), files_metadata=True)
    except Exception as err:  # httpx errors, offline mode, the hub's own refusals
        if text.hub_unreachable(err):
            return f"; weights' size unknown: the hub is out of reach ({type(err).__name__})"
        raise
    weights = [f for f in info.siblings or [] if f.rfilename.endswith((".safetensors", ".bin"))]
    safetensors = [f for f in weights if f.rfilename.endswith(".safetensors")]
    chosen = safetensors or weights
    total = sum(f.size or 0 for f in chosen)
    return f"; weights {total / 1e9:.2f} GB in {len(chosen)} files at {info.sha}"


def _config(entry: dict[str, Any]) -> str:
    from transformers import AutoConfig

    from w2s.models import text

    source = text.resolve_source(entry)
    try:
        config = AutoConfig.from_pretrained(source.location, **source.kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise text.load_failure(source, err, "AutoConfig") from err
    return f"{config.model_type}: " + _sizes(config)


def _sizes(config: Any) -> str:
    return ", ".join(f"{key} {getattr(config, key)}" for key in ("hidden_size", "num_hidden_layers", "vocab_size")
                     if hasattr(config, key))


def _tokenizer(entry: dict[str, Any], out: dict[str, Any]) -> str:
    from w2s.models import text

    return _tokenizer_summary(text.load_tokenizer(entry), out)


def _tokenizer_summary(tokenizer: Any, out: dict[str, Any]) -> str:
    if tokenizer.pad_token is None:
        raise CheckFailed("the tokenizer has neither a pad token nor an eos token to pad with, so no batch "
                          "can be padded; use a tokenizer that defines one")
    out["tokenizer"] = tokenizer
    return f"{type(tokenizer).__name__}, {len(tokenizer):,} tokens, pad {tokenizer.pad_token!r} ({tokenizer.pad_token_id})"


def _load(entry: dict[str, Any], params: dict[str, Any], out: dict[str, Any]) -> str:
    import torch

    from w2s.models import text
    from w2s.models import devices

    on = devices.device()
    # Probes embed with weights in the compute dtype; training keeps float32 weights under autocast.
    dtype = devices.supported_dtype(on, params["dtype"]) if params["mode"] == "probe" else "float32"
    backbone, report = text.load_pretrained(entry, dtype, text.model_parallel_map(torch.cuda.device_count()))
    out["backbone"], out["report"] = backbone, report
    n_params = sum(p.numel() for p in backbone.parameters())
    return f"{type(backbone).__name__}, {n_params / 1e6:,.1f}M parameters in {dtype}; {report.summary()}"


def _hub_sha256(entry: dict[str, Any], report: WeightsReport) -> str:
    """The sha256 of the weights files, as loaded (a hub model) or as the conversion read them (a converted Qwen-1),
    against the LFS sha256 the hub gives for the same files at the model's revision."""
    from w2s.models.weights import CONVERSION_RECORD

    at = f"{entry['hub_id']}@{entry['revision']}"
    if "converted" in entry:
        manifest = Path(entry["converted"]) / CONVERSION_RECORD
        shards = json.loads(manifest.read_text())["shards"]
        if any("source_sha256" not in shard for shard in shards.values()):
            raise CheckSkipped(f"{manifest} records no sha256 of the files it was converted from (an earlier w2s "
                               f"converted it), so nothing is compared with {at}; delete {entry['converted']} and "
                               "convert again to record them")
        files = {name: (shard["source_sha256"], f"the conversion in {entry['converted']} was made from other weights: "
                        f"delete it and {name} from the Hugging Face cache, and convert again")
                 for name, shard in shards.items()}
    else:
        files = {_hub_filename(file.path): (file.sha256, f"the file in the Hugging Face cache "
                                            f"({Path(file.path).resolve()}) is not the hub's: delete it and run "
                                            "preflight again to download it anew")
                 for file in report.files}
    listed = ", ".join(f"{name} {sha256}" for name, (sha256, _) in sorted(files.items()))
    try:
        hub = _hub_lfs_sha256(entry["hub_id"], entry["revision"])
    except CheckSkipped as err:
        raise CheckSkipped(f"{err}. The files' sha256: {listed}") from err
    ours = "the file the conversion read had" if "converted" in entry else "the loaded file's is"
    differing = [f"{name}: the hub's sha256 at {at} is {hub.get(name) or 'not given (no such LFS file)'}, {ours} "
                 f"{sha256}; {fix}"
                 for name, (sha256, fix) in sorted(files.items()) if hub.get(name) != sha256]
    if differing:
        raise CheckFailed("; ".join(differing))
    return f"{len(files)} file{'s equal' if len(files) > 1 else ' equals'} the hub's at {at} (LFS sha256): {listed}"


def _hub_filename(path: str) -> str:
    """A file's name in its hub repository, from its path in a Hugging Face cache snapshot (.../snapshots/<commit>/)."""
    parts = Path(path).parts
    if "snapshots" in parts[:-2]:
        return "/".join(parts[len(parts) - parts[::-1].index("snapshots") + 1:])
    return Path(path).name


def _hub_lfs_sha256(hub_id: str, revision: str) -> dict[str, str]:
    """Each LFS file's sha256 as the hub gives it (model_info with files_metadata); CheckSkipped when the hub is
    out of reach."""
    from huggingface_hub import HfApi

    from w2s.models import text

    try:
        info = HfApi().model_info(hub_id, revision=revision, files_metadata=True)
    except Exception as err:  # httpx errors, offline mode, the hub's own refusals
        if text.hub_unreachable(err):
            raise CheckSkipped(f"could not reach the hub to compare the weights' sha256 with {hub_id}@{revision} "
                               f"({type(err).__name__}); run preflight where the hub is reachable to compare "
                               "them") from err
        raise
    return {sibling.rfilename: sibling.lfs.sha256 for sibling in info.siblings or [] if sibling.lfs is not None}


def _forward_backward(backbone: Any, tokenizer: Any, params: dict[str, Any]) -> str:
    """One training step's passes on two rows padded to max_length, as a job would run them."""
    import torch

    from w2s.models import text
    from w2s.models import devices

    on = devices.device()
    if torch.cuda.is_available():
        torch.cuda.reset_peak_memory_stats()
    classifier = text.place(text.TextClassifier(backbone, params["pooling"]), on)
    encoded = tokenizer(list(TWO_ROWS), padding="max_length", truncation=True, max_length=params["max_length"],
                        return_tensors="pt")
    embedding_rows = backbone.get_input_embeddings().num_embeddings
    if int(encoded["input_ids"].max()) >= embedding_rows:
        raise CheckFailed(f"the tokenizer gives id {int(encoded['input_ids'].max())} but the model's embedding has "
                          f"{embedding_rows} rows: the tokenizer does not belong to these weights")
    batch = {k: encoded[k].to(on) for k in ("input_ids", "attention_mask")}
    labels = torch.tensor([0, 1], device=on)
    if params["mode"] == "probe":
        with torch.no_grad(), devices.autocast(on, params["dtype"]):
            features = classifier.features(**batch)
        if not torch.isfinite(features.float()).all():
            raise CheckFailed("the features hold NaN or inf; load the model in float32 (dtype: float32)")
        return f"features {tuple(features.shape)} at {params['max_length']} tokens on {devices.describe_device(on)}"
    if params["gradient_checkpointing"]:
        backbone.gradient_checkpointing_enable()
    classifier.train()
    with devices.autocast(on, params["dtype"]):
        loss = torch.nn.functional.cross_entropy(classifier(**batch), labels)
    loss.backward()
    grads = [p.grad for p in classifier.parameters() if p.grad is not None]
    if not torch.isfinite(loss) or not all(torch.isfinite(g).all() for g in grads):
        raise CheckFailed(f"loss {loss.item()} or a gradient is not finite; try dtype float32")
    memory = f", peak GPU memory {torch.cuda.max_memory_allocated() / 2**30:.1f} GiB" if on.type == "cuda" else ""
    return (f"loss {loss.item():.3f}, {len(grads)} gradients finite at {params['max_length']} tokens "
            f"on {devices.describe_device(on)}{memory}")


def _causal_lm(entry: dict[str, Any], params: dict[str, Any]) -> str:
    from w2s.models import text
    from w2s.models import devices

    model = text.load_causal_lm(entry, devices.supported_dtype(devices.device(), params["dtype"]))
    return f"{type(model).__name__} loads for prompting"
