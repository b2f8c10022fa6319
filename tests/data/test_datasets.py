"""Every registered dataset, read from small local files in its real hub schema through the same
`datasets.load_dataset` path the pipeline uses, and converted to (id, text, label) rows."""

from __future__ import annotations

import hashlib
import json
import re
import random
from pathlib import Path

import pandas as pd
import pytest

from helpers import EXPECTED_CONVERSIONS, HUB_DATASETS, source_row
from w2s.data import catalogue, preparation
from w2s.data.preparation import prepare
from w2s.data.spec import DatasetError
from w2s.pipeline.rehearsal.hub_rows import NONE_OF_THE_ABOVE, ROWS, amazon_rows, sst2_rows

pytestmark = pytest.mark.usefixtures("_private_datasets_cache")


def write_jsonl(rows: list[dict], path: Path) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


N_TRAIN_ROWS, N_TEST_ROWS = 40, 20


def files_for(name: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, list[dict]]]:
    rows = {"train": ROWS[name]("train", N_TRAIN_ROWS), "test": ROWS[name]("test", N_TEST_ROWS)}
    files = {split: write_jsonl(r, tmp_path / f"{name}_{split}.jsonl") for split, r in rows.items()}
    return files, rows


def all_rows(out: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([out["train_gt"], out["train_w2s"], out["test"]], ignore_index=True)


def usable_count(name: str, rows: list[dict]) -> int:
    return sum(bool(EXPECTED_CONVERSIONS[name](row)) for row in rows)


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_every_row_is_the_exact_conversion_of_its_source_row(name: str, tmp_path: Path) -> None:
    files, rows = files_for(name, tmp_path)
    out = prepare(name, n_train=20, n_test=10, seed=0, data_files=files)

    assert set(out) == {"train_gt", "train_w2s", "test"}
    assert [len(out[s]) for s in ("train_gt", "train_w2s", "test")] == [10, 10, 10]
    for split, frame in out.items():
        assert list(frame.columns) == ["id", "text", "label"]
        assert list(frame.index) == list(range(len(frame)))
        assert set(frame["label"]) == {0, 1}, split
        wanted_prefix = "test:" if split == "test" else "train:"
        assert frame["id"].str.startswith(wanted_prefix).all(), split
        for row in frame.itertuples():
            assert (row.text, row.label) in EXPECTED_CONVERSIONS[name](source_row(row.id, rows)), (split, row)


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_splits_are_disjoint_and_sampling_is_seeded(name: str, tmp_path: Path) -> None:
    files, _ = files_for(name, tmp_path)
    out = prepare(name, 20, 10, seed=3, data_files=files)
    ids = [set(out[s]["id"]) for s in ("train_gt", "train_w2s", "test")]
    assert sum(map(len, ids)) == 30  # unique within each split ...
    assert not (ids[0] & ids[1]) and not (ids[0] & ids[2]) and not (ids[1] & ids[2])  # ... and across

    again = prepare(name, 20, 10, seed=3, data_files=files)
    for split in out:
        pd.testing.assert_frame_equal(out[split], again[split])

    other = prepare(name, 20, 10, seed=4, data_files=files)
    assert set(other["train_gt"]["id"]) | set(other["train_w2s"]["id"]) != ids[0] | ids[1]
    assert list(other["test"]["id"]) != list(out["test"]["id"])


@pytest.mark.parametrize("name", HUB_DATASETS)
def test_too_many_rows_requested_names_the_dataset(name: str, tmp_path: Path) -> None:
    files, rows = files_for(name, tmp_path)
    n_train, n_test = usable_count(name, rows["train"]), usable_count(name, rows["test"])
    assert n_train >= 20 and n_test >= 10  # enough for the tests above
    with pytest.raises(DatasetError, match=f"'{name}'.*only {n_train} usable rows in its train split"):
        prepare(name, n_train + 1, 10, seed=0, data_files=files)
    with pytest.raises(DatasetError, match=f"'{name}'.*only {n_test} usable rows in its test split"):
        prepare(name, 20, n_test + 1, seed=0, data_files=files)
    out = prepare(name, n_train, n_test, seed=0, data_files=files)  # every usable row, and only those
    assert len(all_rows(out)) == n_train + n_test


def test_whole_train_split_can_be_used(tmp_path: Path) -> None:
    files, _ = files_for("amazon_polarity", tmp_path)
    out = prepare("amazon_polarity", N_TRAIN_ROWS, N_TEST_ROWS, seed=0, data_files=files)
    train_ids = set(out["train_gt"]["id"]) | set(out["train_w2s"]["id"])
    assert train_ids == {f"train:{i}" for i in range(N_TRAIN_ROWS)}
    assert set(out["test"]["id"]) == {f"test:{i}" for i in range(N_TEST_ROWS)}


def test_odd_n_train_puts_the_extra_row_in_train_w2s(tmp_path: Path) -> None:
    files, _ = files_for("boolq", tmp_path)
    out = prepare("boolq", 21, 10, seed=0, data_files=files)
    assert (len(out["train_gt"]), len(out["train_w2s"])) == (10, 11)


def test_specific_rows_by_hand(tmp_path: Path) -> None:
    """A few rows spelled out literally, in case EXPECTED_CONVERSIONS shares a mistake with the code."""
    amazon = prepare("amazon_polarity", 40, 20, 0, data_files=files_for("amazon_polarity", tmp_path)[0])
    train = pd.concat([amazon["train_gt"], amazon["train_w2s"]]).set_index("id")
    assert train.loc["train:7", "text"] == "train title 7 train review body 7."
    assert train.loc["train:7", "label"] == 1
    assert train.loc["train:8", "label"] == 0
    assert amazon["test"].set_index("id").loc["test:0", "text"] == "test title 0 test review body 0."

    boolq = prepare("boolq", 40, 20, 0, data_files=files_for("boolq", tmp_path)[0])
    test = boolq["test"].set_index("id")
    assert test.loc["test:3", "text"] == "Passage: test passage 3\nQuestion: test is it 3"
    assert test.loc["test:3", "label"] == 1
    assert test.loc["test:4", "label"] == 0

    sciq = all_rows(prepare("sciq", 40, 20, 0, data_files=files_for("sciq", tmp_path)[0])).set_index("id")
    row = sciq.loc["train:5"]
    if row["label"] == 1:
        assert row["text"] == "Q: train question 5? A: train right 5"
    else:
        assert row["text"] in {"Q: train question 5? A: train wrong 5a", "Q: train question 5? A: train wrong 5b",
                               "Q: train question 5? A: train wrong 5c"}


RANDOM_CHOICE_DATASETS = [
    "sciq", "anthropic_hh", "cosmos_qa", "anthropic_hh_pairwise", "dream", "ethics_utilitarianism",
    "hellaswag", "openbookqa", "quail", "piqa", "quartz", "social_iqa",
]


@pytest.mark.parametrize("name", RANDOM_CHOICE_DATASETS)
def test_random_choice_datasets_show_both_kinds_of_answer(name: str, tmp_path: Path) -> None:
    """These pick a true or false answer (or order) per row; both must occur, roughly evenly."""
    files, rows = files_for(name, tmp_path)
    n_train, n_test = usable_count(name, rows["train"]), usable_count(name, rows["test"])
    frame = all_rows(prepare(name, n_train, n_test, seed=0, data_files=files))
    positives = int(frame["label"].sum())
    assert 0.2 * len(frame) < positives < 0.8 * len(frame), positives


def test_sciq_label_is_one_iff_the_correct_answer_is_shown(tmp_path: Path) -> None:
    files, rows = files_for("sciq", tmp_path)
    frame = all_rows(prepare("sciq", N_TRAIN_ROWS, N_TEST_ROWS, seed=1, data_files=files))
    for row in frame.itertuples():
        src = source_row(row.id, rows)
        shows_correct = row.text.endswith(f" A: {src['correct_answer']}")
        assert shows_correct == (row.label == 1)
        assert row.text.startswith(f"Q: {src['question']} A: ")


def test_hh_label_is_one_iff_chosen_is_shown(tmp_path: Path) -> None:
    files, rows = files_for("anthropic_hh", tmp_path)
    frame = all_rows(prepare("anthropic_hh", N_TRAIN_ROWS, N_TEST_ROWS, seed=1, data_files=files))
    for row in frame.itertuples():
        src = source_row(row.id, rows)
        assert row.text == (src["chosen"] if row.label == 1 else src["rejected"])


def test_cosmos_none_of_the_above_is_always_a_false_claim(tmp_path: Path) -> None:
    files, rows = files_for("cosmos_qa", tmp_path)
    frame = all_rows(prepare("cosmos_qa", N_TRAIN_ROWS, N_TEST_ROWS, seed=0, data_files=files))
    none_rows = [r for r in frame.itertuples()
                 if source_row(r.id, rows)[f"answer{source_row(r.id, rows)['label']}"] == NONE_OF_THE_ABOVE]
    assert len(none_rows) == 14 + 7  # every third row of 40 train and 20 test rows
    for row in none_rows:
        assert row.label == 0
        assert NONE_OF_THE_ABOVE not in row.text
    for row in frame.itertuples():
        src = source_row(row.id, rows)
        shown = row.text.rsplit("\nAnswer: ", 1)[1]
        assert (shown == src[f"answer{src['label']}"]) == (row.label == 1)


def test_a_rows_conversion_does_not_depend_on_the_sample_size(tmp_path: Path) -> None:
    files, _ = files_for("sciq", tmp_path)
    small = prepare("sciq", 10, 4, seed=2, data_files=files)
    large = prepare("sciq", 30, 4, seed=2, data_files=files)
    # The same shuffle, so the small train sample is the head of the large one, converted alike.
    small_train = pd.concat([small["train_gt"], small["train_w2s"]], ignore_index=True)
    large_train = pd.concat([large["train_gt"], large["train_w2s"]], ignore_index=True)
    pd.testing.assert_frame_equal(small_train, large_train.iloc[:10])


def test_sst2_drops_unlabeled_rows(tmp_path: Path) -> None:
    unlabeled = {0, 2, 3, 7, 11}
    train = sst2_rows("train", N_TRAIN_ROWS, unlabeled={5})
    test = sst2_rows("test", 12, unlabeled=unlabeled)  # like the hub's test split: label -1
    files = {"train": write_jsonl(train, tmp_path / "train.jsonl"),
             "test": write_jsonl(test, tmp_path / "test.jsonl")}
    out = prepare("sst2", N_TRAIN_ROWS - 1, 12 - len(unlabeled), seed=0, data_files=files)

    test_ids = set(out["test"]["id"])
    assert test_ids == {f"test:{i}" for i in range(12) if i not in unlabeled}
    train_ids = set(out["train_gt"]["id"]) | set(out["train_w2s"]["id"])
    assert train_ids == {f"train:{i}" for i in range(N_TRAIN_ROWS) if i != 5}
    assert set(all_rows(out)["label"]) == {0, 1}
    assert out["test"].set_index("id").loc["test:4", "text"] == "test sentence 4"

    with pytest.raises(DatasetError, match="'sst2' has only 7 usable rows in its test split"):
        prepare("sst2", 20, 12 - len(unlabeled) + 1, seed=0, data_files=files)


# --------------------------------------------------------------------------- the paper's suite by hand


def convert_row(name: str, row: dict, seed: int = 0) -> tuple[str, int] | None:
    return catalogue.DATASETS[name].convert(row, random.Random(seed))


HH_PROMPT = "\n\nHuman: Hi!\n\nAssistant: Hello.\n\nHuman: Can you tell me a joke?"
HH_CHOSEN = HH_PROMPT + "\n\nAssistant: Why did the chicken cross the road? To get to the other side."
HH_REJECTED = HH_PROMPT + "\n\nAssistant: No."


def test_hh_pairwise_shows_the_shared_prompt_and_both_final_responses() -> None:
    row = {"chosen": HH_CHOSEN, "rejected": HH_REJECTED}
    prompt = "Human: Hi!\n\nAssistant: Hello.\n\nHuman: Can you tell me a joke?"
    joke = "Why did the chicken cross the road? To get to the other side."
    chosen_first = f"{prompt}\n\nResponse A: {joke}\n\nResponse B: No."
    chosen_second = f"{prompt}\n\nResponse A: No.\n\nResponse B: {joke}"
    seen = {convert_row("anthropic_hh_pairwise", row, seed) for seed in range(20)}
    assert seen == {(chosen_first, 1), (chosen_second, 0)}


def test_hh_pairwise_drops_rows_that_are_no_comparison() -> None:
    assert convert_row("anthropic_hh_pairwise", {"chosen": HH_CHOSEN, "rejected": HH_CHOSEN}) is None
    other_prompt = "\n\nHuman: Something else?\n\nAssistant: No."
    assert convert_row("anthropic_hh_pairwise", {"chosen": HH_CHOSEN, "rejected": other_prompt}) is None
    assert convert_row("anthropic_hh_pairwise", {"chosen": "no turns here", "rejected": HH_REJECTED}) is None


def test_hh_pairwise_label_is_one_iff_response_a_is_the_chosen_one(tmp_path: Path) -> None:
    files, rows = files_for("anthropic_hh_pairwise", tmp_path)
    frame = all_rows(prepare("anthropic_hh_pairwise", 30, 15, seed=1, data_files=files))
    for row in frame.itertuples():
        src = source_row(row.id, rows)
        response_a = row.text.split("\n\nResponse A: ")[1].split("\n\nResponse B: ")[0]
        assert (response_a == src["chosen"].rpartition("\n\nAssistant: ")[2]) == (row.label == 1)
        assert "Assistant: " + response_a not in row.text  # the final turn is not left in the prompt


def test_ethics_conversions_by_hand() -> None:
    virtue = {"label": 1, "scenario": "Martha hired a new babysitter and was totally at ease. [SEP] trustful"}
    assert convert_row("ethics_virtue", virtue) == (
        "Behaviour: Martha hired a new babysitter and was totally at ease.\nTrait: trustful\n"
        "Does the behaviour show the trait?", 1)
    assert convert_row("ethics_virtue", {"label": 0, "scenario": "no separator"}) is None
    pair = {"baseline": "I ate a cake.", "less_pleasant": "I dropped a cake."}
    for seed in range(10):
        text, label = convert_row("ethics_utilitarianism", pair, seed)
        first = text.split("\n")[0]
        assert first == ("Scenario 1: I ate a cake." if label == 1 else "Scenario 1: I dropped a cake.")
    assert convert_row("ethics_justice", {"label": 0, "scenario": "I deserve it."}) == (
        "Claim: I deserve it.\nIs this claim just?", 0)


def test_class_merging_rules_by_hand() -> None:
    nli = {"uid": "u", "premise": "P.", "hypothesis": "H.", "reason": ""}
    question = "Premise: P.\nHypothesis: H.\nDoes the premise entail the hypothesis?"
    assert convert_row("anli_r2", {**nli, "label": 0}) == (question, 1)  # entailment
    assert convert_row("anli_r2", {**nli, "label": 2}) == (question, 0)  # contradiction
    assert convert_row("anli_r2", {**nli, "label": 1}) is None  # neutral
    assert convert_row("twitter_sentiment", {"text": " great day ", "label": 2}) == ("great day", 1)
    assert convert_row("twitter_sentiment", {"text": "awful", "label": 0}) == ("awful", 0)
    assert convert_row("twitter_sentiment", {"text": "a day", "label": 1}) is None
    assert convert_row("cola", {"sentence": "Him went.", "label": -1, "idx": 0}) is None
    assert convert_row("wic", {"word": "bank", "sentence1": "a", "sentence2": "b", "start1": 0, "start2": 0,
                               "end1": 1, "end2": 1, "idx": 0, "label": -1}) is None


def test_multiple_choice_answers_by_hand() -> None:
    book = {"id": "7-980", "question_stem": "The sun is responsible for",
            "choices": {"text": ["puppies learning new tricks", "plants sprouting"], "label": ["A", "B"]},
            "answerKey": "B"}
    assert {convert_row("openbookqa", book, seed) for seed in range(20)} == {
        ("Question: The sun is responsible for\nAnswer: plants sprouting", 1),
        ("Question: The sun is responsible for\nAnswer: puppies learning new tricks", 0)}
    assert convert_row("openbookqa", {**book, "answerKey": "E"}) is None

    siqa = {"context": "C.", "question": "Q?", "answerA": "a", "answerB": "b", "answerC": "c", "label": "2"}
    outputs = {convert_row("social_iqa", siqa, seed) for seed in range(30)}
    assert {label for _, label in outputs} == {0, 1}
    assert {text[-1] for text, label in outputs if label == 1} == {"b"}
    assert {text[-1] for text, label in outputs if label == 0} == {"a", "c"}

    swag = {"ctx": "A man", "endings": ["runs.", "sits.", "sits.", "jumps."], "label": "1"}
    outputs = {convert_row("hellaswag", swag, seed) for seed in range(30)}
    # an ending that repeats the right one is not shown as a wrong answer
    assert outputs == {("Context: A man\nEnding: sits.", 1), ("Context: A man\nEnding: runs.", 0),
                       ("Context: A man\nEnding: jumps.", 0)}
    assert convert_row("hellaswag", {**swag, "label": ""}) is None
    assert convert_row("piqa", {"goal": "g", "sol1": "x", "sol2": "y", "label": -1}) is None
    assert convert_row("quail", {"context": "c", "question": "q", "answers": ["same", "same"],
                                 "correct_answer_id": 0}) is None  # no wrong answer to show


# --------------------------------------------------------------------------- balance


def skewed_boolq_files(tmp_path: Path) -> dict[str, str]:
    """Two in three answers are yes, close to boolq's real skew."""
    train = [{"question": f"q{i}", "answer": i % 3 != 0, "passage": f"p{i}"} for i in range(60)]  # 40 yes
    test = [{"question": f"t{i}", "answer": i % 3 != 0, "passage": f"tp{i}"} for i in range(30)]  # 20 yes
    return {"train": write_jsonl(train, tmp_path / "train.jsonl"),
            "test": write_jsonl(test, tmp_path / "test.jsonl")}


def test_balance_gives_equal_class_counts_in_every_split(tmp_path: Path) -> None:
    files = skewed_boolq_files(tmp_path)
    unbalanced = prepare("boolq", 20, 10, seed=0, data_files=files)
    assert all_rows(unbalanced)["label"].mean() > 0.6  # the skew is there without balance

    for seed in range(3):
        out = prepare("boolq", 20, 10, seed=seed, data_files=files, balance=True)
        for split, frame in out.items():
            assert frame["label"].value_counts().to_dict() == {0: 5, 1: 5}, (seed, split)
        ids = [set(frame["id"]) for frame in out.values()]
        assert sum(map(len, ids)) == 30 and not (ids[0] & ids[1])  # still disjoint
        for row in all_rows(out).itertuples():  # and still the exact conversion
            index = int(row.id.split(":")[1])
            assert row.label == int(index % 3 != 0)


def test_balance_with_odd_sizes_differs_by_at_most_one(tmp_path: Path) -> None:
    out = prepare("boolq", 15, 7, seed=0, data_files=skewed_boolq_files(tmp_path), balance=True)
    assert [len(out[s]) for s in ("train_gt", "train_w2s", "test")] == [7, 8, 7]
    assert sorted(out["train_gt"]["label"].value_counts()) == [3, 4]
    assert sorted(out["train_w2s"]["label"].value_counts()) == [4, 4]
    assert sorted(out["test"]["label"].value_counts()) == [3, 4]


def test_balance_that_cannot_be_met_is_an_error(tmp_path: Path) -> None:
    files = skewed_boolq_files(tmp_path)
    # 20 "no" rows in train cannot give 11 + 11 of them; 10 in test cannot give 11
    with pytest.raises(DatasetError, match=r"'boolq' cannot fill 44 class-balanced rows from its train "
                                           r"split, which has 60 usable rows, 40 of them positive.*"
                                           r"switch balance off"):
        prepare("boolq", 44, 10, seed=0, data_files=files, balance=True)
    with pytest.raises(DatasetError, match=r"cannot fill 22 class-balanced rows from its test split"):
        prepare("boolq", 20, 22, seed=0, data_files=files, balance=True)
    prepare("boolq", 44, 22, seed=0, data_files=files)  # fine without balance


def test_balance_off_is_the_default(tmp_path: Path) -> None:
    files = skewed_boolq_files(tmp_path)
    default = prepare("boolq", 20, 10, seed=0, data_files=files)
    off = prepare("boolq", 20, 10, seed=0, data_files=files, balance=False)
    for split in default:
        pd.testing.assert_frame_equal(default[split], off[split])


def test_label_balance_by_hand() -> None:
    splits = {"train_gt": pd.DataFrame({"label": [1, 0, 1, 1]}),
              "test": pd.DataFrame({"label": [0, 0, 0, 1, 1]})}
    assert preparation.label_balance(splits) == {
        "train_gt": {"n": 4, "class_fractions": [0.25, 0.75], "positive_fraction": 0.75},
        "test": {"n": 5, "class_fractions": [0.6, 0.4], "positive_fraction": 0.4}}
    # Many classes: a fraction per class, the absent class 3 included, and no positive fraction.
    assert preparation.label_balance({"test": pd.DataFrame({"label": [2, 0, 2, 1]})}, n_classes=4) == {
        "test": {"n": 4, "class_fractions": [0.25, 0.25, 0.5, 0.0]}}


def test_write_prepared_writes_label_balance_when_asked(tmp_path: Path) -> None:
    files = skewed_boolq_files(tmp_path)
    outputs = {split: str(tmp_path / f"{split}.parquet") for split in ("train_gt", "train_w2s", "test")}
    preparation.write_prepared("boolq", 20, 10, 0, files, outputs)
    assert not (tmp_path / "label_balance.json").exists()

    outputs["label_balance"] = str(tmp_path / "label_balance.json")
    preparation.write_prepared("boolq", 20, 10, 0, files, outputs, balance=True)
    written = json.loads((tmp_path / "label_balance.json").read_text())
    assert written == {split: {"n": 10, "class_fractions": [0.5, 0.5], "positive_fraction": 0.5}
                       for split in ("train_gt", "train_w2s", "test")}
    assert pd.read_parquet(outputs["test"])["label"].tolist().count(1) == 5


# --------------------------------------------------------------------------- vader_movies

VADER = [  # id, score, text; the file has no header and no quoting
    (1, 2.266, "A \"so-called\" thriller that ''thrills'' anyway"),
    (2, -1.7, "the plot is a mess"),
    (3, 0.3, "neutral snippet three"),
    (4, 1.1, "warm and funny"),
    (5, -0.49, "neutral snippet five"),
    (6, -2.5, "dreadful, dreary, dull"),
    (7, 0.5, "mildly pleasant"),
    (8, -0.5, "mildly tiresome"),
    (9, 0.0, "neutral snippet nine"),
    (10, 3.1, "a masterpiece"),
    (11, -0.8, "it drags"),
    (12, 0.49, "neutral snippet twelve"),
    (13, 1.9, "a joy"),
    (14, -3.0, "unwatchable"),
]
VADER_USABLE = {i: (text, int(score > 0)) for i, score, text in VADER if abs(score) >= 0.5}


def write_vader(tmp_path: Path) -> str:
    path = tmp_path / "movieReviewSnippets_GroundTruth.txt"
    path.write_text("".join(f"{i}\t{score}\t{text}\n" for i, score, text in VADER))
    return str(path)


def test_vader_movies_drops_neutral_rows_and_labels_by_sign(tmp_path: Path) -> None:
    path = write_vader(tmp_path)
    assert len(VADER_USABLE) == 10
    out = prepare("vader_movies", 6, 4, seed=0, data_files={"train": path})
    frame = all_rows(out)
    assert len(frame) == 10 and frame["id"].is_unique
    # Rows come from the file's row order: the row at index k has id k + 1 in the fixture.
    produced = {int(r.id.split(":")[1]) + 1: (r.text, r.label) for r in frame.itertuples()}
    assert produced == VADER_USABLE
    assert produced[1] == ("A \"so-called\" thriller that ''thrills'' anyway", 1)
    assert produced[7] == ("mildly pleasant", 1) and produced[8] == ("mildly tiresome", 0)
    assert not any("neutral" in t for t in frame["text"])

    test_ids = set(out["test"]["id"])
    assert len(test_ids) == 4
    assert not test_ids & (set(out["train_gt"]["id"]) | set(out["train_w2s"]["id"]))

    again = prepare("vader_movies", 6, 4, seed=0, data_files={"train": path})
    for split in out:
        pd.testing.assert_frame_equal(out[split], again[split])

    with pytest.raises(DatasetError, match="'vader_movies' has only 10 usable rows"):
        prepare("vader_movies", 6, 5, seed=0, data_files={"train": path})


def test_vader_movies_needs_a_local_file() -> None:
    with pytest.raises(DatasetError, match="data_files.train"):
        prepare("vader_movies", 6, 4, seed=0)


# --------------------------------------------------------------------------- errors


@pytest.mark.parametrize("name", HUB_DATASETS + ["vader_movies"])
def test_missing_local_file_says_how_to_fix_it(name: str, tmp_path: Path) -> None:
    missing = str(tmp_path / "nope" / "train.jsonl")
    files = {"train": missing, "test": missing}
    with pytest.raises(DatasetError) as info:
        prepare(name, 10, 4, seed=0, data_files=files)
    message = str(info.value)
    assert f"'{name}'" in message
    assert missing in message
    assert "data_files" in message or "HF_HUB_OFFLINE" in message


def test_data_files_without_a_test_file(tmp_path: Path) -> None:
    files, _ = files_for("boolq", tmp_path)
    with pytest.raises(DatasetError) as info:
        prepare("boolq", 10, 4, seed=0, data_files={"train": files["train"]})
    assert str(info.value) == ("dataset 'boolq' reads its test rows from data_files.test, which is not set; add "
                               "data_files.test (a file of the hub's validation split)")


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("hello\n")
    with pytest.raises(DatasetError, match=r"\.jsonl, \.json, \.parquet or \.csv"):
        prepare("sst2", 10, 4, seed=0, data_files={"train": str(path), "test": str(path)})


def test_single_class_split_is_an_error(tmp_path: Path) -> None:
    rows = [{"label": 1, "title": f"t{i}", "content": f"c{i}"} for i in range(12)]
    files = {"train": write_jsonl(rows, tmp_path / "train.jsonl"),
             "test": write_jsonl(amazon_rows("test", 6), tmp_path / "test.jsonl")}
    with pytest.raises(DatasetError, match=r"^the train_gt split of 'amazon_polarity' has a single class: all 5 "
                       r"rows are labelled 1; raise n_train or n_test, set balance: true, or check the data's labels$"):
        prepare("amazon_polarity", 10, 4, seed=0, data_files=files)


@pytest.mark.parametrize("name, label", [("amazon_polarity", 2), ("amazon_polarity", -1), ("sst2", 7),
                                         ("cola", 3)])
def test_a_label_out_of_range_is_an_error_naming_the_row(name: str, label: int, tmp_path: Path) -> None:
    files, rows = files_for(name, tmp_path)
    rows["train"][3]["label"] = label
    write_jsonl(rows["train"], Path(files["train"]))
    with pytest.raises(DatasetError, match=rf"^row 3 of the train split of '{name}' has label {label}, which is "
                       "neither 0 nor 1; fix the label column of the data$"):
        prepare(name, N_TRAIN_ROWS, 4, seed=0, data_files=files)


def test_a_file_missing_a_column_is_an_error_naming_the_column(tmp_path: Path) -> None:
    """Before, the first row converted took the blame: `row 7 of the test split of 'boolq' does not fit the hub
    schema of google/boolq (KeyError: 'passage'); fix that row or the file's columns`."""
    files, rows = files_for("boolq", tmp_path)
    write_jsonl([{k: v for k, v in row.items() if k != "passage"} for row in rows["test"]], Path(files["test"]))
    with pytest.raises(DatasetError) as info:
        prepare("boolq", 10, 4, seed=0, data_files=files)
    assert str(info.value) == (f"dataset 'boolq': the test file {files['test']} has no column 'passage', which the hub "
                               "schema of google/boolq has; its columns are: question, answer. Point data_files.test "
                               "at a file in that schema (docs/datasets.md, \"Local files\")")


@pytest.mark.parametrize("file_name, content", [("empty.jsonl", ""), ("empty.json", "[]"), ("empty.csv", "idx,label\n")])
def test_an_empty_split_is_an_error(file_name: str, content: str, tmp_path: Path) -> None:
    files, _ = files_for("sst2", tmp_path)
    empty = tmp_path / file_name
    empty.write_text(content)
    files["test"] = str(empty)
    with pytest.raises(DatasetError, match=rf"^the test split of dataset 'sst2' from {re.escape(str(empty))} has no "
                       r"rows; point data_files.test at a file with rows in the dataset's hub schema$"):
        prepare("sst2", 10, 4, seed=0, data_files=files)


def test_a_split_without_a_usable_row_is_an_error(tmp_path: Path) -> None:
    files, rows = files_for("sst2", tmp_path)
    write_jsonl([{**row, "label": -1} for row in rows["test"]], Path(files["test"]))
    with pytest.raises(DatasetError, match=rf"^none of the {N_TEST_ROWS} rows of the test split of 'sst2' is usable "
                       r"\(all are unlabelled or left out of the binary task\); point data_files at labelled rows$"):
        prepare("sst2", 10, 4, seed=0, data_files=files)


def test_registry() -> None:
    assert set(catalogue.DATASETS) == set(HUB_DATASETS) | {"vader_movies", "chess_puzzles"}
    assert catalogue.DATASETS["sst2"].splits["test"] == "validation"
    assert catalogue.DATASETS["vader_movies"].splits["test"] is None
    assert catalogue.DATASETS["anli_r2"].splits == {"train": "train_r2", "test": "test_r2"}
    assert catalogue.DATASETS["mc_taco"].splits == {"train": "test", "test": "validation"}  # it has no train split
    # quail's main branch holds a loading script, as cosmos_qa's does: it is read from the parquet export.
    quail = catalogue.DATASETS["quail"]
    assert (quail.branch, quail.hub_config, quail.revision) == ("refs/convert/parquet", "default", None)
    for name in ("cola", "hellaswag", "piqa", "multirc", "wic", "quail", "social_iqa", "ethics_justice"):
        assert catalogue.DATASETS[name].splits["test"] == "validation", name
    assert len({spec.hub_id for name, spec in catalogue.DATASETS.items() if name.startswith("ethics_")}) == 1


def test_w2s_slices_are_disjoint_contiguous_and_cover_train_w2s() -> None:
    from w2s.data.splits import w2s_slice

    rows = pd.DataFrame({"id": [f"train:{i}" for i in range(10)]})
    slices = [list(w2s_slice(rows, k, 3)["id"]) for k in (1, 2, 3)]
    assert slices == [[f"train:{i}" for i in range(0, 3)], [f"train:{i}" for i in range(3, 6)],
                      [f"train:{i}" for i in range(6, 10)]]
    with pytest.raises(ValueError, match="slice 4 does not exist among 3"):
        w2s_slice(rows, 4, 3)


def test_an_empty_hub_split_is_an_error(monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets

    monkeypatch.setattr(datasets, "load_dataset", lambda *args, **kwargs: [])
    with pytest.raises(DatasetError, match=r"^the train split of dataset 'boolq' from the hub repository "
                       r"google/boolq@35b264d03638db9f4ce671b711558bf7ff0f80d5 has no "
                       r"rows; point data_files.train at a file with rows in the dataset's hub schema$"):
        prepare("boolq", 10, 4, seed=0)


# --------------------------------------------------------------------------- your own labelled files


def own_rows(n: int) -> list[dict]:
    """A standard dataset's rows: its own ids, a text and a label written by name."""
    return [{"id": f"r{i:03d}", "text": f"review number {i}", "sentiment": "pos" if i % 3 else "neg"} for i in range(n)]


@pytest.mark.parametrize("suffix", [".csv", ".jsonl", ".parquet"])
def test_label_names_map_labels_to_classes_and_the_files_ids_are_kept(suffix: str, tmp_path: Path) -> None:
    rows = own_rows(30)
    path = tmp_path / f"reviews{suffix}"
    {".csv": lambda: pd.DataFrame(rows).to_csv(path, index=False), ".parquet": lambda: pd.DataFrame(rows).to_parquet(path),
     ".jsonl": lambda: write_jsonl(rows, path)}[suffix]()
    entry = {"data_files": {"train": str(path)}, "splits": {"train": "train", "test": None}, "n_classes": 2,
             "label_column": "sentiment", "label_names": ["neg", "pos"]}
    splits = prepare("reviews", 16, 8, 0, entry["data_files"], entry=entry)
    by_id = {row["id"]: row for row in rows}
    for frame in splits.values():
        assert list(frame.columns) == ["id", "text", "label"]
        assert frame["text"].tolist() == [by_id[i]["text"] for i in frame["id"]]
        assert frame["label"].tolist() == [["neg", "pos"].index(by_id[i]["sentiment"]) for i in frame["id"]]
    assert sorted(pd.concat(splits.values())["id"]) == sorted(pd.concat(splits.values())["id"].unique())
    # The same rows as without ids: a row's draw depends on its position, never on its id.
    unnamed = write_jsonl([{k: v for k, v in row.items() if k != "id"} for row in rows], tmp_path / "unnamed.jsonl")
    by_position = prepare("reviews", 16, 8, 0, {"train": unnamed}, entry={**entry, "data_files": {"train": unnamed}})
    assert [f["text"].tolist() for f in by_position.values()] == [f["text"].tolist() for f in splits.values()]
    assert by_position["test"]["id"].tolist() == [f"train:{int(i[1:])}" for i in splits["test"]["id"]]


def test_ids_that_repeat_are_replaced_by_positions(tmp_path: Path, caplog: pytest.LogCaptureFixture) -> None:
    rows = own_rows(30)
    rows[7]["id"] = rows[3]["id"]
    entry = {"data_files": {"train": write_jsonl(rows, tmp_path / "r.jsonl")}, "splits": {"train": "train"},
             "n_classes": 2, "label_column": "sentiment", "label_names": ["neg", "pos"]}
    with caplog.at_level("WARNING", logger="w2s"):
        splits = prepare("reviews", 16, 8, 0, entry["data_files"], entry=entry)
    ids = pd.concat(splits.values())["id"]
    assert ids.str.fullmatch(r"train:\d+").all()
    assert [rows[int(i.split(":")[1])]["text"] for i in splits["test"]["id"]] == splits["test"]["text"].tolist()
    assert f"the train file {tmp_path / 'r.jsonl'}: its id column is empty in a row or repeats a value" in caplog.text


def test_integer_labels_need_no_label_names_and_hidden_ones_are_left_out(tmp_path: Path) -> None:
    rows = [{"text": f"t{i}", "label": [0, 1, 2, -1][i % 4]} for i in range(40)]
    entry = {"data_files": {"train": write_jsonl(rows, tmp_path / "t.jsonl")}, "splits": {"train": "train"},
             "n_classes": 3}
    splits = prepare("topics", 20, 10, 0, entry["data_files"], entry=entry)
    frame = pd.concat(splits.values())
    assert len(frame) == 30 and set(frame["label"]) == {0, 1, 2}
    assert all(rows[int(i.split(":")[1])]["label"] == label for i, label in zip(frame["id"], frame["label"]))


def test_an_out_of_distribution_test_split_is_read_and_converted_as_the_dataset_is(tmp_path: Path) -> None:
    """vader_movies' ood_test from another snippets file in its format (the demo's NYT editorials): neutral rows
    dropped, labels by sign, n_test rows in a seeded order of their own, ids named ood_test:<row>; the written
    split, its label-free view and the record of the file it came from."""
    nyt = tmp_path / "nytEditorialSnippets_GroundTruth.txt"
    nyt.write_text("".join(f"{i}_1\t{score}\t{text}\n" for i, score, text in VADER))
    ood = {"data_files": str(nyt), "n_test": 6}
    frame = preparation.prepare_ood_test("vader_movies", 6, 0, ood, str(nyt))
    assert len(frame) == 6 and frame["id"].str.fullmatch(r"ood_test:\d+").all()
    assert {(r.text, r.label) for r in frame.itertuples()} <= set(VADER_USABLE.values())
    pd.testing.assert_frame_equal(frame, preparation.prepare_ood_test("vader_movies", 6, 0, ood, str(nyt)))
    assert list(preparation.prepare_ood_test("vader_movies", 6, 1, ood, str(nyt))["id"]) != list(frame["id"])
    outputs = {"ood_test": str(tmp_path / "ood_test.parquet"), "ood_test_unlabelled": str(tmp_path / "unlabelled.parquet"),
               "source": str(tmp_path / "source.json")}
    preparation.write_ood_test("vader_movies", 6, 0, ood, str(nyt), outputs)
    pd.testing.assert_frame_equal(pd.read_parquet(outputs["ood_test"]), frame)
    assert list(pd.read_parquet(outputs["ood_test_unlabelled"]).columns) == ["id", "text"]
    record = json.loads(Path(outputs["source"]).read_text())
    assert record["data_files"]["ood_test"]["sha256"] == hashlib.sha256(nyt.read_bytes()).hexdigest()
    assert record["ood_test"] == ood and record["label_balance"]["n"] == 6
    with pytest.raises(DatasetError, match="'vader_movies' has only 10 usable rows"):
        preparation.prepare_ood_test("vader_movies", 11, 0, ood, str(nyt))
