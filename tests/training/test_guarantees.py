"""Every training guarantee the docs claim, checked against a hand-computed or hand-made step:
the recorded learning rate, gradient clipping, decoupled weight decay, Adafactor, gradient
checkpointing under LoRA, torch.compile, mixed precision, and model selection on weak labels."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from torch.optim.optimizer import register_optimizer_step_pre_hook

from helpers import sst2_rows
from job_settings import training_settings
from w2s.data.splits import rows_sha256
from w2s.training.features import text_batcher
from w2s.training.finetune import build_classifier
from w2s.training.jobs import train_model
from w2s.training.rows import split_holdout, training_rows
from w2s.training.losses import xent
from w2s.models.text import ProbeClassifier
from w2s.training.loop import fit, make_optimizer
from w2s.training.settings import Schedule, TrainingSettings

CPU = torch.device("cpu")
CUDA_ONLY = pytest.mark.skipif(not torch.cuda.is_available(), reason="float16 and bf16 on a GPU need CUDA")


def schedule(**overrides: object) -> Schedule:
    values: dict = dict(lr=0.1, epochs=1, batch_size=16, minibatch_size=4, weight_decay=0.0,
                        warmup_frac=0.0, max_grad_norm=1e9, seed=0)
    values.update(overrides)
    return Schedule(**values)


def data(n: int = 16) -> tuple[torch.Tensor, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(n, 4, generator=generator)
    soft = torch.rand(n, generator=generator)
    return features, torch.stack([1 - soft, soft], dim=1)


def probe(seed: int = 1) -> ProbeClassifier:
    """A head with random weights, so that every row has its own gradient."""
    model = ProbeClassifier(4)
    generator = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.copy_(torch.randn(parameter.shape, generator=generator))
    return model


def xent_gradients(model: ProbeClassifier, features: torch.Tensor, targets: torch.Tensor) -> list[torch.Tensor]:
    """By hand: the mean cross-entropy's gradient of a linear head is (p - t) x / n and (p - t) / n."""
    with torch.no_grad():
        residual = (torch.softmax(model.head(features), dim=-1) - targets) / len(features)
        return [residual.T @ features, residual.sum(0)]


def one_fit_step(model: torch.nn.Module, features: torch.Tensor, targets: torch.Tensor, **overrides: object) -> None:
    """One optimiser step of fit over the whole of `features`, in minibatches of 4."""
    history = fit(model, lambda rows: {"features": features[rows]}, targets, xent,
                  schedule(batch_size=len(features), **overrides), CPU)
    assert len(history) == 1


# --------------------------------------------------------------------------- the lr column


@pytest.mark.parametrize(("warmup_frac", "expected"), [
    # cosine from the full rate to 0 over 4 steps: 0.1 * (1 + cos(pi * s / 4)) / 2
    (0.0, [0.1, 0.08535533905932738, 0.05, 0.014644660940672627]),
    # 2 warmup steps of 0.1 * (s + 1) / 2, then cosine over the 2 steps left
    (0.5, [0.05, 0.1, 0.1, 0.05]),
])
def test_the_lr_column_holds_the_rate_each_step_used(warmup_frac: float, expected: list[float]) -> None:
    features, targets = data(32)
    used: list[float] = []
    # Every optimizer.step() in the process: the rate it is about to apply.
    hook = register_optimizer_step_pre_hook(
        lambda optimizer, args, kwargs: used.append(optimizer.param_groups[0]["lr"]))
    try:
        history = fit(probe(), lambda rows: {"features": features[rows]}, targets, xent,
                      schedule(batch_size=8, warmup_frac=warmup_frac), CPU)
    finally:
        hook.remove()
    assert [row["lr"] for row in history] == pytest.approx(expected, rel=1e-12, abs=0)
    assert used == [row["lr"] for row in history]


# --------------------------------------------------------------------------- clipping and weight decay


def test_gradient_clipping_scales_the_batch_gradient_as_a_hand_clipped_step() -> None:
    """The accumulated gradient of the whole batch is clipped, once, before the optimiser step.

    Adam divides a gradient by its own size, so clipping shows only once the clipped gradient
    is near Adam's eps (1e-8): max_grad_norm 1e-8 makes the step about a third of the unclipped one.
    """
    features, targets = data()
    model = probe()
    by_hand = copy.deepcopy(model)
    unclipped = copy.deepcopy(model)
    one_fit_step(model, features, targets, max_grad_norm=1e-8)

    gradients = xent_gradients(by_hand, features, targets)
    for parameter, gradient in zip(by_hand.parameters(), gradients):
        parameter.grad = gradient.clone()
    norm = torch.nn.utils.clip_grad_norm_(list(by_hand.parameters()), 1e-8)
    assert norm > 0.1  # the batch gradient's norm: clipping to 1e-8 shrinks it
    torch.optim.AdamW(by_hand.parameters(), lr=0.1, weight_decay=0.0).step()
    for parameter, gradient in zip(unclipped.parameters(), gradients):
        parameter.grad = gradient.clone()
    torch.optim.AdamW(unclipped.parameters(), lr=0.1, weight_decay=0.0).step()

    for trained, expected, plain in zip(model.parameters(), by_hand.parameters(), unclipped.parameters()):
        torch.testing.assert_close(trained, expected, rtol=0, atol=1e-6)
        assert (trained - plain).abs().max() > 1e-2


