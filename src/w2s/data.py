"""Datasets: hub ids, split mapping, binary conversion, and the deterministic train/test splits.

Every registered dataset is read with `datasets.load_dataset`, either from the hub or from
local files in the hub schema, and converted to rows of (id, text, label) with label in {0, 1}.
"""

from __future__ import annotations

import hashlib
import logging
import random
import subprocess
import sys
import tarfile
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable

import numpy as np
import pandas as pd

from w2s import io, metrics

Converter = Callable[[dict[str, Any], random.Random], "tuple[str, int] | None"]
PREPARED_SPLITS = ("train_gt", "train_w2s", "test")
log = logging.getLogger("w2s")


class DatasetError(RuntimeError):
    """A dataset could not be loaded or has too few usable rows."""


@dataclass(frozen=True)
class DatasetSpec:
    hub_id: str
    convert: Converter
    hub_config: str | None = None
    # our split name -> the hub's split name; None means test rows are drawn from train
    splits: dict[str, str | None] = field(default_factory=lambda: {"train": "train", "test": "test"})
    description: str = ""
    # Read the hub's own parquet export instead of the main branch, where hub_config names the
    # config's folder (None: the only one). For repos that still ship a loading script, which
    # datasets>=4 refuses to run.
    parquet_export: bool = False


PARQUET_EXPORT_REVISION = "refs/convert/parquet"


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


TRAIN_VALIDATION = {"train": "train", "test": "validation"}
UNLABELED_TEST = "the hub's test split has no labels, so validation serves as test"
ETHICS_SPLITS = (
    "the hub's validation split is the original ETHICS test set and its test split the adversarial "
    "hard test set, so validation serves as test"
)

