"""Datasets: hub ids, split mapping, conversion to (input, label) rows, and the deterministic splits.

Every catalogue dataset (DATASETS) is read with `datasets.load_dataset`, either from the hub or from
local files in the hub schema, and converted to rows of (id, text, label) with label in {0, 1}.
A dataset outside the catalogue is in a standard schema (one input column, one integer label
column 0..K-1), text or image (w2s.tasks), read from the hub, from local files in that schema, or
(images) from a local folder (w2s.data.images); its rows are (id, text or image, label).
"""

from __future__ import annotations

import hashlib
import json
import logging
import math
import random
import re
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Callable, Iterator

import numpy as np
import pandas as pd

from w2s import io, tasks
from w2s import revisions

# A hub row -> (input, label), or None for a row the task leaves out; the input is a text or image bytes.
Converter = Callable[[dict[str, Any], random.Random], "tuple[Any, int] | None"]
PREPARED_SPLITS = ("train_gt", "train_w2s", "test")
log = logging.getLogger("w2s")


class DatasetError(RuntimeError):
    """A dataset could not be loaded or has too few usable rows."""


MAIN_BRANCH = revisions.MAIN_BRANCH
# The hub's own parquet export of a repository: the only way to read repositories that still ship a
# loading script, which datasets>=4 refuses to run.
PARQUET_EXPORT_BRANCH = "refs/convert/parquet"


def entry_column(spec: "DatasetSpec", column: str) -> str:
    """The name a standard dataset's source gives our `column` (input_column, e.g. img for cifar10)."""
    return spec.columns.get(column, column)


@dataclass(frozen=True)
class DatasetSpec:
    hub_id: str
    convert: Converter
    # main branch: the config name (README `configs:`); parquet export: the config's folder (None: every folder)
    hub_config: str | None = None
    # our split name -> the hub's split name; None means test rows are drawn from train
    splits: dict[str, str | None] = field(default_factory=lambda: {"train": "train", "test": "test"})
    description: str = ""
    branch: str = MAIN_BRANCH
    # The commit of `branch` the data is read at, where public sources confirm one; otherwise the
    # first preflight resolves the branch's head and writes it to the lock file (w2s.revisions).
    revision: str | None = None
    task: tasks.Task = tasks.Task(tasks.DEFAULT_KIND, 2)
    # A standard dataset's folder of images (w2s.data.images): image_folder or imagenet_root, and its path.
    folder: tuple[str, str] | None = None
    # A standard dataset's column names where they differ from ours: {"image": "img"}, {"label": "y"}.
    columns: dict[str, str] = field(default_factory=dict)
    # A standard dataset's class names, in class-index order: a label is the position of its name.
    label_names: tuple[str, ...] = ()
    # A standard dataset read from local files keeps the files' own row ids (ID_COLUMN) where they are unique.
    keeps_ids: bool = False

    @property
    def parquet_export(self) -> bool:
        return self.branch == PARQUET_EXPORT_BRANCH