def test_adamw_weight_decay_is_decoupled_from_the_gradient() -> None:
    """First AdamW step by hand: p (1 - lr wd) - lr g / (|g| + eps), Adam's bias-corrected moments
    being g and g^2 after one step. Adam's coupled L2 (g + wd p) would give another step."""
    features, targets = data()
    model = probe()
    start = [p.detach().clone() for p in model.parameters()]
    gradients = xent_gradients(model, features, targets)
    lr, weight_decay, eps = 0.1, 0.5, 1e-8
    one_fit_step(model, features, targets, lr=lr, weight_decay=weight_decay)
    for trained, p, g in zip(model.parameters(), start, gradients):
        decoupled = p * (1 - lr * weight_decay) - lr * g / (g.abs() + eps)
        torch.testing.assert_close(trained.detach(), decoupled, rtol=0, atol=1e-6)
        coupled = p - lr * (g + weight_decay * p) / ((g + weight_decay * p).abs() + eps)
        assert (trained - coupled).abs().max() > 1e-2


def test_adafactor_is_torchs_with_the_configured_lr_and_weight_decay() -> None:
    """torch.optim.Adafactor with its defaults but lr and weight_decay (the reference's
    torch_optimizer Adafactor would ignore lr); one step of fit is one step of it, and twice the lr
    moves the weights twice as far."""
    features, targets = data()
    optimizer = make_optimizer("adafactor", list(probe().parameters()), 0.01, 0.2)
    assert type(optimizer) is torch.optim.Adafactor
    group = {k: v for k, v in optimizer.param_groups[0].items() if k != "params"}
    assert group == {"lr": 0.01, "weight_decay": 0.2, "beta2_decay": -0.8, "eps": (None, 1e-3), "d": 1.0,
                     "foreach": None, "maximize": False}

    model = probe()
    by_hand = copy.deepcopy(model)
    one_fit_step(model, features, targets, optimizer="adafactor", lr=0.01, weight_decay=0.2)
    for parameter, gradient in zip(by_hand.parameters(), xent_gradients(by_hand, features, targets)):
        parameter.grad = gradient
    torch.optim.Adafactor(by_hand.parameters(), lr=0.01, weight_decay=0.2).step()
    for trained, expected in zip(model.parameters(), by_hand.parameters()):
        torch.testing.assert_close(trained, expected, rtol=0, atol=1e-7)

    start = [p.detach().clone() for p in probe().parameters()]
    moved = []
    for lr in (0.01, 0.02):
        model = probe()
        one_fit_step(model, features, targets, optimizer="adafactor", lr=lr)
        moved.append([p.detach() - s for p, s in zip(model.parameters(), start)])
    for once, twice in zip(*moved):
        assert once.abs().min() > 0
        torch.testing.assert_close(twice, 2 * once, rtol=1e-5, atol=0)


# --------------------------------------------------------------------------- checkpointing, compile, precision


def text_settings(**overrides: object) -> TrainingSettings:
    return training_settings(**{"mode": "lora", "pooling": "mean", "max_length": 16, "batch_size": 8,
                                "minibatch_size": 4, "lr": 1e-2, "epochs": 1, **overrides})


TEXTS = [row["sentence"] for row in sst2_rows(8, seed=3)]
SOFT = torch.tensor([[0.8, 0.2], [0.3, 0.7]] * 4)


def build(tiny_models: dict[str, Path], **overrides: object) -> tuple[torch.nn.Module, dict[str, torch.Tensor]]:
    """The job's classifier for tiny-bert, with the head and LoRA's B set to random values, the same
    whatever the settings: both start at 0, which would stop every gradient into the backbone."""
    settings = text_settings(**overrides)
    torch.manual_seed(0)
    model, tokenizer = build_classifier({"path": str(tiny_models["tiny-bert"])}, settings, CPU)
    generator = torch.Generator().manual_seed(5)
    with torch.no_grad():
        for name, parameter in sorted(model.named_parameters()):
            if name.startswith("head.") or "lora_B" in name:
                parameter.copy_(0.3 * torch.randn(parameter.shape, generator=generator))
    return model, text_batcher(tokenizer, TEXTS, settings.max_length)(np.arange(len(TEXTS)))


