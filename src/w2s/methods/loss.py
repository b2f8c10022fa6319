"""The built-in losses as a method: the project's student trained with one registered loss on every weak label,
exactly as a train_student job trains it. Entry "w2s.methods.loss:train_with_loss", params {loss: NAME, ...its
hyperparameters}; with {loss: xent} its predictions equal the xent student's."""

from __future__ import annotations

from w2s.methods.interface import MethodInputs, StudentRun


def train_with_loss(inputs: MethodInputs) -> StudentRun:
    params = dict(inputs.params)
    loss = params.pop("loss", "xent")
    return inputs.strong.train(inputs.weak_labels, loss=loss, loss_params=params)
