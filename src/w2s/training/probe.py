"""Linear probes fit to convergence: full-batch L-BFGS in float64, L2 strength chosen on held-out rows.

A probe for K = 2 classes is one logit z = x·w + b on frozen features (standardised per dimension
when a grid is fit, see choose_l2), stored as the two-logit head (−z/2, z/2), whose softmax is the
same; for K > 2 it is multinomial, K logits x·W + b with W (d, K) and b (K,). For an L2 strength λ
the objective is

    mean over rows of the loss  +  (λ / 2)·||W||²      (the intercept b is not penalised),

which is scikit-learn's LogisticRegression (binary, or multinomial for K > 2) with C = 1 / (n·λ) when
the loss is xent. L-BFGS with a
strong-Wolfe line search runs until the gradient's largest entry is at most `tolerance`, or
`max_iter` iterations; a fit that stops for any other reason is recorded as not converged.

Losses whose targets are the model's own detached predictions (logconf, product, window) have no
fixed objective. They are fit in rounds: start from the xent solution, then repeatedly freeze the
loss's targets (and row weights) at the current full-batch predictions, at the loss's final weight,
and solve that fixed objective to tolerance, until no prediction moves by more than
PREDICTION_TOLERANCE or `max_rounds` rounds have run. At a fixed point of the rounds the loss's own
gradient, its detached quantities taken on the whole training set, plus the penalty's, is zero.
entropy is a fixed (non-convex) objective and is solved once, from the xent solution; its and
logconf's warm-up becomes that start.
"""

from __future__ import annotations

import contextlib
import logging
import math
from dataclasses import dataclass
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd
import torch
import torch.nn.functional as F

from w2s.training.loss_registry import loss_function, registered, resolve
from w2s.training.losses import hardened_predictions
from w2s.training.settings import ProbeSettings

log = logging.getLogger("w2s")

# Rounds of a self-referential loss stop once no training row's probability moves by more than this.
PREDICTION_TOLERANCE = 1e-6
Objective = Callable[[torch.Tensor], torch.Tensor]


@dataclass(frozen=True)
class LinearFit:
    """A fitted probe: weights and intercept in float64, (d,) and () for K = 2 (one logit), (d, K) and (K,)
    for K > 2; the loss at the end (mean over rows, without the penalty), L-BFGS iterations over all
    rounds, rounds (1 for a fixed objective) and convergence."""

    weight: torch.Tensor
    bias: torch.Tensor
    loss: float
    iterations: int
    rounds: int
    converged: bool

    @property
    def n_classes(self) -> int:
        return 2 if self.weight.dim() == 1 else self.weight.shape[1]

    def scores(self, features: torch.Tensor) -> torch.Tensor:
        """The logit z (n,) for K = 2, the K logits (n, K) otherwise."""
        return features.double() @ self.weight + self.bias

    def probs(self, features: torch.Tensor) -> np.ndarray:
        """Class probabilities (n, K) of every row; for K = 2 the columns (1 − p, p) with p = sigmoid(z)."""
        return _class_probs(self.scores(features)).numpy()

    def on_raw_features(self, mean: torch.Tensor, std: torch.Tensor) -> "LinearFit":
        """This fit, made on features standardised as (x − mean) / std, as weights on the raw features."""
        weight = self.weight / (std if self.weight.dim() == 1 else std[:, None])
        return LinearFit(weight, self.bias - mean @ weight, self.loss, self.iterations, self.rounds, self.converged)

    def head_state(self) -> dict[str, torch.Tensor]:
        """ProbeClassifier's nn.Linear(d, K) state, in float32; for K = 2 the two-logit head (−z/2, z/2)."""
        if self.weight.dim() == 2:
            return {"weight": self.weight.float().T.contiguous(), "bias": self.bias.float()}
        half_w, half_b = self.weight.float() / 2, self.bias.float().reshape(1) / 2
        return {"weight": torch.stack([-half_w, half_w]), "bias": torch.cat([-half_b, half_b])}


def two_logits(z: torch.Tensor) -> torch.Tensor:
    return torch.stack([-z / 2, z / 2], dim=1)


