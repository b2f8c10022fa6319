"""Contrast-consistent search (CCS) on the strong model's frozen features: Burns, Ye, Klein and Steinhardt 2022,
"Discovering Latent Knowledge in Language Models Without Supervision" (arXiv 2212.03827).

Every text becomes a contrast pair, the prompt answered with each of the task's two label words
(format_example + label_words[0] and + label_words[1]). The strong model's frozen backbone embeds both, pooled
as its probe features are (w2s.training.features.embed_texts, truncated on the left so that the answer stays);
each side is normalised on its own over a split's rows (the fitted rows, test, train_w2s), as the paper's code
does. A linear probe p(x) = sigmoid(w·x + b) is fit to the weak-labelled rows' pairs without any label, by the
CCS loss (consistency plus confidence), from `restarts` seeded random starts with full-batch AdamW, keeping the
start of lowest loss. P(class 1) = (p(x1) + 1 - p(x0)) / 2. CCS cannot tell a direction from its opposite, so
the weak labels are used once: the probe is flipped if its hard predictions on the fitted rows agree with the
weak hard labels less often than they disagree. Binary text tasks only.
Entry "w2s.methods.ccs:ccs", params {restarts: 10, steps: 1000, lr: 1e-3, weight_decay: 0.01} (the paper's
code's defaults: ntries, nepochs, lr, weight_decay); the starts are seeded by the run's seed."""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass

import numpy as np
import torch

from w2s.methods.interface import MethodError, MethodInputs
from w2s.models.devices import device, supported_dtype
from w2s.models.prompting import format_example
from w2s.training.features import embed_texts
from w2s.training.probe import one_thread
from w2s.training.settings import EmbeddingSettings

log = logging.getLogger("w2s")

Pair = tuple[torch.Tensor, torch.Tensor]


@dataclass(frozen=True)
class Probe:
    """p(x) = sigmoid(x·weight + bias) on normalised features, and its CCS loss where it was fit."""

    weight: torch.Tensor
    bias: float
    loss: float

    def p_class1(self, features_0: torch.Tensor, features_1: torch.Tensor) -> torch.Tensor:
        """P(class 1) of each pair: (p(x1) + 1 - p(x0)) / 2."""
        p_0, p_1 = (torch.sigmoid(f @ self.weight + self.bias) for f in (features_0, features_1))
        return (p_1 + 1 - p_0) / 2

    def flipped(self) -> "Probe":
        """The opposite direction: p becomes 1 - p, and P(class 1) becomes 1 - P(class 1)."""
        return Probe(-self.weight, -self.bias, self.loss)


def ccs_loss(p_pos: torch.Tensor, p_neg: torch.Tensor) -> torch.Tensor:
    """Mean over rows (dim 0) of the consistency (p(x+) - (1 - p(x-)))² plus the confidence min(p(x+), p(x-))²."""
    return ((p_pos - (1 - p_neg)) ** 2 + torch.minimum(p_pos, p_neg) ** 2).mean(dim=0)


def normalise(features: torch.Tensor) -> torch.Tensor:
    """One side of the pairs less its mean over rows, over its standard deviation per dimension (numpy's, ddof 0;
    a constant dimension is only centred), as float32."""
    centred = features.double() - features.double().mean(dim=0)
    std = centred.std(dim=0, correction=0)
    return (centred / torch.where(std > 0, std, 1.0)).float()


def fit_ccs_probe(features_0: torch.Tensor, features_1: torch.Tensor, restarts: int, seed: int, steps: int = 1000,
                  lr: float = 1e-3, weight_decay: float = 0.01, on: torch.device = torch.device("cpu")) -> Probe:
    """The probe of lowest CCS loss on normalised pairs (n, d) among `restarts` starts drawn as nn.Linear's
    (uniform in ±1/√d), seeded by `seed`. The starts train side by side as the rows of one (restarts, d) weight,
    each with its own loss and AdamW state, `steps` full-batch steps: as rows, so that the weight's gradient is
    grad.T @ x (on a CPU 3x faster than x.T @ grad), and on one CPU thread, as the probe heads' fits."""
    bound = 1 / math.sqrt(features_0.shape[1])
    generator = torch.Generator().manual_seed(seed)
    weight = ((2 * torch.rand(restarts, features_0.shape[1], generator=generator) - 1) * bound).to(on)
    bias = ((2 * torch.rand(restarts, generator=generator) - 1) * bound).to(on)
    weight.requires_grad_()
    bias.requires_grad_()
    x_0, x_1 = features_0.to(on), features_1.to(on)
    optimizer = torch.optim.AdamW([weight, bias], lr=lr, weight_decay=weight_decay)

    def losses() -> torch.Tensor:
        return ccs_loss(*(torch.sigmoid(torch.nn.functional.linear(x, weight, bias)) for x in (x_1, x_0)))

    with one_thread() if on.type == "cpu" else contextlib.nullcontext():
        for _ in range(steps):
            optimizer.zero_grad()
            losses().sum().backward()
            optimizer.step()
        with torch.no_grad():
            final = losses().cpu()
    best = int(final.argmin())
    return Probe(weight.detach()[best].cpu(), float(bias.detach()[best]), float(final[best]))


