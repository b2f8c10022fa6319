"""Linear probes fit to convergence (w2s.training.probe) and the probe-mode training job."""

from __future__ import annotations

import logging
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.linear_model import LogisticRegression

from helpers import synthetic_summary
from w2s import io
from job_settings import job_params
from w2s.pipeline.experiment import training_job_params
from w2s.pipeline.schema import SHIPPED_SCHEMA
from w2s.pipeline.validation import ConfigError, validate_config
from w2s.evaluation.curves import regularisation_sweep
from w2s.data.splits import rows_sha256
from w2s.training.jobs import train_model
from w2s.training.settings import TrainingSettings
from w2s.training.loss_registry import LOSSES, loss_function, resolve
from w2s.training.probe import choose_l2, final_sweep, fit_probe, two_logits
from w2s.training.settings import ProbeSettings
from w2s.report.page import build_report
from w2s.report.views import ReportInputs

N, D = 300, 10
SETTINGS = ProbeSettings((1e-3,), tolerance=1e-8, max_iter=2000, max_rounds=50)


def noisy_data(seed: int = 0, separable: bool = False) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    x = rng.normal(size=(N, D)) + 0.5
    z = x @ rng.normal(size=D) - 1.0
    labels = (z > 0) if separable else rng.random(N) < 1 / (1 + np.exp(-z))
    return x, labels.astype(np.int64)


def classes(p: np.ndarray) -> np.ndarray:
    """Binary soft labels as the class probabilities (n, 2) a probe takes: rows [1 - p, p]."""
    p = np.asarray(p, dtype=float)
    return np.stack([1 - p, p], axis=1)


def sklearn_fit(x: np.ndarray, labels: np.ndarray, l2: float, weights: np.ndarray | None = None) -> LogisticRegression:
    # scikit-learn minimises sum_i w_i loss_i / sum_i w_i + ||w||^2 / (2 C sum_i w_i); sum w_i = N here.
    return LogisticRegression(C=1 / (N * l2), tol=1e-10, max_iter=100_000).fit(x, labels, sample_weight=weights)


@pytest.mark.parametrize("l2", [1e-3, 1e-2, 1.0])
def test_xent_probe_matches_scikit_learn_on_noisy_hard_labels(l2: float) -> None:
    x, labels = noisy_data()
    fit = fit_probe(torch.tensor(x), classes(labels), "xent", {}, l2, SETTINGS)
    reference = sklearn_fit(x, labels, l2)
    assert fit.converged and fit.rounds == 1
    # Both solved to a gradient of 1e-8 or less; the coefficients agree to 1e-5.
    np.testing.assert_allclose(fit.weight.numpy(), reference.coef_[0], atol=1e-5, rtol=0)
    assert abs(fit.bias.item() - reference.intercept_[0]) < 1e-5
    probs = fit.probs(torch.tensor(x))
    np.testing.assert_allclose(probs, reference.predict_proba(x), atol=1e-6, rtol=0)
    assert (probs.argmax(1) == reference.predict(x)).all()


def test_soft_labels_are_scikit_learn_on_rows_duplicated_with_both_labels_weighted() -> None:
    x, _ = noisy_data(1)
    soft = np.random.default_rng(2).uniform(size=N)
    fit = fit_probe(torch.tensor(x), classes(soft), "xent", {}, 1e-2, SETTINGS)
    reference = sklearn_fit(np.concatenate([x, x]), np.r_[np.ones(N), np.zeros(N)], 1e-2, np.r_[soft, 1 - soft])
    np.testing.assert_allclose(fit.weight.numpy(), reference.coef_[0], atol=1e-5, rtol=0)
    assert abs(fit.bias.item() - reference.intercept_[0]) < 1e-5
    # The reported loss is the mean soft cross-entropy at the solution, without the penalty.
    p = reference.predict_proba(x)[:, 1]
    assert fit.loss == pytest.approx(-np.mean(soft * np.log(p) + (1 - soft) * np.log(1 - p)), abs=1e-7)