def _logits(scores: torch.Tensor) -> torch.Tensor:
    """The logits (n, K) of a probe's scores: the two-logit head of z for K = 2, the scores themselves otherwise."""
    return two_logits(scores) if scores.dim() == 1 else scores


def _class_probs(scores: torch.Tensor) -> torch.Tensor:
    if scores.dim() == 2:
        return torch.softmax(scores, dim=-1)
    p = torch.sigmoid(scores)
    return torch.stack([1 - p, p], dim=1)


def _check_soft_labels(soft_labels: np.ndarray | torch.Tensor) -> torch.Tensor:
    targets = torch.as_tensor(np.asarray(soft_labels, dtype=np.float64))
    if targets.dim() != 2 or targets.shape[1] < 2:
        raise ValueError(f"a probe's soft labels must be class probabilities of shape (n, K) with K >= 2, one row "
                         f"per example; got shape {tuple(targets.shape)} (for binary labels p give the rows [1 - p, p])")
    return targets


# ---------------------------------------------------------------- frozen targets of self-referential losses
# Each returns (targets (n, K), row weights (n,)) computed from detached probabilities (n, K), such that
# mean_i weight_i · CE(logits_i, targets_i) has, at those probabilities, the gradient of the loss in
# w2s.training.losses at step_frac 1 (tests/training/test_probe.py checks every one against its loss). A loss names
# its own in the registry (w2s.training.loss_registry, probe_targets); a loss that names none is a fixed
# objective.


def logconf_targets(probs: torch.Tensor, targets: torch.Tensor, *, aux_coef: float = 0.5,
                    warmup_frac: float = 0.2) -> tuple[torch.Tensor, torch.Tensor]:
    hardened = hardened_predictions(probs, probs, targets)
    return (1 - aux_coef) * targets + aux_coef * hardened, torch.ones(len(targets), dtype=targets.dtype)


def product_targets(probs: torch.Tensor, targets: torch.Tensor, *, alpha: float = 1.0,
                    beta: float = 1.0) -> tuple[torch.Tensor, torch.Tensor]:
    log_q = torch.xlogy(alpha, targets) + beta * torch.log(probs)
    return torch.softmax(log_q, dim=-1), torch.ones(len(targets), dtype=targets.dtype)


def window_targets(probs: torch.Tensor, targets: torch.Tensor, *,
                   radius: float = 0.15) -> tuple[torch.Tensor, torch.Tensor]:
    return targets, (probs.max(dim=-1).values < 0.5 + radius).to(targets.dtype)


# ---------------------------------------------------------------- solving


def _solve(features: torch.Tensor, data_loss: Objective, l2: float, start: tuple[torch.Tensor, torch.Tensor],
           tolerance: float, max_iter: int) -> tuple[torch.Tensor, torch.Tensor, int, bool]:
    """Minimise data_loss(scores) + (l2 / 2)·||W||² from `start`; (W, b, iterations, converged)."""
    weight = start[0].clone().requires_grad_(True)
    bias = start[1].clone().requires_grad_(True)
    optimizer = torch.optim.LBFGS([weight, bias], lr=1.0, max_iter=max_iter, max_eval=2 * max_iter,
                                  tolerance_grad=tolerance, tolerance_change=0.0, history_size=50,
                                  line_search_fn="strong_wolfe")

    def objective() -> torch.Tensor:
        optimizer.zero_grad()
        flat = weight.reshape(-1)
        value = data_loss(features @ weight + bias) + 0.5 * l2 * flat.dot(flat)
        value.backward()
        return value

    optimizer.step(objective)
    iterations = int(optimizer.state[weight].get("n_iter", 0))
    objective()
    largest = max(float(weight.grad.abs().max()), float(bias.grad.abs().max()))
    converged = math.isfinite(largest) and largest <= tolerance
    return weight.detach(), bias.detach(), iterations, converged


