"""Qwen-1 checkpoints (Qwen/Qwen-1_8B, -7B, -14B, -72B) converted to transformers' native Qwen2 layout.

Qwen-1 ships its model and tokenizer as remote code that transformers 5 cannot run: loading it
silently re-draws every `attn.c_proj.weight`, its forward pass calls a removed method, and its
tokenizer has no eos or pad token. The architecture is Qwen2's (RMSNorm, rotate-half RoPE over the
whole head, q/k/v biases, SwiGLU), so each checkpoint is converted once, tensor by tensor, into a
folder that `from_pretrained` loads without `trust_remote_code`.

One thing a conversion cannot carry over: in eval mode Qwen-1 switches on dynamic-NTK RoPE scaling
and log-n attention scaling once an input is longer than its config's `seq_length`. Native Qwen2
does neither, so outputs agree only up to that length; it is kept in the converted config under
SEQ_LENGTH_KEY (and as the tokenizer's model_max_length) so other code can warn.
"""

from __future__ import annotations

import base64
import contextlib
import hashlib
import json
import logging
import re
import shutil
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from w2s import io

if TYPE_CHECKING:
    import torch
    from transformers import PreTrainedTokenizerFast, Qwen2Config


log = logging.getLogger("w2s")


class Qwen1ConversionError(ValueError):
    """A Qwen-1 checkpoint cannot be converted; the message says what is wrong and what to fix."""


# Qwen-1's seq_length, kept in the converted config: beyond it the converted model and Qwen-1 differ.
SEQ_LENGTH_KEY = "qwen1_seq_length"

# Qwen-1 per-block tensor (after `transformer.h.N.`) -> Qwen2 tensors (after `model.layers.N.`). A
# tensor with several targets is split along dim 0 into equal parts, in this order.
LAYER_MAPPING: Mapping[str, tuple[str, ...]] = {
    "ln_1.weight": ("input_layernorm.weight",),
    "ln_2.weight": ("post_attention_layernorm.weight",),
    "attn.c_attn.weight": ("self_attn.q_proj.weight", "self_attn.k_proj.weight", "self_attn.v_proj.weight"),
    "attn.c_attn.bias": ("self_attn.q_proj.bias", "self_attn.k_proj.bias", "self_attn.v_proj.bias"),
    "attn.c_proj.weight": ("self_attn.o_proj.weight",),
    # Qwen-1 computes w1(x) * silu(w2(x)); Qwen2 computes up_proj(x) * silu(gate_proj(x)).
    "mlp.w1.weight": ("mlp.up_proj.weight",),
    "mlp.w2.weight": ("mlp.gate_proj.weight",),
    "mlp.c_proj.weight": ("mlp.down_proj.weight",),
}
TOP_MAPPING: Mapping[str, str] = {
    "transformer.wte.weight": "model.embed_tokens.weight",
    "transformer.ln_f.weight": "model.norm.weight",
    "lm_head.weight": "lm_head.weight",
}
_LAYER_NAME = re.compile(r"transformer\.h\.(\d+)\.(.+)")

# Qwen's tokenizer: the pre-tokenisation regex of tokenization_qwen.py, and its special tokens,
# numbered from the first id after the 151,643 BPE ranks.
PRETOKENIZE_PATTERN = (
    r"""(?i:'s|'t|'re|'ve|'m|'ll|'d)|[^\r\n\p{L}\p{N}]?\p{L}+|\p{N}| ?[^\s\p{L}\p{N}]+[\r\n]*|\s*[\r\n]+|\s+(?!\S)|\s+"""
)
ENDOFTEXT = "<|endoftext|>"
SPECIAL_TOKENS = (ENDOFTEXT, "<|im_start|>", "<|im_end|>", *(f"<|extra_{i}|>" for i in range(205)))
FIRST_SPECIAL_ID = 151643

# What fetch_and_convert downloads: the config, the weights (one file, or shards and their index),
# the BPE vocabulary and the licence files that must travel with the weights. No code.
HUB_FILES = ["config.json", "*.safetensors", "model.safetensors.index.json", "qwen.tiktoken", "LICENSE*", "NOTICE*"]
SAFETENSORS_DTYPES = {"F32": "float32", "BF16": "bfloat16", "F16": "float16"}


