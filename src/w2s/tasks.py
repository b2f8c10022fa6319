"""Task kinds: the one seam through which a kind of task enters the pipeline.

A dataset declares its kind in the config (`kind:`, text_classification by default). The kind
decides how rows become model inputs (the column a prepared split holds and the model family that
reads it), what a label is (a class index 0..K-1, K = n_classes), which training modes apply, and
which metrics are computed. The rules stay the same artifacts for every kind; jobs receive the
task as the `task` param ({"kind", "n_classes"}) and dispatch on it and on the training mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskKind:
    """What one kind of task fixes: the input column of its prepared splits, the model families that read
    it, and the training modes those families support."""

    name: str
    input_column: str
    model_families: tuple[str, ...]
    modes: tuple[str, ...]
    description: str


KINDS: dict[str, TaskKind] = {
    "text_classification": TaskKind(
        "text_classification", "text", ("transformers",), ("full", "lora", "probe"),
        "text in, one of K classes out; the paper's NLP tasks are its binary case",
    ),
    "image_classification": TaskKind(
        "image_classification", "image", ("torchvision", "timm"), ("probe", "pretrained_head"),
        "an encoded image in, one of K classes out (the paper's ImageNet experiment): linear probes on frozen "
        "embeddings, or a pretrained classifier's own head used as it is",
    ),
}
DEFAULT_KIND = "text_classification"
# The family of a model entry that names none: a transformers checkpoint (hub_id, path or package).
DEFAULT_FAMILY = "transformers"


@dataclass(frozen=True)
class Task:
    """A dataset's kind and its number of classes, as jobs receive them."""

    kind: str
    n_classes: int

    @property
    def spec(self) -> TaskKind:
        return KINDS[self.kind]

    @property
    def input_column(self) -> str:
        return self.spec.input_column

    @property
    def is_binary(self) -> bool:
        return self.n_classes == 2

    def params(self) -> dict[str, Any]:
        """The `task` param of a rule: a change of kind or class count reruns exactly its dependents."""
        return {"kind": self.kind, "n_classes": self.n_classes}

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Task":
        if params["kind"] not in KINDS:
            raise ValueError(f"unknown task kind '{params['kind']}'; known kinds: {', '.join(sorted(KINDS))}")
        return cls(params["kind"], int(params["n_classes"]))


def dataset_task(entry: dict[str, Any]) -> Task:
    """The task of a dataset's config entry: the paper's catalogue datasets are binary text tasks."""
    return Task(entry.get("kind", DEFAULT_KIND), int(entry.get("n_classes", 2)))


def model_family(entry: dict[str, Any]) -> str:
    return entry.get("family", DEFAULT_FAMILY)