def test_separable_data_converges_at_every_strength_and_matches_scikit_learn() -> None:
    x, labels = noisy_data(3, separable=True)
    for l2 in (1e-5, 1e-3):
        fit = fit_probe(torch.tensor(x), classes(labels), "xent", {}, l2, SETTINGS)
        reference = sklearn_fit(x, labels, l2)
        assert fit.converged
        # Weights of norm about 30 at 1e-5: agreement relative to their size.
        scale = np.abs(reference.coef_[0]).max()
        np.testing.assert_allclose(fit.weight.numpy(), reference.coef_[0], atol=1e-4 * scale, rtol=0)
        assert (fit.probs(torch.tensor(x)).argmax(1) == reference.predict(x)).all()
    assert (fit.probs(torch.tensor(x)).argmax(1) == labels).mean() > 0.95  # 1e-3 regularises a little


def test_a_fit_stopped_by_max_iter_is_recorded_and_logged_as_not_converged(caplog: pytest.LogCaptureFixture) -> None:
    x, labels = noisy_data()
    with caplog.at_level(logging.WARNING, logger="w2s"):
        fit = fit_probe(torch.tensor(x), classes(labels), "xent", {}, 1e-4,
                        ProbeSettings((1e-4,), 1e-8, max_iter=2, max_rounds=5))
    assert not fit.converged and fit.iterations == 2
    assert "xent probe at l2 0.0001: a solve stopped above gradient tolerance 1e-08" in caplog.text


@pytest.mark.parametrize("n_classes", [2, 3])
@pytest.mark.parametrize("loss", sorted(name for name, entry in LOSSES.items() if entry.probe_targets))
def test_frozen_targets_give_the_gradient_of_their_loss_at_the_point_they_were_frozen(loss: str,
                                                                                      n_classes: int) -> None:
    """So a fixed point of the rounds is a point where the training loss (step_frac 1) has zero gradient:
    the binary probe's one logit z (two-logit head) and the multinomial probe's K logits."""
    generator = torch.Generator().manual_seed(0)
    if n_classes == 2:
        z = (3 * torch.randn(64, generator=generator, dtype=torch.float64)).requires_grad_(True)
        soft = torch.rand(64, generator=generator, dtype=torch.float64)
        targets, head = torch.stack([1 - soft, soft], dim=1), two_logits
    else:
        z = (3 * torch.randn(64, n_classes, generator=generator, dtype=torch.float64)).requires_grad_(True)
        targets = torch.softmax(2 * torch.randn(64, n_classes, generator=generator, dtype=torch.float64), dim=1)
        head = lambda logits: logits  # noqa: E731 - the multinomial probe's logits are its scores
    (loss_gradient,) = torch.autograd.grad(loss_function(loss)(head(z), targets, 1.0), z)
    frozen, weight = resolve(LOSSES[loss].probe_targets)(torch.softmax(head(z.detach()), -1), targets)
    surrogate = (weight * F.cross_entropy(head(z), frozen, reduction="none")).mean()
    (surrogate_gradient,) = torch.autograd.grad(surrogate, z)
    torch.testing.assert_close(surrogate_gradient, loss_gradient, atol=1e-12, rtol=0)
    assert loss_gradient.abs().max() > 1e-3


@pytest.mark.parametrize("loss", sorted(LOSSES))
def test_every_loss_fits_as_a_probe(loss: str) -> None:
    x, labels = noisy_data(4)
    soft = np.clip(labels * 0.8 + 0.1, 0, 1)
    fit = fit_probe(torch.tensor(x), classes(soft), loss, {}, 1e-2, ProbeSettings((1e-2,), 1e-6, 1000, 10))
    assert np.isfinite(fit.loss) and 0.6 < (fit.probs(torch.tensor(x)).argmax(1) == labels).mean()
    if loss == "logconf":
        assert fit.converged and fit.rounds >= 2  # hardened self-predictions differ from the xent start


def test_an_unregistered_loss_is_named() -> None:
    x, labels = noisy_data(4)
    with pytest.raises(ValueError, match="unknown loss 'mystery'; the registered losses .* are: entropy, kl, "):
        fit_probe(torch.tensor(x), classes(labels), "mystery")


def test_a_grid_without_a_holdout_is_refused() -> None:
    x, labels = noisy_data()
    with pytest.raises(ValueError, match="l2_grid has 2 strengths but no rows are held out"):
        choose_l2(torch.tensor(x), classes(labels), None, None, "xent", {},
                  ProbeSettings((1e-3, 1e-2), 1e-6, 100, 5))


