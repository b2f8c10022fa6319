"""Resume checkpoints: bit-identical continuation, a full disk, a corrupted file, keys, and a real kill -9."""

from __future__ import annotations

import errno
import json
import logging
import math
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import safetensors.torch
import torch

from helpers import REPO, sst2_rows, training_schedule
from w2s.pipeline.schema import TRAINING_DEFAULTS
from w2s.evaluation.run_metrics import evaluate
from w2s.training.jobs import train_model
from w2s.training.losses import logconf, xent
from w2s.models.text import ProbeClassifier
from w2s.training.resume import CheckpointError, ResumeCheckpoints, Trainer, run_key
from w2s.training.loop import Selection, fit
from w2s.training.settings import Schedule, TrainingSettings
from job_settings import job_params as settings_params

CPU = torch.device("cpu")


def schedule(**overrides: object) -> Schedule:
    """Every schedule setting that a checkpoint must carry through, in use: warmup, decay, clipping, minibatches."""
    return training_schedule(**{"lr": 0.05, "epochs": 3, "minibatch_size": 4, "weight_decay": 0.01,
                                "warmup_frac": 0.2, "max_grad_norm": 1.0, **overrides})


# Holdout scores after steps 3, 6, 9, 12 and 15 (0-based 2, 5, ...): the best is step 6.
SCORES = {2: 0.5, 5: 0.9, 8: 0.7, 11: 0.6, 14: 0.8}


class Interrupted(Exception):
    """Stands for the process dying mid-training."""


def probe_run(resume: ResumeCheckpoints | None, *, stop_at_step: int | None = None, loss=xent,
              optimizer: str = "adamw") -> tuple[ProbeClassifier, list[dict[str, float]]]:
    """A probe trained on 40 noisy rows with holdout selection every 3 steps; with `stop_at_step`
    the loss raises when that step starts, as a crash would."""
    generator = torch.Generator().manual_seed(0)
    labels = torch.randint(0, 2, (40,), generator=generator)
    features = torch.randn(40, 4, generator=generator) + (2 * labels[:, None].float() - 1)
    targets = torch.stack([1 - labels.float(), labels.float()], dim=1)
    torch.manual_seed(3)
    model = ProbeClassifier(4)
    total_steps = math.ceil(3 * 40 / 8)
    current = {"step": 0}

    def loss_fn(logits, t, step_frac, batch):
        current["step"] = round(step_frac * total_steps)
        if stop_at_step is not None and current["step"] == stop_at_step:
            raise Interrupted
        return loss(logits, t, step_frac, batch=batch)

    def score() -> float:
        return SCORES[current["step"]]

    history = fit(model, lambda rows: {"features": features[rows]}, targets, loss_fn,
                  schedule(optimizer=optimizer), CPU, selection=Selection(score, every=3),
                  needs_batch_probs=loss is logconf, resume=resume)
    return model, history


@pytest.mark.parametrize(("loss", "optimizer"), [(xent, "adamw"), (logconf, "adamw"), (xent, "adafactor")],
                         ids=["xent-adamw", "logconf-adamw", "xent-adafactor"])
def test_a_resumed_fit_equals_an_uninterrupted_one_bit_for_bit(tmp_path: Path, loss, optimizer: str) -> None:
    reference, reference_history = probe_run(None, loss=loss, optimizer=optimizer)
    checkpoints = ResumeCheckpoints(tmp_path, "key", every=4)
    with pytest.raises(Interrupted):
        probe_run(checkpoints, stop_at_step=10, loss=loss, optimizer=optimizer)
    assert [p.name for p in checkpoints.checkpoints()] == ["step-00000008"]
    resumed, resumed_history = probe_run(checkpoints, loss=loss, optimizer=optimizer)
    assert torch.equal(resumed.head.weight, reference.head.weight)
    assert torch.equal(resumed.head.bias, reference.head.bias)
    assert resumed_history == reference_history
    # The best step (6) came before the checkpoint of step 8, so its weights came through the restart.
    assert [h.get("selection_score") for h in resumed_history][2::3] == [0.5, 0.9, 0.7, 0.6, 0.8]


def test_checkpoints_every_n_steps_and_after_the_last_keeping_only_the_newest(tmp_path: Path) -> None:
    checkpoints = ResumeCheckpoints(tmp_path, "key", every=4)
    assert [s for s in range(1, 16) if checkpoints.due(s, 15)] == [4, 8, 12, 15]
    probe_run(checkpoints)
    assert [p.name for p in checkpoints.checkpoints()] == ["step-00000015"]
    assert sorted(p.name for p in (tmp_path / "key" / "step-00000015").iterdir()) == [
        "manifest.json", "scalars.json", "state.safetensors"]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]
    killed_writer = tmp_path / "key" / ".step-00000020.tmp4242"
    killed_writer.mkdir()
    (killed_writer / "state.safetensors").write_bytes(b"half")
    assert checkpoints.restore(fresh_trainer(ProbeClassifier(4))).steps_done == 15
    assert not killed_writer.exists()
    with pytest.raises(ValueError, match="checkpoint_every must be at least 1, got 0"):
        ResumeCheckpoints(tmp_path, "key", every=0)