def _require(condition: bool, message: str) -> None:
    if not condition:
        raise Qwen1ConversionError(message)


def read_qwen1_config(source_dir: str | Path) -> dict[str, Any]:
    """Qwen-1's config.json as JSON: AutoConfig cannot read it without Qwen's remote code."""
    path = Path(source_dir) / "config.json"
    _require(path.is_file(), f"{path} does not exist; point at a Qwen-1 checkpoint folder (config.json, weights)")
    try:
        config = json.loads(path.read_text())
    except json.JSONDecodeError as err:
        raise Qwen1ConversionError(f"{path} is not valid JSON: {err}") from err
    _require(isinstance(config, dict), f"{path} must hold a JSON object")
    return config


def qwen2_config(qwen1: Mapping[str, Any]) -> Qwen2Config:
    """The Qwen2 config of a Qwen-1 config, every value read from it. Refuses anything that is not Qwen-1's
    architecture as the mapping knows it."""
    from transformers import Qwen2Config

    _require(qwen1.get("model_type") == "qwen",
             f"not a Qwen-1 config: model_type is {qwen1.get('model_type')!r}, expected 'qwen'")
    required = ("hidden_size", "num_hidden_layers", "num_attention_heads", "kv_channels", "intermediate_size",
                "vocab_size", "layer_norm_epsilon", "rotary_emb_base", "seq_length")
    missing = [key for key in required if key not in qwen1]
    _require(not missing, f"the Qwen-1 config lacks {', '.join(missing)}")
    _require(qwen1.get("rotary_pct", 1.0) == 1.0,
             f"rotary_pct is {qwen1['rotary_pct']}: Qwen2 rotates the whole head, so only 1.0 converts")
    _require(qwen1.get("no_bias", True) is True,
             "no_bias is false: Qwen2 has biases only on q, k and v, so c_proj and MLP biases cannot be carried over")
    _require(qwen1["intermediate_size"] % 2 == 0,
             f"intermediate_size {qwen1['intermediate_size']} is odd; Qwen-1 halves it between w1 and w2")
    return Qwen2Config(
        architectures=["Qwen2ForCausalLM"],
        vocab_size=qwen1["vocab_size"],
        hidden_size=qwen1["hidden_size"],
        intermediate_size=qwen1["intermediate_size"] // 2,
        num_hidden_layers=qwen1["num_hidden_layers"],
        num_attention_heads=qwen1["num_attention_heads"],
        num_key_value_heads=qwen1["num_attention_heads"],
        head_dim=qwen1["kv_channels"],
        hidden_act="silu",
        max_position_embeddings=qwen1["seq_length"],
        initializer_range=qwen1.get("initializer_range", 0.02),
        rms_norm_eps=qwen1["layer_norm_epsilon"],
        rope_parameters={"rope_type": "default", "rope_theta": float(qwen1["rotary_emb_base"])},
        tie_word_embeddings=False,
        use_sliding_window=False,
        attention_dropout=0.0,
        # No pad_token_id: Qwen2 uses it as the embedding's padding_idx, whose row then gets no
        # gradient, and Qwen's pad id (151643) is beyond the vocabulary of smaller configs.
        **{SEQ_LENGTH_KEY: qwen1["seq_length"]},
    )


def _expected_shapes(qwen1: Mapping[str, Any]) -> dict[str, tuple[int, ...]]:
    hidden, vocab = qwen1["hidden_size"], qwen1["vocab_size"]
    projection = qwen1["kv_channels"] * qwen1["num_attention_heads"]
    mlp = qwen1["intermediate_size"] // 2
    per_layer = {
        "ln_1.weight": (hidden,), "ln_2.weight": (hidden,),
        "attn.c_attn.weight": (3 * projection, hidden), "attn.c_attn.bias": (3 * projection,),
        "attn.c_proj.weight": (hidden, projection),
        "mlp.w1.weight": (mlp, hidden), "mlp.w2.weight": (mlp, hidden), "mlp.c_proj.weight": (hidden, mlp),
    }
    shapes = {"transformer.wte.weight": (vocab, hidden), "transformer.ln_f.weight": (hidden,),
              "lm_head.weight": (vocab, hidden)}
    for layer in range(qwen1["num_hidden_layers"]):
        shapes.update({f"transformer.h.{layer}.{suffix}": shape for suffix, shape in per_layer.items()})
    return shapes