def test_equal_holdout_scores_keep_the_strongest_regularisation() -> None:
    x, labels = noisy_data(separable=True)
    x[:, 0] += 8 * labels - 4  # a wide margin: every strength classifies the held-out rows alike
    held = np.arange(250, N)
    points, chosen = choose_l2(torch.tensor(x), classes(labels), held, labels[held], "xent", {},
                               ProbeSettings((1e-5, 1e-4), 1e-6, 1000, 5))
    assert [p.holdout_score for p in points] == [1.0, 1.0] and chosen == 1


# --- the probe-mode training job ---------------------------------------------------------------------

def write_job_inputs(directory: Path, n: dict[str, int]) -> tuple[dict[str, str], str, np.ndarray]:
    """Splits, features that separate the true labels, and a weak labeller that is wrong on every
    train_w2s row: its soft labels are 0.9 on the opposite class."""
    rng = np.random.default_rng(0)
    paths, features, labels = {}, {}, {}
    for split, rows in n.items():
        labels[split] = rng.integers(0, 2, rows)
        paths[split] = str(directory / f"{split}.parquet")
        pd.DataFrame({"id": [f"{split}-{i}" for i in range(rows)], "text": "unused", "label": labels[split]}
                     ).to_parquet(paths[split], index=False)
        features[split] = torch.tensor(rng.normal(size=(rows, 6)) + 2.0 * labels[split][:, None], dtype=torch.float32)
    io.write_safetensors(features, directory / "features.safetensors")
    true = labels["train_w2s"]
    pd.DataFrame({"id": [f"train_w2s-{i}" for i in range(n["train_w2s"])], "soft_label": list(classes(0.9 - 0.8 * true)),
                  "hard_label": 1 - true, "train_w2s_sha256": rows_sha256(pd.read_parquet(paths["train_w2s"]))}
                 ).to_parquet(directory / "weak.parquet", index=False)
    return paths, str(directory / "features.safetensors"), true


def probe_params(**overrides: object) -> dict:
    return job_params(**{"mode": "probe", "model_selection": "weak_holdout", "holdout_frac": 0.25,
                         "probe": {"l2_grid": [1e-3, 1e-1, 10.0], "tolerance": 1e-6, "max_iter": 1000,
                                   "max_rounds": 50}, **overrides})


def run_job(directory: Path, params: dict, splits: dict[str, str], features: str, loss: str = "xent",
            weak: bool = True) -> dict[str, pd.DataFrame]:
    out = {name: str(directory / f"{name}.parquet") for name in ("predictions", "history", "sweep")}
    out["checkpoint"] = str(directory / "checkpoint")
    train_model({"path": "unused in probe mode"}, TrainingSettings.from_params(params), 0, splits, out, loss=loss, loss_params={},
                weak_labels_path=str(Path(features).parent / "weak.parquet") if weak else None, features_path=features,
                oracle_labels_path=splits["train_w2s"] if params["model_selection"] == "ground_truth_holdout" else None)
    return {name: pd.read_parquet(out[name]) for name in ("predictions", "history", "sweep")}


def test_a_student_probe_chooses_its_strength_on_the_weak_labels_of_held_out_rows(tmp_path: Path) -> None:
    """The weak labels are wrong on every row: scored against them the held-out accuracy is 1 where the
    probe fits them (1e-3 and 1e-1, the stronger kept) and 0.5 at 10, which predicts one class; against
    the true labels (the opt-in ground_truth_holdout) it is the complement, and 10 wins."""
    splits, features, _ = write_job_inputs(tmp_path, {"train_gt": 40, "train_w2s": 80, "test": 30})
    weak = run_job(tmp_path / "weak", probe_params(), splits, features)["history"]
    oracle = run_job(tmp_path / "oracle", probe_params(model_selection="ground_truth_holdout"), splits,
                     features)["history"]
    assert weak["l2"].tolist() == [1e-3, 1e-1, 10.0]
    assert weak["selection_score"].tolist() == [1.0, 1.0, 0.5]
    # Every held-out row has weak label = 1 - true label.
    assert oracle["selection_score"].tolist() == [0.0, 0.0, 0.5]
    assert weak["chosen"].tolist() == [False, True, False] and oracle["chosen"].tolist() == [False, False, True]


