"""The losses a config may name (its `losses:` block), each registered once, in LOSSES: where its function
lives, its hyperparameters with their defaults and the values they may take, and how the trainers treat it.

The one registration point for a new loss: write its function (the signature of w2s.training.losses: logits,
soft targets, step_frac, then keyword-only `batch` and hyperparameters with defaults) in any module, and add
its entry here. The config validator (w2s.pipeline.validation) checks a config's losses and their params against
these entries; the trainers resolve the function from its 'module:function' reference when they train
(loss_function), so reading the registry loads no torch. tests/training/test_loss_registry.py checks every entry's
hyperparameters against its functions' real signatures.
"""

from __future__ import annotations

import importlib
import math
from dataclasses import dataclass, field
from typing import Any, Callable


@dataclass(frozen=True)
class Hyperparameter:
    """A loss's keyword argument: its default, and the closed range a config's value must lie in."""

    default: float
    low: float = -math.inf
    high: float = math.inf

    @property
    def allowed(self) -> str:
        """The range in words, for the config validator's message."""
        if math.isinf(self.low) and math.isinf(self.high):
            return "a finite number"
        return f"in [{self.low:g}, {self.high:g}]"


# aux_coef weighs a mix (1 - c) * weak + c * self-target: above 1 the weak label's weight turns negative.
AUX_COEF = Hyperparameter(0.5, 0.0, 1.0)
WARMUP_FRAC = Hyperparameter(0.2, 0.0, 1.0)


@dataclass(frozen=True)
class Loss:
    """A registered loss.

    `function`: 'module:function', the loss on a minibatch's logits and soft targets. `hyperparameters`: its
    keyword arguments a config may set, by name. `needs_batch_probs`: it reads the student's detached
    probabilities on the whole optimiser batch (finetuning computes them in a no-grad pass first).
    `generative`: a generative task may train with it; there it is cross-entropy on the targets' tokens
    (w2s.training.losses.token_xent). How a linear probe fits it (w2s.training.probe): a fixed objective is
    solved once, from zero or, where it is not convex (`probe_from_xent`), from the xent solution; a loss whose
    targets are the model's own detached predictions names `probe_targets`, 'module:function' of its frozen
    targets at given probabilities, and is fit in rounds.
    """

    function: str
    hyperparameters: dict[str, Hyperparameter] = field(default_factory=dict)
    needs_batch_probs: bool = False
    generative: bool = False
    probe_targets: str | None = None
    probe_from_xent: bool = False


LOSSES: dict[str, Loss] = {
    "xent": Loss("w2s.training.losses:xent", generative=True),
    "xent_hard": Loss("w2s.training.losses:xent_hard"),
    "kl": Loss("w2s.training.losses:kl"),
    "logconf": Loss("w2s.training.losses:logconf", {"aux_coef": AUX_COEF, "warmup_frac": WARMUP_FRAC},
                    needs_batch_probs=True, probe_targets="w2s.training.probe:logconf_targets"),
    "product": Loss("w2s.training.losses:product", {"alpha": Hyperparameter(1.0), "beta": Hyperparameter(1.0)},
                    probe_targets="w2s.training.probe:product_targets"),
    "entropy": Loss("w2s.training.losses:entropy", {"aux_coef": AUX_COEF, "warmup_frac": WARMUP_FRAC},
                    probe_from_xent=True),
    "window": Loss("w2s.training.losses:window", {"radius": Hyperparameter(0.15, 0.0, 0.5)},
                   probe_targets="w2s.training.probe:window_targets"),
}


# The losses a generative task trains with.
GENERATIVE_LOSSES = frozenset(name for name, loss in LOSSES.items() if loss.generative)


def registered(name: str) -> Loss:
    """The entry of loss `name`; an unregistered name is refused with the registered ones."""
    if name not in LOSSES:
        raise ValueError(f"unknown loss '{name}'; the registered losses (w2s.training.loss_registry) are: "
                         f"{', '.join(sorted(LOSSES))}")
    return LOSSES[name]


def resolve(reference: str) -> Callable[..., Any]:
    """The function a 'module:function' reference names, its module imported now."""
    module, _, name = reference.partition(":")
    return getattr(importlib.import_module(module), name)


def loss_function(name: str) -> Callable[..., Any]:
    """The function of loss `name`, resolved when a job trains with it."""
    return resolve(registered(name).function)
