"""Losses for training on (possibly weak) soft labels, as small pure functions; a config names them by the
names w2s.training.loss_registry gives them.

Every loss takes logits of shape (n, K), soft targets of shape (n, K) whose rows sum to 1,
for any number of classes K >= 2, and step_frac, the fraction of training done so far; hyperparameters follow as keyword-only
arguments with defaults, which the registry lists so that a config can name them and the config validator can
check them.

Under gradient accumulation the rows are one minibatch of a larger optimiser batch, described by
the keyword `batch`. Every loss returns the minibatch's share of the batch loss, a sum over its
rows divided by the batch size, so the shares of all minibatches add up to the batch loss and
their gradients to its gradient. Without `batch` the rows are the whole batch and the result is
the usual mean.

Each docstring says what the loss does for K > 2; only logconf's hardening differs from its binary form.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

import torch
import torch.nn.functional as F

LossFn = Callable[..., torch.Tensor]


@dataclass(frozen=True)
class Batch:
    """The optimiser batch a minibatch belongs to: its size, every row's soft target and, for the
    losses registered with needs_batch_probs, the student's detached probabilities on every row."""

    size: int
    targets: torch.Tensor
    probs: torch.Tensor | None = None


def _wide(tensor: torch.Tensor) -> torch.Tensor:
    """float32, or float64 where given: half-precision logits are widened, and a full-batch probe fit
    (w2s.training.probe) keeps its float64, without which its gradient cannot get below float32's rounding."""
    return tensor if tensor.dtype == torch.float64 else tensor.float()


def _whole(logits: torch.Tensor, targets: torch.Tensor, batch: Batch | None) -> Batch:
    if batch is not None:
        return batch
    return Batch(len(logits), targets, torch.softmax(_wide(logits.detach()), dim=-1))


def _share(per_row: torch.Tensor, batch: Batch | None) -> torch.Tensor:
    """Sum of per-row losses over the batch size: the mean when the rows are the whole batch."""
    return per_row.sum() / (len(per_row) if batch is None else batch.size)


def _warmed_up(aux_coef: float, warmup_frac: float, step_frac: float) -> float:
    """aux_coef times a ramp that grows linearly from 0 at step_frac 0 to 1 at warmup_frac."""
    return aux_coef if warmup_frac == 0 else aux_coef * min(1.0, step_frac / warmup_frac)


def xent(logits: torch.Tensor, targets: torch.Tensor, step_frac: float, *, batch: Batch | None = None) -> torch.Tensor:
    """Cross-entropy against the soft weak labels, -mean_i sum_k t_ik log p_ik, for any K."""
    return _share(F.cross_entropy(_wide(logits), targets.to(_wide(logits).dtype), reduction="none"), batch)


def xent_hard(logits: torch.Tensor, targets: torch.Tensor, step_frac: float, *,
              batch: Batch | None = None) -> torch.Tensor:
    """Cross-entropy against the hardened weak labels: -mean_i log p_i[y_i], y_i = argmax_k t_ik.

    Ties go to the lowest class index, so for K = 2 y_i = 1 exactly when the weak probability of
    class 1 is above 0.5 and a weak label of exactly 0.5 becomes class 0, the convention of
    w2s.evaluation.metrics. The hard-label counterpart of xent; neither openai/weak-to-strong nor
    EleutherAI/w2s has one.
    """
    return _share(F.cross_entropy(_wide(logits), targets.argmax(dim=-1), reduction="none"), batch)


def kl(logits: torch.Tensor, targets: torch.Tensor, step_frac: float, *, batch: Batch | None = None) -> torch.Tensor:
    """KL(weak || student) = mean_i sum_k t_ik (log t_ik - log p_ik), with 0 log 0 = 0, for any K.

    It is xent minus the mean entropy of the targets, which does not depend on the logits:
    the value differs from xent by that constant and the gradient is exactly xent's. What it
    adds is a reading of 0 for a student that matches its targets exactly. The standard
    Kullback-Leibler divergence; neither openai/weak-to-strong nor EleutherAI/w2s has it.
    """
    per_entry = F.kl_div(F.log_softmax(_wide(logits), dim=-1), targets.to(_wide(logits).dtype), reduction="none")
    return _share(per_entry.sum(dim=-1), batch)


