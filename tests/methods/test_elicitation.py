"""Zero- and few-shot elicitation (w2s.methods.elicitation): demonstrations that carry the weak labels' words and
never the truth, zero-shot probabilities bit-identical to the prompt_baseline rule's, both splits predicted on a tiny
causal LM, the log's agreement with the weak labels, and an encoder strong model refused."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from w2s.data import labels as class_probs
from w2s.methods import elicitation
from w2s.methods.elicitation import NOT_CAUSAL, elicit, weak_demonstrations
from w2s.methods.interface import MethodError, MethodInputs, StrongModel
from w2s.models.prompting import PromptSettings, format_example, prompt_baseline
from w2s.tasks import dataset_task

from job_settings import training_settings

# Words of the tiny tokenizer's vocabulary (helpers.save_tiny_tokenizer): "bad" and "good" are distinct tokens.
QUESTION = "the film was"
WORDS = ("bad", "good")
TEXTS = ["the film was good", "a fun movie", "the plot was superb", "a lovely story", "the actors were great",
         "a fine film", "the film was bad", "a dull movie", "the plot was awful", "a boring story",
         "the actors were poor", "a weak film"]
TRUTH = [1] * 6 + [0] * 6


def elicitation_inputs(model: Path, weak: list[int], shots: int, seed: int = 0, rows: list[int] | None = None,
                       test: list[str] | None = None) -> MethodInputs:
    """MethodInputs over train_w2s = TEXTS, of which `rows` (all by default, in that order) carry the weak hard
    labels `weak`, for the strong model saved at `model`."""
    rows = list(range(len(TEXTS))) if rows is None else rows
    train_w2s = pd.DataFrame({"id": [f"train:{i}" for i in range(len(TEXTS))], "text": TEXTS})
    train = train_w2s.iloc[rows].reset_index(drop=True).assign(position=rows)
    probs = np.eye(2)[weak] * 0.8 + 0.1
    weak_labels = pd.DataFrame({"id": train["id"], "soft_label": class_probs.as_column(probs), "hard_label": weak,
                                "train_w2s_sha256": "x"})
    test_texts = TEXTS[::-1] if test is None else test
    predict = {"test": pd.DataFrame({"id": [f"test:{i}" for i in range(len(test_texts))], "text": test_texts}),
               "train_w2s": train_w2s}
    strong = StrongModel("big", {"path": str(model)}, training_settings(mode="probe"), None, lambda *a: {}, model)
    return MethodInputs(dataset_task({}), train, weak_labels, predict, strong, {"shots": shots}, seed, model,
                        PromptSettings(QUESTION, WORDS, 32, 4, "float32"))


def test_demonstrations_show_the_weak_labels_words_balanced_and_seeded(tiny_models: dict[str, Path],
                                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    weak = [1 - t for t in TRUTH]  # every weak label contradicts the truth, which the method never sees
    picked = weak_demonstrations(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 4), 4)
    assert sorted(label for _, label in picked) == [0, 0, 1, 1]
    assert all(label == weak[TEXTS.index(text)] != TRUTH[TEXTS.index(text)] for text, label in picked)
    assert len({text for text, _ in picked}) == 4
    assert picked == weak_demonstrations(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 4), 4)
    assert picked != weak_demonstrations(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 4, seed=1), 4)
    assert weak_demonstrations(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 0), 0) == []
    # The prompts the model reads: the demonstrations, each followed by its weak label's word, then the row.
    seen: list[list[str]] = []
    original = elicitation.prompt_probabilities
    monkeypatch.setattr(elicitation, "prompt_probabilities",
                        lambda model, tokenizer, prompts, *rest: seen.append(prompts) or original(model, tokenizer,
                                                                                                  prompts, *rest))
    elicit(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 4))
    shown = "\n\n".join(format_example(text, QUESTION) + WORDS[label] for text, label in picked)
    assert [len(prompts) for prompts in seen] == [12, 12]
    assert seen[0][0] == shown + "\n\n" + format_example(TEXTS[-1], QUESTION)  # test is TEXTS reversed
    assert seen[1][3] == shown + "\n\n" + format_example(TEXTS[3], QUESTION)


def test_too_few_weak_labels_of_a_class_ask_for_fewer_shots(tiny_models: dict[str, Path]) -> None:
    weak = [1] * 11 + [0]
    assert sorted(label for _, label in weak_demonstrations(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 3), 3)) \
        == [0, 1, 1]
    with pytest.raises(MethodError, match=r"shots 4 shows 2 and 2 .* the weak labels have 1 and 11; lower shots"):
        elicit(elicitation_inputs(tiny_models["tiny-gpt2"], weak, 4))
    with pytest.raises(MethodError, match="shots must be 0 or more, not -1"):
        elicit(elicitation_inputs(tiny_models["tiny-gpt2"], weak, -1))


def test_zero_shot_equals_the_prompt_baselines_probabilities_bit_for_bit(tiny_models: dict[str, Path],
                                                                         tmp_path: Path) -> None:
    test = TEXTS[3:] + TEXTS[:3]
    labelled = pd.DataFrame({"id": [f"test:{i}" for i in range(len(test))], "text": test, "label": TRUTH})
    paths = {split: str(tmp_path / f"{split}.parquet") for split in ("train_gt", "test")}
    for path in paths.values():
        labelled.to_parquet(path)
    out = tmp_path / "baseline.parquet"
    prompt_baseline({"path": str(tiny_models["tiny-gpt2"])}, PromptSettings(QUESTION, WORDS, 32, 4, "float32"), 0, 0,
                    paths, str(out))
    baseline = class_probs.read_column(pd.read_parquet(out), "probs", str(out))
    elicited = elicit(elicitation_inputs(tiny_models["tiny-gpt2"], TRUTH, 0, test=test))["test"]
    assert np.array_equal(elicited, baseline)
    assert len(np.unique(elicited[:, 1])) > 1  # the texts are told apart, not one constant row


def test_elicit_predicts_both_splits_in_their_order_deterministically(tiny_models: dict[str, Path]) -> None:
    runs = {shots: [elicit(elicitation_inputs(tiny_models["tiny-gpt2"], TRUTH, shots)) for _ in range(2)]
            for shots in (0, 2)}
    for first, second in runs.values():
        assert {split: probs.shape for split, probs in first.items()} == {"test": (12, 2), "train_w2s": (12, 2)}
        assert all(np.allclose(probs.sum(axis=1), 1.0) for probs in first.values())
        assert all(np.array_equal(first[split], second[split]) for split in first)
    # Rows in the splits' order: test is train_w2s reversed, and zero-shot reads each text alone.
    assert np.allclose(runs[0][0]["test"], runs[0][0]["train_w2s"][::-1], atol=1e-6)
    assert not np.allclose(runs[2][0]["test"], runs[0][0]["test"], atol=1e-3)


def test_the_log_compares_each_weak_label_with_the_prediction_of_its_own_row(tiny_models: dict[str, Path],
                                                                              monkeypatch: pytest.MonkeyPatch,
                                                                              caplog: pytest.LogCaptureFixture) -> None:
    def truth_of_the_query(model: Any, tokenizer: Any, prompts: list[str], *rest: Any) -> np.ndarray:
        """A model that knows the truth: P(class 1) 1 for the first six texts of TEXTS, 0 for the others."""
        return np.eye(2)[[TRUTH[TEXTS.index(p.split("\n")[-3])] for p in prompts]]

    monkeypatch.setattr(elicitation, "prompt_probabilities", truth_of_the_query)
    rows = [5, 0, 9, 2, 7, 11]  # the weak labels cover half of train_w2s, in their own order: truth 1 1 0 1 0 0
    with caplog.at_level(logging.INFO, logger="w2s"):
        elicit(elicitation_inputs(tiny_models["tiny-gpt2"], [1, 0, 0, 1, 0, 1], 2, rows=rows))
    assert ("2-shot elicitation: 24 prompts, mean P(class 1) 0.500 on test and 0.500 on train_w2s, agreement with "
            "the weak labels 0.6667") in caplog.text


def test_an_encoder_strong_model_is_refused_before_its_weights_load(tiny_models: dict[str, Path],
                                                                    tmp_path: Path) -> None:
    from transformers import MPNetConfig

    MPNetConfig(vocab_size=26, hidden_size=16, num_hidden_layers=1, num_attention_heads=2).save_pretrained(tmp_path)
    for encoder in (tiny_models["tiny-bert"], tmp_path):  # BERT has a causal LM class, MPNet none
        with pytest.raises(MethodError) as refused:
            elicit(elicitation_inputs(encoder, TRUTH, 0))
        assert str(refused.value) == NOT_CAUSAL
    assert NOT_CAUSAL == ("elicitation prompts a causal language model; restrict the method to causal strong models "
                          "with the method's `models:` list in the config")