DATASETS: dict[str, DatasetSpec] = {
    "amazon_polarity": DatasetSpec("fancyzhx/amazon_polarity", _amazon_polarity),
    "sciq": DatasetSpec("allenai/sciq", _sciq),
    "anthropic_hh": DatasetSpec("Anthropic/hh-rlhf", _anthropic_hh),
    "cosmos_qa": DatasetSpec(
        "allenai/cosmos_qa", _cosmos_qa, splits={"train": "train", "test": "validation"}
    ),
    "boolq": DatasetSpec("google/boolq", _boolq, splits={"train": "train", "test": "validation"}),
    "sst2": DatasetSpec(
        "stanfordnlp/sst2", _sst2, splits={"train": "train", "test": "validation"},
        description=UNLABELED_TEST,
    ),
    "vader_movies": DatasetSpec(
        "vaderSentiment==3.3.2", _vader_movies, splits={"train": "train", "test": None},
        description="10,605 Rotten Tomatoes snippets with human sentiment ratings (Hutto and "
        "Gilbert 2014), shipped in the vaderSentiment source package on PyPI",
    ),
    "anthropic_hh_pairwise": DatasetSpec(
        "Anthropic/hh-rlhf", _anthropic_hh_pairwise,
        description="the reward-modelling form: the shared conversation, then the chosen and the rejected "
        "final response in random order; label 1 when Response A is the chosen one. It exists because the "
        "single-response anthropic_hh form sits at chance for every model (github.com/openai/weak-to-strong "
        "issue 34, open)",
    ),
    "dream": DatasetSpec("dataset-org/dream", _dream),
    "ethics_justice": DatasetSpec(
        "hendrycks/ethics", _ethics_justice, "justice", splits=TRAIN_VALIDATION, parquet_export=True,
        description=ETHICS_SPLITS,
    ),
    "ethics_deontology": DatasetSpec(
        "hendrycks/ethics", _ethics_deontology, "deontology", splits=TRAIN_VALIDATION, parquet_export=True,
        description=ETHICS_SPLITS,
    ),
    "ethics_virtue": DatasetSpec(
        "hendrycks/ethics", _ethics_virtue, "virtue", splits=TRAIN_VALIDATION, parquet_export=True,
        description=ETHICS_SPLITS,
    ),
    "ethics_utilitarianism": DatasetSpec(
        "hendrycks/ethics", _ethics_utilitarianism, "utilitarianism", splits=TRAIN_VALIDATION,
        parquet_export=True, description=ETHICS_SPLITS,
    ),
    "anli_r2": DatasetSpec(
        "facebook/anli", _anli, splits={"train": "train_r2", "test": "test_r2"},
        description="round 2 only; neutral pairs are dropped",
    ),
    "cola": DatasetSpec("nyu-mll/glue", _cola, "cola", splits=TRAIN_VALIDATION, description=UNLABELED_TEST),
    "hellaswag": DatasetSpec(
        "Rowan/hellaswag", _hellaswag, splits=TRAIN_VALIDATION,
        description=UNLABELED_TEST,
    ),
    "mc_taco": DatasetSpec(
        "CogComp/mc_taco", _mc_taco, splits={"train": "test", "test": "validation"}, parquet_export=True,
        description="there is no train split: the larger test split (9,442 rows) serves as train and "
        "validation (3,783 rows) as test",
    ),
    "openbookqa": DatasetSpec("allenai/openbookqa", _openbookqa, "main"),
    "paws": DatasetSpec("google-research-datasets/paws", _paws, "labeled_final"),
    "quail": DatasetSpec(
        "textmachinelab/quail", _quail, splits=TRAIN_VALIDATION,
        description="there is no test split (only a 556-row challenge set), so validation serves as test",
    ),
    "piqa": DatasetSpec(
        "ybisk/piqa", _piqa, splits=TRAIN_VALIDATION, parquet_export=True,
        description=UNLABELED_TEST,
    ),
    "quartz": DatasetSpec("allenai/quartz", _quartz),
    "social_iqa": DatasetSpec(
        "allenai/social_i_qa", _social_iqa, splits=TRAIN_VALIDATION, parquet_export=True,
        description="there is no test split, so validation serves as test",
    ),
    "multirc": DatasetSpec(
        "aps/super_glue", _multirc, "multirc", splits=TRAIN_VALIDATION,
        description=UNLABELED_TEST,
    ),
    "wic": DatasetSpec("aps/super_glue", _wic, "wic", splits=TRAIN_VALIDATION, description=UNLABELED_TEST),
    "twitter_sentiment": DatasetSpec(
        "cardiffnlp/tweet_eval", _twitter_sentiment, "sentiment", description="neutral tweets are dropped",
    ),
}

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


def _source(name: str, split: str, data_files: dict[str, str] | None) -> str:
    """Where a split is read from, in words for error messages."""
    if data_files:
        return data_files.get(split, data_files.get("train", ""))
    return f"the hub id '{DATASETS[name].hub_id}'"


def _empty_split(name: str, split: str, data_files: dict[str, str] | None) -> DatasetError:
    return DatasetError(f"the {split} split of dataset '{name}' from {_source(name, split, data_files)} has no "
                        f"rows; point data_files.{split} at a file with rows in the dataset's hub schema")


def _load_rows(name: str, split: str, data_files: dict[str, str] | None) -> Any:
    rows = _read_rows(name, split, data_files)
    if len(rows) == 0:
        raise _empty_split(name, split, data_files)
    return rows