def logconf_threshold(batch_probs: torch.Tensor, batch_targets: torch.Tensor) -> torch.Tensor:
    """The binary logconf's hardening threshold: the quantile of the batch's student p_0 at the weak labels'
    mean probability of class 1. Both are read as sets of rows, in any order."""
    column_0 = _wide(batch_probs[:, 0])
    return torch.quantile(column_0, batch_targets.to(column_0.dtype).mean(0)[1])


def hardened_predictions(probs: torch.Tensor, batch_probs: torch.Tensor, batch_targets: torch.Tensor) -> torch.Tensor:
    """logconf's hardened student predictions: one-hot rows (n, K) in the dtype of `probs`.

    K = 2: class 1 where p_i0 is below the quantile of the batch's p_0 at the weak labels' mean
    probability of class 1, so the batch is hardened with the weak labels' class prior (openai/weak-to-strong
    logconf_loss_fn; rows at the threshold become class 0). K > 2: the student's argmax (lowest index
    among ties). The paper (section 4.3.2, appendix A.4) defines the threshold for binary tasks only and
    the reference code asserts two classes, so the prior-matching threshold has no K-class form there.
    """
    if probs.shape[1] != 2:
        return F.one_hot(probs.argmax(dim=-1), probs.shape[1]).to(probs.dtype)
    threshold = logconf_threshold(batch_probs, batch_targets)
    return torch.stack([probs[:, 0] >= threshold, probs[:, 0] < threshold], dim=1).to(probs.dtype)


def logconf(
    logits: torch.Tensor,
    targets: torch.Tensor,
    step_frac: float,
    *,
    batch: Batch | None = None,
    aux_coef: float = 0.5,
    warmup_frac: float = 0.2,
) -> torch.Tensor:
    """The auxiliary confidence loss of Burns et al. (2023), section 4.3.2.

    The target mixes the weak label with the student's own hardened prediction (hardened_predictions).
    For K = 2 predictions are hardened at the batch quantile that reproduces the weak labels' class
    prior, so a student is not pushed into predicting one class; for K > 2 they are hardened at the
    student's argmax, which keeps no class prior. The mixing weight grows linearly from 0 to aux_coef
    over the first warmup_frac of training. Under accumulation the quantile is taken over
    `batch.probs`, the whole batch, so it does not depend on the minibatch size.
    """
    logits = _wide(logits)
    targets = targets.to(logits.dtype)
    whole = _whole(logits, targets, batch)
    if whole.probs is None:
        raise ValueError("logconf needs batch.probs, the student's probabilities on the whole batch")
    coef = _warmed_up(aux_coef, warmup_frac, step_frac)
    hardened = hardened_predictions(torch.softmax(logits.detach(), dim=-1), whole.probs, whole.targets)
    mixed = (1 - coef) * targets + coef * hardened
    return _share(F.cross_entropy(logits, mixed, reduction="none"), batch)


def product(
    logits: torch.Tensor,
    targets: torch.Tensor,
    step_frac: float,
    *,
    batch: Batch | None = None,
    alpha: float = 1.0,
    beta: float = 1.0,
) -> torch.Tensor:
    """Cross-entropy against q_ic proportional to t_ic^alpha * p_ic^beta, q held constant.

    The product loss of openai/weak-to-strong (weak_to_strong/loss.py, product_loss_fn), with
    its names: alpha weighs the weak label t, beta the student's prediction p. The gradient is
    (p - q) / n: q is not differentiated. q is normalised in log space, which gives the same
    value but stays finite when a confident student's probabilities underflow to 0. The same
    for any K.
    """
    logits = _wide(logits)
    log_q = torch.xlogy(alpha, targets.to(logits.dtype)) + beta * F.log_softmax(logits.detach(), dim=-1)
    return _share(F.cross_entropy(logits, torch.softmax(log_q, dim=-1), reduction="none"), batch)