def _target_names(name: str) -> tuple[str, ...]:
    if name in TOP_MAPPING:
        return (TOP_MAPPING[name],)
    match = _LAYER_NAME.fullmatch(name)
    if match is None or match.group(2) not in LAYER_MAPPING:
        raise Qwen1ConversionError(f"no Qwen2 name for the checkpoint tensor '{name}'")
    return tuple(f"model.layers.{match.group(1)}.{target}" for target in LAYER_MAPPING[match.group(2)])


def _source_shards(source: Path) -> dict[str, list[str]]:
    """Weight file name -> its tensor names, from the index when the weights are sharded. Each file's
    header is read and checked against the index."""
    from safetensors import safe_open

    index_path = source / "model.safetensors.index.json"
    if index_path.is_file():
        files: dict[str, list[str]] = {}
        for name, file in json.loads(index_path.read_text())["weight_map"].items():
            files.setdefault(file, []).append(name)
    elif (source / "model.safetensors").is_file():
        files = {"model.safetensors": []}
    else:
        raise Qwen1ConversionError(
            f"{source} holds neither model.safetensors nor model.safetensors.index.json; Qwen-1 hub repos "
            "ship safetensors weights, so download them too")
    for file in files:
        path = source / file
        _require(path.is_file(), f"{path} is named in the index but missing; download it again")
        with safe_open(str(path), framework="pt") as handle:
            names = sorted(handle.keys())
        if files[file]:
            _require(sorted(files[file]) == names, f"{path} does not hold the tensors its index names")
        files[file] = names
    return dict(sorted(files.items()))


def _check_tensors(shapes: Mapping[str, tuple[str, tuple[int, ...]]], qwen1: Mapping[str, Any]) -> None:
    """Every checkpoint tensor (name -> its file and shape, from the file headers) is mapped and has the shape
    the config implies, and none is missing: checked before anything is written or downloaded."""
    expected = _expected_shapes(qwen1)
    for name, (file, shape) in shapes.items():
        _target_names(name)
        _require(name in expected, f"the checkpoint tensor '{name}' is not part of a "
                 f"{qwen1['num_hidden_layers']}-layer Qwen-1 model as its config describes")
        _require(tuple(shape) == expected[name], f"the checkpoint tensor '{name}' in {file} has shape {list(shape)}, "
                 f"but the config implies {list(expected[name])}")
    missing = sorted(set(expected) - set(shapes))
    _require(not missing, f"the checkpoint lacks {len(missing)} tensor(s): {', '.join(missing[:5])}"
             + (", ..." if len(missing) > 5 else ""))


def _fingerprint(source: Path, shards: Mapping[str, list[str]]) -> str:
    """What a partial conversion was made from: a staging folder from another source is not resumed."""
    digest = hashlib.sha256((source / "config.json").read_bytes())
    digest.update(json.dumps({f: (source / f).stat().st_size for f in shards}, sort_keys=True).encode())
    return digest.hexdigest()


def _shard_is_complete(folder: Path, entry: Mapping[str, Any] | None, source_sha256: str) -> bool:
    """Whether a shard converted before is whole, and was converted from the same source file."""
    from safetensors import safe_open

    from w2s.models.weights import file_sha256

    if entry is None or entry.get("source_sha256") != source_sha256:
        return False
    path = folder / entry["file"]
    if not path.is_file() or path.stat().st_size != entry["bytes"] or file_sha256(path) != entry.get("sha256"):
        return False
    with safe_open(str(path), framework="pt") as handle:
        return sorted(handle.keys()) == entry["tensors"]


def _convert_shard(path: Path, names: list[str]) -> dict[str, torch.Tensor]:
    from safetensors import safe_open

    converted = {}
    with safe_open(str(path), framework="pt") as handle:
        for name in names:
            tensor = handle.get_tensor(name)
            targets = _target_names(name)
            if len(targets) == 1:
                converted[targets[0]] = tensor
            else:
                # Clones: safetensors refuses to save views that share one storage.
                converted.update(zip(targets, (part.clone() for part in tensor.chunk(len(targets), dim=0))))
    return converted


