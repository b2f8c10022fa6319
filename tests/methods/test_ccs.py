"""Contrast-consistent search (w2s.methods.ccs): its loss worked out by hand, the probe recovering a planted truth
direction from unlabelled contrast pairs, orientation by the weak labels, seeded reproducibility, the refusal of
other than binary text tasks, and calls on a real tiny GPT-2 (the whole method; pairs whose prompt is truncated)."""

from __future__ import annotations

import logging
import re
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import sst2_rows

from w2s.data import labels as class_probs
from w2s.methods.ccs import ccs, ccs_loss, contrast_features, fit_ccs_probe, normalise, orient
from w2s.methods.interface import METHOD_SPLITS, MethodError, MethodInputs, StrongModel
from w2s.models.prompting import PromptSettings
from w2s.tasks import Task, dataset_task

from job_settings import training_settings


def test_the_ccs_loss_is_consistency_plus_confidence_averaged_over_rows() -> None:
    p_pos = torch.tensor([0.9, 0.6, 0.5])
    p_neg = torch.tensor([0.1, 0.6, 0.2])
    # Row by row: (0.9 - 0.9)² + 0.1² = 0.01; (0.6 - 0.4)² + 0.6² = 0.40; (0.5 - 0.8)² + 0.2² = 0.13.
    torch.testing.assert_close(ccs_loss(p_pos, p_neg), torch.tensor(0.18), rtol=0, atol=1e-7)
    # One loss per column: each start of fit_ccs_probe has its own.
    both = ccs_loss(torch.stack([p_pos, p_neg], dim=1), torch.stack([p_neg, p_neg], dim=1))
    # Second column, p+ = p-: (0.1 - 0.9)² + 0.01 = 0.65, (0.6 - 0.4)² + 0.36 = 0.40, (0.2 - 0.8)² + 0.04 = 0.40.
    torch.testing.assert_close(both, torch.tensor([0.18, 1.45 / 3]), rtol=0, atol=1e-7)


def test_each_side_is_normalised_per_dimension_and_a_constant_dimension_only_centred() -> None:
    features = torch.tensor([[1.0, 5.0], [3.0, 5.0], [5.0, 5.0]])
    # Column 0: mean 3, standard deviation sqrt(8 / 3) (ddof 0); column 1 is constant.
    expected = torch.tensor([[-2.0, 0.0], [0.0, 0.0], [2.0, 0.0]]) / torch.tensor([(8 / 3) ** 0.5, 1.0])
    torch.testing.assert_close(normalise(features), expected, rtol=0, atol=1e-6)


def planted_pairs(n: int, dim: int, seed: int) -> tuple[torch.Tensor, torch.Tensor, np.ndarray]:
    """Normalised contrast pairs whose truth is a planted direction: the member with the true answer lies along
    +direction, the other along -direction, beside each text's own content (the same on both sides, larger than
    the truth) and noise."""
    rng = np.random.default_rng(seed)
    truth = rng.integers(0, 2, n)
    direction = rng.normal(size=dim)
    direction /= np.linalg.norm(direction)
    content = 3.0 * rng.normal(size=(n, dim))
    sides = []
    for side in (0, 1):
        sign = np.where(truth == side, 1.0, -1.0)[:, None]
        sides.append(normalise(torch.tensor(content + 2.0 * sign * direction + 0.3 * rng.normal(size=(n, dim)))))
    return sides[0], sides[1], truth


def test_the_probe_recovers_a_planted_truth_and_the_weak_labels_orient_it() -> None:
    features_0, features_1, truth = planted_pairs(400, 16, seed=0)
    # Weak labels right on 80% of rows.
    weak_hard = np.where(np.random.default_rng(1).random(400) < 0.2, 1 - truth, truth)
    probe = orient(fit_ccs_probe(features_0, features_1, restarts=10, seed=0), features_0, features_1, weak_hard)
    predicted = (probe.p_class1(features_0, features_1).numpy() > 0.5).astype(int)
    assert (predicted == truth).mean() >= 0.95
    # Inverted, it predicts the opposite class, and orientation turns it back.
    inverted = probe.flipped()
    assert ((inverted.p_class1(features_0, features_1).numpy() > 0.5) == truth).mean() <= 0.05
    assert torch.equal(orient(inverted, features_0, features_1, weak_hard).weight, probe.weight)
    assert orient(probe, features_0, features_1, weak_hard) is probe


def test_the_same_seed_fits_the_same_probe_bitwise() -> None:
    features_0, features_1, _ = planted_pairs(100, 8, seed=2)
    first, again, other = (fit_ccs_probe(features_0, features_1, restarts=3, seed=s, steps=50) for s in (5, 5, 6))
    assert torch.equal(first.weight, again.weight) and first.bias == again.bias and first.loss == again.loss
    assert not torch.equal(first.weight, other.weight)