def agreement(p_class1: torch.Tensor, weak_hard: np.ndarray) -> float:
    """The share of rows whose hard prediction (P(class 1) > 0.5) is their weak hard label."""
    return float(np.mean((p_class1.numpy() > 0.5) == (weak_hard == 1)))


def orient(probe: Probe, features_0: torch.Tensor, features_1: torch.Tensor, weak_hard: np.ndarray) -> Probe:
    """The probe, flipped if its hard predictions on these pairs agree with `weak_hard` less often than not."""
    return probe.flipped() if agreement(probe.p_class1(features_0, features_1), weak_hard) < 0.5 else probe


def contrast_features(inputs: MethodInputs) -> dict[str, Pair]:
    """The raw pooled features of both members of every row's contrast pair, by split to predict."""
    settings, prompt = inputs.strong.settings, inputs.prompt
    texts = {f"{split}/{side}": [format_example(text, prompt.question) + word for text in inputs.predict[split]["text"]]
             for split in inputs.predict for side, word in enumerate(prompt.label_words)}
    on = device()
    embedded = embed_texts(inputs.strong.entry, EmbeddingSettings(settings.pooling, settings.max_length,
                                                                  settings.dtype, settings.eval_batch_size),
                           texts, on, supported_dtype(on, settings.dtype), truncation_side="left")
    return {split: (embedded[f"{split}/0"], embedded[f"{split}/1"]) for split in inputs.predict}


def ccs(inputs: MethodInputs) -> dict[str, np.ndarray]:
    if inputs.task.n_classes != 2 or inputs.task.input_column != "text":
        raise MethodError(f"ccs builds contrast pairs from two answers to a text, so it needs a binary text task; "
                          f"this task is {inputs.task.kind} with {inputs.task.n_classes} classes: run ccs on a "
                          "two-class text dataset, or choose another method")
    params = inputs.params
    restarts, steps = int(params.get("restarts", 10)), int(params.get("steps", 1000))
    lr, weight_decay = float(params.get("lr", 1e-3)), float(params.get("weight_decay", 0.01))
    if restarts < 1 or steps < 1 or lr <= 0 or weight_decay < 0:
        raise MethodError(f"ccs: restarts and steps must be 1 or more, lr above 0 and weight_decay 0 or more, not "
                          f"{restarts}, {steps}, {lr} and {weight_decay}")
    pairs = contrast_features(inputs)
    positions = torch.tensor(inputs.train["position"].tolist(), dtype=torch.long)
    fit_0, fit_1 = (normalise(side[positions]) for side in pairs["train_w2s"])
    probe = fit_ccs_probe(fit_0, fit_1, restarts, inputs.seed, steps, lr, weight_decay, device())
    weak_hard = inputs.weak_labels["hard_label"].to_numpy()
    before = agreement(probe.p_class1(fit_0, fit_1), weak_hard)
    probe = orient(probe, fit_0, fit_1, weak_hard)
    after = agreement(probe.p_class1(fit_0, fit_1), weak_hard)
    log.info("ccs: CCS loss %.4f, the lowest of %d starts; agreement with the weak hard labels %.3f before "
             "orientation, %.3f after", probe.loss, restarts, before, after)
    probs = {}
    for split in inputs.predict:
        p_class1 = probe.p_class1(*(normalise(side) for side in pairs[split])).double().numpy()
        probs[split] = np.stack([1 - p_class1, p_class1], axis=1)
    return probs