def convert_checkpoint(
    source_dir: str | Path,
    out_dir: str | Path,
    *,
    tiktoken_path: str | Path | None = None,
) -> Path:
    """Convert the Qwen-1 checkpoint in `source_dir` into a Qwen2 folder `out_dir`: config, weights,
    tokenizer (from `tiktoken_path`, by default the checkpoint's qwen.tiktoken) and licence files.

    Weights are converted one source shard at a time, each into an output shard of its own, with
    names mapped and dtypes kept. The work happens in `.<out_dir>.partial` beside `out_dir`, where each
    shard is written atomically and listed in a manifest once complete: a rerun after a crash skips
    the shards already done. `out_dir` appears, by one rename, only when everything is written. The
    manifest stays in it as conversion.json, with the sha256 of each source file and of each converted one.
    """
    from w2s.models.weights import CONVERSION_RECORD, file_sha256, header_shapes

    source, out = Path(source_dir), Path(out_dir)
    qwen1 = read_qwen1_config(source)
    config = qwen2_config(qwen1)
    tiktoken = Path(tiktoken_path) if tiktoken_path is not None else source / "qwen.tiktoken"
    _require(tiktoken.is_file(), f"{tiktoken} does not exist; the tokenizer is built from Qwen's qwen.tiktoken")
    shards = _source_shards(source)
    _check_tensors(header_shapes(tuple(str(source / file) for file in shards)), qwen1)

    partial = out.with_name(f".{out.name}.partial")
    manifest_path = partial / CONVERSION_RECORD
    fingerprint = _fingerprint(source, shards)
    manifest = io.read_json(manifest_path) if manifest_path.is_file() else None
    if manifest is None or manifest["source_fingerprint"] != fingerprint:
        shutil.rmtree(partial, ignore_errors=True)
        manifest = {"source_fingerprint": fingerprint, "shards": {}}
    partial.mkdir(parents=True, exist_ok=True)
    for stray in partial.glob(".*.tmp*"):  # a write a crash interrupted
        stray.unlink()

    weight_map: dict[str, str] = {}
    total_bytes = 0
    for number, (file, names) in enumerate(shards.items(), start=1):
        entry = manifest["shards"].get(file)
        # Both sha256 go to the manifest, which is the output's conversion.json: every load checks its files
        # against it, and preflight the sources against the hub's.
        source_sha256 = file_sha256(source / file)
        if _shard_is_complete(partial, entry, source_sha256):
            log.info("shard %d of %d (%s) was converted before; kept", number, len(shards), file)
        else:
            log.info("converting shard %d of %d (%s)", number, len(shards), file)
            tensors = _convert_shard(source / file, names)
            out_file = f"model-{number:05d}-of-{len(shards):05d}.safetensors"
            io.write_safetensors(tensors, partial / out_file)
            entry = {"file": out_file, "tensors": sorted(tensors),
                     "tensor_bytes": sum(t.numel() * t.element_size() for t in tensors.values()),
                     "bytes": (partial / out_file).stat().st_size, "sha256": file_sha256(partial / out_file),
                     "source_sha256": source_sha256}
            del tensors
            manifest["shards"][file] = entry
            io.write_json(manifest, manifest_path)
        weight_map.update(dict.fromkeys(entry["tensors"], entry["file"]))
        total_bytes += entry["tensor_bytes"]
    io.write_json({"metadata": {"total_size": total_bytes}, "weight_map": dict(sorted(weight_map.items()))},
                  partial / "model.safetensors.index.json")

    config.dtype = _embedding_dtype(source, shards)
    io.write_text(config.to_json_string(use_diff=False), partial / "config.json")
    build_tokenizer(tiktoken, model_max_length=qwen1["seq_length"]).save_pretrained(partial)
    for licence in [*source.glob("LICENSE*"), *source.glob("NOTICE*")]:
        shutil.copyfile(licence, partial / licence.name)

    # staged_directory publishes atomically and replaces an earlier out_dir; its fresh staging
    # folder is swapped for the finished one by a rename.
    with io.staged_directory(out) as staging:
        staging.rmdir()
        partial.replace(staging)
    log.info("converted %s to %s", source, out)
    return out