@contextlib.contextmanager
def one_thread() -> Iterator[None]:
    """Probe fits are many small matmuls, which threads slow down: 30x with two threads on two busy
    cores (a 800 x 384 fit took 6.1 s, and 0.2 s on one thread)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(threads)


def fit_probe(features: torch.Tensor, soft_labels: np.ndarray | torch.Tensor, loss: str = "xent",
              loss_params: dict[str, Any] | None = None, l2: float = 1e-3,
              settings: ProbeSettings | None = None) -> LinearFit:
    """Fit one probe on `features` (n, d) against soft labels (n, K), rows of class probabilities, at L2
    strength `l2`: one logit for K = 2, multinomial for K > 2."""
    registered(loss)
    with one_thread() if features.device.type == "cpu" else contextlib.nullcontext():
        return _fit_probe(features, soft_labels, loss, loss_params, l2, settings)


def _fit_probe(features: torch.Tensor, soft_labels: np.ndarray | torch.Tensor, loss: str,
               loss_params: dict[str, Any] | None, l2: float, settings: ProbeSettings | None) -> LinearFit:
    settings = settings or ProbeSettings((l2,), 1e-6, 1000, 50)
    loss_params = loss_params or {}
    x = features.double()
    targets = _check_soft_labels(soft_labels).to(x.device)
    n, n_classes = targets.shape
    # One logit for two classes (the parametrisation of binary logistic regression), K logits otherwise.
    outputs = () if n_classes == 2 else (n_classes,)
    zero = (torch.zeros((x.shape[1], *outputs), dtype=torch.float64, device=x.device),
            torch.zeros(outputs, dtype=torch.float64, device=x.device))

    def solve(data_loss: Objective, start: tuple[torch.Tensor, torch.Tensor]):
        return _solve(x, data_loss, l2, start, settings.tolerance, settings.max_iter)

    entry, loss_fn, xent = registered(loss), loss_function(loss), loss_function("xent")

    def xent_loss(scores: torch.Tensor) -> torch.Tensor:
        return xent(_logits(scores), targets, 1.0)

    def loss_at_end(scores: torch.Tensor) -> torch.Tensor:
        return loss_fn(_logits(scores), targets, 1.0, **loss_params)

    if entry.probe_targets is None:
        start = zero
        iterations, converged = 0, True
        if entry.probe_from_xent:
            *start, iterations, converged = solve(xent_loss, zero)
        weight, bias, more, solved = solve(loss_at_end, tuple(start))
        rounds, iterations, converged, stable = 1, iterations + more, converged and solved, True
    else:
        frozen_targets = resolve(entry.probe_targets)
        weight, bias, iterations, converged = solve(xent_loss, zero)
        stable = False
        for rounds in range(1, settings.max_rounds + 1):
            probs = torch.softmax(_logits(x @ weight + bias), dim=-1)
            frozen, row_weight = frozen_targets(probs, targets, **loss_params)

            def surrogate(scores: torch.Tensor, frozen=frozen, row_weight=row_weight) -> torch.Tensor:
                return (row_weight * F.cross_entropy(_logits(scores), frozen, reduction="none")).sum() / n

            weight, bias, more, solved = solve(surrogate, (weight, bias))
            iterations, converged = iterations + more, converged and solved
            moved = _largest_move(x @ weight + bias, probs)
            if moved <= PREDICTION_TOLERANCE:
                stable = True
                break
        if not stable:
            log.warning("%s probe at l2 %g: predictions still moved by %.2g after %d rounds (max_rounds); "
                        "recorded as not converged", loss, l2, moved, settings.max_rounds)
    if not converged:
        log.warning("%s probe at l2 %g: a solve stopped above gradient tolerance %g (max_iter %d or the line "
                    "search); recorded as not converged", loss, l2, settings.tolerance, settings.max_iter)
    with torch.no_grad():
        final_loss = float(loss_at_end(x @ weight + bias))
    return LinearFit(weight.cpu(), bias.cpu(), final_loss, iterations, rounds, converged and stable)


def _largest_move(scores: torch.Tensor, probs: torch.Tensor) -> float:
    """The largest change of a training row's class probability from `probs` to the probabilities of `scores`."""
    if scores.dim() == 1:
        return float((torch.sigmoid(scores) - probs[:, 1]).abs().max())
    return float((torch.softmax(scores, dim=-1) - probs).abs().max())


# ---------------------------------------------------------------- choosing the L2 strength