def test_a_full_disk_during_a_checkpoint_keeps_the_previous_one(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    checkpoints = ResumeCheckpoints(tmp_path, "key", every=4)
    # The tensors reach the disk through io.write_safetensors, which calls safetensors' save_file.
    real_save_file = safetensors.torch.save_file
    writes = 0

    def save_file_until_the_disk_fills(tensors: dict, path: str) -> None:
        nonlocal writes
        writes += 1
        if writes == 2:
            Path(path).write_bytes(b"\0" * 100)  # a partial file, then the device is full
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC), path)
        real_save_file(tensors, path)

    monkeypatch.setattr(safetensors.torch, "save_file", save_file_until_the_disk_fills)
    with pytest.raises(CheckpointError) as failure:
        probe_run(checkpoints)
    message = str(failure.value)
    assert "could not write the resume checkpoint of step 8" in message
    assert "No space left on device" in message and "free disk space" in message
    assert f"the checkpoint {tmp_path / 'key' / 'step-00000004'} is kept" in message
    assert [p.name for p in checkpoints.checkpoints()] == ["step-00000004"]
    assert not [p for p in tmp_path.rglob("*") if ".tmp" in p.name]  # the partial write is gone
    monkeypatch.setattr(safetensors.torch, "save_file", real_save_file)
    reference, _ = probe_run(None)
    resumed, _ = probe_run(checkpoints)
    assert torch.equal(resumed.head.weight, reference.head.weight)


def test_a_corrupted_checkpoint_is_detected_and_training_starts_afresh(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = ResumeCheckpoints(tmp_path, "key", every=4)
    with pytest.raises(Interrupted):
        probe_run(checkpoints, stop_at_step=6)
    state = tmp_path / "key" / "step-00000004" / "state.safetensors"
    data = bytearray(state.read_bytes())
    data[-3] ^= 0x01  # one bit of one weight
    state.write_bytes(bytes(data))
    model = ProbeClassifier(4)
    before = [p.detach().clone() for p in model.parameters()]
    with caplog.at_level(logging.WARNING, logger="w2s"):
        progress = checkpoints.restore(fresh_trainer(model))
    assert f"resume checkpoint {state.parent} is unusable and is skipped: sha256 mismatch in state.safetensors" \
        in caplog.text
    assert progress.steps_done == 0 and progress.best_weights is None
    assert all(torch.equal(p, b) for p, b in zip(model.parameters(), before))
    # A checkpoint whose manifest is unreadable is skipped too, and the run from scratch is the reference run.
    reference, reference_history = probe_run(None)
    checkpoints = ResumeCheckpoints(tmp_path / "again", "key", every=4)
    with pytest.raises(Interrupted):
        probe_run(checkpoints, stop_at_step=6)
    (checkpoints.directory / "step-00000004" / "manifest.json").write_text("{not json")
    restarted, restarted_history = probe_run(checkpoints)
    assert torch.equal(restarted.head.weight, reference.head.weight) and restarted_history == reference_history


def fresh_trainer(model: torch.nn.Module) -> Trainer:
    optimizer = torch.optim.AdamW(list(model.parameters()))
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0)
    return Trainer(list(model.parameters()), optimizer, scheduler, torch.amp.GradScaler("cpu", enabled=False))


