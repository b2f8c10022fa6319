"""Zero- and few-shot prompting baselines (Burns et al. 2023, section 5.2.1): a causal language
model reads k labelled demonstrations and a test text, and its logits for the two label words
give P(label = 1). No weights are trained."""

from __future__ import annotations

import logging
import random
from dataclasses import dataclass, fields
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s import io
from w2s.data import labels as class_probs
from w2s.evaluation import metrics
from w2s.models.devices import autocast, device, supported_dtype
from w2s.models.source import ModelLoadError
from w2s.models.text import last_token_index, load_causal_lm, load_tokenizer, model_parallel_map, place
from w2s.params import check_keys

log = logging.getLogger("w2s")


@dataclass(frozen=True)
class PromptSettings:
    """What prompt_baseline reads: the question and label words (the prompting block over the dataset's own),
    the prompt's token limit, the batch size and the compute dtype (the model's training.dtype)."""

    question: str
    label_words: tuple[str, str]
    max_length: int
    eval_batch_size: int
    dtype: str

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "PromptSettings":
        check_keys("prompting params", params, (field.name for field in fields(cls)))
        return cls(**{**params, "label_words": tuple(params["label_words"])})


def format_example(text: str, question: str) -> str:
    return f"{text}\nQuestion: {question}\nAnswer:"


def build_prompt(text: str, question: str, demonstrations: list[tuple[str, int]], label_words: list[str]) -> str:
    """Demonstrations, each followed by its label word, then the text to label."""
    shown = [format_example(t, question) + label_words[label] for t, label in demonstrations]
    return "\n\n".join(shown + [format_example(text, question)])


def pick_demonstrations(train_gt: pd.DataFrame, shots: int, seed: int) -> list[tuple[str, int]]:
    """`shots` ground-truth examples, as balanced between the labels as `shots` allows and in
    random order, so the prompt does not teach a class prior."""
    rng = random.Random(f"demonstrations:{seed}")
    by_label = {label: train_gt.index[train_gt["label"] == label].tolist() for label in (0, 1)}
    wanted = {1: (shots + 1) // 2, 0: shots // 2}
    for label, count in wanted.items():
        if len(by_label[label]) < count:
            raise ValueError(f"{shots}-shot prompting needs {count} train_gt rows of label {label}, "
                             f"but there are {len(by_label[label])}; lower the shots or raise n_train")
    chosen = [i for label, count in wanted.items() for i in rng.sample(by_label[label], count)]
    rng.shuffle(chosen)
    return [(train_gt.at[i, "text"], int(train_gt.at[i, "label"])) for i in chosen]


def label_token_ids(tokenizer: Any, label_words: list[str]) -> list[int]:
    """The first token of each label word; the two must differ to be told apart."""
    ids = [tokenizer(word, add_special_tokens=False)["input_ids"] for word in label_words]
    if not all(ids) or ids[0][0] == ids[1][0]:
        raise ValueError(f"the label words {label_words} must start with different tokens; choose other words")
    return [word_ids[0] for word_ids in ids]


def label_logits(model: nn.Module, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                 label_ids: list[int]) -> torch.Tensor:
    """(batch, 2) next-token logits of the label words after each row's last real token.

    Only the last position goes through the output layer: the full (batch, seq, vocab) logits of
    a 150k-word vocabulary would not fit. Rows must be right-padded, which causal attention
    makes harmless for every earlier position.
    """
    hidden = model.base_model(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
    last = hidden[torch.arange(hidden.shape[0], device=hidden.device), last_token_index(attention_mask)]
    return model.get_output_embeddings()(last)[:, label_ids]


@torch.inference_mode()
def prompt_probabilities(model: nn.Module, tokenizer: Any, prompts: list[str], label_ids: list[int],
                         batch_size: int, max_length: int, on: torch.device, dtype: str) -> np.ndarray:
    """(P(label word 0), P(label word 1)) of every prompt, the two words' logits softmaxed against each other;
    longest prompts batched together."""
    tokenizer.padding_side = "right"
    # Over-long prompts lose their earliest demonstrations, never the text being labelled.
    tokenizer.truncation_side = "left"
    order = np.argsort([len(p) for p in prompts], kind="stable")
    probs = np.zeros((len(prompts), len(label_ids)))
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        encoded = tokenizer([prompts[i] for i in rows], padding=True, truncation=True, max_length=max_length,
                            return_tensors="pt")
        with autocast(on, dtype):
            logits = label_logits(model, encoded["input_ids"].to(on), encoded["attention_mask"].to(on), label_ids)
        probs[rows] = torch.softmax(logits.float(), dim=-1).cpu().numpy()
    return probs


def prompt_baseline(model_entry: dict[str, Any], settings: PromptSettings, shots: int, seed: int,
                    split_paths: dict[str, str], out_path: str) -> None:
    """Predictions of a prompted model on test, in the same format as a trained model's."""
    on = device()
    train_gt, test = (pd.read_parquet(split_paths[s]) for s in ("train_gt", "test"))
    demonstrations = pick_demonstrations(train_gt, shots, seed)
    prompts = [build_prompt(t, settings.question, demonstrations, list(settings.label_words)) for t in test["text"]]
    tokenizer = load_tokenizer(model_entry)
    weights_dtype = supported_dtype(on, settings.dtype)
    model = place(load_causal_lm(model_entry, weights_dtype, model_parallel_map(torch.cuda.device_count())), on).eval()
    if model.get_output_embeddings() is None:
        raise ModelLoadError("the model has no output embeddings to score label words with; prompt a causal LM")
    label_ids = label_token_ids(tokenizer, list(settings.label_words))
    probs = prompt_probabilities(model, tokenizer, prompts, label_ids, settings.eval_batch_size,
                                 settings.max_length, on, settings.dtype)
    labels = test["label"].to_numpy()
    log.info("%d-shot prompting: test accuracy %.4f, mean P(1) %.3f", shots, metrics.accuracy(probs, labels),
             float(probs[:, 1].mean()))
    io.write_parquet(pd.DataFrame({"split": "test", "id": test["id"], "probs": class_probs.as_column(probs)}),
                     out_path)