@dataclass(frozen=True)
class GridPoint:
    """One L2 strength: its fit on every training row, and its accuracy on the held-out rows of a fit
    without them (NaN without a holdout)."""

    l2: float
    fit: LinearFit
    holdout_score: float
    holdout_converged: bool


def choose_l2(features: torch.Tensor, soft_labels: np.ndarray, holdout: np.ndarray | None,
              holdout_labels: np.ndarray | None, loss: str, loss_params: dict[str, Any] | None,
              settings: ProbeSettings, on: torch.device = torch.device("cpu")) -> tuple[list[GridPoint], int]:
    """Every grid strength fit on all rows against the soft labels (n, K), as weights on the raw features;
    the chosen one's index.

    The fits see the features standardised with every training row's mean and standard deviation per
    dimension, so the penalty weighs every dimension alike, whatever its scale (a causal LM's last-token
    features have dimensions hundreds of times larger than the rest, which left L-BFGS crawling). With a
    holdout (positions into `features`), each strength is also fit on the other rows and scored
    by accuracy (argmax, lowest class among ties) on the held-out rows against `holdout_labels` (class
    indices 0..K-1): the training labels, weak ones for a student, unless the caller selects on ground truth. The best score wins; among equal scores the
    strongest regularisation. Without a holdout the grid must hold one strength.

    The fits run on `on`: a GPU makes a many-class probe affordable (ImageNet's 1000 classes on 2048-d
    features cost about 10 s per L-BFGS step on one CPU core); fits come back on the CPU.
    """
    if holdout is None and len(settings.l2_grid) != 1:
        raise ValueError(f"training.probe.l2_grid has {len(settings.l2_grid)} strengths but no rows are held out "
                         "to choose among them; set model_selection to weak_holdout or give one strength")
    soft_labels = np.asarray(soft_labels, dtype=np.float64)
    raw = features.double()
    mean, std = raw.mean(0), raw.std(0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    features = (raw - mean) / std
    placed = features.to(on)
    kept = None
    if holdout is not None:
        kept = np.setdiff1d(np.arange(len(features)), holdout)
    points = []
    for l2 in settings.l2_grid:
        score, holdout_converged = math.nan, True
        if holdout is not None:
            part = fit_probe(placed[torch.as_tensor(kept, device=on)], soft_labels[kept], loss, loss_params, l2,
                             settings)
            predicted = part.probs(features[holdout]).argmax(axis=1)
            score = float((predicted == holdout_labels).mean())
            holdout_converged = part.converged
        fit = fit_probe(placed, soft_labels, loss, loss_params, l2, settings).on_raw_features(mean, std)
        points.append(GridPoint(l2, fit, score, holdout_converged))
    # Strongest regularisation first, so that max() keeps it among equal scores.
    order = sorted(range(len(points)), key=lambda i: -points[i].l2)
    chosen = order[0] if holdout is None else max(order, key=lambda i: points[i].holdout_score)
    return points, chosen


def grid_history(points: list[GridPoint], chosen: int) -> pd.DataFrame:
    """A probe run's history: one row per grid strength, in grid order."""
    return pd.DataFrame({
        "step": range(len(points)),
        "l2": [p.l2 for p in points],
        "selection_score": [p.holdout_score for p in points],
        "loss": [p.fit.loss for p in points],
        "iterations": [p.fit.iterations for p in points],
        "rounds": [p.fit.rounds for p in points],
        "converged": [p.fit.converged and p.holdout_converged for p in points],
        "chosen": [i == chosen for i in range(len(points))],
    })


def final_sweep(test: pd.DataFrame, probs: np.ndarray) -> pd.DataFrame:
    """The sweep of a run that is not a probe: its one model's test predictions, chosen, with no L2
    strength, so that it can still be the weak model of a probe student's sweep. `probs` (n, K) becomes
    the column `probs`, one length-K array of class probabilities per row."""
    probs = np.asarray(probs, dtype=np.float64)
    if probs.ndim != 2 or len(probs) != len(test):
        raise ValueError(f"final_sweep needs class probabilities of shape ({len(test)}, K), one row per test "
                         f"row; got shape {probs.shape}")
    return pd.DataFrame({"l2": np.nan, "chosen": True, "id": test["id"].to_numpy(), "probs": list(probs)})
