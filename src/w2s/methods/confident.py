"""Training only on confident weak labels: the student sees the weak labels whose confidence (the probability of
their most probable class) is at or above the `quantile` of all of them, a baseline of the 2026 weak-to-strong
sandbox (safety-research/automated-w2s-research). Entry "w2s.methods.confident:confident", params {quantile: q in
[0, 1), loss: xent}."""

from __future__ import annotations

import numpy as np

from w2s.methods.interface import MethodError, MethodInputs, StudentRun


def confident(inputs: MethodInputs) -> StudentRun:
    quantile = float(inputs.params.get("quantile", 0.5))
    if not 0.0 <= quantile < 1.0:
        raise MethodError(f"confident: quantile must lie in [0, 1), not {quantile}")
    confidence = inputs.weak_probs().max(axis=1)
    kept = confidence >= np.quantile(confidence, quantile)
    return inputs.strong.train(inputs.weak_labels[kept].reset_index(drop=True),
                               loss=inputs.params.get("loss", "xent"), name="confident")