def tiny_inputs(model: Path, texts: list[str], labels: np.ndarray, task: Task, scratch: Path,
                params: dict[str, Any] | None = None, max_length: int = 512) -> MethodInputs:
    """MethodInputs over the tiny GPT-2: train_w2s and test halves of `texts`, weak labels `labels` on every
    train_w2s row, given in reverse order, and a trainer that must not be called."""

    def trainer(path: str, loss: str, loss_params: dict[str, Any], folder: Path) -> dict[str, str]:
        raise AssertionError("ccs trains no student")

    half = len(texts) // 2
    predict = {"train_w2s": pd.DataFrame({"id": [f"train:{i}" for i in range(half)], "text": texts[:half]}),
               "test": pd.DataFrame({"id": [f"test:{i}" for i in range(len(texts) - half)], "text": texts[half:]})}
    train = predict["train_w2s"].assign(position=range(half)).iloc[::-1].reset_index(drop=True)
    hard = labels[:half][::-1]
    weak = pd.DataFrame({"id": train["id"], "soft_label": class_probs.as_column(np.eye(2)[hard]),
                         "hard_label": hard, "train_w2s_sha256": "x"})
    settings = training_settings(mode="probe", pooling="last", max_length=max_length)
    strong = StrongModel("tiny-gpt2", {"path": str(model)}, settings, None, trainer, scratch / "trained")
    # Label words in the tiny tokenizer's vocabulary, so that the two members of a pair differ.
    prompt = PromptSettings("Is it positive?", (" bad", " good"), 64, 4, "float32")
    return MethodInputs(task, train, weak, predict, strong, params or {}, 0, scratch, prompt)


def test_a_non_binary_task_or_a_bad_param_is_refused_before_any_model_loads(tmp_path: Path) -> None:
    labels = np.array([0, 1, 1, 0])
    texts = ["good film", "bad plot", "fun", "dull"]
    with pytest.raises(MethodError, match="ccs .* needs a binary text task; this task is text_classification with 3"):
        ccs(tiny_inputs(tmp_path / "absent", texts, labels, dataset_task({"n_classes": 3}), tmp_path))
    with pytest.raises(MethodError, match="restarts and steps must be 1 or more"):
        ccs(tiny_inputs(tmp_path / "absent", texts, labels, dataset_task({}), tmp_path, {"restarts": 0}))


def test_ccs_on_a_tiny_gpt2_returns_oriented_class_probabilities_of_every_split(
        tiny_models: dict[str, Path], tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = sst2_rows(18, seed=3)
    texts, labels = [row["sentence"] for row in rows], np.array([row["label"] for row in rows])
    inputs = tiny_inputs(tiny_models["tiny-gpt2"], texts, labels, dataset_task({}), tmp_path)
    with caplog.at_level(logging.INFO, logger="w2s"):
        probs = ccs(inputs)
    assert sorted(probs) == sorted(METHOD_SPLITS)
    for split in METHOD_SPLITS:
        assert probs[split].shape == (len(inputs.predict[split]), 2)
        np.testing.assert_allclose(probs[split].sum(axis=1), 1.0, rtol=0, atol=1e-12)
        assert ((probs[split] >= 0) & (probs[split] <= 1)).all()
    # The pairs' two members differ, so the probe's P(class 1) is not 0.5 everywhere.
    assert np.ptp(probs["test"][:, 1]) > 1e-4
    # train_w2s comes back in its own row order; the weak labels were given in reverse.
    weak_by_row = inputs.weak_labels.set_index("id").loc[inputs.predict["train_w2s"]["id"], "hard_label"].to_numpy()
    agreeing = (class_probs.hard(probs["train_w2s"]) == weak_by_row).mean()
    logged = re.search(r"agreement with the weak hard labels ([\d.]+) before orientation, ([\d.]+) after", caplog.text)
    assert logged is not None
    before, after = float(logged.group(1)), float(logged.group(2))
    # The weak labels cover all of train_w2s, so the fitted rows are its rows: what was logged is what came back.
    assert agreeing >= 0.5 and after == pytest.approx(agreeing, abs=1e-3)
    assert after == pytest.approx(max(before, 1 - before), abs=1e-3)
    again = ccs(inputs)
    assert all(np.array_equal(again[split], probs[split]) for split in METHOD_SPLITS)
    # The fit reads no label: with every weak label the other class, the same probe comes back flipped.
    inverted = tiny_inputs(tiny_models["tiny-gpt2"], texts, 1 - labels, dataset_task({}), tmp_path)
    flipped = ccs(inverted)
    for split in METHOD_SPLITS:
        np.testing.assert_allclose(flipped[split], probs[split][:, ::-1], rtol=0, atol=1e-6)


def test_a_truncated_contrast_pair_keeps_its_answer(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """Cut to 6 tokens from the left, each prompt keeps its last words, the label word among them: the two members
    of every pair still differ where their last token is pooled (cut from the right, they would be equal)."""
    rows = sst2_rows(8, seed=4)
    texts, labels = [row["sentence"] for row in rows], np.array([row["label"] for row in rows])
    inputs = tiny_inputs(tiny_models["tiny-gpt2"], texts, labels, dataset_task({}), tmp_path, max_length=6)
    for features_0, features_1 in contrast_features(inputs).values():
        assert features_0.shape == features_1.shape == (4, 16)
        assert ((features_0 - features_1).abs().amax(dim=1) > 1e-3).all()
