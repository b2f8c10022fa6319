"""Shared fixtures: tiny randomly initialised models, a model folder with its own code, and a private datasets
cache. The plain functions and constants the tests share are in helpers.py; a test file imports those, and
requests these by name."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

# Before any test module imports transformers: a CPU torch needs w2s's torchvision shim
# (w2s.models.torchvision_ops).
import w2s  # noqa: F401
from helpers import make_tiny_model


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "tiny-bert": make_tiny_model(root / "tiny-bert", "bert", 0),
        "tiny-gpt2": make_tiny_model(root / "tiny-gpt2", "gpt2", 1),
    }


@pytest.fixture
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the Arrow cache of every test in its own folder, so no test reads another's files,
    and never touch the network: `load_dataset("json", ...)` otherwise sends a download-count
    request to the hub, which stalls for seconds on an offline machine. A test file that reads
    datasets asks for it for all its tests: `pytestmark = pytest.mark.usefixtures(...)`."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)


REMOTE_CONFIG = '''
from transformers import PretrainedConfig


class TinyConfig(PretrainedConfig):
    model_type = "tiny-remote"

    def __init__(self, vocab_size=12, hidden_size=8, **kwargs):
        self.vocab_size = vocab_size
        self.hidden_size = hidden_size
        super().__init__(**kwargs)
'''

REMOTE_MODEL = '''
import torch
from torch import nn
from transformers import PreTrainedModel

from .configuration_tiny import TinyConfig


class TinyAttention(nn.Module):
    def __init__(self, config):
        super().__init__()
        self.c_attn = nn.Linear(config.hidden_size, config.hidden_size)
        self.c_proj = nn.Linear(config.hidden_size, config.hidden_size)
        # As in Qwen-1's attention. transformers 5 re-creates non-persistent buffers after loading,
        # so this module counts as not initialised and its _init_weights runs.
        self.register_buffer("masked_bias", torch.tensor(-1e4), persistent=False)


class TinyModel(PreTrainedModel):
    config_class = TinyConfig
    base_model_prefix = "transformer"

    def __init__(self, config):
        super().__init__(config)
        self.wte = nn.Embedding(config.vocab_size, config.hidden_size)
        self.attn = TinyAttention(config)
        self.post_init()

    def _init_weights(self, module):
        # Qwen-1's own rule, writing .data directly, past transformers' guards on loaded weights.
        if isinstance(module, nn.Linear):
            module.weight.data.normal_(std=0.02)
            module.bias.data.zero_()
        elif isinstance(module, nn.Embedding):
            module.weight.data.normal_(std=0.02)
        for name, p in module.named_parameters():
            if name == "c_proj.weight":
                p.data.normal_(mean=0.0, std=0.02)

    def forward(self, input_ids):
        return self.attn.c_proj(self.attn.c_attn(self.wte(input_ids)))
'''


@pytest.fixture()
def remote_code_model(tmp_path: Path) -> Path:
    """A model folder with its own code (auto_map), whose _init_weights re-draws one loaded weight
    under transformers 5 the way Qwen-1's re-draws every attn.c_proj.weight."""
    import torch
    from safetensors.torch import save_file

    folder = tmp_path / "tiny_remote"
    folder.mkdir()
    (folder / "configuration_tiny.py").write_text(REMOTE_CONFIG)
    (folder / "modeling_tiny.py").write_text(REMOTE_MODEL)
    (folder / "config.json").write_text(json.dumps({
        "model_type": "tiny-remote", "vocab_size": 12, "hidden_size": 32, "architectures": ["TinyModel"],
        "auto_map": {"AutoConfig": "configuration_tiny.TinyConfig", "AutoModel": "modeling_tiny.TinyModel"}}))
    generator = torch.Generator().manual_seed(0)
    shapes = {"wte.weight": (12, 32), "attn.c_attn.weight": (32, 32), "attn.c_attn.bias": (32,),
              "attn.c_proj.weight": (32, 32), "attn.c_proj.bias": (32,)}
    save_file({name: torch.randn(shape, generator=generator) for name, shape in shapes.items()},
              str(folder / "model.safetensors"), metadata={"format": "pt"})
    return folder
