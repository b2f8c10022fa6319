"""One process of tests/training/test_fsdp.py's torchrun launches, whose rank 0 writes what it found as JSON to OUT: the same
finetuning sharded over the launch's processes (FSDP2 on gloo) and, on rank 0, in one process, and how far apart
they end up; or (`faults`) what each process sees of a sharded job's faults.

    python -m torch.distributed.run --standalone --nproc-per-node=2 tests/fsdp_worker.py BERT GPT2 WORKDIR OUT
    python -m torch.distributed.run --standalone --nproc-per-node=2 tests/fsdp_worker.py faults WORKDIR OUT

Every collective that waits longer than TIMEOUT fails the launch, so a process left waiting fails the test instead
of hanging it.
"""

from __future__ import annotations

import json
import sys
from datetime import timedelta
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.distributed as dist
from torch import nn
from torch.distributed.tensor import DTensor

from helpers import sst2_rows
from job_settings import training_settings
from w2s.evaluation import metrics
from w2s.training.distributed import (
    SINGLE,
    Ranks,
    ShardedCheckpoints,
    full_state_dict,
    restore_snapshot,
    run_in_process_group,
    shard,
    snapshot,
)
from w2s.training.features import text_batcher
from w2s.training.finetune import build_classifier
from w2s.training.loop import Selection, fit, make_optimizer, predict
from w2s.training.loss_registry import loss_function
from w2s.training.losses import logconf_threshold
from w2s.training.settings import Schedule
from w2s.training.resume import CheckpointError, Progress, Trainer

CPU = torch.device("cpu")
ROWS = sst2_rows(32, seed=5)
LABELS = np.array([row["label"] for row in ROWS])
TARGETS = torch.tensor(np.stack([1 - LABELS, LABELS], axis=1), dtype=torch.float32)
TRAIN, HOLDOUT = np.arange(24), np.arange(24, 32)
# Rank 0 trains the one-process runs while the other waits in its next collective: seconds.
TIMEOUT = timedelta(seconds=60)
# A w2s module that calls a collective itself, not through Ranks.
ROGUE_MODULE = """
def total(value):
    dist.all_reduce(value)
    return value
"""


class Interrupted(Exception):
    """Stands for every process dying at the same step."""


def schedule(steps: int, batch_size: int, minibatch_size: int, optimizer: str = "adamw") -> Schedule:
    return Schedule(lr=1e-3, epochs=steps * batch_size / len(TRAIN), batch_size=batch_size,
                    minibatch_size=minibatch_size, weight_decay=0.01, warmup_frac=0.0, max_grad_norm=1.0, seed=0,
                    optimizer=optimizer)


def run(model_dir: str, mode: str, loss: str, schedule: Schedule, ranks: Ranks, *, resume_root: Path | None = None,
        stop_at_step: int | None = None) -> dict[str, Any]:
    """Finetune the classifier on the model at `model_dir`, selecting on 8 held-out rows every 2 steps; its whole
    weights (rank 0; other ranks: none), the history's losses and every step's logconf threshold."""
    torch.manual_seed(0)  # LoRA's initial adapters
    pooling = "mean" if mode == "full" else "last"
    settings = training_settings(mode=mode, pooling=pooling, lora={"r": 2})
    model, tokenizer = build_classifier({"path": model_dir}, settings, CPU, 2, ranks)
    batcher = text_batcher(tokenizer, [row["sentence"] for row in ROWS], 16)
    thresholds: list[float] = []
    total_steps = round(schedule.epochs * len(TRAIN) / schedule.batch_size)

    def loss_fn(logits, targets, step_frac, batch):
        if stop_at_step is not None and round(step_frac * total_steps) == stop_at_step:
            raise Interrupted
        if batch.probs is not None and (not thresholds or thresholds[-1][0] != step_frac):
            thresholds.append((step_frac, float(logconf_threshold(batch.probs, batch.targets))))
        return loss_function(loss)(logits, targets, step_frac, batch=batch)

    def holdout_accuracy() -> float:
        probs = predict(model, lambda rows: batcher(HOLDOUT[rows]), np.arange(len(HOLDOUT)), 3, CPU, ranks=ranks)
        return metrics.accuracy(probs, LABELS[HOLDOUT])

    resume = None
    if resume_root is not None:
        resume = ShardedCheckpoints(resume_root, "key", 2, model, ranks)
    history = fit(model, lambda rows: batcher(TRAIN[rows]), TARGETS[TRAIN], loss_fn, schedule, CPU,
                  selection=Selection(holdout_accuracy, every=2), needs_batch_probs=loss == "logconf",
                  resume=resume, ranks=ranks)
    weights = full_state_dict(model) if ranks.sharded else model.state_dict()
    return {"weights": weights, "losses": [row["loss"] for row in history],
            "thresholds": [t for _, t in thresholds]}


