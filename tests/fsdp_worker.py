"""One process of tests/test_fsdp.py's torchrun launch: the same finetuning sharded over the launch's processes
(FSDP2 on gloo) and, on rank 0, in one process; rank 0 writes how far apart they end up as JSON.

    python -m torch.distributed.run --standalone --nproc-per-node=2 tests/fsdp_worker.py BERT GPT2 WORKDIR OUT
"""

from __future__ import annotations

import json
import sys
from pathlib import Path
from typing import Any

import numpy as np
import torch

from conftest import sst2_rows
from job_settings import training_settings
from w2s.evaluation import metrics
from w2s.training.distributed import SINGLE, Ranks, ShardedCheckpoints, full_state_dict, run_in_process_group
from w2s.training.jobs import _build_model, _text_batcher
from w2s.training.loop import Schedule, Selection, fit, predict
from w2s.training.losses import LOSSES, logconf_threshold

CPU = torch.device("cpu")
ROWS = sst2_rows(32, seed=5)
LABELS = np.array([row["label"] for row in ROWS])
TARGETS = torch.tensor(np.stack([1 - LABELS, LABELS], axis=1), dtype=torch.float32)
TRAIN, HOLDOUT = np.arange(24), np.arange(24, 32)


class Interrupted(Exception):
    """Stands for every process dying at the same step."""


def schedule(steps: int, batch_size: int, minibatch_size: int) -> Schedule:
    return Schedule(lr=1e-3, epochs=steps * batch_size / len(TRAIN), batch_size=batch_size,
                    minibatch_size=minibatch_size, weight_decay=0.01, warmup_frac=0.0, max_grad_norm=1.0, seed=0)


def run(model_dir: str, mode: str, loss: str, schedule: Schedule, ranks: Ranks, *, resume_root: Path | None = None,
        stop_at_step: int | None = None) -> dict[str, Any]:
    """Finetune the classifier on the model at `model_dir`, selecting on 8 held-out rows every 2 steps; its whole
    weights (rank 0; other ranks: none), the history's losses and every step's logconf threshold."""
    torch.manual_seed(0)  # LoRA's initial adapters
    pooling = "mean" if mode == "full" else "last"
    settings = training_settings(mode=mode, pooling=pooling, lora={"r": 2})
    model, tokenizer = _build_model({"path": model_dir}, settings, CPU, 2, ranks)
    batcher = _text_batcher(tokenizer, [row["sentence"] for row in ROWS], 16)
    thresholds: list[float] = []
    total_steps = round(schedule.epochs * len(TRAIN) / schedule.batch_size)

    def loss_fn(logits, targets, step_frac, batch):
        if stop_at_step is not None and round(step_frac * total_steps) == stop_at_step:
            raise Interrupted
        if batch.probs is not None and (not thresholds or thresholds[-1][0] != step_frac):
            thresholds.append((step_frac, float(logconf_threshold(batch.probs, batch.targets))))
        return LOSSES[loss](logits, targets, step_frac, batch=batch)

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
    }
    results: dict[str, Any] = {}
    for name, (model_dir, mode, loss, plan) in cases.items():
        sharded = run(model_dir, mode, loss, plan, ranks)
        if ranks.writes_outputs:
            results[name] = max_abs_diff(sharded, run(model_dir, mode, loss, plan, SINGLE))
        if name == "full_logconf_6_steps":
            uninterrupted = sharded
    model_dir, mode, loss, plan = cases["full_logconf_6_steps"]
    try:
        run(model_dir, mode, loss, plan, ranks, resume_root=workdir / "resume", stop_at_step=3)
        raise AssertionError("the interrupted run ran to its end")
    except Interrupted:
        pass
    resumed = run(model_dir, mode, loss, plan, ranks, resume_root=workdir / "resume")
    if ranks.writes_outputs:
        results["resumed_after_step_2"] = max_abs_diff(resumed, uninterrupted)
        results["checkpoints"] = sorted(p.name for p in (workdir / "resume" / "key").iterdir())
        out.write_text(json.dumps(results, indent=1))


if __name__ == "__main__":
    bert_dir, gpt2_dir, work, output = sys.argv[1:5]
    run_in_process_group(lambda ranks, on: main(bert_dir, gpt2_dir, Path(work), Path(output), ranks))