def _embedding_dtype(source: Path, shards: Mapping[str, list[str]]) -> str:
    """The checkpoint's dtype as a config names it, read from the embedding's file header."""
    from safetensors import safe_open

    [file] = [file for file, names in shards.items() if "transformer.wte.weight" in names]
    with safe_open(str(source / file), framework="pt") as handle:
        code = handle.get_slice("transformer.wte.weight").get_dtype()
    return SAFETENSORS_DTYPES.get(code, code)


def _byte_characters() -> dict[int, str]:
    """Byte-level BPE's printable stand-in for each byte (as GPT-2's): printable Latin-1 bytes stand
    for themselves, the others for the characters from U+0100 on, in byte order."""
    printable = {*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)}
    table, shifted = {}, 0
    for byte in range(256):
        if byte in printable:
            table[byte] = chr(byte)
        else:
            table[byte] = chr(256 + shifted)
            shifted += 1
    return table


def read_ranks(tiktoken_path: Path, count: int = FIRST_SPECIAL_ID) -> dict[bytes, int]:
    """A tiktoken vocabulary file (a base64 token and its rank per line) that ranks `count` tokens 0..count-1."""
    ranks = {}
    for number, line in enumerate(tiktoken_path.read_bytes().splitlines(), start=1):
        if not line:
            continue
        try:
            token, rank = line.split()
            ranks[base64.b64decode(token, validate=True)] = int(rank)
        except ValueError as err:
            raise Qwen1ConversionError(
                f"{tiktoken_path}, line {number}: expected a base64 token and its rank ({err})") from err
    _require(sorted(ranks.values()) == list(range(count)),
             f"{tiktoken_path} must rank {count} distinct tokens 0..{count - 1} (Qwen's qwen.tiktoken ranks "
             f"{FIRST_SPECIAL_ID}); it has {len(ranks)}")
    return ranks


