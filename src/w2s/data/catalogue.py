"""The catalogue: every named dataset's spec (DATASETS) with the converter that turns its hub rows into
(input, label) rows beside it. Registering a dataset is one DATASETS entry and, above it, its converter.

A converter takes a hub row and the row's own random generator and returns (text, label) with label in {0, 1},
or None for a row the task leaves out; a generative dataset's returns (prompt, target, more columns).
"""

from __future__ import annotations

import random
from typing import Any

from w2s import tasks
from w2s.data.spec import HIDDEN_LABEL, PARQUET_EXPORT_BRANCH, DatasetError, DatasetSpec
from w2s.data.standard import standard_spec


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

# The catalogue datasets whose rows ship in a package on PyPI, not a hub repository (w2s.data.packaged).
PACKAGED_DATASETS = {"vader_movies"}


def dataset_spec(name: str, entry: dict[str, Any] | None = None) -> DatasetSpec:
    """The catalogue's spec of `name`, or the spec a standard dataset's config entry describes."""
    if name in DATASETS:
        return DATASETS[name]
    if entry is None:
        raise DatasetError(f"dataset '{name}' is not in the catalogue ({', '.join(sorted(DATASETS))}) and no "
                           "config entry describes it")
    return standard_spec(entry)
