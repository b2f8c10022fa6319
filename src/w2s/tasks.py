"""Task kinds: the one seam through which a kind of task enters the pipeline.

A dataset declares its kind in the config (`kind:`, text_classification by default). The kind
decides how rows become model inputs (the column a prepared split holds and the model family that
reads it), what a label is (a class index 0..K-1, K = n_classes, or for a generative task a target
text), which training modes apply, and which metrics are computed. The rules stay the same artifacts
for every kind; jobs receive the task as the `task` param ({"kind", "n_classes"}, plus
"max_new_tokens" for a generative task, and for a generative training job the slices of train_w2s it
generates on, "generated_slices" of "n_slices") and dispatch on it and on the training mode.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any


@dataclass(frozen=True)
class TaskKind:
    """What one kind of task fixes: the input and label columns of its prepared splits, the model families
    that read it, and the training modes those families support."""

    name: str
    input_column: str
    model_families: tuple[str, ...]
    modes: tuple[str, ...]
    description: str
    # The column of a prepared split that holds the truth: a class index, or a generative task's target text.
    label_column: str = "label"


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
    "generative": TaskKind(
        "generative", "prompt", ("transformers",), ("full", "lora"),
        "a prompt in, a target text out (the paper's chess puzzles): a causal LM trained with next-token loss on "
        "the target tokens, scored by exact match of its greedy generation",
        label_column="target",
    ),
}
GENERATIVE = "generative"
DEFAULT_KIND = "text_classification"
# The family of a model entry that names none: a transformers checkpoint (hub_id, path or package).
DEFAULT_FAMILY = "transformers"


@dataclass(frozen=True)
class Task:
    """A dataset's kind and its number of classes (0 for a generative task, which has none), as jobs
    receive them; a generative task also says how many tokens a model may generate and, to a training
    job, on which of train_w2s's `n_slices` slices it generates (those its weak labels are read from; a
    classifier predicts every row, which costs little)."""

    kind: str
    n_classes: int
    max_new_tokens: int | None = None
    generated_slices: tuple[int, ...] = ()
    n_slices: int | None = None

    @property
    def spec(self) -> TaskKind:
        return KINDS[self.kind]

    @property
    def input_column(self) -> str:
        return self.spec.input_column

    @property
    def label_column(self) -> str:
        return self.spec.label_column

    @property
    def is_binary(self) -> bool:
        return self.n_classes == 2

    @property
    def is_generative(self) -> bool:
        return self.kind == GENERATIVE

    def params(self) -> dict[str, Any]:
        """The `task` param of a rule: a change of kind, class count or generation length reruns exactly its
        dependents."""
        params: dict[str, Any] = {"kind": self.kind, "n_classes": self.n_classes}
        if self.max_new_tokens is not None:
            params["max_new_tokens"] = self.max_new_tokens
        if self.n_slices is not None:
            params.update(generated_slices=list(self.generated_slices), n_slices=self.n_slices)
        return params

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "Task":
        if params["kind"] not in KINDS:
            raise ValueError(f"unknown task kind '{params['kind']}'; known kinds: {', '.join(sorted(KINDS))}")
        if params["kind"] == GENERATIVE:
            return generative_task(int(params["max_new_tokens"]), tuple(params.get("generated_slices", ())),
                                   params.get("n_slices"))
        return cls(params["kind"], int(params["n_classes"]))


def generative_task(max_new_tokens: int | None, generated_slices: tuple[int, ...] = (),
                    n_slices: int | None = None) -> Task:
    """A generative task: no classes, and at most `max_new_tokens` generated tokens per prompt (the config's
    generation.max_new_tokens; None where only the kind matters). A training job also gets the slices of
    train_w2s (1-based, of `n_slices`) it generates on; with n_slices None it generates on all of train_w2s."""
    return Task(GENERATIVE, 0, max_new_tokens, tuple(generated_slices), n_slices)


def dataset_task(entry: dict[str, Any], max_new_tokens: int | None = None) -> Task:
    """The task of a dataset's config entry: the paper's catalogue datasets are binary text tasks. A generative
    entry gives no n_classes; its generation length is the config's generation.max_new_tokens."""
    kind = entry.get("kind", DEFAULT_KIND)
    if kind == GENERATIVE:
        return generative_task(max_new_tokens)
    return Task(kind, int(entry.get("n_classes", 2)))


def model_family(entry: dict[str, Any]) -> str:
    return entry.get("family", DEFAULT_FAMILY)
