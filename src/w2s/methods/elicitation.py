"""Zero- and few-shot elicitation: the strong causal LM, prompted, labels test and train_w2s with no ground truth at
all; after the baselines of the 2026 weak-to-strong sandbox (safety-research/automated-w2s-research, its ideas
ue_zeroshot and ue_fewshot, whose demonstrations carry the model's own earlier labels, in rounds with consistency
fixing), in one round on the weak labels. Entry "w2s.methods.elicitation:elicit", params {shots: k >= 0, default 0}.

With shots 0 each row is read as format_example(text, question), and the label words' next-token logits give its
class probabilities, exactly as the prompt_baseline rule's zero-shot prompt (w2s.models.prompting). With shots k the
prompt first shows k weak-labelled train rows, each followed by its WEAK hard label's word (unsupervised few-shot
elicitation): as balanced between the weak classes as k allows and in an order seeded by the run's seed, chosen as
pick_demonstrations chooses ground-truth rows. Every row of both splits reads the same k demonstrations (the sandbox
draws them anew for each row), so the k train_w2s rows shown are predicted with themselves and their weak label in
their prompt; a choice for one fixed prompt, as prompt_baseline's, that touches k rows of train_w2s and none of test.
"""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s.methods.interface import MethodError, MethodInputs
from w2s.models.devices import device, supported_dtype
from w2s.models.prompting import build_prompt, label_token_ids, pick_demonstrations, prompt_probabilities
from w2s.models.text import load_causal_lm, load_failure, load_tokenizer, model_parallel_map, place, resolve_source

log = logging.getLogger("w2s")

NOT_CAUSAL = ("elicitation prompts a causal language model; restrict the method to causal strong models with the "
              "method's `models:` list in the config")


def elicit(inputs: MethodInputs) -> dict[str, np.ndarray]:
    """The strong model's prompted class probabilities on test and train_w2s, rows in inputs.predict's order."""
    shots = int(inputs.params.get("shots", 0))
    settings = inputs.prompt
    if inputs.task.n_classes != len(settings.label_words):
        raise MethodError(f"elicitation asks a question with {len(settings.label_words)} label words, one per class, "
                          f"but the task has {inputs.task.n_classes} classes")
    demonstrations = weak_demonstrations(inputs, shots)
    on = device()
    model = causal_lm(inputs.strong.entry, supported_dtype(on, settings.dtype), on)
    tokenizer = load_tokenizer(inputs.strong.entry)
    words = list(settings.label_words)
    label_ids = label_token_ids(tokenizer, words)
    probs = {split: prompt_probabilities(model, tokenizer,
                                         [build_prompt(text, settings.question, demonstrations, words)
                                          for text in inputs.predict[split]["text"]],
                                         label_ids, settings.eval_batch_size, settings.max_length, on, settings.dtype)
             for split in inputs.predict}
    on_train = probs["train_w2s"][inputs.train["position"].to_numpy()].argmax(axis=1)
    log.info("%d-shot elicitation: %d prompts, mean P(class 1) %.3f on test and %.3f on train_w2s, agreement with the "
             "weak labels %.4f", shots, sum(len(p) for p in probs.values()), probs["test"][:, 1].mean(),
             probs["train_w2s"][:, 1].mean(), (on_train == inputs.weak_labels["hard_label"].to_numpy()).mean())
    return probs


def weak_demonstrations(inputs: MethodInputs, shots: int) -> list[tuple[str, int]]:
    """`shots` weak-labelled train rows (text, weak hard label), balanced between the weak classes (an odd one of
    class 1) and in seeded random order: pick_demonstrations, given the weak hard labels where it reads true ones."""
    if shots < 0:
        raise MethodError(f"elicitation: shots must be 0 or more, not {shots}")
    rows = pd.DataFrame({"text": inputs.train["text"].to_numpy(), "label": inputs.weak_labels["hard_label"].to_numpy()})
    counts = np.bincount(rows["label"], minlength=2)
    wanted = (shots // 2, (shots + 1) // 2)
    if counts[0] < wanted[0] or counts[1] < wanted[1]:
        raise MethodError(f"elicitation with shots {shots} shows {wanted[0]} and {wanted[1]} weak-labelled rows of "
                          f"classes 0 and 1, but the weak labels have {counts[0]} and {counts[1]}; lower shots")
    return pick_demonstrations(rows, shots, inputs.seed)


def causal_lm(entry: dict[str, Any], dtype: str, on: torch.device) -> nn.Module:
    """The strong model with its language-modelling head, in eval mode on `on`. An encoder is refused from its config,
    before its weights load: a model type transformers has no causal LM class for (MPNet), or one it also masks
    language with (BERT, RoBERTa: their causal LM classes are their encoders used as decoders)."""
    from transformers import AutoConfig
    from transformers.models.auto.modeling_auto import (MODEL_FOR_CAUSAL_LM_MAPPING_NAMES,
                                                        MODEL_FOR_MASKED_LM_MAPPING_NAMES)

    source = resolve_source(entry)
    try:
        config = AutoConfig.from_pretrained(source.location, **source.kwargs)
    except Exception as err:  # transformers raises OSError, ValueError, HTTP errors, ...
        raise load_failure(source, err, "AutoConfig") from err
    causal = (config.model_type in MODEL_FOR_CAUSAL_LM_MAPPING_NAMES
              or "AutoModelForCausalLM" in (getattr(config, "auto_map", None) or {}))
    if not causal or config.model_type in MODEL_FOR_MASKED_LM_MAPPING_NAMES:
        raise MethodError(NOT_CAUSAL)
    model = place(load_causal_lm(entry, dtype, model_parallel_map(torch.cuda.device_count())), on).eval()
    if model.get_output_embeddings() is None:
        raise MethodError(NOT_CAUSAL)
    return model