def max_abs_diff(a: dict[str, Any], b: dict[str, Any]) -> dict[str, float]:
    weights = max(float((a["weights"][k] - b["weights"][k]).abs().max()) for k in a["weights"])
    assert a["weights"].keys() == b["weights"].keys()
    losses = float(np.abs(np.subtract(a["losses"], b["losses"])).max())
    diffs = {"weights": weights, "losses": losses}
    if a["thresholds"]:  # a resumed run computes those of the steps after its checkpoint only
        diffs["thresholds"] = float(np.abs(np.subtract(a["thresholds"], b["thresholds"][-len(a["thresholds"]):])).max())
        diffs["threshold_steps"] = len(a["thresholds"])
    return diffs


def main(bert: str, gpt2: str, workdir: Path, out: Path, ranks: Ranks) -> None:
    # Batches of 7 over 2 processes give one 4 rows and the other 3, which in minibatches of 3 leaves it an
    # empty last minibatch: the uneven case.
    cases = {
        "full_xent_1_step": (bert, "full", "xent", schedule(1, 8, 4)),
        "full_logconf_6_steps": (bert, "full", "logconf", schedule(6, 7, 3)),
        "lora_xent_3_steps": (gpt2, "lora", "xent", schedule(3, 8, 2)),
        # Sharded: w2s's Adafactor over DTensor shards; in one process: torch.optim.Adafactor.
        "full_adafactor_6_steps": (bert, "full", "xent", schedule(6, 7, 3, "adafactor")),
    }
    results: dict[str, Any] = {}
    uninterrupted: dict[str, dict[str, Any]] = {}
    for name, (model_dir, mode, loss, plan) in cases.items():
        sharded = run(model_dir, mode, loss, plan, ranks)
        if ranks.writes_outputs:
            results[name] = max_abs_diff(sharded, run(model_dir, mode, loss, plan, SINGLE))
        uninterrupted[name] = sharded
    # Killed at step 3, after the checkpoint of step 2, and rerun: AdamW's and Adafactor's sharded state restored.
    for name, resumed_name in (("full_logconf_6_steps", "resumed_after_step_2"),
                               ("full_adafactor_6_steps", "adafactor_resumed_after_step_2")):
        model_dir, mode, loss, plan = cases[name]
        resume_root = workdir / resumed_name
        try:
            run(model_dir, mode, loss, plan, ranks, resume_root=resume_root, stop_at_step=3)
            raise AssertionError("the interrupted run ran to its end")
        except Interrupted:
            pass
        resumed = run(model_dir, mode, loss, plan, ranks, resume_root=resume_root)
        if ranks.writes_outputs:
            results[resumed_name] = {**max_abs_diff(resumed, uninterrupted[name]),
                                     "checkpoints": sorted(p.name for p in (resume_root / "key").iterdir())}
    if ranks.writes_outputs:
        out.write_text(json.dumps(results, indent=1))