def test_a_probe_job_writes_one_history_row_and_the_test_predictions_per_strength(tmp_path: Path) -> None:
    splits, features, _ = write_job_inputs(tmp_path, {"train_gt": 40, "train_w2s": 80, "test": 30})
    written = run_job(tmp_path / "gt", probe_params(), splits, features, weak=False)
    history, sweep, predictions = written["history"], written["sweep"], written["predictions"]
    assert list(history.columns) == ["step", "l2", "selection_score", "loss", "iterations", "rounds", "converged",
                                     "chosen", "device", "selection_rows"]
    # A quarter of the 40 train_gt rows held out: each strength's selection score counts 10 rows.
    assert (history["selection_rows"] == 10).all()
    assert history["converged"].all() and (history["rounds"] == 1).all()
    # Stronger regularisation cannot fit the training rows better.
    assert history["loss"].is_monotonic_increasing
    assert sweep.groupby("l2").size().to_dict() == {1e-3: 30, 1e-1: 30, 10.0: 30}
    chosen_l2 = history.loc[history["chosen"], "l2"].item()
    assert sweep.loc[sweep["chosen"], "l2"].unique().tolist() == [chosen_l2]
    test = predictions[predictions["split"] == "test"]
    np.testing.assert_array_equal(np.stack(sweep.loc[sweep["chosen"], "probs"]), np.stack(test["probs"]))


def test_a_logconf_probe_job_runs_rounds_to_a_fixed_point(tmp_path: Path) -> None:
    splits, features, _ = write_job_inputs(tmp_path, {"train_gt": 40, "train_w2s": 80, "test": 30})
    history = run_job(tmp_path / "logconf", probe_params(), splits, features, loss="logconf")["history"]
    assert history["converged"].all() and (history["rounds"] >= 2).any()


# --- configuration ---------------------------------------------------------------------------------

def config_with(training: dict) -> dict:
    return {"seeds": [0], "w2s_slices": 1, "datasets": {"sciq": {"n_train": 20, "n_test": 10}},
            "models": {"a": {"path": "a"}, "b": {"path": "b", "training": {"mode": "full"}}}, "ladder": ["a", "b"],
            "losses": {"xent": {}}, "training": training}


def test_probe_jobs_get_the_probe_block_and_not_the_optimiser_and_finetuning_jobs_the_reverse() -> None:
    config = config_with({"mode": "probe", "model_selection": "weak_holdout", "lr": 0.5,
                          "probe": {"l2_grid": [0.1, 1.0]}})
    probe, full = training_job_params(config, "a"), training_job_params(config, "b")
    assert probe["probe"] == {"l2_grid": [0.1, 1.0], "max_iter": 1000, "max_rounds": 50, "tolerance": 1e-6}
    assert "lr" not in probe and "epochs" not in probe and "lora" not in probe
    assert full["lr"] == 0.5 and "probe" not in full


def test_a_probe_with_final_selection_and_several_strengths_is_refused() -> None:
    with pytest.raises(ConfigError, match="model 'a' is a probe with model_selection final and 2 L2 strengths"):
        validate_config(config_with({"mode": "probe", "probe": {"l2_grid": [0.1, 1.0]}}), SHIPPED_SCHEMA)
    validate_config(config_with({"mode": "probe", "probe": {"l2_grid": [0.1]}}), SHIPPED_SCHEMA)


# --- the regularisation sweep and the report's probe views ------------------------------------------

def write_sweep(path: Path, accuracies: dict[float, float], chosen: float) -> str:
    """Ten test rows per strength, `accuracy` of them predicted right."""
    frames = []
    for l2, accuracy in accuracies.items():
        right = round(10 * accuracy)
        frames.append(pd.DataFrame({"l2": l2, "chosen": l2 == chosen, "id": [f"t{i}" for i in range(10)],
                                    "probs": list(classes([0.9] * right + [0.1] * (10 - right)))}))
    pd.concat(frames).to_parquet(path, index=False)
    return str(path)


def sweep_run(run: str, kind: str, model: str, loss: str | None, lineage: str) -> dict:
    return {"dataset": "sciq", "seed": 0, "run": run, "kind": kind, "model": model, "loss": loss,
            "lineage": lineage, "model_selection": "weak_holdout"}


