"""What a model is loaded from (ModelSource: a location and from_pretrained's keyword arguments), and the error
said when it cannot be loaded (ModelLoadError). Below both the loaders (w2s.models.text) and the weights check
(w2s.models.weights), which each need them."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


class ModelLoadError(RuntimeError):
    """A model could not be loaded; the message says what failed and how to fix it."""


@dataclass(frozen=True)
class ModelSource:
    """Where from_pretrained finds a model, and with which keyword arguments."""

    location: str
    kwargs: dict[str, Any] = field(default_factory=dict)
    description: str = ""