def faults(workdir: Path, out: Path, ranks: Ranks) -> None:
    """What each process sees: of a checkpoint folder that rank 0 cannot create, of a w2s function that calls a
    collective itself, of Ranks.total; and a snapshot of a sharded parameter for model selection."""
    seen: dict[str, Any] = {}
    torch.manual_seed(0)
    model = nn.Sequential(nn.Linear(3, 5), nn.Linear(5, 2))
    shard(model, list(model), None)
    model(torch.ones(4, 3)).sum().backward()
    trainable = list(model.parameters())
    optimizer = torch.optim.AdamW(trainable)
    optimizer.step()
    trainer = Trainer(trainable, optimizer, torch.optim.lr_scheduler.LambdaLR(optimizer, lambda step: 1.0),
                      torch.amp.GradScaler("cpu", enabled=False))
    (workdir / "key").write_text("a file where the checkpoints' folder belongs")
    try:
        ShardedCheckpoints(workdir, "key", 1, model, ranks).save(Progress(steps_done=1), trainer)
        seen["unwritable_folder"] = "saved"
    except CheckpointError as err:
        seen["unwritable_folder"] = str(err)

    rogue: dict[str, Any] = {"__name__": "w2s.training.rogue", "dist": dist}
    exec(compile(ROGUE_MODULE, "w2s/training/rogue.py", "exec"), rogue)
    try:
        rogue["total"](torch.ones(1))
        seen["direct_call"] = "allowed"
    except RuntimeError as err:
        seen["direct_call"] = str(err)
    seen["total"] = ranks.total(torch.tensor([ranks.rank + 1.0])).tolist()

    weight = trainable[0]
    saved = snapshot(weight)
    with torch.no_grad():
        weight.to_local().add_(1.0)
        restore_snapshot(weight, saved)
    seen["snapshot"] = {"is_dtensor": isinstance(saved, DTensor), "placements": str(saved.placements),
                        "local_device": str(saved.to_local().device),
                        "own_storage": saved.to_local().data_ptr() != weight.to_local().data_ptr(),
                        "restored": bool(torch.equal(weight.to_local(), saved.to_local()))}
    seen["adafactor_shapes"] = adafactor_shapes(ranks)
    everyone = ranks.gather_objects(seen)
    if ranks.writes_outputs:
        out.write_text(json.dumps(everyone, indent=1))


def adafactor_shapes(ranks: Ranks) -> float:
    """The largest difference between a model's weights after 4 steps of ShardedAdafactor over the processes and of
    torch.optim.Adafactor in one, for a 3-d weight (a convolution's, whose shards are whole slices), and a 1-row
    weight and bias (none on the second process)."""
    def model() -> nn.Module:
        torch.manual_seed(1)
        return nn.Sequential(nn.Conv1d(2, 3, 2), nn.Flatten(), nn.Linear(6, 1))

    inputs = torch.randn(4, 2, 3, generator=torch.Generator().manual_seed(2))
    sharded, whole = shard(model(), [], None), model()
    optimizers = [make_optimizer("adafactor", list(sharded.parameters()), 0.01, 0.1, ranks),
                  make_optimizer("adafactor", list(whole.parameters()), 0.01, 0.1)]
    for _ in range(4):
        for net, rows, optimizer in ((sharded, inputs[ranks.rank :: ranks.world], optimizers[0]),
                                     (whole, inputs, optimizers[1])):
            net(rows).square().sum().backward()
            optimizer.step()
            optimizer.zero_grad()
    assert type(optimizers[1]) is torch.optim.Adafactor
    return max(float((p.full_tensor() - q).abs().max()) for p, q in zip(sharded.parameters(), whole.parameters()))


if __name__ == "__main__":
    if sys.argv[1] == "faults":
        work, output = sys.argv[2:4]
        run_in_process_group(lambda ranks, on: faults(Path(work), Path(output), ranks), TIMEOUT)
    else:
        bert_dir, gpt2_dir, work, output = sys.argv[1:5]
        run_in_process_group(lambda ranks, on: main(bert_dir, gpt2_dir, Path(work), Path(output), ranks), TIMEOUT)
