"""Prompting baselines: the prompt text, the demonstrations, and label-word scoring that matches
a full forward pass of a real causal LM."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest
import torch

from w2s.models.prompting import PromptSettings, build_prompt, label_logits, label_token_ids, pick_demonstrations, prompt_baseline


def test_prompt_puts_labelled_demonstrations_before_the_text() -> None:
    prompt = build_prompt("a dull film", "Positive?", [("a fine film", 1), ("a bad film", 0)], [" No", " Yes"])
    assert prompt == (
        "a fine film\nQuestion: Positive?\nAnswer: Yes\n\n"
        "a bad film\nQuestion: Positive?\nAnswer: No\n\n"
        "a dull film\nQuestion: Positive?\nAnswer:"
    )
    assert build_prompt("x", "Q?", [], [" No", " Yes"]) == "x\nQuestion: Q?\nAnswer:"


def test_demonstrations_are_balanced_seeded_and_from_train_gt() -> None:
    train_gt = pd.DataFrame({"text": [f"t{i}" for i in range(20)], "label": [int(i < 5) for i in range(20)]})
    picked = pick_demonstrations(train_gt, 5, seed=0)
    assert sorted(label for _, label in picked) == [0, 0, 1, 1, 1]
    assert all(int(text[1:]) < 5 for text, label in picked if label == 1)
    assert picked == pick_demonstrations(train_gt, 5, seed=0)
    assert picked != pick_demonstrations(train_gt, 5, seed=1)
    assert pick_demonstrations(train_gt, 0, seed=0) == []
    with pytest.raises(ValueError, match="needs 6 train_gt rows of label 1, but there are 5"):
        pick_demonstrations(train_gt, 12, seed=0)


def test_label_words_must_start_with_different_tokens(tiny_models: dict[str, Path]) -> None:
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"])
    assert label_token_ids(tokenizer, ["bad", "good"]) == [tokenizer.convert_tokens_to_ids(w) for w in ("bad", "good")]
    with pytest.raises(ValueError, match="must start with different tokens"):
        label_token_ids(tokenizer, ["zzz", "qqq"])  # both [UNK]


def test_label_logits_equal_the_full_forward_pass_at_the_last_real_token(tiny_models: dict[str, Path]) -> None:
    from transformers import AutoModelForCausalLM

    model = AutoModelForCausalLM.from_pretrained(tiny_models["tiny-gpt2"]).eval()
    ids = torch.tensor([[5, 6, 7, 8], [9, 10, 0, 0]])
    mask = torch.tensor([[1, 1, 1, 1], [1, 1, 0, 0]])
    with torch.inference_mode():
        scored = label_logits(model, ids, mask, [4, 7])
        full = model(input_ids=ids, attention_mask=mask).logits
    assert torch.allclose(scored[0], full[0, 3, [4, 7]], atol=1e-6)
    assert torch.allclose(scored[1], full[1, 1, [4, 7]], atol=1e-6)


def test_prompt_baseline_writes_test_predictions(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    texts = ["the film was good", "the film was bad", "a dull movie", "a fun movie"]
    for split in ("train_gt", "test"):
        pd.DataFrame({"id": [f"{split}:{i}" for i in range(4)], "text": texts, "label": [1, 0, 0, 1]}).to_parquet(
            tmp_path / f"{split}.parquet")
    out = tmp_path / "predictions.parquet"
    params = {"question": "the film was", "label_words": ["bad", "good"], "max_length": 32, "eval_batch_size": 3,
              "dtype": "float32"}
    prompt_baseline({"path": str(tiny_models["tiny-gpt2"])}, PromptSettings.from_params(params), 2, 0,
                    {s: str(tmp_path / f"{s}.parquet") for s in ("train_gt", "test")}, str(out))
    predictions = pd.read_parquet(out)
    # The same schema as a trained model's predictions: evaluation joins the labels by id.
    assert list(predictions.columns) == ["split", "id", "probs"]
    assert predictions["split"].eq("test").all() and predictions["id"].tolist() == [f"test:{i}" for i in range(4)]
    # Recompute one row by hand from the same demonstrations.
    from transformers import AutoModelForCausalLM, AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(tiny_models["tiny-gpt2"])
    model = AutoModelForCausalLM.from_pretrained(tiny_models["tiny-gpt2"]).eval()
    train_gt = pd.read_parquet(tmp_path / "train_gt.parquet")
    prompt = build_prompt(texts[2], "the film was", pick_demonstrations(train_gt, 2, 0), ["bad", "good"])
    encoded = tokenizer(prompt, return_tensors="pt", truncation=True, max_length=32)
    with torch.inference_mode():
        logits = model(**encoded).logits[0, -1, label_token_ids(tokenizer, ["bad", "good"])]
    assert list(predictions["probs"][2]) == pytest.approx(torch.softmax(logits, -1).tolist(), abs=1e-5)