def trainable_gradients(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    model.train()
    xent(model(**batch), SOFT, 0.0).backward()
    # The pooler's adapters get none: the classifier pools the last hidden state itself.
    return {name: p.grad.clone() for name, p in model.named_parameters()
            if p.requires_grad and p.grad is not None}


def fit_one_step(model: torch.nn.Module, batch: dict[str, torch.Tensor]) -> tuple[dict[str, torch.Tensor], float]:
    """The trainable weights after one step of fit over the batch, in minibatches of 4, and its loss."""
    (step,) = fit(model, lambda rows: {k: v[rows] for k, v in batch.items()}, SOFT, xent,
                  schedule(lr=1e-2, batch_size=8), CPU)
    weights = {name: p.detach().clone()
               for name, p in model.named_parameters() if p.requires_grad}
    return weights, step["loss"]


def test_gradient_checkpointing_under_lora_reaches_the_adapters_as_without_it(tiny_models: dict[str, Path]) -> None:
    """The checkpointed encoder layer's modules run twice (forward, then again in backward), and the
    LoRA weights in it get the gradients, and after one step the weights, of an ordinary pass.

    transformers 5 checkpoints without reentrant autograd and requires input gradients itself
    under LoRA, so the job's own enable_input_require_grads() changes nothing this test can see."""
    results = {}
    for checkpointing in (False, True):
        model, batch = build(tiny_models, gradient_checkpointing=checkpointing)
        layer = model.backbone.base_model.model.encoder.layer[0].intermediate
        calls = []
        handle = layer.register_forward_hook(lambda *args: calls.append(1))
        gradients = trainable_gradients(model, batch)
        handle.remove()
        model.zero_grad(set_to_none=True)
        results[checkpointing] = (len(calls), gradients, fit_one_step(model, batch)[0])
    assert (results[False][0], results[True][0]) == (1, 2)
    plain, checkpointed = results[False][1], results[True][1]
    lora = [name for name in plain if "lora_" in name]
    # A and B of query, key, value, attention output, intermediate and output dense layers
    assert len(lora) == 12 and not any("pooler" in name for name in lora)
    assert all(checkpointed[name].abs().sum() > 0 for name in lora)
    assert plain.keys() == checkpointed.keys()
    for name in plain:
        torch.testing.assert_close(checkpointed[name], plain[name], rtol=0, atol=1e-6, msg=name)
    for name, weights in results[False][2].items():
        torch.testing.assert_close(results[True][2][name], weights, rtol=0, atol=1e-6, msg=name)


def test_a_compiled_model_takes_the_eager_step(tiny_models: dict[str, Path]) -> None:
    """training.compile: one step of the compiled classifier (full finetuning) moves every weight as
    the eager one does. Not the attention's key biases: softmax ignores what they add, so their
    gradient is 0 up to rounding, which AdamW's first step, lr g / (|g| + eps), turns into +-lr."""
    steps, losses = {}, {}
    for compiled in (False, True):
        model, batch = build(tiny_models, mode="full", compile=compiled)
        assert (model._compiled_call_impl is not None) == compiled  # what nn.Module.compile sets
        steps[compiled], losses[compiled] = fit_one_step(model, batch)
    assert losses[True] == pytest.approx(losses[False], rel=1e-6)
    assert steps[True].keys() == steps[False].keys()
    compared = [name for name in steps[False] if not name.endswith("key.bias")]
    assert len(compared) == len(steps[False]) - 1
    for name in compared:
        torch.testing.assert_close(steps[True][name], steps[False][name], rtol=0, atol=1e-5, msg=name)


def head_output_dtypes(model: ProbeClassifier) -> list[torch.dtype]:
    dtypes: list[torch.dtype] = []
    model.head.register_forward_hook(lambda module, args, output: dtypes.append(output.dtype))
    return dtypes


def mixed_precision_step(on: torch.device, dtype: str) -> None:
    """One step in `dtype` matmuls: they run in it, the weights and their update stay float32, and
    the loss and step come close to float32's."""
    features, targets = data()
    features, targets = features.to(on), targets.to(on)
    runs = {}
    for compute_dtype in ("float32", dtype):
        model = probe().to(on)
        dtypes = head_output_dtypes(model)
        history = fit(model, lambda rows: {"features": features[rows]}, targets, xent,
                      schedule(batch_size=16, lr=1e-3), on, compute_dtype)
        runs[compute_dtype] = (set(dtypes), history[0]["loss"], [p.detach().clone() for p in model.parameters()])
    assert runs["float32"][0] == {torch.float32}
    assert runs[dtype][0] == {getattr(torch, dtype)}
    assert runs[dtype][1] != runs["float32"][1]
    assert runs[dtype][1] == pytest.approx(runs["float32"][1], rel=2e-2)
    for reduced, full in zip(runs[dtype][2], runs["float32"][2]):
        assert reduced.dtype == torch.float32
        torch.testing.assert_close(reduced, full, rtol=0, atol=2e-3)


def test_bf16_autocast_on_a_cpu_that_runs_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # This machine's CPU may lack bf16 instructions; torch emulates them, which is slow but exact to bf16.
    monkeypatch.setattr("w2s.models.devices.cpu_has_bf16", lambda: True)
    mixed_precision_step(CPU, "bfloat16")


@CUDA_ONLY
@pytest.mark.parametrize("dtype", ["float16", "bfloat16"])
def test_reduced_precision_on_a_gpu(dtype: str) -> None:
    """float16 matmuls, with the loss scaled and unscaled again, and bf16 ones on a GPU."""
    mixed_precision_step(torch.device("cuda"), dtype)


# --------------------------------------------------------------------------- model selection


def student_data(tmp_path: Path) -> tuple[dict[str, str], str, str]:
    """A student's label-free splits of five-word texts, weak labels that contradict every true
    label, and the labelled train_w2s that only the ground-truth oracle reads."""
    paths = {}
    for split, n, seed in (("train_w2s", 32, 2), ("test", 8, 3)):
        rows = sst2_rows(n, seed)
        paths[split] = str(tmp_path / f"{split}.parquet")
        pd.DataFrame({"id": [f"{split}:{r['idx']}" for r in rows], "text": [r["sentence"] for r in rows],
                      "label": [r["label"] for r in rows]}).to_parquet(paths[split])
    oracle = paths["train_w2s"]
    train_w2s = pd.read_parquet(oracle)
    for split, path in list(paths.items()):
        paths[split] = str(tmp_path / f"{split}_unlabelled.parquet")
        pd.read_parquet(path)[["id", "text"]].to_parquet(paths[split])
    weak = str(tmp_path / "weak_labels.parquet")
    soft = np.where(train_w2s["label"] == 1, 0.1, 0.9)
    pd.DataFrame({"id": train_w2s["id"], "soft_label": [[1 - p, p] for p in soft], "hard_label": (soft > 0.5).astype(int),
                  "train_w2s_sha256": rows_sha256(train_w2s)}).to_parquet(weak)
    return paths, weak, oracle


def test_selection_scores_the_holdout_against_the_weak_labels_unless_told_otherwise(
    tiny_models: dict[str, Path], tmp_path: Path
) -> None:
    """A student trained on weak labels that contradict every true label, selected on its holdout
    by the weak labels (weak_holdout) and by the true ones (ground_truth_holdout). Training is the
    same, so each evaluation scores the same predictions, once against each: one score is 1 minus
    the other. The weights kept are the best scored, so the kept model's own predictions on the
    holdout, checked by hand against the labels of its selection, give the best score."""
    paths, weak, oracle = student_data(tmp_path)
    frames = {split: pd.read_parquet(path) for split, path in paths.items()}
    _, holdout = split_holdout(training_rows(frames, weak, oracle), 0.25, 0)
    weak_class = np.stack(holdout["soft_label"]).argmax(axis=1)
    assert len(holdout) == 8 and (holdout["true_label"] != weak_class).all()
    runs = {}
    for selection, scored_against in (("weak_holdout", weak_class), ("ground_truth_holdout", holdout["true_label"])):
        settings = text_settings(mode="full", model_selection=selection, holdout_frac=0.25, evals_per_epoch=2,
                             epochs=3, lr=3e-2)
        out = {"predictions": str(tmp_path / f"{selection}.parquet"),
               "history": str(tmp_path / f"{selection}_history.parquet"), "checkpoint": str(tmp_path / selection),
               "sweep": str(tmp_path / f"{selection}_sweep.parquet")}
        train_model({"path": str(tiny_models["tiny-bert"])}, settings, 0, paths, out, weak_labels_path=weak,
                    oracle_labels_path=oracle if selection == "ground_truth_holdout" else None)
        predictions = pd.read_parquet(out["predictions"]).query("split == 'train_w2s'").reset_index(drop=True)
        predicted = np.stack(predictions["probs"])[holdout["row"].to_numpy()].argmax(axis=1)
        by_hand = float((predicted == np.asarray(scored_against)).mean())
        runs[selection] = (pd.read_parquet(out["history"])["selection_score"].dropna().tolist(), by_hand)

    weak_scores, kept_by_weak = runs["weak_holdout"]
    true_scores, kept_by_truth = runs["ground_truth_holdout"]
    # 24 rows in batches of 8 for 3 epochs: 9 steps, scored every 2 and after the last.
    assert weak_scores == [0.625, 0.75, 0.875, 0.625, 0.625]
    assert true_scores == [1 - score for score in weak_scores]
    assert (kept_by_weak, kept_by_truth) == (0.875, 0.375)