def _amazon_polarity(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    return f"{row['title']} {row['content']}", int(row["label"])


def _sciq(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    answer = row["correct_answer"] if label else rng.choice(
        [row["distractor1"], row["distractor2"], row["distractor3"]]
    )
    return f"Q: {row['question']} A: {answer}", label


def _anthropic_hh(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    label = int(rng.random() < 0.5)
    return (row["chosen"] if label else row["rejected"]), label


def _cosmos_qa(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    answers = [row[f"answer{i}"] for i in range(4)]
    true_answer = answers[int(row["label"])]
    # "None of the above" as the right answer makes every shown alternative a false claim.
    label = 0 if "None of the above choices" in true_answer else int(rng.random() < 0.5)
    answer = true_answer if label else rng.choice([a for a in answers if a != true_answer])
    return f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: {answer}", label


def _boolq(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    return f"Passage: {row['passage']}\nQuestion: {row['question']}", int(bool(row["answer"]))


def _sst2(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    return _labelled(row["sentence"].strip(), row["label"])


VADER_NEUTRAL_BAND = 0.5


def _vader_movies(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    score = float(row["score"])
    # Like SST-2's binary task, near-neutral snippets are left out.
    if abs(score) < VADER_NEUTRAL_BAND:
        return None
    return str(row["text"]).strip(), int(score > 0)


def _show_answer(prompt: str, correct: str, options: list[str], rng: random.Random) -> tuple[str, int] | None:
    """The prompt followed, with p = 0.5, by the correct answer (label 1), else by a uniformly
    chosen wrong one (label 0). An option that repeats the correct text is not a wrong answer."""
    wrong = [option for option in options if option != correct]
    if not wrong:
        return None
    label = int(rng.random() < 0.5)
    return prompt + (correct if label else rng.choice(wrong)), label


def _show_lettered_answer(prompt: str, row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    """_show_answer for AI2's schema: choices {text: [...], label: [letters]}, the right letter in answerKey."""
    letters, texts = row["choices"]["label"], list(row["choices"]["text"])
    if row["answerKey"] not in letters:
        return None
    return _show_answer(prompt, texts[letters.index(row["answerKey"])], texts, rng)


HIDDEN_LABEL = -1  # how the hub marks a test split's withheld labels


def _labelled(text: str, label: Any) -> tuple[str, int] | None:
    """(text, label) for a 0/1 label; a hidden test label (-1) makes the row unusable, and any
    other value is an error rather than a row quietly dropped."""
    if int(label) == HIDDEN_LABEL:
        return None
    return text, int(label)


def _dream(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    dialogue = "\n".join(row["dialogue"])
    prompt = f"Dialogue:\n{dialogue}\nQuestion: {row['question']}\nAnswer: "
    return _show_answer(prompt, row["answer"], list(row["choice"]), rng)


def _ethics_justice(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    return _labelled(f"Claim: {row['scenario']}\nIs this claim just?", row["label"])


def _ethics_deontology(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    text = f"Scenario: {row['scenario']}\nExcuse: {row['excuse']}\nIs the excuse reasonable?"
    return _labelled(text, row["label"])


ETHICS_VIRTUE_SEPARATOR = " [SEP] "


def _ethics_virtue(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    # The hub keeps behaviour and trait in one field: "<behaviour> [SEP] <trait>".
    if ETHICS_VIRTUE_SEPARATOR not in row["scenario"]:
        return None
    behaviour, trait = row["scenario"].rsplit(ETHICS_VIRTUE_SEPARATOR, 1)
    text = f"Behaviour: {behaviour}\nTrait: {trait}\nDoes the behaviour show the trait?"
    return _labelled(text, row["label"])


def _ethics_utilitarianism(row: dict[str, Any], rng: random.Random) -> tuple[str, int]:
    # The hub's baseline scenario is always the more pleasant one, so order alone carries the label.
    label = int(rng.random() < 0.5)
    pleasant, unpleasant = row["baseline"], row["less_pleasant"]
    first, second = (pleasant, unpleasant) if label else (unpleasant, pleasant)
    return f"Scenario 1: {first}\nScenario 2: {second}\nIs scenario 1 more pleasant than scenario 2?", label


ANLI_ENTAILMENT, ANLI_CONTRADICTION = 0, 2


def _anli(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    # Neutral pairs are dropped: the binary task is entailment (1) against contradiction (0).
    if row["label"] not in (ANLI_ENTAILMENT, ANLI_CONTRADICTION):
        return None
    text = (f"Premise: {row['premise']}\nHypothesis: {row['hypothesis']}\n"
            "Does the premise entail the hypothesis?")
    return text, int(row["label"] == ANLI_ENTAILMENT)


def _cola(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    return _labelled(row["sentence"].strip(), row["label"])


def _hellaswag(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    if row["label"] == "":  # the hub's test split hides its labels
        return None
    endings = list(row["endings"])
    return _show_answer(f"Context: {row['ctx']}\nEnding: ", endings[int(row["label"])], endings, rng)


def _mc_taco(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    text = (f"{row['sentence']}\nQuestion: {row['question']}\nCandidate answer: {row['answer']}\n"
            "Is the answer plausible?")
    return _labelled(text, row["label"])


def _openbookqa(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    return _show_lettered_answer(f"Question: {row['question_stem']}\nAnswer: ", row, rng)


def _paws(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    text = f"Sentence 1: {row['sentence1']}\nSentence 2: {row['sentence2']}\nAre the sentences paraphrases?"
    return _labelled(text, row["label"])


def _quail(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    answers = list(row["answers"])
    if not 0 <= row["correct_answer_id"] < len(answers):
        return None
    prompt = f"Passage: {row['context']}\nQuestion: {row['question']}\nAnswer: "
    return _show_answer(prompt, answers[row["correct_answer_id"]], answers, rng)


def _piqa(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    if row["label"] not in (0, 1):  # which of sol1 / sol2 is right; the hub's test split hides it (-1)
        return None
    solutions = [row["sol1"], row["sol2"]]
    return _show_answer(f"Goal: {row['goal']}\nSolution: ", solutions[row["label"]], solutions, rng)


def _quartz(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    return _show_lettered_answer(f"Passage: {row['para']}\nQuestion: {row['question']}\nAnswer: ", row, rng)


SOCIAL_IQA_LABELS = ("1", "2", "3")  # the hub stores the right answer's 1-based position as text


def _social_iqa(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    if row["label"] not in SOCIAL_IQA_LABELS:
        return None
    answers = [row["answerA"], row["answerB"], row["answerC"]]
    prompt = f"Context: {row['context']}\nQuestion: {row['question']}\nAnswer: "
    return _show_answer(prompt, answers[SOCIAL_IQA_LABELS.index(row["label"])], answers, rng)


def _multirc(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    text = (f"Passage: {row['paragraph']}\nQuestion: {row['question']}\nCandidate answer: {row['answer']}\n"
            "Is the answer correct?")
    return _labelled(text, row["label"])


def _wic(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    text = (f"Sentence 1: {row['sentence1']}\nSentence 2: {row['sentence2']}\n"
            f"Does '{row['word']}' mean the same in both sentences?")
    return _labelled(text, row["label"])


TWEET_NEGATIVE, TWEET_POSITIVE = 0, 2


def _twitter_sentiment(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    # Neutral tweets (1) are dropped: the binary task is positive (1) against negative (0).
    if row["label"] not in (TWEET_NEGATIVE, TWEET_POSITIVE):
        return None
    return row["text"].strip(), int(row["label"] == TWEET_POSITIVE)


HH_ASSISTANT_TURN = "\n\nAssistant:"


def _final_assistant_turn(transcript: str) -> tuple[str, str] | None:
    """(conversation before the last assistant turn, that turn's response)."""
    cut = transcript.rfind(HH_ASSISTANT_TURN)
    if cut < 0:
        return None
    return transcript[:cut].strip(), transcript[cut + len(HH_ASSISTANT_TURN):].strip()


def _anthropic_hh_pairwise(row: dict[str, Any], rng: random.Random) -> tuple[str, int] | None:
    if row["chosen"] == row["rejected"]:
        return None
    chosen, rejected = _final_assistant_turn(row["chosen"]), _final_assistant_turn(row["rejected"])
    # A pair is only a comparison when both transcripts answer the same conversation.
    if chosen is None or rejected is None or chosen[0] != rejected[0]:
        return None
    label = int(rng.random() < 0.5)
    first, second = (chosen[1], rejected[1]) if label else (rejected[1], chosen[1])
    return f"{chosen[0]}\n\nResponse A: {first}\n\nResponse B: {second}", label


def _chess_puzzle(row: dict[str, Any], rng: random.Random) -> tuple[str, str, dict[str, Any]]:
    from w2s.data import chess  # python-chess takes a quarter second to import; only chess jobs need it

    record = chess.puzzle_record(row)
    return record.pop("prompt"), record.pop("target"), record


# The task kind whose rows are (prompt, target) texts, read by causal LMs (w2s.tasks).
GENERATIVE_KIND = "generative"
# The catalogue's chess datasets: their prompts are games, so max_moves applies and metrics check legal moves.
CHESS_DATASETS = ("chess_puzzles",)
# label_balance's count, per split, of chess puzzles left out at preparation for their move number.
LEFT_OUT_OVER_MAX_MOVES = "over_max_moves"

TRAIN_VALIDATION = {"train": "train", "test": "validation"}
UNLABELED_TEST = "the hub's test split has no labels, so validation serves as test"
ETHICS_SPLITS = (
    "the hub's validation split is the original ETHICS test set and its test split the adversarial "
    "hard test set, so validation serves as test"
)

# Revisions are the commits public code pinned and read these repositories at (2024-2026); none was
# checked live from here. Those left None are resolved by the first preflight (docs/datasets.md).
HH_RLHF_REVISION = "09be8c5bbc57cb3887f3a9732ad6aa7ec602a1fa"
SUPER_GLUE_REVISION = "3de24cf8022e94f4ee4b9d55a6f539891524d646"

DATASETS: dict[str, DatasetSpec] = {
    "amazon_polarity": DatasetSpec("fancyzhx/amazon_polarity", _amazon_polarity),
    "sciq": DatasetSpec("allenai/sciq", _sciq, revision="2c94ad3e1aafab77146f384e23536f97a4849815"),
    "anthropic_hh": DatasetSpec("Anthropic/hh-rlhf", _anthropic_hh, revision=HH_RLHF_REVISION),
    "cosmos_qa": DatasetSpec(
        "allenai/cosmos_qa", _cosmos_qa, "default", splits={"train": "train", "test": "validation"},
        branch=PARQUET_EXPORT_BRANCH, revision="ed50fe83db62b355759053b1cd5eef344ee371e0",
        description="the main branch holds only a loading script (cosmos_qa.py); read from the parquet export",
    ),
    "boolq": DatasetSpec("google/boolq", _boolq, splits={"train": "train", "test": "validation"},
                         revision="35b264d03638db9f4ce671b711558bf7ff0f80d5"),
    "sst2": DatasetSpec(
        "stanfordnlp/sst2", _sst2, splits={"train": "train", "test": "validation"},
        revision="8d51e7e4887a4caaa95b3fbebbf53c0490b58bbb", description=UNLABELED_TEST,
    ),
    "vader_movies": DatasetSpec(
        "vaderSentiment==3.3.2", _vader_movies, splits={"train": "train", "test": None},
        description="10,605 Rotten Tomatoes snippets with human sentiment ratings (Hutto and "
        "Gilbert 2014), shipped in the vaderSentiment source package on PyPI",
    ),
    "anthropic_hh_pairwise": DatasetSpec(
        "Anthropic/hh-rlhf", _anthropic_hh_pairwise, revision=HH_RLHF_REVISION,
        description="the reward-modelling form: the shared conversation, then the chosen and the rejected "
        "final response in random order; label 1 when Response A is the chosen one. It exists because the "
        "single-response anthropic_hh form sits at chance for every model (github.com/openai/weak-to-strong "
        "issue 34, open)",
    ),
    "dream": DatasetSpec(
        "dataset-org/dream", _dream, "plain_text", branch=PARQUET_EXPORT_BRANCH,
        revision="ca4c45feaf089ecfc37579eb2c594375f70dbfd5",
        description="the main branch holds only a loading script; read from the parquet export",
    ),
    "ethics_justice": DatasetSpec(
        "hendrycks/ethics", _ethics_justice, "justice", splits=TRAIN_VALIDATION, branch=PARQUET_EXPORT_BRANCH,
        description=ETHICS_SPLITS,
    ),
    "ethics_deontology": DatasetSpec(
        "hendrycks/ethics", _ethics_deontology, "deontology", splits=TRAIN_VALIDATION,
        branch=PARQUET_EXPORT_BRANCH, description=ETHICS_SPLITS,
    ),
    "ethics_virtue": DatasetSpec(
        "hendrycks/ethics", _ethics_virtue, "virtue", splits=TRAIN_VALIDATION, branch=PARQUET_EXPORT_BRANCH,
        description=ETHICS_SPLITS,
    ),
    "ethics_utilitarianism": DatasetSpec(
        "hendrycks/ethics", _ethics_utilitarianism, "utilitarianism", splits=TRAIN_VALIDATION,
        branch=PARQUET_EXPORT_BRANCH, description=ETHICS_SPLITS,
    ),
    "anli_r2": DatasetSpec(
        "facebook/anli", _anli, splits={"train": "train_r2", "test": "test_r2"},
        revision="8e4813d81f46d313dac7892e1c28076917cfcdf9",
        description="round 2 only; neutral pairs are dropped",
    ),
    "cola": DatasetSpec("nyu-mll/glue", _cola, "cola", splits=TRAIN_VALIDATION,
                        revision="bcdcba79d07bc864c1c254ccfcedcce55bcc9a8c", description=UNLABELED_TEST),
    "hellaswag": DatasetSpec(
        "Rowan/hellaswag", _hellaswag, splits=TRAIN_VALIDATION,
        revision="218ec52e09a7e7462a5400043bb9a69a41d06b76", description=UNLABELED_TEST,
    ),
    "mc_taco": DatasetSpec(
        "CogComp/mc_taco", _mc_taco, splits={"train": "test", "test": "validation"}, branch=PARQUET_EXPORT_BRANCH,
        description="there is no train split: the larger test split (9,442 rows) serves as train and "
        "validation (3,783 rows) as test",
    ),
    "openbookqa": DatasetSpec("allenai/openbookqa", _openbookqa, "main",
                              revision="388097ea7776314e93a529163e0fea805b8a6454"),
    "paws": DatasetSpec("google-research-datasets/paws", _paws, "labeled_final",
                        revision="161ece9501cf0a11f3e48bd356eaa82de46d6a09"),
    "quail": DatasetSpec(
        # Public code reads it only from the export (config folder default), at no confirmed commit: the lock pins it.
        "textmachinelab/quail", _quail, "default", splits=TRAIN_VALIDATION, branch=PARQUET_EXPORT_BRANCH,
        description="the main branch holds only a loading script; read from the parquet export. There is no test "
        "split (only a 556-row challenge set), so validation serves as test",
    ),
    "piqa": DatasetSpec(
        # At this commit the export's folder is plain_text; later exports renamed it default.
        "ybisk/piqa", _piqa, "plain_text", splits=TRAIN_VALIDATION, branch=PARQUET_EXPORT_BRANCH,
        revision="142c51238b3ca2bc61e9a075913871b8b600e8e1", description=UNLABELED_TEST,
    ),
    "quartz": DatasetSpec("allenai/quartz", _quartz, revision="28c1dbb56caf81799296cb17892fa73402e23464"),
    "social_iqa": DatasetSpec(
        "allenai/social_i_qa", _social_iqa, "default", splits=TRAIN_VALIDATION, branch=PARQUET_EXPORT_BRANCH,
        revision="537a2ec8ec565adc0b70b70752893e59e024df26",
        description="there is no test split, so validation serves as test",
    ),
    "multirc": DatasetSpec(
        "aps/super_glue", _multirc, "multirc", splits=TRAIN_VALIDATION, revision=SUPER_GLUE_REVISION,
        description=UNLABELED_TEST,
    ),
    "wic": DatasetSpec("aps/super_glue", _wic, "wic", splits=TRAIN_VALIDATION, revision=SUPER_GLUE_REVISION,
                       description=UNLABELED_TEST),
    "chess_puzzles": DatasetSpec(
        "EleutherAI/lichess-puzzles", _chess_puzzle, splits={"train": "train", "test": None},
        revision="787a704697824359fceb7aca8be2ea23dce2f463", task=tasks.dataset_task({"kind": GENERATIVE_KIND}),
        description="the paper's chess puzzles (appendix A.2): the game's moves up to the puzzle position, every "
        "half-move numbered, to the solution's first move in SAN (w2s.data.chess); the hub has only a train split "
        "(1,479,018 puzzles), so test rows are drawn from it",
    ),
    "twitter_sentiment": DatasetSpec(
        "cardiffnlp/tweet_eval", _twitter_sentiment, "sentiment", revision="b3a375baf0f409c77e6bc7aa35102b7b3534f8be",
        description="neutral tweets are dropped",
    ),
}

def _standard_converter(input_column: str, label_column: str, task: tasks.Task,
                        label_names: tuple[str, ...] = ()) -> Converter:
    """(input, label) of a row in a standard schema; hidden labels (-1) leave the row out, and with label_names
    a label is the position of its name. An image column holds what datasets' Image(decode=False) gives: the
    encoded file's bytes (or its path)."""
    def convert(row: dict[str, Any], rng: random.Random) -> tuple[Any, int] | None:
        value = row[input_column]
        if task.input_column == "image" and isinstance(value, dict):  # datasets' Image(decode=False): bytes, path
            if value.get("bytes") is None:
                raise ValueError(f"column '{input_column}' holds no image bytes (path {value.get('path')}); embed "
                                 "the image files in the data")
            value = value["bytes"]
        label = row[label_column]
        if task.is_generative:
            return str(value), str(label)
        index = class_index(label, label_names)
        if index is None:
            raise ValueError(f"label {label!r} is no class index" + (f" and not in label_names {list(label_names)}"
                                                                     if label_names else ""))
        return None if index == HIDDEN_LABEL and not label_names else (value, index)

    return convert


def dataset_spec(name: str, entry: dict[str, Any] | None = None) -> DatasetSpec:
    """The catalogue's spec of `name`, or the spec a standard dataset's config entry describes."""
    if name in DATASETS:
        return DATASETS[name]
    if entry is None:
        raise DatasetError(f"dataset '{name}' is not in the catalogue ({', '.join(sorted(DATASETS))}) and no "
                           "config entry describes it")
    task = tasks.dataset_task(entry)
    folder = next(((key, entry[key]) for key in ("image_folder", "imagenet_root") if key in entry), None)
    splits = dict(entry.get("splits", {"train": "train", "test": None if folder else "test"}))
    splits.setdefault("test", None)
    input_column = entry.get("input_column", task.input_column)
    label_column = entry.get("label_column", task.label_column)
    # Folders are read as (id, image, label) records whatever the entry says of columns.
    columns = {} if folder else {task.input_column: input_column, task.label_column: label_column}
    label_names = tuple(str(label) for label in entry.get("label_names", ()))
    return DatasetSpec(
        entry.get("hub_id", folder[1] if folder else "local files"),
        _standard_converter(*((task.input_column, "label") if folder else (input_column, label_column)), task,
                            label_names),
        entry.get("hub_config"), splits, task=task, folder=folder, columns=columns, label_names=label_names,
        keeps_ids="data_files" in entry,
    )


# --------------------------------------------------------------------------- a standard dataset's files

# The suffixes of local data files, and the builder `datasets.load_dataset` reads each with.
LOCAL_BUILDERS = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}
# The column of a standard dataset's local file whose values are kept as its rows' ids, when no two are alike.
ID_COLUMN = "id"
# A CSV header name of this many words or more is taken for a row's text: the file has no header line.
WORDS_OF_A_ROW = 6
NUMBER_PATTERN = r"[+-]?(\d+\.?\d*|\.\d+)([eE][+-]?\d+)?"
# How many distinct label values an error lists before it counts the rest.
SHOWN_VALUES = 10


def class_index(value: Any, label_names: tuple[str, ...] = ()) -> int | None:
    """The class index a label stands for, or None: with label_names, the position of the label's name (names
    match as text, so a CSV's 1 is the name '1'); without, the label itself when it is an integer (1, 1.0, '1')."""
    if label_names:
        text = _label_text(value)
        return label_names.index(text) if text in label_names else None
    if isinstance(value, (bool, int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating)):
        return int(value) if math.isfinite(value) and float(value).is_integer() else None
    if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
        return int(value)
    return None


def _label_text(value: Any) -> str:
    """A label as label_names match it; 1.0 (an integer column with an empty cell reads as floats) is '1'."""
    if isinstance(value, (float, np.floating)) and math.isfinite(value) and float(value).is_integer():
        return str(int(value))
    return str(value)


def _is_missing(value: Any) -> bool:
    return value is None or (isinstance(value, (float, np.floating)) and math.isnan(value))


def _shown_values(counts: dict[Any, int]) -> str:
    """"'neg' (150 rows), 'pos' (150 rows)": values with their row counts, the most frequent first."""
    ordered = sorted(counts.items(), key=lambda item: (-item[1], str(item[0])))
    shown = [("an empty value" if _is_missing(value) else repr(value) if isinstance(value, str) else str(value))
             + f" ({_rows(n)})" for value, n in ordered[:SHOWN_VALUES]]
    rest = len(ordered) - SHOWN_VALUES
    return ", ".join(shown) + (f" and {rest:,} more values" if rest > 0 else "")


def _rows(n: int, kind: str = "") -> str:
    """'1 row', '12 usable rows'."""
    return f"{n:,} {kind}row{'' if n == 1 else 's'}"


def _yaml_list(values: list[str]) -> str:
    """values as a YAML flow list to paste into a config; a value YAML would misread is quoted."""
    plain = r"[A-Za-z0-9_.+-]+( [A-Za-z0-9_.+-]+)*"
    return "[" + ", ".join(v if re.fullmatch(plain, v) else json.dumps(v) for v in values) + "]"


def check_labels(name: str, where: str, labels: Any, spec: DatasetSpec) -> dict[int, int]:
    """Rows per class index of a standard dataset's labels, hidden ones (-1, without label_names) left out, once
    every label is shown to stand for one of the task's classes; otherwise the error names the values found and
    the setting that maps them. `where` names the file or split in words."""
    n_classes, names = spec.task.n_classes, spec.label_names
    column = entry_column(spec, spec.task.label_column)
    found = pd.Series(list(labels), dtype=object).value_counts(dropna=False)
    counts: dict[int, int] = {}
    bad: dict[Any, int] = {}
    hidden = 0
    for value, n in found.items():
        index = class_index(value, names)
        if index == HIDDEN_LABEL and not names:
            hidden += int(n)
        elif index is None or not 0 <= index < n_classes:
            bad[value] = int(n)
        else:
            counts[index] = counts.get(index, 0) + int(n)
    held = f"dataset '{name}': the label column '{column}' of {where} holds"
    if bad and names:
        raise DatasetError(f"{held} {_shown_values(bad)}, which label_names {_yaml_list(list(names))} does not name; "
                           f"add them to datasets.{name}.label_names (and n_classes), or remove those rows")
    if any(class_index(value) is None for value in bad):
        texts = sorted({_label_text(value) for value in found.index if not _is_missing(value)})
        classes = "" if len(texts) == n_classes else f", and n_classes: {len(texts)}"
        raise DatasetError(f"{held} {_shown_values(bad)}, but a label is a class index 0..{n_classes - 1} unless "
                           f"label_names names the classes: set datasets.{name}.label_names: {_yaml_list(texts)} (the "
                           f"names of classes 0, 1, ... in that order{classes}), or write the labels as integers"
                           + ("; every row needs a label" if any(map(_is_missing, bad)) else ""))
    if bad:
        raise DatasetError(f"{held} {_shown_values(bad)}, outside 0..{n_classes - 1}, the class indices of n_classes "
                           f"{n_classes}; set datasets.{name}.n_classes to the number of classes, or fix those labels")
    if len(counts) < 2:
        only = (f"labelled {names[next(iter(counts))]!r} (class {next(iter(counts))})" if names and counts
                else f"of class {next(iter(counts))}" if counts else "unlabelled (-1)")
        raise DatasetError(f"dataset '{name}': every labelled row of {where} is {only}, but a classifier needs rows "
                           f"of at least two classes; check label_column and the file"
                           + (f" (-1 marks a hidden label and leaves its {_rows(hidden)} out: for labels -1 and 1 set "
                              "label_names: [-1, 1])" if hidden else ""))
    return dict(sorted(counts.items()))


def _data_like(names: list[str]) -> str | None:
    """Why a CSV header reads as a row of data, or None: one of its names is a number, or a sentence."""
    for column in names:
        if re.fullmatch(NUMBER_PATTERN, column.strip()):
            return f"its column name '{column}' is a number"
        if len(column.split()) >= WORDS_OF_A_ROW:
            return f"its column name '{column[:60]}{'...' if len(column) > 60 else ''}' is a text of {len(column.split())} words"
    return None


def check_columns(name: str, where: str, columns: list[str], spec: DatasetSpec, csv_header: str | None = None,
                  entry: dict[str, Any] | None = None) -> None:
    """A standard dataset's file or split has the columns its entry names (input_column and label_column, or
    their defaults); otherwise the error lists the columns it has and names the setting. A CSV file whose
    columns are missing and whose first line (`csv_header`) reads as a row of data (_data_like) has no header."""
    task = spec.task
    holds = {"text": "the text", "image": "the image", "prompt": "the prompt"}
    needed = [(task.input_column, "input_column", holds[task.input_column]),
              (task.label_column, "label_column", "the target text" if task.is_generative else "the class label")]
    missing = [(entry_column(spec, ours), setting, ours, what) for ours, setting, what in needed
               if entry_column(spec, ours) not in columns]
    if not missing:
        return
    reason = _data_like(columns) if csv_header is not None else None
    if reason is not None:
        line = csv_header.strip()
        raise DatasetError(
            f"dataset '{name}': {where} has no header line: its first line, '{line[:80]}{'...' if len(line) > 80 else ''}', "
            f"reads as a row of data ({reason}). The first line of a CSV file names its columns; add one, e.g. "
            + ",".join(entry_column(spec, ours) for ours, _, _ in needed))
    entry = entry or {}
    said = [f"no column '{column}' (" + (f"datasets.{name}.{setting}" if setting in entry else f"the default of {setting}")
            + ")" for column, setting, _, _ in missing]
    alike = {column: other for column, *_ in missing for other in columns if other.lower() == column.lower()}
    if len(alike) == len(missing):
        fix = ("Column names are case-sensitive: set "
               + " and ".join(f"datasets.{name}.{setting}: {alike[column]}" for column, setting, _, _ in missing))
    else:
        fix = (f"Set {' and '.join(f'datasets.{name}.{setting}' for _, setting, _, _ in missing)} to the column"
               f"{'s' if len(missing) > 1 else ''} that hold{'' if len(missing) > 1 else 's'} "
               + " and ".join(what for *_, what in missing))
    raise DatasetError(f"dataset '{name}': {where} has {' and '.join(said)}; its columns are: {', '.join(columns)}. "
                       f"{fix}")


def kept_ids(values: Any) -> list[str] | None:
    """A local file's own row ids as text, or None when one is empty or two are alike (rows are then named by
    their position, <split>:<row>)."""
    ids = ["" if _is_missing(value) else str(value) for value in values]
    return ids if "" not in ids and len(set(ids)) == len(ids) else None


def _json_records(path: Path, where: str) -> Iterator[dict[str, Any]]:
    """The rows of a JSON lines file (blank lines skipped), or of a JSON document that is a list of rows; the
    first line that is no JSON object stops the read, naming its number."""
    with path.open(encoding="utf-8") as stream:
        first = stream.read(1)
        while first.isspace():
            first = stream.read(1)
    if first == "[":
        try:
            rows = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as err:
            raise DatasetError(f"{where}: line {err.lineno} is not valid JSON ({err.msg}, at column {err.colno}); "
                               "fix that line") from err
        numbered: Iterator[tuple[int, Any]] = ((0, row) for row in rows)
    else:
        numbered = _json_lines(path, where)
    for number, row in numbered:
        if not isinstance(row, dict):
            at = f"line {number}" if number else "an item of its list"
            raise DatasetError(f"{where}: {at} holds a JSON {type(row).__name__}, not an object of column values "
                               "({\"text\": ..., \"label\": ...}); fix that line")
        yield row


def _json_lines(path: Path, where: str) -> Iterator[tuple[int, Any]]:
    with path.open(encoding="utf-8") as stream:
        for number, line in enumerate(stream, 1):
            if not line.strip():
                continue
            try:
                yield number, json.loads(line.rstrip("\r\n"))
            except json.JSONDecodeError as err:
                raise DatasetError(f"{where}: line {number} is not valid JSON ({err.msg}, at column {err.colno}); "
                                   "fix or remove that line") from err


@dataclass(frozen=True)
class LocalColumns:
    """What the config check reads of a local data file: its column names, its number of rows, the values of
    the wanted columns it has (in row order), and for a CSV file its first line."""

    columns: list[str]
    n_rows: int
    values: dict[str, list[Any]]
    csv_header: str | None = None


def read_local_columns(path: Path, wanted: list[str], where: str) -> LocalColumns:
    """The columns of a local data file, and the values of those of `wanted` it has, reading no more of the
    file than its format needs: parquet only those columns' chunks, CSV only those fields (with pandas, as
    datasets' CSV builder reads it), JSON every line (its rows, unlike the others', have no fixed columns)."""
    suffix = path.suffix.lower()
    try:
        if suffix == ".parquet":
            import pyarrow.parquet as pq

            parquet = pq.ParquetFile(path)
            columns = list(parquet.schema_arrow.names)
            table = parquet.read(columns=[c for c in wanted if c in columns])
            return LocalColumns(columns, parquet.metadata.num_rows,
                                {c: table.column(c).to_pylist() for c in table.column_names})
        if suffix == ".csv":
            with path.open(encoding="utf-8-sig") as stream:
                header = stream.readline()
            columns = [str(c) for c in pd.read_csv(path, nrows=0).columns]
            present = [c for c in wanted if c in columns] or columns[:1]
            frame = pd.read_csv(path, usecols=present)
            return LocalColumns(columns, len(frame), {c: frame[c].tolist() for c in present if c in wanted}, header)
    except (OSError, ValueError, UnicodeDecodeError) as err:  # pandas and pyarrow: ParserError, ArrowInvalid
        raise DatasetError(f"{where} cannot be read as {suffix[1:]} ({type(err).__name__}: {' '.join(str(err).split())}); "
                           "fix the file") from err
    columns_seen: dict[str, None] = {}
    values: dict[str, list[Any]] = {c: [] for c in wanted}
    n_rows = 0
    for row in _json_records(path, where):
        columns_seen.update(dict.fromkeys(row))
        for column in wanted:
            values[column].append(row.get(column))
        n_rows += 1
    return LocalColumns(list(columns_seen), n_rows, {c: v for c, v in values.items() if c in columns_seen})


def is_remote(path: str) -> bool:
    """A remote location (https://, hf://, s3://, ...) that datasets reads itself, not a local path."""
    return re.match(r"^[A-Za-z][A-Za-z0-9+.-]*://", path) is not None


def _split_words(split: str, path: str) -> str:
    return f"the {split} file {path}"


def check_local_files(name: str, entry: dict[str, Any], workdir: Path) -> list[str]:
    """What the config check reads of a dataset's data_files before any job, in seconds: the test rows' source
    (data_files.test, or splits.test null to draw them from train), and for each file its columns, labels and
    rows against n_train and n_test (a catalogue dataset's files: that they read). Raises DatasetError naming
    the file, the column and the setting; returns one line per file saying what it holds. Remote files
    (https://, hf://) are datasets' to read, and folders of images preparation's: neither is read here."""
    spec = dataset_spec(name, entry)
    files = entry.get("data_files") or {}
    if not files or name in PACKAGED_DATASETS:
        return []
    from_train = spec.splits["test"] is None
    standard = name not in DATASETS
    for split in ("train", *([] if from_train else ["test"])):
        if split not in files:
            raise _no_file(name, split, spec)
    if from_train and "test" in files:
        raise DatasetError(f"dataset '{name}' sets data_files.test, but splits.test is null, which draws the test "
                           "rows from the train file instead; remove data_files.test, or splits.test")
    notes = []
    for split, path in sorted(files.items(), key=lambda item: item[0] != "train"):
        if is_remote(path):
            continue
        where = _split_words(split, path)
        if Path(path).suffix.lower() not in LOCAL_BUILDERS:
            raise DatasetError(f"dataset '{name}': {where}: local data files must be {_local_suffixes()}")
        full = workdir / path
        wanted = [entry_column(spec, spec.task.label_column), ID_COLUMN] if standard else []
        read = (read_local_columns(full, wanted, f"dataset '{name}': {where}") if full.stat().st_size
                else LocalColumns([], 0, {}))
        if read.n_rows == 0:
            raise DatasetError(f"dataset '{name}': {where} has no rows; point data_files.{split} at a file with rows")
        if not standard:  # the catalogue's converters leave rows out of their own: preparation counts those
            notes.append(f"dataset '{name}': {where}: {_rows(read.n_rows)} in the hub schema")
            continue
        usable, held = _standard_file_rows(name, where, read, spec, entry)
        needed = entry["n_test"] if split == "test" else entry["n_train"] + (entry["n_test"] if from_train else 0)
        if usable < needed:
            drawn = (f"n_test {entry['n_test']:,}" if split == "test" else f"n_train {entry['n_train']:,}"
                     + (f" + n_test {entry['n_test']:,}, as splits.test is null" if from_train else ""))
            raise DatasetError(f"dataset '{name}': {where} has {_rows(usable, 'usable ')}, fewer than the {needed:,} "
                               f"drawn from it ({drawn}); lower n_train or n_test, or add rows")
        ids = kept_ids(read.values[ID_COLUMN]) is not None if ID_COLUMN in read.values else None
        named = {True: f"ids from its {ID_COLUMN} column", None: "ids by position",
                 False: f"ids by position (its {ID_COLUMN} column repeats a value or has an empty one)"}[ids]
        notes.append(f"dataset '{name}': {where}: {_rows(read.n_rows)} ({held}), {named}"
                     + ("; the test rows are drawn from it" if from_train else ""))
    return notes


def _standard_file_rows(name: str, where: str, read: LocalColumns, spec: DatasetSpec,
                        entry: dict[str, Any]) -> tuple[int, str]:
    """A standard dataset's file checked for its columns and labels (a generative task's: for a target in
    every row): its usable rows, and what they hold in words."""
    check_columns(name, where, read.columns, spec, read.csv_header, entry)
    label_column = entry_column(spec, spec.task.label_column)
    labels = read.values[label_column]
    if spec.task.is_generative:
        empty = [i for i, target in enumerate(labels) if _is_missing(target) or not str(target).strip()]
        if empty:
            raise DatasetError(f"dataset '{name}': {where} has {_rows(len(empty))} with an empty target (column "
                               f"'{label_column}'; the first is row {empty[0]}), so they have no answer to train on or "
                               "to score; fill them in or remove them")
        return read.n_rows, "a target in every row"
    counts = check_labels(name, where, labels, spec)
    held = "classes " + ", ".join(f"{index}" + (f" ({spec.label_names[index]})" if spec.label_names else "")
                                  + f": {n:,}" for index, n in counts.items())
    usable = sum(counts.values())
    return usable, held + (f", unlabelled (-1): {read.n_rows - usable:,}" if usable < read.n_rows else "")


def _no_file(name: str, split: str, spec: DatasetSpec) -> DatasetError:
    """A dataset read from local files that names no file for a split it reads."""
    if split == "train":
        return DatasetError(f"dataset '{name}' sets data_files without data_files.train, the file its train rows "
                            "are read from; add it")
    return DatasetError(
        f"dataset '{name}' reads its test rows from data_files.test, which is not set; add data_files.test"
        + (", or set splits: {train: train, test: null} to draw the test rows from the train file"
           if name not in DATASETS else f" (a file of the hub's {spec.splits['test']} split)"))


def _local_suffixes() -> str:
    suffixes = list(dict.fromkeys(LOCAL_BUILDERS))
    return ", ".join(suffixes[:-1]) + " or " + suffixes[-1]


PACKAGED_DATASETS = {"vader_movies"}
VADER_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
VADER_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"


def fetch_vader_movies(out_path: str | Path) -> None:
    """Take the rated snippets out of the vaderSentiment sdist, fetched with pip from PyPI."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--dest", tmp, DATASETS["vader_movies"].hub_id]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise DatasetError(
                f"could not fetch {DATASETS['vader_movies'].hub_id} with pip ({result.stderr.strip()[-500:]}); "
                "check that PyPI is reachable, or set data_files.train in the config to a copy of "
                f"{VADER_MEMBER}"
            )
        (sdist,) = Path(tmp).glob("vaderSentiment-*.tar.gz")
        with tarfile.open(sdist) as outer:
            inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
            inner_file = outer.extractfile(inner_member)
            assert inner_file is not None
            with tarfile.open(fileobj=inner_file) as inner:
                snippets = inner.extractfile(VADER_MEMBER)
                assert snippets is not None
                payload = snippets.read()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != VADER_SHA256:
        raise DatasetError(f"{VADER_MEMBER} has sha256 {digest}, expected {VADER_SHA256}")
    io.write_bytes(payload, out_path)


# What datasets says of a file that parses to no rows (a JSON list [], a CSV with only a header).
NO_ROWS_MESSAGE = "corresponds to no data"
SCRIPT_REFUSED = "Dataset scripts are no longer supported"


@dataclass(frozen=True)
class DataSource:
    """The hub repository a dataset's rows are read from, at which commit, and why that commit.

    `mirror` is a local copy of the repository at that commit (a clone or a snapshot_download
    folder): it is read with the same config, folder and split names, without the hub.
    """

    hub_id: str
    branch: str
    revision: str | None
    # where the revision comes from: registry, config, lock, resolved (by the job, from the branch's
    # head, because nothing pinned it) or unpinned
    pinned_by: str
    hub_config: str | None
    parquet_export: bool
    mirror: str | None = None

    def record(self) -> dict[str, Any]:
        return {"hub_id": self.hub_id, "branch": self.branch, "revision": self.revision, "pinned_by": self.pinned_by,
                "hub_config": self.hub_config, "parquet_export": self.parquet_export, "mirror": self.mirror}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DataSource:
        return cls(**record)


def data_source(name: str, entry: dict[str, Any] | None = None,
                lock: dict[str, dict[str, str]] | None = None) -> DataSource:
    """Where `name` is read: the config entry's revision, else the registry's, else the lock file's."""
    spec, entry = dataset_spec(name, entry), entry or {}
    locked = revisions.locked_revision(lock, "dataset", spec.hub_id, spec.branch) if lock else None
    revision, pinned_by = next(
        ((rev, by) for rev, by in ((entry.get("revision"), "config"), (spec.revision, "registry"), (locked, "lock"))
         if rev is not None),
        (None, "unpinned"),
    )
    return DataSource(spec.hub_id, spec.branch, revision, pinned_by, spec.hub_config, spec.parquet_export,
                      entry.get("mirror"))


def pin(source: DataSource) -> DataSource:
    """`source` at a commit: an unpinned hub source is pinned to its branch's head now (needs the hub),
    so every split of one preparation reads the same commit and the record names it."""
    if source.revision is not None or source.mirror is not None:
        return source
    head = revisions.resolve_head("dataset", source.hub_id, source.branch)
    log.warning("%s@%s is pinned nowhere; read at its head %s. Run `python -m w2s.pipeline.preflight` to lock it",
                source.hub_id, source.branch, head)
    return replace(source, revision=head, pinned_by="resolved")


def load_arguments(source: DataSource, hub_split: str) -> tuple[str, dict[str, Any]]:
    """`datasets.load_dataset`'s path and keyword arguments for one split of `source`. A parquet export
    keeps each config in a folder (data_dir); a main branch names configs in its README (name)."""
    kwargs: dict[str, Any] = {"split": hub_split}
    if source.parquet_export:
        kwargs["data_dir"] = source.hub_config
    elif source.hub_config is not None:
        kwargs["name"] = source.hub_config
    if source.mirror is not None:
        return source.mirror, kwargs
    return source.hub_id, {**kwargs, "revision": source.revision or source.branch}


def _where(source: DataSource, split: str, data_files: dict[str, str] | None) -> str:
    """Where a split is read from, in words for error messages."""
    if data_files:
        return data_files.get(split, data_files.get("train", ""))
    at = f"{source.hub_id}@{source.revision or source.branch}"
    return f"the local copy {source.mirror} of {at}" if source.mirror else f"the hub repository {at}"


def _empty_split(name: str, split: str, data_files: dict[str, str] | None, source: DataSource) -> DatasetError:
    return DatasetError(f"the {split} split of dataset '{name}' from {_where(source, split, data_files)} has no "
                        f"rows; point data_files.{split} at a file with rows in the dataset's hub schema")


def _load_rows(name: str, split: str, data_files: dict[str, str] | None, source: DataSource,
               spec: DatasetSpec | None = None) -> Any:
    spec = spec or dataset_spec(name)
    if spec.folder is not None:
        from w2s.data import images

        key, path = spec.folder
        try:
            read = (images.read_image_folder(path, spec.task.n_classes) if key == "image_folder"
                    else images.read_imagenet(path))
        except images.ImageDataError as err:
            raise DatasetError(f"dataset '{name}': {err}") from err
        # Records of (id, image, label), indexed by position like a hub split's rows.
        return read.rows.to_dict("records")
    rows = _read_rows(name, split, data_files, source, spec)
    if len(rows) == 0:
        raise _empty_split(name, split, data_files, source)
    return rows


def _read_rows(name: str, split: str, data_files: dict[str, str] | None, source: DataSource,
               spec: DatasetSpec) -> Any:
    import datasets

    if data_files or source.mirror:
        # Local files need no hub; without this, datasets pings it to count downloads.
        datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        if name == "vader_movies":
            if not data_files or "train" not in data_files:
                raise DatasetError("vader_movies needs data_files.train (the fetch rule provides it)")
            return datasets.load_dataset(
                "csv", data_files=data_files["train"], delimiter="\t",
                column_names=["id", "score", "text"], quoting=3, split="train",
            )
        if data_files:
            if split not in data_files:
                raise _no_file(name, split, spec)
            path = data_files[split]
            builder = LOCAL_BUILDERS.get(Path(path).suffix.lower())
            if builder is None:
                raise DatasetError(f"{path}: local data files must be {_local_suffixes()}")
            # datasets fails on an empty file with a bare StopIteration, which says nothing.
            if Path(path).is_file() and Path(path).stat().st_size == 0:
                raise _empty_split(name, split, data_files, source)
            rows = datasets.load_dataset(builder, data_files=path, split="train")
        else:
            hub_split = spec.splits[split]
            assert hub_split is not None
            path, kwargs = load_arguments(source, hub_split)
            rows = datasets.load_dataset(path, **kwargs)
        image_column = "image" if spec.task.input_column == "image" else None
        if image_column is not None and entry_column(spec, image_column) in rows.column_names:
            # The encoded files as stored, not decoded pictures: the prepared splits keep the bytes.
            rows = rows.cast_column(entry_column(spec, image_column), datasets.Image(decode=False))
        return rows
    except DatasetError:
        raise
    except Exception as err:  # datasets raises many types for offline, missing and malformed data
        raise _load_error(name, split, data_files, source, err, spec) from err


def _load_error(name: str, split: str, data_files: dict[str, str] | None, source: DataSource,
                err: Exception, spec: DatasetSpec) -> DatasetError:
    where, message = _where(source, split, data_files), str(err)
    if NO_ROWS_MESSAGE in message:
        return _empty_split(name, split, data_files, source)
    if data_files and LOCAL_BUILDERS.get(Path(where).suffix.lower()) == "json" and Path(where).is_file():
        try:  # datasets' error names no line (pandas: "Expected object or value at position 43"); read it again
            for _ in _json_records(Path(where), f"dataset '{name}': {_split_words(split, where)}"):
                pass
        except DatasetError as broken:
            return broken
    if SCRIPT_REFUSED in message:
        return DatasetError(
            f"{where} holds a loading script and no data files ({message.rsplit('found ', 1)[-1]}), which the "
            f"installed datasets refuses to run; read the repository's parquet export instead: a commit of its "
            f"{PARQUET_EXPORT_BRANCH} branch in the registry (w2s.data.sources) or datasets.{name}.revision"
        )
    hub_split = spec.splits.get(split)
    if "Unknown split" in message or "Bad split" in message:
        return DatasetError(
            f"{where} has no split '{hub_split}', which dataset '{name}' reads as its {split} split ({message}); "
            "check the revision, or the registry's split names against the repository"
        )
    if data_files or source.mirror:
        setting = "data_files" if data_files else "mirror"
        return DatasetError(f"could not load the {split} split of dataset '{name}' from {where}: {message}; "
                            f"check datasets.{name}.{setting} in the config")
    return DatasetError(
        f"could not load the {split} split of dataset '{name}' from {where}: {message}. "
        f"Offline? Copy the repository at that commit to a folder and set datasets.{name}.mirror to it, point "
        f"datasets.{name}.data_files at local files in the hub schema, or set HF_HUB_OFFLINE=1 to use the "
        "local Hugging Face cache."
    )


def _split_where(split: str, data_files: dict[str, str] | None, source: DataSource) -> str:
    """A split's file or repository in words for errors: "the train file data/reviews.csv"."""
    if data_files and split in data_files:
        return _split_words(split, data_files[split])
    return f"the {split} split of {_where(source, split, data_files)}"


def _checked_rows(name: str, split: str, rows: Any, data_files: dict[str, str] | None, source: DataSource,
                  spec: DatasetSpec, entry: dict[str, Any]) -> list[str] | None:
    """A standard dataset's split, checked as the config check checks its file (columns, labels), and its rows'
    own ids where they are kept (a local file's unique ID_COLUMN); None for rows named by position."""
    if name in DATASETS or spec.folder is not None:
        return None
    where = _split_where(split, data_files, source)
    path = Path((data_files or {}).get(split, ""))
    header = None
    if path.suffix.lower() == ".csv":
        with path.open(encoding="utf-8-sig") as stream:
            header = stream.readline()
    check_columns(name, where, rows.column_names, spec, header, entry)
    if not spec.task.is_generative:
        check_labels(name, where, rows[entry_column(spec, spec.task.label_column)], spec)
    if not spec.keeps_ids or ID_COLUMN not in rows.column_names:
        return None
    ids = kept_ids(rows[ID_COLUMN])
    if ids is None:
        log.warning("%s: its %s column is empty in a row or repeats a value, so rows are named by position (%s:N)",
                    where, ID_COLUMN, split)
    return ids


def _convert(
    name: str, rows: Any, indices: list[int], split: str, seed: int, sizes: list[int], balance: bool,
    spec: DatasetSpec, max_moves: int | None = None, ids: list[str] | None = None, where: str = "",
) -> list[pd.DataFrame]:
    """Convert rows in the given order into parts of the given sizes, each row going to the first
    part with room. With balance, a part has room for a class only while that class holds less than
    1/K of the part (rounded up), so its class counts differ by at most one when every class has rows.
    `max_moves` leaves out long chess puzzles (_convert_generative). A row's id is its own from `ids`, else
    its position (<split>:<row>); `where` names the split's file or repository in errors."""
    if spec.task.is_generative:
        return _convert_generative(name, rows, indices, split, seed, sizes, spec, max_moves, ids, where)
    n_classes, column = spec.task.n_classes, spec.task.input_column
    parts: list[list[dict[str, Any]]] = [[] for _ in sizes]
    class_counts = [[0] * n_classes for _ in sizes]
    usable = [0] * n_classes
    for index in indices:
        if all(len(records) == size for records, size in zip(parts, sizes)):
            break
        # One generator per row keeps a row's random choice independent of sampling order.
        rng = random.Random(f"{name}:{split}:{index}:{seed}")
        converted = _converted(name, rows, index, split, spec, rng, where)
        if converted is None:
            continue
        value, label = converted
        if label not in range(n_classes):
            raise DatasetError(
                f"row {index} of the {split} split of '{name}' has label {label}, "
                + ("which is neither 0 nor 1" if n_classes == 2 else f"outside 0..{n_classes - 1} of its {n_classes} classes")
                + "; fix the label column of the data"
                + ("" if name in DATASETS else f", or set datasets.{name}.n_classes to the data's number of classes")
            )
        usable[label] += 1
        for records, counts, size in zip(parts, class_counts, sizes):
            if len(records) < size and (not balance or counts[label] < -(-size // n_classes)):
                counts[label] += 1
                records.append({"id": ids[index] if ids else f"{split}:{index}", column: value, "label": label})
                break
    if any(len(records) < size for records, size in zip(parts, sizes)):
        if sum(usable) == 0:
            raise DatasetError(
                f"none of the {len(indices)} rows of the {split} split of '{name}' is usable (all are "
                f"unlabelled or left out of the {'binary ' if n_classes == 2 else ''}task); point data_files at "
                "labelled rows"
            )
        if balance:
            raise DatasetError(
                f"dataset '{name}' cannot fill {sum(sizes)} class-balanced rows from its {split} split, "
                f"which has {sum(usable)} usable rows, "
                + (f"{usable[1]} of them positive" if n_classes == 2 else f"{usable} per class")
                + "; lower n_train or "
                "n_test, or switch balance off"
            )
        raise DatasetError(
            f"dataset '{name}' has only {sum(usable)} usable rows in its {split} split but the "
            f"config asks for {sum(sizes)}; lower n_train or n_test"
        )
    return [pd.DataFrame.from_records(records, columns=["id", column, "label"]) for records in parts]


def _converted(name: str, rows: Any, index: int, split: str, spec: DatasetSpec, rng: random.Random,
               where: str = "") -> Any:
    try:
        return spec.convert(rows[index], rng)
    except KeyError as err:
        columns = getattr(rows, "column_names", None)
        if columns is None or err.args[0] in columns:
            raise _unfit_row(name, index, split, spec, err) from err
        # A column the hub schema has and the file lacks: every row would fail, so the file is named, not the row.
        raise DatasetError(
            f"dataset '{name}': {where or f'the {split} split'} has no column '{err.args[0]}', which the hub schema "
            f"of {spec.hub_id} has; its columns are: {', '.join(columns)}. Point data_files.{split} at a file in that "
            "schema (docs/datasets.md, \"Local files\")"
        ) from err
    except (IndexError, TypeError, ValueError) as err:
        raise _unfit_row(name, index, split, spec, err) from err


def _unfit_row(name: str, index: int, split: str, spec: DatasetSpec, err: Exception) -> DatasetError:
    return DatasetError(f"row {index} of the {split} split of '{name}' does not fit the hub schema of {spec.hub_id} "
                        f"({type(err).__name__}: {err}); fix that row or the file's columns")


def _convert_generative(name: str, rows: Any, indices: list[int], split: str, seed: int, sizes: list[int],
                        spec: DatasetSpec, max_moves: int | None = None, ids: list[str] | None = None,
                        where: str = "") -> list[pd.DataFrame]:
    """A generative task's rows in the given order as (id, prompt, target) parts of the given sizes, with the
    columns a converter adds after them (chess: move_number, and rating and themes from the Lichess CSV). A
    row whose target is empty (whitespace only) is refused: it has no answer to train on or to score. With
    `max_moves`, a puzzle whose move to find is numbered above it is left out, and each part counts those met
    while it was being filled in its frame's attrs (LEFT_OUT_OVER_MAX_MOVES)."""
    parts: list[list[dict[str, Any]]] = [[] for _ in sizes]
    left_out = [0] * len(sizes)
    filling = 0
    for index in indices:
        while filling < len(sizes) and len(parts[filling]) == sizes[filling]:
            filling += 1
        if filling == len(sizes):
            break
        # One generator per row keeps a row's random choice independent of sampling order.
        converted = _converted(name, rows, index, split, spec, random.Random(f"{name}:{split}:{index}:{seed}"), where)
        if converted is None:
            continue
        prompt, target, *more = converted
        if not str(target).strip():
            raise DatasetError(f"row {index} of the {split} split of '{name}' has an empty target, so it has no "
                               "answer to train on or to score; fix the target column of the data")
        columns = more[0] if more else {}
        if max_moves is not None and columns["move_number"] > max_moves:
            left_out[filling] += 1
            continue
        parts[filling].append({"id": ids[index] if ids else f"{split}:{index}", "prompt": prompt, "target": target,
                               **columns})
    found = sum(map(len, parts))
    if found < sum(sizes):
        raise DatasetError(f"dataset '{name}' has only {found} usable rows in its {split} split but the "
                           f"config asks for {sum(sizes)}; lower n_train or n_test"
                           + (f", or raise max_moves ({sum(left_out)} puzzles are past move {max_moves})"
                              if max_moves is not None else ""))
    frames = []
    for records, count in zip(parts, left_out):
        frame = pd.DataFrame.from_records(records, columns=list(records[0]) if records else ["id", "prompt", "target"])
        if max_moves is not None:
            frame.attrs[LEFT_OUT_OVER_MAX_MOVES] = count
        frames.append(frame)
    return frames


def prepare(
    name: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None = None,
    *, balance: bool = False, source: DataSource | None = None, entry: dict[str, Any] | None = None,
) -> dict[str, pd.DataFrame]:
    """train_gt and train_w2s split a random n_train sample, train_gt taking the entry's n_train_gt rows (by
    default half, the smaller half for odd n_train); test is disjoint.

    With balance, each of the three splits has equal class counts (within one for odd sizes).
    Hub rows are read from `source` (default: the registry's repository and revision); `entry`, the
    config's, describes a dataset outside the catalogue, and for any dataset may set n_train_gt and, for
    chess puzzles, max_moves (_convert_generative).
    """
    spec = dataset_spec(name, entry)
    source = source or data_source(name, entry)
    entry = entry or {}
    rng = random.Random(seed)
    train_rows = _load_rows(name, "train", data_files, source, spec)
    train_where = _split_where("train", data_files, source)
    train_ids = _checked_rows(name, "train", train_rows, data_files, source, spec, entry)
    train_order = list(range(len(train_rows)))
    rng.shuffle(train_order)
    n_gt = entry.get("n_train_gt", n_train // 2)
    max_moves = entry.get("max_moves")
    if spec.splits["test"] is None:
        train_gt, train_w2s, test = _convert(
            name, train_rows, train_order, "train", seed, [n_gt, n_train - n_gt, n_test], balance, spec, max_moves,
            train_ids, train_where,
        )
    else:
        train_gt, train_w2s = _convert(
            name, train_rows, train_order, "train", seed, [n_gt, n_train - n_gt], balance, spec, max_moves,
            train_ids, train_where,
        )
        test_rows = _load_rows(name, "test", data_files, source, spec)
        test_where = _split_where("test", data_files, source)
        test_ids = _checked_rows(name, "test", test_rows, data_files, source, spec, entry)
        test_order = list(range(len(test_rows)))
        rng.shuffle(test_order)
        (test,) = _convert(name, test_rows, test_order, "test", seed, [n_test], balance, spec, max_moves,
                           test_ids, test_where)
    splits = {"train_gt": train_gt, "train_w2s": train_w2s, "test": test}
    for split, frame in splits.items():
        if not spec.task.is_generative and frame["label"].nunique() < 2:
            raise DatasetError(
                f"the {split} split of '{name}' has a single class: all {len(frame)} rows are labelled "
                f"{frame['label'].iloc[0]}; raise n_train or n_test, set balance: true, or check the data's labels"
            )
    return splits


def label_balance(splits: dict[str, pd.DataFrame], n_classes: int = 2) -> dict[str, dict[str, Any]]:
    """Per split: its number of rows and the fraction of each class (class_fractions); for a binary task
    also the fraction labelled 1 (positive_fraction); for a generative task the number of distinct targets,
    and with max_moves the puzzles left out while the split was filled (over_max_moves)."""
    balance: dict[str, dict[str, Any]] = {}
    for split, frame in splits.items():
        if "target" in frame:  # a generative task: targets, not classes; chess: the puzzles left out past max_moves
            balance[split] = {"n": len(frame), "distinct_targets": int(frame["target"].nunique()),
                              **({LEFT_OUT_OVER_MAX_MOVES: frame.attrs[LEFT_OUT_OVER_MAX_MOVES]}
                                 if LEFT_OUT_OVER_MAX_MOVES in frame.attrs else {})}
            continue
        counts = np.bincount(frame["label"].to_numpy(), minlength=n_classes)
        stats: dict[str, Any] = {"n": len(frame), "class_fractions": (counts / max(len(frame), 1)).tolist()}
        if n_classes == 2:
            stats["positive_fraction"] = float(frame["label"].mean())
        balance[split] = stats
    return balance


def w2s_slice(rows: pd.DataFrame, slice_index: int, n_slices: int) -> pd.DataFrame:
    """Slice `slice_index` (1-based) of `n_slices` equal, disjoint, contiguous slices of train_w2s."""
    if not 1 <= slice_index <= n_slices:
        raise ValueError(f"slice {slice_index} does not exist among {n_slices} slices")
    bounds = np.linspace(0, len(rows), n_slices + 1).astype(int)
    return rows.iloc[bounds[slice_index - 1] : bounds[slice_index]]


def source_record(dataset: str, source: DataSource, data_files: dict[str, str] | None,
                  entry: dict[str, Any] | None = None) -> dict[str, Any]:
    """What a preparation read, for the prepared data's metadata, provenance and the report: the hub
    repository and commit, each local file's sha256, or a folder of images (its path)."""
    import datasets

    spec = dataset_spec(dataset, entry)
    record: dict[str, Any] = {"dataset": dataset, "datasets_version": datasets.__version__,
                              "splits": {ours: hub for ours, hub in spec.splits.items() if hub},
                              "task": spec.task.params()}
    if spec.folder is not None:
        record[spec.folder[0]] = spec.folder[1]
    elif data_files:
        record["data_files"] = {split: {"path": path, "sha256": hashlib.sha256(Path(path).read_bytes()).hexdigest()}
                                for split, path in sorted(data_files.items())}
    else:
        record.update(source.record())
    return record


def unlabelled_output(split: str) -> str:
    """The outputs key of a split's label-free view in write_prepared (and rule prepare_data)."""
    return f"{split}_unlabelled"


def rows_sha256(frame: pd.DataFrame) -> str:
    """sha256 of a split's rows as ordered (id, input) pairs: what weak labels were made for, checked
    by the student that reads them. Each pair is one JSON line, so no two different lists of pairs
    give the same bytes; an image enters as its bytes' sha256. Labels do not enter, so label-free
    views and labelled splits agree."""
    digest = hashlib.sha256()
    if "image" in frame:
        inputs = (hashlib.sha256(data).hexdigest() for data in frame["image"])
    else:
        inputs = (str(text) for text in frame["prompt" if "prompt" in frame else "text"])
    for row_id, value in zip(frame["id"], inputs):
        digest.update(json.dumps([str(row_id), value], ensure_ascii=False).encode() + b"\n")
    return digest.hexdigest()


REMAKE_WEAK_LABELS = "delete it and let the weak_labels rule make it again from this dataset and seed"


def weak_label_positions(labels: pd.DataFrame, train_w2s: pd.DataFrame, path: str) -> np.ndarray:
    """The position in train_w2s of each weak label's row, once the labels are shown to be made for these
    rows: their `train_w2s_sha256` is the hash of train_w2s's (id, input) pairs, and each id is one of its
    rows, once."""
    # Ids alone repeat across datasets ("train:17"); the hash of every (id, input) pair does not.
    made_for = labels["train_w2s_sha256"].unique().tolist() if "train_w2s_sha256" in labels else []
    ours = rows_sha256(train_w2s)
    if made_for != [ours]:
        raise ValueError(f"{path}: the weak labels were made for train_w2s rows whose ids and inputs hash "
                         f"to {made_for or 'nothing (no train_w2s_sha256 column)'}, but this job's train_w2s hashes to "
                         f"{ours}, so they label other data; {REMAKE_WEAK_LABELS}")
    position = pd.Series(np.arange(len(train_w2s)), index=train_w2s["id"])
    missing = set(labels["id"]) - set(position.index)
    if missing or labels["id"].duplicated().any():
        raise ValueError(f"{path}: {len(missing)} weak-label ids are not in train_w2s, or ids repeat, "
                         f"so the file was not written by the weak_labels rule; {REMAKE_WEAK_LABELS}")
    return position.loc[labels["id"]].to_numpy()


def write_prepared(
    dataset: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None,
    outputs: dict[str, str], *, balance: bool = False, source: DataSource | None = None,
    entry: dict[str, Any] | None = None,
) -> None:
    """Each split as (id, input, label) rows under its own outputs key, and as its label-free view
    (id, input) under `<split>_unlabelled` when that key is given; the input column is the task's
    (text or image). `entry`, the config's, describes a dataset outside the catalogue."""
    spec = dataset_spec(dataset, entry)
    source = source or data_source(dataset, entry)
    if not data_files and spec.folder is None:
        source = pin(source)
    splits = prepare(dataset, n_train, n_test, seed, data_files, balance=balance, source=source, entry=entry)
    balance_by_split = label_balance(splits, spec.task.n_classes)
    for split, frame in splits.items():
        stats = balance_by_split[split]
        log.info("%s %s: %d rows, %s", dataset, split, stats["n"],
                 f"{stats['distinct_targets']} distinct targets" if "distinct_targets" in stats else
                 f"class fractions {[round(f, 3) for f in stats['class_fractions'][:10]]}")
        io.write_parquet(frame, outputs[split])
        if unlabelled_output(split) in outputs:
            io.write_parquet(frame[["id", spec.task.input_column]], outputs[unlabelled_output(split)])
    if "label_balance" in outputs:
        io.write_json(balance_by_split, outputs["label_balance"])
    if "source" in outputs:
        io.write_json(source_record(dataset, source, data_files, entry), outputs["source"])
