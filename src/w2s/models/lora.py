"""LoRA adapters (Hu et al. 2021): their settings (training.lora) and add_lora, which puts them on a backbone.

Torch-free to import (peft and torch load when add_lora runs), so that the typed training settings
(w2s.training.settings) and the config validator that reads them load without torch.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from w2s.models.source import ModelLoadError

if TYPE_CHECKING:
    from torch import nn


@dataclass(frozen=True)
class LoraSettings:
    """training.lora: the adapters add_lora puts on the backbone (built by w2s.training.settings)."""

    r: int
    alpha: float
    dropout: float
    target_modules: str | tuple[str, ...]


def add_lora(backbone: nn.Module, settings: LoraSettings) -> nn.Module:
    """Freeze the backbone and train low-rank adapters on its linear layers."""
    from peft import LoraConfig, get_peft_model

    modules = settings.target_modules
    config = LoraConfig(r=settings.r, lora_alpha=settings.alpha, lora_dropout=settings.dropout,
                        target_modules=modules if isinstance(modules, str) else list(modules))
    try:
        return get_peft_model(backbone, config)
    except ValueError as err:
        raise ModelLoadError(
            f"LoRA could not wrap the model: {err}. Set training.lora.target_modules to names of its "
            "linear layers, or to all-linear"
        ) from err
