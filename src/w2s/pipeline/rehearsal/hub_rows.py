"""Rows in each catalogue dataset's hub schema (its columns, types and label conventions), as the public
repositories hold them: the row builders behind the hub-layout fixtures of the tests and of the rehearsal
(w2s.pipeline.rehearsal.hub_layouts).

Texts carry their split and index, so a prepared row can be traced back to its source row. Where a dataset has
rows its conversion must drop (hidden test labels, a neutral class, pairs that are no comparison), every fourth
row is one (`unusable`).
"""

from __future__ import annotations

from typing import Callable

RowBuilder = Callable[[str, int], list[dict]]


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


def unusable(i: int) -> bool:
    return i % 4 == 3


def hh_pairwise_rows(split: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        prompt = (f"\n\nHuman: {split} q{i}\n\nAssistant: {split} first answer {i}"
                  f"\n\nHuman: {split} follow-up {i}")
        chosen = f"{prompt}\n\nAssistant: {split} helpful {i}"
        rejected = f"{prompt}\n\nAssistant: {split} harmful {i}"
        if unusable(i):  # the same transcript twice, or two different conversations
            other = f"\n\nHuman: {split} other q{i}\n\nAssistant: {split} harmful {i}"
            rejected = chosen if i % 8 == 3 else other
        rows.append({"chosen": chosen, "rejected": rejected})
    return rows


def dream_rows(split: str, n: int) -> list[dict]:
    rows = []
    for i in range(n):
        choice = [f"{split} option {i}.{k}" for k in range(3)]
        rows.append({"id": i, "dialogue_id": f"{i}-{split}",
                     "dialogue": [f"M: {split} line {i}a", f"W: {split} line {i}b"],
                     "question": f"{split} what {i}?", "choice": choice, "answer": choice[i % 3]})
    return rows


def ethics_justice_rows(split: str, n: int) -> list[dict]:
    return [{"label": i % 2, "scenario": f"{split} I deserve {i} because reasons."} for i in range(n)]


def ethics_deontology_rows(split: str, n: int) -> list[dict]:
    return [{"label": i % 2, "scenario": f"{split} Could you do task {i}?",
             "excuse": f"{split} No, because {i}."} for i in range(n)]


def ethics_virtue_rows(split: str, n: int) -> list[dict]:
    return [{"label": i % 2, "scenario": f"{split} She did thing {i}. [SEP] {split}trait{i}"} for i in range(n)]


def ethics_utilitarianism_rows(split: str, n: int) -> list[dict]:
    return [{"baseline": f"{split} I won prize {i}.", "less_pleasant": f"{split} I lost prize {i}."}
            for i in range(n)]


def anli_rows(split: str, n: int) -> list[dict]:
    # 0 entailment, 1 neutral (dropped), 2 contradiction
    return [{"uid": f"{split}-{i}", "premise": f"{split} premise {i}", "hypothesis": f"{split} hypothesis {i}",
             "label": 1 if unusable(i) else (0 if i % 2 else 2), "reason": ""} for i in range(n)]


def cola_rows(split: str, n: int) -> list[dict]:
    return [{"sentence": f" {split} sentence {i}. ", "label": -1 if unusable(i) else i % 2, "idx": i}
            for i in range(n)]


def hellaswag_rows(split: str, n: int) -> list[dict]:
    return [{"ind": i, "activity_label": f"{split} activity {i}", "ctx_a": f"{split} context {i}",
             "ctx_b": "then", "ctx": f"{split} context {i} then",
             "endings": [f"{split} ending {i}.{k}" for k in range(4)],
             "source_id": f"activitynet~v_{i}", "split": split, "split_type": "indomain",
             "label": "" if unusable(i) else str(i % 4)} for i in range(n)]


def mc_taco_rows(split: str, n: int) -> list[dict]:
    # label: class 0 "no", 1 "yes"; category: one of five temporal classes
    return [{"sentence": f"{split} sentence {i}.", "question": f"{split} how long {i}?",
             "answer": f"{i} minutes", "label": i % 2, "category": i % 5} for i in range(n)]


def lettered(texts: list[str]) -> dict:
    return {"text": texts, "label": [chr(ord("A") + k) for k in range(len(texts))]}


def openbookqa_rows(split: str, n: int) -> list[dict]:
    return [{"id": f"{split}-{i}", "question_stem": f"{split} which {i}?",
             "choices": lettered([f"{split} choice {i}.{k}" for k in range(4)]), "answerKey": "ABCD"[i % 4]}
            for i in range(n)]


def paws_rows(split: str, n: int) -> list[dict]:
    return [{"id": i + 1, "sentence1": f"{split} first {i}", "sentence2": f"{split} second {i}", "label": i % 2}
            for i in range(n)]


def quail_rows(split: str, n: int) -> list[dict]:
    return [{"id": f"f{i}_0", "context_id": f"f{i}", "question_id": "0", "domain": "fiction",
             "metadata": {"author": "A", "title": f"{split} story {i}", "url": "http://example.org"},
             "context": f"{split} story text {i}", "question": f"{split} why {i}?",
             "question_type": "Causality",
             "answers": [f"{split} answer {i}.{k}" for k in range(4)], "correct_answer_id": i % 4}
            for i in range(n)]


def piqa_rows(split: str, n: int) -> list[dict]:
    return [{"goal": f"{split} goal {i}", "sol1": f"{split} way {i}.1", "sol2": f"{split} way {i}.2",
             "label": -1 if unusable(i) else i % 2} for i in range(n)]


def quartz_rows(split: str, n: int) -> list[dict]:
    return [{"id": f"{split}-{i}", "question": f"{split} more or less {i}?",
             "choices": lettered([f"{split} more {i}", f"{split} less {i}"]), "answerKey": "AB"[i % 2],
             "para": f"{split} more heat, more {i}.", "para_id": f"QRSent-{i}",
             "para_anno": {"effect_prop": "e", "cause_dir_str": "more", "effect_dir_str": "more",
                           "cause_dir_sign": "MORE", "effect_dir_sign": "MORE", "cause_prop": "c"},
             "question_anno": {"more_effect_dir": "", "less_effect_dir": "", "less_cause_prop": "",
                               "more_effect_prop": "", "less_effect_prop": "", "less_cause_dir": ""}}
            for i in range(n)]


def social_iqa_rows(split: str, n: int) -> list[dict]:
    return [{"context": f"{split} Sam did {i}.", "question": f"{split} why did Sam do {i}?",
             **{f"answer{k}": f"{split} reason {i}{k}" for k in "ABC"}, "label": "123"[i % 3]} for i in range(n)]


def multirc_rows(split: str, n: int) -> list[dict]:
    return [{"paragraph": f"{split} paragraph {i // 2}", "question": f"{split} what {i // 2}?",
             "answer": f"{split} candidate {i}", "idx": {"paragraph": i // 4, "question": i // 2, "answer": i},
             "label": -1 if unusable(i) else i % 2} for i in range(n)]


def wic_rows(split: str, n: int) -> list[dict]:
    return [{"word": f"word{i}", "sentence1": f"{split} word{i} here", "sentence2": f"{split} there word{i}",
             "start1": 0, "start2": 0, "end1": 1, "end2": 1, "idx": i, "label": -1 if unusable(i) else i % 2}
            for i in range(n)]


def tweet_rows(split: str, n: int) -> list[dict]:
    # 0 negative, 1 neutral (dropped), 2 positive
    return [{"text": f" {split} tweet {i} ", "label": 1 if unusable(i) else (2 if i % 2 else 0)}
            for i in range(n)]


ROWS: dict[str, RowBuilder] = {
    "amazon_polarity": amazon_rows,
    "sciq": sciq_rows,
    "anthropic_hh": hh_rows,
    "cosmos_qa": cosmos_rows,
    "boolq": boolq_rows,
    "sst2": sst2_rows,
    "anthropic_hh_pairwise": hh_pairwise_rows,
    "dream": dream_rows,
    "ethics_justice": ethics_justice_rows,
    "ethics_deontology": ethics_deontology_rows,
    "ethics_virtue": ethics_virtue_rows,
    "ethics_utilitarianism": ethics_utilitarianism_rows,
    "anli_r2": anli_rows,
    "cola": cola_rows,
    "hellaswag": hellaswag_rows,
    "mc_taco": mc_taco_rows,
    "openbookqa": openbookqa_rows,
    "paws": paws_rows,
    "quail": quail_rows,
    "piqa": piqa_rows,
    "quartz": quartz_rows,
    "social_iqa": social_iqa_rows,
    "multirc": multirc_rows,
    "wic": wic_rows,
    "twitter_sentiment": tweet_rows,
}