def _read_rows(name: str, split: str, data_files: dict[str, str] | None) -> Any:
    import datasets

    spec = DATASETS[name]
    try:
        if name == "vader_movies":
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
            if not data_files or "train" not in data_files:
                raise DatasetError("vader_movies needs data_files.train (the fetch rule provides it)")
            return datasets.load_dataset(
                "csv", data_files=data_files["train"], delimiter="\t",
                column_names=["id", "score", "text"], quoting=3, split="train",
            )
        if data_files:
            # Local files need no hub; without this, datasets pings it to count downloads.
            datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
            if split not in data_files:
                raise DatasetError(f"dataset '{name}' sets data_files but has no '{split}' file")
            path = data_files[split]
            suffix = Path(path).suffix.lower()
            builder = {".jsonl": "json", ".json": "json", ".parquet": "parquet", ".csv": "csv"}.get(suffix)
            if builder is None:
                raise DatasetError(f"{path}: local data files must be .jsonl, .json, .parquet or .csv")
            # datasets fails on an empty file with a bare StopIteration, which says nothing.
            if Path(path).is_file() and Path(path).stat().st_size == 0:
                raise _empty_split(name, split, data_files)
            return datasets.load_dataset(builder, data_files=path, split="train")
        hub_split = spec.splits[split]
        if spec.parquet_export:
            return datasets.load_dataset(
                spec.hub_id, data_dir=spec.hub_config, revision=PARQUET_EXPORT_REVISION, split=hub_split
            )
        return datasets.load_dataset(spec.hub_id, spec.hub_config, split=hub_split)
    except DatasetError:
        raise
    except Exception as err:  # datasets raises many types for offline, missing and malformed data
        if NO_ROWS_MESSAGE in str(err):
            raise _empty_split(name, split, data_files) from err
        raise DatasetError(
            f"could not load the {split} split of dataset '{name}' from {_source(name, split, data_files)}: {err}. "
            "Offline? Download it once and point datasets.<name>.data_files at local files in the "
            "hub schema, or set HF_HUB_OFFLINE=1 to use the local Hugging Face cache."
        ) from err


