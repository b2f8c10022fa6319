"""Published results of the reference implementation, as data to compare measured values with.

Source: the README of github.com/openai/weak-to-strong, section "Expected results": test accuracy
of each model finetuned on ground-truth labels, and the median PGR over weak→strong pairs per
loss. Values the README gives only roughly ("about") are marked approximate. The README's
anthropic_hh figure is for the single-response form, one transcript per example labelled chosen
or rejected, which is the form w2s.data.catalogue builds.

Reference models are matched by hub id, never by a config's model name, so a renamed model still
matches and a different checkpoint under a familiar name does not.
"""

from __future__ import annotations

from dataclasses import dataclass

SOURCE = "github.com/openai/weak-to-strong README, Expected results"

# The README's model names and the hub ids that load each of them.
HUB_IDS: dict[str, tuple[str, ...]] = {
    "gpt2": ("openai-community/gpt2", "gpt2"),
    "gpt2-medium": ("openai-community/gpt2-medium", "gpt2-medium"),
    "gpt2-large": ("openai-community/gpt2-large", "gpt2-large"),
    "gpt2-xl": ("openai-community/gpt2-xl", "gpt2-xl"),
    "Qwen-1.8B": ("Qwen/Qwen-1_8B",),
    "Qwen-7B": ("Qwen/Qwen-7B",),
    "Qwen-14B": ("Qwen/Qwen-14B",),
}


@dataclass(frozen=True)
class Published:
    """One published number; `approximate` when the source gives it only roughly."""

    value: float
    approximate: bool = False


def _per_model(*values: float | Published) -> dict[str, Published]:
    """Values in the README's model order, gpt2 first; bare floats are exact."""
    if len(values) != len(HUB_IDS):
        raise ValueError(f"{len(values)} values for {len(HUB_IDS)} reference models")
    return {model: v if isinstance(v, Published) else Published(v) for model, v in zip(HUB_IDS, values)}


GROUND_TRUTH_ACCURACY: dict[str, dict[str, Published]] = {
    "sciq": _per_model(0.636, 0.686, 0.726, 0.730, 0.822, 0.893, 0.922),
    "boolq": _per_model(0.661, 0.703, 0.707, 0.750, 0.781, 0.861, 0.896),
    "cosmos_qa": _per_model(0.685, 0.708, 0.736, 0.755, 0.787, 0.871, 0.885),
    "amazon_polarity": _per_model(0.942, 0.953, 0.958, 0.960, 0.960,
                                  Published(0.972, approximate=True), Published(0.972, approximate=True)),
    # Near chance for every model in this form of the dataset.
    "anthropic_hh": {model: Published(0.49, approximate=True) for model in HUB_IDS},
}

# Median PGR over the README's weak→strong pairs, per dataset and loss.
MEDIAN_PGR: dict[str, dict[str, Published]] = {
    "sciq": {"xent": Published(0.33), "logconf": Published(0.31)},
    "boolq": {"xent": Published(0.05), "logconf": Published(-0.35)},
    "cosmos_qa": {"xent": Published(0.35), "logconf": Published(0.37)},
    "amazon_polarity": {"xent": Published(0.58), "logconf": Published(0.52)},
}


def reference_model(hub_id: str | None) -> str | None:
    """The README's name for the model a hub id loads, or None when the README has no such model."""
    return next((model for model, ids in HUB_IDS.items() if hub_id in ids), None)


def ground_truth_accuracy(dataset: str, hub_id: str | None) -> Published | None:
    model = reference_model(hub_id)
    return GROUND_TRUTH_ACCURACY.get(dataset, {}).get(model) if model else None


def median_pgr(dataset: str, loss: str | None) -> Published | None:
    return MEDIAN_PGR.get(dataset, {}).get(loss) if loss else None