def sweep_table(tmp_path: Path) -> pd.DataFrame:
    paths = [write_sweep(tmp_path / "weak.parquet", {0.1: 0.6, 1.0: 0.5}, chosen=0.1),
             write_sweep(tmp_path / "ceiling.parquet", {0.1: 0.7, 1.0: 1.0}, chosen=1.0),
             write_sweep(tmp_path / "student.parquet", {0.1: 0.8, 1.0: 0.7}, chosen=1.0),
             str(tmp_path / "full.parquet"), str(tmp_path / "student_of_full.parquet")]
    final_sweep(pd.DataFrame({"id": ["t0", "t1", "t2", "t3"]}), classes([0.9, 0.9, 0.9, 0.1])
                ).to_parquet(paths[3], index=False)
    # Sweeps hold no labels: every test row is positive, joined by id from the labelled splits.
    tests = {n: tmp_path / f"test{n}.parquet" for n in (10, 4)}
    for n, path in tests.items():
        pd.DataFrame({"id": [f"t{i}" for i in range(n)], "text": "x", "label": 1}).to_parquet(path, index=False)
    write_sweep(tmp_path / "student_of_full.parquet", {0.1: 0.9}, chosen=0.1)
    runs = [sweep_run("gt/a", "ground_truth", "a", None, "a"), sweep_run("gt/b", "ground_truth", "b", None, "b"),
            sweep_run("w2s/xent/a__b", "student", "b", "xent", "a → b"),
            sweep_run("gt/c", "ground_truth", "c", None, "c"),
            sweep_run("w2s/xent/c__b", "student", "b", "xent", "c → b")]
    return regularisation_sweep(paths, [str(tests[4 if i == 3 else 10]) for i in range(len(paths))], runs)


def test_the_sweep_gives_each_student_strength_its_pgr_against_weak_and_ceiling_at_their_chosen_strengths(
        tmp_path: Path) -> None:
    table = sweep_table(tmp_path)
    student = table[table["run"] == "w2s/xent/a__b"]
    # weak: 0.6 at its chosen 0.1; ceiling: 1.0 at its chosen 1.0; PGR = (acc − 0.6) / 0.4.
    assert student["l2"].tolist() == [0.1, 1.0] and student["chosen"].tolist() == [False, True]
    np.testing.assert_allclose(student["accuracy"], [0.8, 0.7])
    np.testing.assert_allclose(student["weak_accuracy"], [0.6, 0.6])
    np.testing.assert_allclose(student["ceiling_accuracy"], [1.0, 1.0])
    np.testing.assert_allclose(student["pgr"], [0.5, 0.25])
    assert table.loc[table["kind"] == "ground_truth", "pgr"].isna().all() and len(table) == 8
    # gt/c is finetuned: one model, no strength, its accuracy the weak one of its probe student.
    full = table[table["run"] == "gt/c"]
    assert full["l2"].isna().all() and full["chosen"].tolist() == [True] and full["accuracy"].tolist() == [0.75]
    np.testing.assert_allclose(table.loc[table["run"] == "w2s/xent/c__b", "pgr"], [(0.9 - 0.75) / 0.25])


def test_the_report_draws_the_sweep_and_lists_each_probe_run_with_its_chosen_strength(tmp_path: Path) -> None:
    curves = pd.DataFrame([{"dataset": "sciq", "seed": 0, "run": "w2s/xent/minilm__mpnet", "kind": "student",
                            "model": "mpnet", "loss": "xent", "lineage": "minilm → mpnet",
                            "model_selection": "weak_holdout", "step": i, "epoch": np.nan, "train_loss": loss,
                            "batch_target_accuracy": np.nan, "holdout_accuracy": score, "device": "CPU", "l2": l2,
                            "iterations": 40, "rounds": 1, "converged": True, "chosen": i == 1}
                           for i, (l2, loss, score) in enumerate([(0.1, 0.25, 0.7), (1.0, 0.4, 0.75)])])
    files = build_report(ReportInputs(synthetic_summary(), curves=curves, sweep=sweep_table(tmp_path)), tmp_path, "probes")
    page = files["html"].read_text(encoding="utf-8")
    assert files["regularisation"].read_bytes().startswith(b"\x89PNG")
    assert "Overfitting to weak supervision: PGR against L2 strength" in page
    cells = ("sciq", "w2s/xent/minilm__mpnet", "0", "1e+00", "0.750", "0.400", "40", "1", "yes")
    assert "\n".join(f"      <td>{cell}</td>" for cell in cells) in page
    # A probe run has no steps: the training curves have no rows, so no section.
    assert "<h2>Training curves</h2>" not in page
