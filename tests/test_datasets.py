"""Every registered dataset, read from small local files in its real hub schema through the same
`datasets.load_dataset` path the pipeline uses, and converted to (id, text, label) rows."""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd
import pytest

from w2s import data
from w2s.data import DatasetError, prepare

HUB_DATASETS = ["amazon_polarity", "sciq", "anthropic_hh", "cosmos_qa", "boolq", "sst2"]


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Keep the Arrow cache of every test in its own folder, so no test reads another's files,
    and never touch the network: `load_dataset("json", ...)` otherwise sends a download-count
    request to the hub, which stalls for seconds on an offline machine."""
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)


def write_jsonl(rows: list[dict], path: Path) -> str:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return str(path)


# --------------------------------------------------------------------------- fixture rows
# Texts carry their split and index so a produced row can be traced back to its source row.


def amazon_rows(split: str, n: int) -> list[dict]:
    return [{"label": i % 2, "title": f"{split} title {i}", "content": f"{split} review body {i}."}
            for i in range(n)]


def sciq_rows(split: str, n: int) -> list[dict]:
    return [{"question": f"{split} question {i}?", "distractor1": f"{split} wrong {i}a",
             "distractor2": f"{split} wrong {i}b", "distractor3": f"{split} wrong {i}c",
             "correct_answer": f"{split} right {i}", "support": f"{split} support {i}"}
            for i in range(n)]


def hh_rows(split: str, n: int) -> list[dict]:
    return [{"chosen": f"\n\nHuman: {split} q{i}\n\nAssistant: helpful {i}",
             "rejected": f"\n\nHuman: {split} q{i}\n\nAssistant: harmful {i}"} for i in range(n)]


NONE_OF_THE_ABOVE = "None of the above choices ."


def cosmos_rows(split: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        label = i % 4
        answers = [f"{split} answer {i}.{k}" for k in range(4)]
        if i % 3 == 0:  # every third row's right answer is "None of the above"
            answers[label] = NONE_OF_THE_ABOVE
        rows.append({"id": f"{split}-{i}", "context": f"{split} context {i}", "question": f"{split} why {i}?",
                     **{f"answer{k}": a for k, a in enumerate(answers)}, "label": label})
    return rows


def boolq_rows(split: str, n: int) -> list[dict]:
    return [{"question": f"{split} is it {i}", "answer": bool(i % 2), "passage": f"{split} passage {i}"}
            for i in range(n)]


def sst2_rows(split: str, n: int, unlabeled: set[int] = frozenset()) -> list[dict]:
    return [{"idx": i, "sentence": f"  {split} sentence {i} ", "label": -1 if i in unlabeled else i % 2}
            for i in range(n)]


ROWS = {
    "amazon_polarity": amazon_rows,
    "sciq": sciq_rows,
    "anthropic_hh": hh_rows,
    "cosmos_qa": cosmos_rows,
    "boolq": boolq_rows,
    "sst2": sst2_rows,
}
N_TRAIN_ROWS, N_TEST_ROWS = 40, 20


def files_for(name: str, tmp_path: Path) -> tuple[dict[str, str], dict[str, list[dict]]]:
    rows = {"train": ROWS[name]("train", N_TRAIN_ROWS), "test": ROWS[name]("test", N_TEST_ROWS)}
    files = {split: write_jsonl(r, tmp_path / f"{name}_{split}.jsonl") for split, r in rows.items()}
    return files, rows


def source_row(row_id: str, rows: dict[str, list[dict]]) -> dict:
    split, index = row_id.split(":")
    return rows[split][int(index)]


def all_rows(out: dict[str, pd.DataFrame]) -> pd.DataFrame:
    return pd.concat([out["train_gt"], out["train_w2s"], out["test"]], ignore_index=True)


# --------------------------------------------------------------------------- the exact conversions


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


EXPECTED = {
    "amazon_polarity": expected_amazon,
    "sciq": expected_sciq,
    "anthropic_hh": expected_hh,
    "cosmos_qa": expected_cosmos,
    "boolq": expected_boolq,
    "sst2": expected_sst2,
}


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
            assert (row.text, row.label) in EXPECTED[name](source_row(row.id, rows)), (split, row)


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
    files, _ = files_for(name, tmp_path)
    with pytest.raises(DatasetError, match=f"'{name}'.*only {N_TRAIN_ROWS} usable rows in its train split"):
        prepare(name, N_TRAIN_ROWS + 1, 10, seed=0, data_files=files)
    with pytest.raises(DatasetError, match=f"'{name}'.*only {N_TEST_ROWS} usable rows in its test split"):
        prepare(name, 20, N_TEST_ROWS + 1, seed=0, data_files=files)


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
    """A few rows spelled out literally, in case the helpers above share a mistake with the code."""
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


def test_random_choice_datasets_show_both_kinds_of_answer(tmp_path: Path) -> None:
    """sciq, hh and cosmos pick a true or false answer per row; both must occur, roughly evenly."""
    for name in ("sciq", "anthropic_hh", "cosmos_qa"):
        files, _ = files_for(name, tmp_path)
        frame = all_rows(prepare(name, N_TRAIN_ROWS, N_TEST_ROWS, seed=0, data_files=files))
        positives = int(frame["label"].sum())
        assert 0.2 * len(frame) < positives < 0.8 * len(frame), (name, positives)


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
    with pytest.raises(DatasetError, match="'boolq' sets data_files but has no 'test' file"):
        prepare("boolq", 10, 4, seed=0, data_files={"train": files["train"]})


def test_unsupported_file_type(tmp_path: Path) -> None:
    path = tmp_path / "train.txt"
    path.write_text("hello\n")
    with pytest.raises(DatasetError, match=r"\.jsonl, \.json, \.parquet or \.csv"):
        prepare("sst2", 10, 4, seed=0, data_files={"train": str(path), "test": str(path)})


def test_single_class_split_is_an_error(tmp_path: Path) -> None:
    rows = [{"label": 1, "title": f"t{i}", "content": f"c{i}"} for i in range(12)]
    files = {"train": write_jsonl(rows, tmp_path / "train.jsonl"),
             "test": write_jsonl(amazon_rows("test", 6), tmp_path / "test.jsonl")}
    with pytest.raises(DatasetError, match="single class"):
        prepare("amazon_polarity", 10, 4, seed=0, data_files=files)


def test_registry() -> None:
    assert set(data.DATASETS) == set(HUB_DATASETS) | {"vader_movies"}
    assert data.DATASETS["sst2"].splits["test"] == "validation"
    assert data.DATASETS["vader_movies"].splits["test"] is None


def test_w2s_slices_are_disjoint_contiguous_and_cover_train_w2s() -> None:
    from w2s.data import w2s_slice

    rows = pd.DataFrame({"id": [f"train:{i}" for i in range(10)]})
    slices = [list(w2s_slice(rows, k, 3)["id"]) for k in (1, 2, 3)]
    assert slices == [[f"train:{i}" for i in range(0, 3)], [f"train:{i}" for i in range(3, 6)],
                      [f"train:{i}" for i in range(6, 10)]]
    with pytest.raises(ValueError, match="slice 4 does not exist among 3"):
        w2s_slice(rows, 4, 3)
