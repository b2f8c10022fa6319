"""A weak-to-strong method in one file: weak labels smoothed over their neighbours in the strong model's own
feature space, then the project's student trained on them.

Weak errors that the strong model's features place among correctly labelled rows are outvoted: each row's soft
label becomes the mean of the weak labels of its `k` nearest rows (itself included), by cosine similarity of the
strong model's frozen features (a probe-mode strong model). Name it in a config (docs/methods.md, "Add a method"):

    methods:
      smoothed: {entry: "path/to/neighbour_smoothing.py:smooth", params: {k: 10}}
"""

import numpy as np

from w2s.data.labels import as_column
from w2s.methods.interface import MethodInputs, StudentRun


def smooth(inputs: MethodInputs) -> StudentRun:
    k = int(inputs.params.get("k", 10))
    features = inputs.train_features()
    unit = features / np.linalg.norm(features, axis=1, keepdims=True)
    nearest = np.argsort(-(unit @ unit.T), axis=1, kind="stable")[:, :k]
    smoothed = inputs.weak_probs()[nearest].mean(axis=1)
    labels = inputs.weak_labels.assign(soft_label=as_column(smoothed), hard_label=smoothed.argmax(axis=1))
    return inputs.strong.train(labels, name="smoothed")
