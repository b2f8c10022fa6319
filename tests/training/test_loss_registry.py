"""The loss registry (w2s.training.loss_registry): every entry says what its functions take, a new loss is added
through the registry alone (its function in a module of its own), and reading the registry loads no torch."""

from __future__ import annotations

import inspect
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from helpers import REPO, SCHEMA, minimal_config, validation_error
from w2s.pipeline.validation import validate_config
from w2s.training.loss_registry import LOSSES, Hyperparameter, Loss, loss_function, resolve
from w2s.training.probe import fit_probe

# The arguments every loss takes that are not hyperparameters, and those of a probe's frozen targets.
LOSS_ARGUMENTS = ("logits", "targets", "step_frac", "batch")
FROZEN_TARGET_ARGUMENTS = ("probs", "targets")


def keyword_defaults(function: object, arguments: tuple[str, ...]) -> dict[str, object]:
    """A function's keyword-only parameters beyond `arguments`, with their defaults."""
    parameters = inspect.signature(function).parameters.values()
    return {p.name: p.default for p in parameters if p.kind is inspect.Parameter.KEYWORD_ONLY
            and p.name not in arguments}


@pytest.mark.parametrize("name", sorted(LOSSES))
def test_every_entry_names_its_functions_hyperparameters_and_defaults(name: str) -> None:
    entry = LOSSES[name]
    registered = {key: hyperparameter.default for key, hyperparameter in entry.hyperparameters.items()}
    function = loss_function(name)
    assert [p.name for p in inspect.signature(function).parameters.values()][:3] == list(LOSS_ARGUMENTS[:3])
    assert keyword_defaults(function, LOSS_ARGUMENTS) == registered
    if entry.probe_targets is not None:
        assert keyword_defaults(resolve(entry.probe_targets), FROZEN_TARGET_ARGUMENTS) == registered
    for hyperparameter in entry.hyperparameters.values():
        assert hyperparameter.low <= hyperparameter.default <= hyperparameter.high


def test_loading_the_workflow_loads_no_torch() -> None:
    """Snakemake loads the workflow, and with it the config validator and the loss registry, for every invocation:
    rules/common.smk's own imports of w2s (read from the file, so a new one is checked too) load no torch."""
    imports = re.findall(r"^(?:from w2s\b.*|import w2s\b.*)$", (REPO / "rules" / "common.smk").read_text(), re.M)
    assert "from w2s.pipeline import validation as w2s_validation" in imports
    loaded = subprocess.run([sys.executable, "-c", "\n".join(
                                ["import sys", *imports,
                                 "print(sorted(m for m in ('torch', 'transformers') if m in sys.modules))"])],
                            capture_output=True, text=True, cwd=REPO, check=True)
    assert loaded.stdout.strip() == "[]"


TOY_LOSSES = '''
import torch.nn.functional as F


def scaled_xent(logits, targets, step_frac, *, batch=None, scale=0.5):
    """xent times `scale`: at one L2 strength, a probe fit with it is penalised relatively more."""
    per_row = F.cross_entropy(logits.double(), targets.to(logits.dtype).double(), reduction="none")
    return scale * per_row.sum() / (len(per_row) if batch is None else batch.size)
'''


@pytest.fixture
def scaled_xent(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """A toy loss in a module of its own, registered as `scaled` and nowhere else."""
    (tmp_path / "toy_losses.py").write_text(TOY_LOSSES)
    monkeypatch.syspath_prepend(str(tmp_path))
    monkeypatch.setitem(LOSSES, "scaled", Loss("toy_losses:scaled_xent", {"scale": Hyperparameter(0.5, 0.0, 1.0)}))
    return "scaled"


def test_a_loss_added_to_the_registry_alone_is_validated_and_trains(scaled_xent: str) -> None:
    config = minimal_config()
    config["losses"][scaled_xent] = {"scale": 0.25}
    validate_config(config, SCHEMA)
    config["losses"][scaled_xent] = {"scale": 2.0}
    assert "loss 'scaled' needs scale in [0, 1], not 2.0" in validation_error(config)
    config["losses"][scaled_xent] = {"temperature": 1.0}
    assert "loss 'scaled' has no hyperparameter 'temperature'; it takes: scale" in validation_error(config)

    generator = np.random.default_rng(0)
    x = generator.normal(size=(40, 3))
    p = 1 / (1 + np.exp(-x @ np.array([2.0, -1.0, 0.5])))
    soft = np.stack([1 - p, p], axis=1)
    scaled = fit_probe(torch.tensor(x), soft, scaled_xent, {"scale": 0.25}, l2=1e-2)
    xent = fit_probe(torch.tensor(x), soft, "xent", {}, l2=1e-2)
    assert scaled.converged and xent.converged
    # Its recorded loss is the toy function's at the fitted weights: a quarter of their cross-entropy.
    logits = torch.tensor(x) @ scaled.weight + scaled.bias
    by_hand = 0.25 * F.cross_entropy(torch.stack([-logits / 2, logits / 2], 1), torch.tensor(soft)).item()
    assert scaled.loss == pytest.approx(by_hand, rel=1e-9)
    # A quarter of the data loss under the same penalty: smaller weights than xent's.
    assert float(scaled.weight.norm()) < 0.9 * float(xent.weight.norm())
