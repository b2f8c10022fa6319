"""Confidence-weighted resampling of weak labels: a `fraction` of the weak labels drawn without replacement, each
row with probability proportional to its confidence (the probability of its most probable class) raised to
`power`, each keeping its soft label; one of the better methods the 2026 weak-to-strong sandbox's agents found
(safety-research/automated-w2s-research). Without replacement, because the trainer takes each weak-labelled row once.
Entry "w2s.methods.resampling:resample", params {fraction: f in (0, 1], power: p >= 0, loss: xent}; the draw is
seeded by the run's seed."""

from __future__ import annotations

import numpy as np

from w2s.methods.interface import MethodError, MethodInputs, StudentRun


def resample(inputs: MethodInputs) -> StudentRun:
    fraction = float(inputs.params.get("fraction", 0.5))
    power = float(inputs.params.get("power", 1.0))
    if not (0.0 < fraction <= 1.0 and power >= 0.0):
        raise MethodError(f"resampling: fraction must lie in (0, 1] and power be 0 or more, not {fraction} and {power}")
    weight = inputs.weak_probs().max(axis=1) ** power
    size = max(2, round(fraction * len(weight)))
    drawn = np.random.default_rng(inputs.seed).choice(len(weight), size=size, replace=False, p=weight / weight.sum())
    return inputs.strong.train(inputs.weak_labels.iloc[np.sort(drawn)].reset_index(drop=True),
                               loss=inputs.params.get("loss", "xent"), name="resampled")