def test_a_checkpoint_of_another_shape_is_refused_before_touching_the_model(
    tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    checkpoints = ResumeCheckpoints(tmp_path, "key", every=4)
    probe_run(checkpoints)
    wider = ProbeClassifier(6)
    before = [p.detach().clone() for p in wider.parameters()]
    with caplog.at_level(logging.WARNING, logger="w2s"):
        progress = checkpoints.restore(fresh_trainer(wider))
    assert progress.steps_done == 0 and progress.history == []
    assert "trainable tensor 0 is (2, 4) torch.float32, the model has (2, 6) torch.float32" in caplog.text
    assert all(torch.equal(p, b) for p, b in zip(wider.parameters(), before))


def test_the_run_key_follows_settings_inputs_and_code_but_not_checkpoint_frequency(tmp_path: Path) -> None:
    data = tmp_path / "train.parquet"
    data.write_bytes(b"rows")
    script, module = tmp_path / "train_model.py", tmp_path / "losses.py"
    script.write_text("from w2s.training.losses import LOSSES\n")
    module.write_text("LOSSES = {}\n")
    code = [script, module]
    identity = {"params": {**TRAINING_DEFAULTS}, "seed": 0, "loss": "xent"}
    key = run_key(identity, [data], code)
    assert run_key({**identity, "params": {**TRAINING_DEFAULTS, "checkpoint_every": 7}}, [data], code) == key
    assert run_key({**identity, "params": {**TRAINING_DEFAULTS, "lr": 2e-5}}, [data], code) != key
    assert run_key({**identity, "seed": 1}, [data], code) != key
    assert run_key({**identity, "loss": "logconf"}, [data], code) != key
    # The code counts by name and content: the same files in another folder, in another order, resume.
    moved = tmp_path / "moved"
    moved.mkdir()
    (moved / script.name).write_text(script.read_text())
    (moved / module.name).write_text(module.read_text())
    assert run_key(identity, [data], [moved / module.name, moved / script.name]) == key
    assert run_key(identity, [data], [script]) != key
    module.write_text("LOSSES = {'xent': None}\n")
    assert run_key(identity, [data], code) != key
    module.write_text("LOSSES = {}\n")
    assert run_key(identity, [data], code) == key
    data.write_bytes(b"other rows")
    assert run_key(identity, [data], code) != key


# --- the training job, in this process and killed with SIGKILL in another ---------------------------

def write_splits(directory: Path) -> dict[str, str]:
    directory.mkdir(parents=True, exist_ok=True)
    paths = {}
    for split, (n, seed) in {"train_gt": (40, 1), "train_w2s": (24, 2), "test": (24, 3)}.items():
        rows = sst2_rows(n, seed)
        frame = pd.DataFrame({"id": [f"{split}-{r['idx']}" for r in rows], "text": [r["sentence"] for r in rows],
                              "label": [r["label"] for r in rows]})
        paths[split] = str(directory / f"{split}.parquet")
        frame.to_parquet(paths[split], index=False)
    return paths


def job_params(**overrides: object) -> dict:
    return settings_params(**{"lr": 1e-2, "epochs": 2, "batch_size": 8, "minibatch_size": 4,
                              "eval_batch_size": 16, "max_length": 16, "pooling": "last",
                              "model_selection": "weak_holdout", "holdout_frac": 0.25, "evals_per_epoch": 2,
                              **overrides})


def job_outputs(directory: Path) -> dict[str, str]:
    return {"predictions": str(directory / "predictions.parquet"), "history": str(directory / "history.parquet"),
            "sweep": str(directory / "sweep.parquet"), "checkpoint": str(directory / "checkpoint")}


def metrics_bytes(run_dir: Path) -> bytes:
    """Metrics of a run beside the `data` folder that write_splits filled."""
    evaluate("gt/tiny", {"self": str(run_dir / "predictions.parquet")}, str(run_dir.parent / "data" / "test.parquet"),
             50, 0, str(run_dir / "metrics.json"), {"kind": "ground_truth"})
    return (run_dir / "metrics.json").read_bytes()


def test_the_same_config_and_seed_give_identical_artifacts_and_metrics_json(
    tmp_path: Path, tiny_models: dict[str, Path]
) -> None:
    splits = write_splits(tmp_path / "data")
    runs = [tmp_path / "first", tmp_path / "second"]
    for run in runs:
        train_model({"path": str(tiny_models["tiny-gpt2"])}, TrainingSettings.from_params(job_params(mode="full")), 0,
                    splits, job_outputs(run),
                    resume_dir=run / ".resume")
        assert not (run / ".resume").exists()  # removed once the outputs exist
    for name in ("predictions.parquet", "history.parquet", "checkpoint/head.safetensors",
                 "checkpoint/backbone/model.safetensors"):
        assert (runs[0] / name).read_bytes() == (runs[1] / name).read_bytes(), name
    assert metrics_bytes(runs[0]) == metrics_bytes(runs[1])
    assert json.loads(metrics_bytes(runs[0]))["n_test"] == 24


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA GPU")
def test_on_gpu_a_rerun_and_a_resumed_run_agree_within_the_documented_tolerance(tmp_path: Path) -> None:
    """docs/design.md: on a GPU, results agree to 1e-4 in probabilities, not bit for bit."""
    generator = torch.Generator().manual_seed(0)
    features = torch.randn(256, 32, generator=generator)
    labels = (features[:, 0] > 0).long()
    targets = torch.stack([1 - labels.float(), labels.float()], dim=1)
    cuda = torch.device("cuda")
    results = []
    for checkpoints in (None, ResumeCheckpoints(tmp_path, "key", every=5)):
        torch.manual_seed(0)
        model = ProbeClassifier(32).to(cuda)
        fit(model, lambda rows: {"features": features[rows]}, targets, xent, schedule(epochs=2, batch_size=16),
            cuda, resume=checkpoints)
        results.append(torch.softmax(model(features=features.to(cuda)), -1)[:, 1].detach().cpu())
    assert torch.allclose(results[0], results[1], atol=1e-4, rtol=0)


# The job in a child process, slowed to about 20 ms a step, printing each step it completes: the
# scheduler calls lr_factor(k) once k steps are done, so the count is exact.
CHILD = """
import logging, sys, time
import w2s.training.loop
from w2s.training.jobs import train_model
from w2s.training.settings import TrainingSettings
logging.basicConfig(level=logging.INFO, stream=sys.stderr, format="%(message)s")
real_lr_factor = w2s.training.loop.lr_factor
def counting_lr_factor(step, total, warmup_frac):
    print(step, flush=True)
    time.sleep(0.02)
    return real_lr_factor(step, total, warmup_frac)
w2s.training.loop.lr_factor = counting_lr_factor
model, splits, out_dir, params = sys.argv[1], eval(sys.argv[2]), sys.argv[3], eval(sys.argv[4])
out = {"predictions": out_dir + "/predictions.parquet", "history": out_dir + "/history.parquet",
       "sweep": out_dir + "/sweep.parquet", "checkpoint": out_dir + "/checkpoint"}
train_model({"path": model}, TrainingSettings.from_params(params), 0, splits, out, resume_dir=out_dir + "/.resume")
"""


def start_job(model: str, splits: dict[str, str], out_dir: Path, params: dict) -> subprocess.Popen:
    env = {**os.environ, "PYTHONPATH": f"{REPO / 'src'}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    return subprocess.Popen([sys.executable, "-c", CHILD, model, repr(splits), str(out_dir), repr(params)],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=env)


def test_a_job_killed_with_sigkill_resumes_and_matches_an_uninterrupted_run(
        tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    """The default checkpoint_every (50); 30 rows in batches of 8 for 40 epochs: 150 steps, killed after 120."""
    splits = write_splits(tmp_path / "data")
    # Full finetuning of a tiny model: probe heads are fit to convergence in one go, without resume.
    params = job_params(mode="full", lr=1e-3, epochs=40, evals_per_epoch=1)
    assert params["checkpoint_every"] == TRAINING_DEFAULTS["checkpoint_every"] == 50
    model = str(tiny_models["tiny-gpt2"])

    uninterrupted = start_job(model, splits, tmp_path / "uninterrupted", params)
    killed = start_job(model, splits, tmp_path / "killed", params)
    started = time.monotonic()
    completed = 0
    assert killed.stdout is not None
    for line in killed.stdout:
        completed = int(line)
        if completed >= 120:
            killed.send_signal(signal.SIGKILL)
            break
    killed.wait()
    assert killed.returncode == -signal.SIGKILL
    # The step in flight when the signal landed may have finished too.
    completed = max([completed, *(int(line) for line in killed.stdout.read().split())])
    assert not (tmp_path / "killed" / "predictions.parquet").exists()
    assert [p.name for p in (tmp_path / "killed" / ".resume").glob("*/step-*")] == ["step-00000100"]

    rerun = start_job(model, splits, tmp_path / "killed", params)
    rerun_out, rerun_log = rerun.communicate()
    assert rerun.returncode == 0, rerun_log
    resumed_at = int(re.search(r"resumed from \S+: (\d+) steps done", rerun_log).group(1))
    assert resumed_at == 100
    assert rerun_out.split()[:2] == ["0", "101"]  # the scheduler's initial call, then step 101
    uninterrupted_log = uninterrupted.communicate()[1]
    assert uninterrupted.returncode == 0, uninterrupted_log
    print(f"\nkilled after {completed} of 150 steps, resumed at {resumed_at}: "
          f"{completed - resumed_at} steps recomputed; both runs took {time.monotonic() - started:.1f} s")

    for name in ("predictions.parquet", "history.parquet", "checkpoint/head.safetensors"):
        assert (tmp_path / "killed" / name).read_bytes() == (tmp_path / "uninterrupted" / name).read_bytes(), name
    assert metrics_bytes(tmp_path / "killed") == metrics_bytes(tmp_path / "uninterrupted")
    assert len(pd.read_parquet(tmp_path / "killed" / "history.parquet")) == 150
    assert not (tmp_path / "killed" / ".resume").exists()
    assert np.isfinite(np.stack(pd.read_parquet(tmp_path / "killed" / "predictions.parquet")["probs"])).all()