def entropy(
    logits: torch.Tensor,
    targets: torch.Tensor,
    step_frac: float,
    *,
    batch: Batch | None = None,
    aux_coef: float = 0.5,
    warmup_frac: float = 0.2,
) -> torch.Tensor:
    """(1 - c) * xent(weak) + c * H(p), with H(p) = -mean_i sum_k p_ik log p_ik the student's entropy.

    It is cross-entropy against (1 - c) * weak + c * p, the student's own soft prediction as a
    target, like logconf without hardening (EleutherAI/w2s, loss "entropy"). Unlike there, p is
    differentiated: with p held constant its term has gradient p - p = 0 and the loss only
    rescales xent's gradient by 1 - c. Here the term minimises entropy, pulling each example
    towards the class the student already favours. c warms up like logconf's. The same for any K.
    """
    logits = _wide(logits)
    coef = _warmed_up(aux_coef, warmup_frac, step_frac)
    mixed = (1 - coef) * targets.to(logits.dtype) + coef * torch.softmax(logits, dim=-1)
    return _share(F.cross_entropy(logits, mixed, reduction="none"), batch)


def window(
    logits: torch.Tensor,
    targets: torch.Tensor,
    step_frac: float,
    *,
    batch: Batch | None = None,
    radius: float = 0.15,
) -> torch.Tensor:
    """Per-example cross-entropy summed over the window, divided by the batch size n.

    The window holds the examples whose student confidence max_k p_ik is below 0.5 + radius;
    the others contribute neither value nor gradient. Dividing by n rather than by the window's
    size follows EleutherAI/w2s (confidence_window_loss, default radius 0.15), so an empty
    window gives 0, still attached to the logits. radius above 0.5 keeps every example and gives
    xent. The same rule for any K: for K = 2 max_k p_ik is at least 0.5, so radius 0 empties every
    window; for K > 2 it can be as low as 1/K, and radius 0 still keeps the rows whose top class
    has less than half the probability.
    """
    logits = _wide(logits)
    per_example = F.cross_entropy(logits, targets.to(logits.dtype), reduction="none")
    in_window = torch.softmax(logits.detach(), dim=-1).max(dim=-1).values < 0.5 + radius
    return _share(torch.where(in_window, per_example, 0.0), batch)


# The label of a position that no loss reads: a prompt token, padding or a target slot a row does not fill
# (the value transformers' own causal-LM loss ignores).
IGNORE_INDEX = -100


def token_xent(logits: torch.Tensor, labels: torch.Tensor, step_frac: float = 0.0, *,
               batch: Batch | None = None) -> torch.Tensor:
    """Next-token cross-entropy of a generative task's target tokens: per row the mean of -log p(token) over its
    target tokens, then the rows' mean (under accumulation: their sum over the batch size, a minibatch's share).

    `logits` (n, T, V) are the logits that predict each of a row's target slots, `labels` (n, T) the target's
    token ids, IGNORE_INDEX where a row has fewer than T target tokens. Each row weighs the same whatever its
    target's length, as each row does in classification; for one row, or rows of equal target length, this is
    transformers' own causal-LM loss with the prompt and the padding labelled IGNORE_INDEX.
    """
    logits = _wide(logits)
    per_token = F.cross_entropy(logits.transpose(1, 2), labels, ignore_index=IGNORE_INDEX, reduction="none")
    counted = (labels != IGNORE_INDEX).sum(dim=1).clamp(min=1)
    return _share(per_token.sum(dim=1) / counted, batch)
