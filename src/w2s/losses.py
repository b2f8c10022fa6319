"""Losses for training on (possibly weak) soft labels, as small pure functions selected by name.

Every loss takes logits of shape (n, 2), soft targets of shape (n, 2) whose rows sum to 1,
and step_frac, the fraction of training done so far; hyperparameters follow as keywords.
"""

from __future__ import annotations

from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[..., torch.Tensor]


def xent(logits: torch.Tensor, targets: torch.Tensor, step_frac: float) -> torch.Tensor:
    """Cross-entropy against the soft weak labels."""
    return F.cross_entropy(logits.float(), targets.float())


def logconf(
    logits: torch.Tensor,
    targets: torch.Tensor,
    step_frac: float,
    aux_coef: float = 0.5,
    warmup_frac: float = 0.2,
) -> torch.Tensor:
    """The auxiliary confidence loss of Burns et al. (2023), section 4.3.2.

    The target mixes the weak label with the student's own hardened prediction. Predictions
    are hardened at the batch quantile that reproduces the weak labels' class prior, so a
    student is not pushed into predicting one class. The mixing weight grows linearly from
    0 to aux_coef over the first warmup_frac of training.
    """
    logits = logits.float()
    targets = targets.float()
    coef = aux_coef if warmup_frac == 0 else aux_coef * min(1.0, step_frac / warmup_frac)
    probs = torch.softmax(logits.detach(), dim=-1)
    threshold = torch.quantile(probs[:, 0], targets.mean(0)[1])
    hardened = torch.stack([probs[:, 0] >= threshold, probs[:, 0] < threshold], dim=1).float()
    mixed = (1 - coef) * targets + coef * hardened
    return F.cross_entropy(logits, mixed)


LOSSES: dict[str, LossFn] = {"xent": xent, "logconf": logconf}
