"""Shared fixtures and helpers: tiny randomly initialised models, a tiny SST-2-schema dataset on disk, the tiny
config the workflow tests run, a copy of the workflow, and the jobs a dry run plans."""

from __future__ import annotations

import json
import random
import re
import shutil
from collections import Counter
from pathlib import Path

import pytest

# Before any test module imports transformers: a CPU torch needs w2s's torchvision shim
# (w2s.models.torchvision_ops).
import w2s  # noqa: F401

REPO = Path(__file__).resolve().parents[1]
POSITIVE = ["good", "great", "fine", "lovely", "superb", "fun"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring", "weak"]
FILLER = ["the", "film", "was", "a", "plot", "actors", "really", "quite", "story", "movie"]
LOSSES = ("xent", "logconf")
LINEAGES = ("small__mid", "small__big", "mid__big", "small__mid__big")
# What a copy of the workflow needs to run on its own (copy_workflow).
WORKFLOW_FILES = (".gitignore", "Snakefile", "environment.yml", "config", "rules", "src", "workflow")


def sst2_rows(n: int, seed: int, with_labels: bool = True) -> list[dict]:
    """Sentences in SST-2's hub schema (idx, sentence, label) whose label a model can learn."""
    rng = random.Random(seed)
    rows = []
    for idx in range(n):
        label = rng.randint(0, 1)
        words = rng.sample(FILLER, 4) + [rng.choice(POSITIVE if label else NEGATIVE)]
        rng.shuffle(words)
        rows.append({"idx": idx, "sentence": " ".join(words), "label": label if with_labels else -1})
    return rows


def write_jsonl(rows: list[dict], path: Path) -> Path:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def copy_workflow(destination: Path) -> Path:
    """A copy of this checkout's workflow (its Snakefile, rules, scripts, package and configs) at `destination`."""
    destination.mkdir(parents=True, exist_ok=True)
    for name in WORKFLOW_FILES:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, destination / name, ignore=shutil.ignore_patterns("__pycache__", "*.egg-info"))
        else:
            shutil.copy2(REPO / name, destination / name)
    return destination


def _tokenizer(directory: Path) -> None:
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {w: i for i, w in enumerate(["[PAD]", "[UNK]", "[CLS]", "[SEP]"] + POSITIVE + NEGATIVE + FILLER)}
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    fast = PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]",
                                   cls_token="[CLS]", sep_token="[SEP]", model_max_length=32)
    fast.save_pretrained(directory)


def make_tiny_model(directory: Path, kind: str, seed: int) -> Path:
    """A randomly initialised BERT (encoder) or GPT-2 (causal LM) with a few thousand weights."""
    import torch
    from transformers import BertConfig, BertModel, GPT2Config, GPT2Model

    torch.manual_seed(seed)
    vocab_size = 4 + len(POSITIVE) + len(NEGATIVE) + len(FILLER)
    if kind == "bert":
        model = BertModel(BertConfig(vocab_size=vocab_size, hidden_size=16, num_hidden_layers=1,
                                     num_attention_heads=2, intermediate_size=32, max_position_embeddings=32))
    else:
        model = GPT2Model(GPT2Config(vocab_size=vocab_size, n_embd=16, n_layer=1, n_head=2, n_positions=32,
                                     bos_token_id=2, eos_token_id=3))
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    _tokenizer(directory)
    return directory


def planned_jobs(output: str) -> Counter:
    """(rule, first output) of every job in a dry run's listing."""
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    output: ([^,\n]+)", output, flags=re.M)
    return Counter(jobs)


def lengthened(rows: list[dict]) -> list[dict]:
    """Every third sentence gets four more words: nine tokens, over the weak model's max_length of 8."""
    return [{**row, "sentence": row["sentence"] + " really quite a story" * (row["idx"] % 3 == 0)} for row in rows]


def tiny_config(models: dict[str, Path], data_dir: Path, aux_coef: float = 0.5) -> dict:
    train = write_jsonl(lengthened(sst2_rows(64, seed=1)), data_dir / "train.jsonl")
    validation = write_jsonl(lengthened(sst2_rows(32, seed=2)), data_dir / "validation.jsonl")
    return {
        "seeds": [0],
        "w2s_slices": 2,
        "datasets": {"sst2": {"n_train": 48, "n_test": 24,
                              "data_files": {"train": str(train), "test": str(validation)},
                              "prompt": {"question": "the film was", "label_words": ["bad", "good"]}}},
        "training": {"lr": 1e-2, "epochs": 2, "batch_size": 8, "minibatch_size": 4,
                     "eval_batch_size": 16, "max_length": 16},
        "models": {
            "small": {"path": str(models["tiny-bert"]), "params_b": 0.1,
                      "training": {"mode": "lora", "pooling": "mean", "lora": {"r": 2}, "max_length": 8},
                      # Its one training job (gt/small) shards the model over two CPU processes (FSDP on gloo).
                      "resources": {"gpu": 0, "processes": 2}},
            "mid": {"path": str(models["tiny-gpt2"]), "params_b": 0.2,
                    "training": {"mode": "full", "pooling": "last", "model_selection": "weak_holdout",
                                 "holdout_frac": 0.25, "evals_per_epoch": 1},
                    "resources": {"gpu": 0}},
            "big": {"path": str(models["tiny-bert"]), "params_b": 0.3,
                    "training": {"mode": "probe", "pooling": "first", "probe": {"l2_grid": [0.1]}},
                    "resources": {"gpu": 0}},
        },
        "ladder": ["small", "mid", "big"],
        "chains": [["small", "mid", "big"]],
        "losses": {"xent": {}, "logconf": {"aux_coef": aux_coef, "warmup_frac": 0.2}},
        "prompting": {"models": ["mid"], "shots": [0, 2], "max_length": 32},
        "report": {"bootstrap_samples": 50},
    }


@pytest.fixture(scope="session")
def tiny_models(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("models")
    return {
        "tiny-bert": make_tiny_model(root / "tiny-bert", "bert", 0),
        "tiny-gpt2": make_tiny_model(root / "tiny-gpt2", "gpt2", 1),
    }


def rehearse_shipped_config(name: str, workdir: Path) -> None:
    """Rehearse config/<name>.yaml in `workdir` (w2s.pipeline.rehearse) and check that every job signature of its
    whole DAG ran, and that the summary and report hold the runs it built. A failure names the config, the job
    and its signature."""
    import io

    import pandas as pd

    from w2s.pipeline import rehearse
    from w2s.pipeline.rehearsal.plan import signature

    printed = io.StringIO()
    config = REPO / "config" / f"{name}.yaml"
    try:
        result = rehearse.rehearse(config, workdir, out=printed)
    except rehearse.RehearsalError as err:
        pytest.fail(str(err), pytrace=False)
    assert result.plan is not None
    assert result.plan.signatures == {signature(job, result.filled) for job in result.whole}
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    built = {f"{row.dataset}/seed{row.seed}/{row.run}" for row in summary.itertuples()}
    assert built == set(result.plan.runs) or not result.plan.runs
    assert (workdir / "results" / "report" / "report.html").stat().st_size > 0
    assert f"rehearsal of {config}: {len(result.plan.jobs)} of {len(result.whole)} jobs run" in printed.getvalue()