def rank_merges(ranks: Mapping[bytes, int]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """Byte-level BPE's vocabulary and merges that encode as tiktoken does with `ranks`.

    tiktoken merges, within each regex piece not itself a token, the adjacent pair whose joined
    bytes have the lowest rank. The same happens with one merge per way of splitting each
    token into two tokens, ordered by the joined token's rank (used with ignore_merges, so that a piece
    that is a token is taken whole)."""
    characters = _byte_characters()
    # One character per byte, so a token's text splits where its bytes do.
    texts = {token: "".join(characters[byte] for byte in token) for token in ranks}
    merges = sorted(
        (rank, ranks[token[:i]], i, texts[token])
        for token, rank in ranks.items()
        for i in range(1, len(token))
        if token[:i] in ranks and token[i:] in ranks
    )
    return {texts[token]: rank for token, rank in ranks.items()}, [(text[:i], text[i:]) for _, _, i, text in merges]


def build_tokenizer(tiktoken_path: str | Path, *, model_max_length: int | None = None) -> PreTrainedTokenizerFast:
    """Qwen-1's tokenizer without its remote code: byte-level BPE from qwen.tiktoken (rank_merges), Qwen's
    pre-tokenisation regex, NFC normalisation and its special tokens, with <|endoftext|> as eos and pad."""
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, models, normalizers, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab, merges = rank_merges(read_ranks(Path(tiktoken_path)))
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
    core.normalizer = normalizers.NFC()
    core.pre_tokenizer = pre_tokenizers.Sequence([
        pre_tokenizers.Split(Regex(PRETOKENIZE_PATTERN), behavior="isolated"),
        pre_tokenizers.ByteLevel(add_prefix_space=False, use_regex=False),
    ])
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens([AddedToken(token, special=True, normalized=False) for token in SPECIAL_TOKENS])
    ids = [core.token_to_id(token) for token in SPECIAL_TOKENS]
    _require(ids == list(range(FIRST_SPECIAL_ID, FIRST_SPECIAL_ID + len(SPECIAL_TOKENS))),
             "the special tokens did not get Qwen's ids 151643..151850")
    extra = {} if model_max_length is None else {"model_max_length": model_max_length}
    return PreTrainedTokenizerFast(tokenizer_object=core, eos_token=ENDOFTEXT, pad_token=ENDOFTEXT, **extra)


@contextlib.contextmanager
def _hub_errors(hub_id: str, revision: str) -> Iterator[None]:
    """The hub's refusals and network failures while fetching from `hub_id` at `revision`, said with their fix."""
    from httpx2 import HTTPError
    from huggingface_hub.errors import (
        HfHubHTTPError,
        IncompleteSnapshotError,
        LocalEntryNotFoundError,
        NotASafetensorsRepoError,
        OfflineModeIsEnabled,
        RepositoryNotFoundError,
        RevisionNotFoundError,
    )

    from w2s.models.text import offline_hint

    where = f"'{hub_id}' at revision {revision}"
    try:
        yield
    except RevisionNotFoundError as err:
        raise Qwen1ConversionError(f"the hub has no revision {revision} of '{hub_id}'; fix the model's revision") from err
    except RepositoryNotFoundError as err:
        raise Qwen1ConversionError(
            f"the hub has no repository '{hub_id}' you can read; fix the hub_id, or set HF_TOKEN if it is gated") from err
    except NotASafetensorsRepoError as err:
        raise Qwen1ConversionError(
            f"{where} has neither model.safetensors nor model.safetensors.index.json; Qwen-1 hub repos ship safetensors "
            "weights, so check the revision") from err
    except (LocalEntryNotFoundError, IncompleteSnapshotError, OfflineModeIsEnabled, HfHubHTTPError, HTTPError) as err:
        raise Qwen1ConversionError(f"could not download {where} from the Hugging Face hub (network): "
                                   f"{str(err).rstrip('.')}. {offline_hint('its files')}") from err


def fetch_and_convert(hub_id: str, revision: str, out_dir: str | Path) -> Path:
    """Download a Qwen-1 checkpoint's config, weights, qwen.tiktoken and licence files at `revision`
    (into the Hugging Face cache, which resumes an interrupted download) and convert it to `out_dir`."""
    from huggingface_hub import snapshot_download

    log.info("downloading '%s' at revision %s (%s)", hub_id, revision, ", ".join(HUB_FILES))
    with _hub_errors(hub_id, revision):
        snapshot = snapshot_download(hub_id, revision=revision, allow_patterns=HUB_FILES)
    return convert_checkpoint(snapshot, out_dir)


@dataclass(frozen=True)
class HubCheckpoint:
    """A Qwen-1 checkpoint on the hub as its headers describe it, checked without its weights."""

    config: dict[str, Any]  # Qwen-1's config.json
    tiktoken: Path  # qwen.tiktoken, in the Hugging Face cache
    files: int
    tensors: int
    tensor_bytes: int
    dtypes: tuple[str, ...]


def inspect_hub_checkpoint(hub_id: str, revision: str) -> HubCheckpoint:
    """What can be checked of a conversion before its weights download: config.json and qwen.tiktoken are
    fetched (into the Hugging Face cache), each safetensors file's header read (its first 8 + N bytes: names,
    dtypes, shapes, offsets), and every tensor's name and shape checked against the config as convert_checkpoint
    checks them. Raises Qwen1ConversionError saying what does not fit."""
    import huggingface_hub

    with _hub_errors(hub_id, revision):
        config_path = Path(huggingface_hub.hf_hub_download(hub_id, "config.json", revision=revision))
        tiktoken = Path(huggingface_hub.hf_hub_download(hub_id, "qwen.tiktoken", revision=revision))
        metadata = huggingface_hub.get_safetensors_metadata(hub_id, revision=revision)
    qwen1 = read_qwen1_config(config_path.parent)
    qwen2_config(qwen1)  # refuses a config that does not convert
    shapes = {name: (f"{file} of {hub_id}@{revision}", tuple(info.shape))
              for file, header in sorted(metadata.files_metadata.items()) for name, info in header.tensors.items()}
    _check_tensors(shapes, qwen1)
    infos = [info for header in metadata.files_metadata.values() for info in header.tensors.values()]
    return HubCheckpoint(qwen1, tiktoken, len(metadata.files_metadata), len(infos),
                         sum(info.data_offsets[1] - info.data_offsets[0] for info in infos),
                         tuple(sorted({SAFETENSORS_DTYPES.get(info.dtype, info.dtype) for info in infos})))