def _convert(
    name: str, rows: Any, indices: list[int], split: str, seed: int, sizes: list[int], balance: bool
) -> list[pd.DataFrame]:
    """Convert rows in the given order into parts of the given sizes, each row going to the first
    part with room. With balance, a part has room for a class only while that class holds less than
    half the part (rounded up), so its class counts differ by at most one."""
    convert = DATASETS[name].convert
    parts: list[list[dict[str, Any]]] = [[] for _ in sizes]
    class_counts = [[0, 0] for _ in sizes]
    usable = [0, 0]
    for index in indices:
        if all(len(records) == size for records, size in zip(parts, sizes)):
            break
        # One generator per row keeps a row's random choice independent of sampling order.
        rng = random.Random(f"{name}:{split}:{index}:{seed}")
        try:
            converted = convert(rows[index], rng)
        except (KeyError, IndexError, TypeError, ValueError) as err:
            raise DatasetError(
                f"row {index} of the {split} split of '{name}' does not fit the hub schema of "
                f"{DATASETS[name].hub_id} ({type(err).__name__}: {err}); fix that row or the file's columns"
            ) from err
        if converted is None:
            continue
        text, label = converted
        if label not in (0, 1):
            raise DatasetError(
                f"row {index} of the {split} split of '{name}' has label {label}, which is neither 0 nor 1; "
                "fix the label column of the data"
            )
        usable[label] += 1
        for records, counts, size in zip(parts, class_counts, sizes):
            if len(records) < size and (not balance or counts[label] < (size + 1) // 2):
                counts[label] += 1
                records.append({"id": f"{split}:{index}", "text": text, "label": label})
                break
    if any(len(records) < size for records, size in zip(parts, sizes)):
        if sum(usable) == 0:
            raise DatasetError(
                f"none of the {len(indices)} rows of the {split} split of '{name}' is usable (all are "
                "unlabelled or left out of the binary task); point data_files at labelled rows"
            )
        if balance:
            raise DatasetError(
                f"dataset '{name}' cannot fill {sum(sizes)} class-balanced rows from its {split} split, "
                f"which has {sum(usable)} usable rows, {usable[1]} of them positive; lower n_train or "
                "n_test, or switch balance off"
            )
        raise DatasetError(
            f"dataset '{name}' has only {sum(usable)} usable rows in its {split} split but the "
            f"config asks for {sum(sizes)}; lower n_train or n_test"
        )
    return [pd.DataFrame.from_records(records, columns=["id", "text", "label"]) for records in parts]


def prepare(
    name: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None = None,
    *, balance: bool = False,
) -> dict[str, pd.DataFrame]:
    """train_gt and train_w2s are the two halves of a random n_train sample; test is disjoint.

    With balance, each of the three splits has equal class counts (within one for odd sizes).
    """
    rng = random.Random(seed)
    train_rows = _load_rows(name, "train", data_files)
    train_order = list(range(len(train_rows)))
    rng.shuffle(train_order)
    half = n_train // 2
    if DATASETS[name].splits["test"] is None:
        train_gt, train_w2s, test = _convert(
            name, train_rows, train_order, "train", seed, [half, n_train - half, n_test], balance
        )
    else:
        train_gt, train_w2s = _convert(
            name, train_rows, train_order, "train", seed, [half, n_train - half], balance
        )
        test_rows = _load_rows(name, "test", data_files)
        test_order = list(range(len(test_rows)))
        rng.shuffle(test_order)
        (test,) = _convert(name, test_rows, test_order, "test", seed, [n_test], balance)
    splits = {"train_gt": train_gt, "train_w2s": train_w2s, "test": test}
    for split, frame in splits.items():
        if frame["label"].nunique() < 2:
            raise DatasetError(
                f"the {split} split of '{name}' has a single class: all {len(frame)} rows are labelled "
                f"{frame['label'].iloc[0]}; raise n_train or n_test, set balance: true, or check the data's labels"
            )
    return splits


def label_balance(splits: dict[str, pd.DataFrame]) -> dict[str, dict[str, float]]:
    """Per split: its number of rows and the fraction labelled 1."""
    return {split: {"n": len(frame), "positive_fraction": float(frame["label"].mean())}
            for split, frame in splits.items()}


def w2s_slice(rows: pd.DataFrame, slice_index: int, n_slices: int) -> pd.DataFrame:
    """Slice `slice_index` (1-based) of `n_slices` equal, disjoint, contiguous slices of train_w2s."""
    if not 1 <= slice_index <= n_slices:
        raise ValueError(f"slice {slice_index} does not exist among {n_slices} slices")
    bounds = np.linspace(0, len(rows), n_slices + 1).astype(int)
    return rows.iloc[bounds[slice_index - 1] : bounds[slice_index]]


def write_prepared(
    dataset: str, n_train: int, n_test: int, seed: int, data_files: dict[str, str] | None,
    outputs: dict[str, str], *, balance: bool = False,
) -> None:
    splits = prepare(dataset, n_train, n_test, seed, data_files, balance=balance)
    balance_by_split = label_balance(splits)
    for split, frame in splits.items():
        stats = balance_by_split[split]
        log.info("%s %s: %d rows, %.3f positive", dataset, split, stats["n"], stats["positive_fraction"])
        io.write_parquet(frame, outputs[split])
    if "label_balance" in outputs:
        io.write_json(balance_by_split, outputs["label_balance"])


def write_weak_labels(predictions_path: str, slice_index: int, n_slices: int, out_path: str) -> None:
    """The supervisor's predictions on one slice of train_w2s: id, soft, hard and true label."""
    preds = pd.read_parquet(predictions_path)
    w2s = preds[preds["split"] == "train_w2s"].reset_index(drop=True)
    rows = w2s_slice(w2s, slice_index, n_slices)
    metrics.check_probabilities(
        rows["prob"], f"{predictions_path}, the supervisor's predictions on train_w2s",
        "its training diverged, so it cannot supervise: lower its lr or use dtype float32, then rerun it",
    )
    frame = pd.DataFrame({
        "id": rows["id"].to_numpy(),
        "soft_label": rows["prob"].to_numpy(),
        "hard_label": (rows["prob"] > 0.5).astype(int).to_numpy(),
        "true_label": rows["label"].to_numpy(),
    })
    log.info("slice %d/%d: %d weak labels, accuracy %.4f", slice_index, n_slices, len(frame),
             float((frame["hard_label"] == frame["true_label"]).mean()))
    io.write_parquet(frame, out_path)
