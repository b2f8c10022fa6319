"""Qwen-1 without remote code (w2s.models.qwen1): the tiny checkpoint in Qwen-1's layout from
../shared/fixtures/qwen1, converted to Qwen2 and loaded by transformers, against the outputs and
token ids that Qwen-1's original code produced. Skipped where ../shared is absent (a fresh clone)."""

from __future__ import annotations

import hashlib
import json
import re
import shutil
from collections.abc import Callable
from pathlib import Path

import pytest
import torch
import yaml
from safetensors.torch import load_file, save_file

from helpers import QWEN1_FIXTURE, QWEN1_TIKTOKEN, QWEN1_TINY_CHECKPOINT, REPO, sharded_qwen1_source, snakemake
from w2s.models import text
from w2s.pipeline.validation import ConfigError, validate_config
from w2s.models.qwen1 import Qwen1ConversionError, convert_checkpoint, fetch_and_convert

pytestmark = pytest.mark.skipif(not QWEN1_FIXTURE.is_dir(), reason="../shared/fixtures/qwen1 is absent")

TOLERANCE = 1e-5
QWEN_MODELS = ("qwen-1.8b", "qwen-7b", "qwen-14b", "qwen-72b")
COMMIT = "d4efd21e866b9cb3466cb65b963933f5e98016d1"


@pytest.fixture(scope="module")
def golden() -> dict[str, torch.Tensor]:
    return load_file(QWEN1_FIXTURE / "golden.safetensors")


@pytest.fixture(scope="module")
def converted(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return convert_checkpoint(QWEN1_TINY_CHECKPOINT, tmp_path_factory.mktemp("converted") / "qwen-tiny",
                              tiktoken_path=QWEN1_TIKTOKEN)


def load(folder: Path) -> tuple[torch.nn.Module, torch.nn.Module]:
    from transformers import AutoModel, AutoModelForCausalLM

    backbone = AutoModel.from_pretrained(folder, dtype=torch.float32).eval()
    causal = AutoModelForCausalLM.from_pretrained(folder, dtype=torch.float32).eval()
    return backbone, causal


def differences(folder: Path, golden: dict[str, torch.Tensor], side: str) -> dict[str, float]:
    """Max |converted - golden| of each compared tensor, at real tokens only, for one padding side."""
    backbone, causal = load(folder)
    ids, mask = golden[f"{side}.input_ids"], golden[f"{side}.attention_mask"]
    rows, last, real = torch.arange(ids.shape[0]), golden[f"{side}.last_token_index"], mask.bool()
    with torch.no_grad():
        hidden = backbone(input_ids=ids, attention_mask=mask, output_hidden_states=True)
        logits = causal(input_ids=ids, attention_mask=mask).logits
    found = {
        "last_token_hidden": (hidden.last_hidden_state[rows, last] - golden[f"{side}.last_token_hidden"]),
        "last_token_logits": (logits[rows, last] - golden[f"{side}.last_token_logits"]),
        "last_hidden_state": (hidden.last_hidden_state[real] - golden[f"{side}.last_hidden_state"][real]),
    }
    # golden hidden_states is (layer, row, token, dim): embeddings, each block's input, ln_f's output.
    for layer, state in enumerate(hidden.hidden_states):
        found[f"hidden_states[{layer}]"] = state[real] - golden[f"{side}.hidden_states"][layer][real]
    return {name: diff.abs().max().item() for name, diff in found.items()}


@pytest.mark.parametrize("side", ["right", "left"])
def test_converted_model_reproduces_qwen1_outputs_at_real_tokens(
    converted: Path, golden: dict[str, torch.Tensor], side: str
) -> None:
    found = differences(converted, golden, side)
    assert len(found) == 6 and max(found.values()) <= TOLERANCE, found


def test_converted_model_reproduces_each_row_alone(converted: Path, golden: dict[str, torch.Tensor]) -> None:
    backbone, causal = load(converted)
    found = {}
    for row in range(3):
        ids = golden[f"unpadded.row{row}.input_ids"]
        with torch.no_grad():
            found[f"row{row}.last_hidden_state"] = (
                backbone(input_ids=ids).last_hidden_state - golden[f"unpadded.row{row}.last_hidden_state"]
            ).abs().max().item()
            found[f"row{row}.logits"] = (
                causal(input_ids=ids).logits - golden[f"unpadded.row{row}.logits"]).abs().max().item()
    assert max(found.values()) <= TOLERANCE, found


def edit_weights(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> None:
    for shard in folder.glob("model-*.safetensors"):
        tensors = load_file(shard)
        change(tensors)
        save_file(tensors, shard)


def swap(first: str, second: str) -> Callable[[dict[str, torch.Tensor]], None]:
    """Exchange two tensors of every block: the converter mapping the two Qwen-1 tensors the other way."""

    def change(tensors: dict[str, torch.Tensor]) -> None:
        for name in [n for n in tensors if n.endswith(first)]:
            other = name.removesuffix(first) + second
            tensors[name], tensors[other] = tensors[other], tensors[name]

    return change


def edit_config(key: str, value: Callable[[dict], object]) -> Callable[[Path], None]:
    def change(folder: Path) -> None:
        config = json.loads((folder / "config.json").read_text())
        parent, _, leaf = key.rpartition(".")
        (config[parent] if parent else config)[leaf] = value(config)
        (folder / "config.json").write_text(json.dumps(config))

    return change


WRONG_CONVERSIONS = {
    # c_attn split as k, q, v instead of q, k, v (weights and biases alike)
    "q/k swapped": lambda folder: edit_weights(folder, lambda t: (swap("q_proj.weight", "k_proj.weight")(t),
                                                                  swap("q_proj.bias", "k_proj.bias")(t))),
    "w1/w2 swapped": lambda folder: edit_weights(folder, swap("up_proj.weight", "gate_proj.weight")),
    "ln_1/ln_2 swapped": lambda folder: edit_weights(folder, swap("input_layernorm.weight",
                                                                  "post_attention_layernorm.weight")),
    "rope base x100": edit_config("rope_parameters.rope_theta", lambda c: c["rope_parameters"]["rope_theta"] * 100),
    "rms_norm_eps 1e-5": edit_config("rms_norm_eps", lambda c: 1e-5),
}


@pytest.mark.parametrize("mistake", WRONG_CONVERSIONS)
def test_each_wrong_mapping_moves_the_outputs_far_beyond_the_tolerance(
    converted: Path, golden: dict[str, torch.Tensor], tmp_path: Path, mistake: str
) -> None:
    wrong = tmp_path / "wrong"
    wrong.mkdir()
    for name in ("config.json", "model.safetensors.index.json", *(p.name for p in converted.glob("model-*"))):
        shutil.copyfile(converted / name, wrong / name)
    WRONG_CONVERSIONS[mistake](wrong)
    found = differences(wrong, golden, "right")
    assert min(found["last_token_hidden"], found["last_token_logits"]) > 1e-3, found


def test_loaded_weights_equal_the_converted_files_and_qwen1s_tensors(converted: Path) -> None:
    _, causal = load(converted)
    written = {}
    for shard in converted.glob("model-*.safetensors"):
        written.update(load_file(shard))
    loaded = causal.state_dict()
    assert sorted(loaded) == sorted(written) and len(written) == 27
    assert all(torch.equal(loaded[name], written[name]) for name in written)
    source = load_file(QWEN1_TINY_CHECKPOINT / "model.safetensors")
    q, k, v = source["transformer.h.1.attn.c_attn.weight"].split(64)
    assert torch.equal(written["model.layers.1.self_attn.q_proj.weight"], q)
    assert torch.equal(written["model.layers.1.self_attn.v_proj.weight"], v)
    assert torch.equal(written["model.layers.1.self_attn.k_proj.bias"],
                       source["transformer.h.1.attn.c_attn.bias"][64:128])
    assert torch.equal(written["model.layers.0.mlp.gate_proj.weight"], source["transformer.h.0.mlp.w2.weight"])
    assert torch.equal(written["model.layers.0.self_attn.o_proj.weight"], source["transformer.h.0.attn.c_proj.weight"])


def test_the_conversion_records_each_files_sha256_and_a_converted_file_edited_later_is_refused(
        converted: Path, tmp_path: Path) -> None:
    """conversion.json carries the sha256 of each source file (for preflight to compare with the hub's) and of each
    converted file, which every load checks: edited values would otherwise pass, the model being loaded from them."""
    manifest = json.loads((converted / "conversion.json").read_text())
    [(source_file, shard)] = manifest["shards"].items()
    assert source_file == "model.safetensors"
    assert shard["source_sha256"] == hashlib.sha256(
        (QWEN1_TINY_CHECKPOINT / "model.safetensors").read_bytes()).hexdigest()
    assert shard["sha256"] == hashlib.sha256((converted / shard["file"]).read_bytes()).hexdigest()
    edited = tmp_path / "edited"
    shutil.copytree(converted, edited)
    tensors = load_file(edited / shard["file"])
    tensors["model.norm.weight"][0] += 1.0
    save_file(tensors, edited / shard["file"])
    entry = {"hub_id": "Qwen/Qwen-7B", "revision": COMMIT, "convert": "qwen1", "converted": str(edited)}
    with pytest.raises(text.ModelLoadError) as caught:
        text.load_backbone(entry)
    actual = hashlib.sha256((edited / shard["file"]).read_bytes()).hexdigest()
    assert str(caught.value) == (
        f"{edited / shard['file']} has sha256 {actual}, but {edited / 'conversion.json'} records {shard['sha256']}, "
        "the sha256 of the file the conversion wrote: the file changed after the conversion. Delete "
        f"{edited} and convert again (snakemake {edited})")


def test_converted_config_reads_every_value_from_qwen1s(converted: Path) -> None:
    config = json.loads((converted / "config.json").read_text())
    assert {k: config[k] for k in ("model_type", "architectures", "vocab_size", "hidden_size", "intermediate_size",
                                   "num_hidden_layers", "num_attention_heads", "num_key_value_heads", "head_dim",
                                   "rms_norm_eps", "rope_parameters", "tie_word_embeddings", "pad_token_id",
                                   "qwen1_seq_length", "max_position_embeddings", "dtype")} == {
        "model_type": "qwen2", "architectures": ["Qwen2ForCausalLM"], "vocab_size": 512, "hidden_size": 64,
        "intermediate_size": 64, "num_hidden_layers": 2, "num_attention_heads": 4, "num_key_value_heads": 4,
        "head_dim": 16, "rms_norm_eps": 1e-6, "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0},
        "tie_word_embeddings": False, "pad_token_id": None, "qwen1_seq_length": 2048,
        "max_position_embeddings": 2048, "dtype": "float32"}


def test_tokenizer_reproduces_qwen1s_token_ids(converted: Path) -> None:
    from transformers import AutoTokenizer

    expected = json.loads((QWEN1_FIXTURE / "tokenizer" / "token_ids.json").read_text())
    tokenizer = AutoTokenizer.from_pretrained(converted)
    texts = expected["texts"]
    assert len(texts) == 45
    assert [tokenizer(t["text"])["input_ids"] for t in texts] == [t["ids"] for t in texts]
    assert [tokenizer(t["text"], split_special_tokens=True)["input_ids"] for t in texts] == [
        t["ids_specials_as_text"] for t in texts]
    assert {word: tokenizer(word)["input_ids"] for word in expected["label_words"]} == expected["label_words"]
    assert (tokenizer.pad_token, tokenizer.pad_token_id, tokenizer.eos_token_id, len(tokenizer)) == (
        "<|endoftext|>", 151643, 151643, 151851)
    assert tokenizer.convert_tokens_to_ids(["<|im_start|>", "<|im_end|>", "<|extra_0|>", "<|extra_204|>"]) == [
        151644, 151645, 151646, 151850]
    padded = expected["padding_example (after tok.pad_token = '<|endoftext|>')"]
    for side in ("right", "left"):
        tokenizer.padding_side = side
        batch = tokenizer(padded["texts"], padding=True)
        assert (batch["input_ids"], batch["attention_mask"]) == (
            padded[side]["input_ids"], padded[side]["attention_mask"]), side


def test_the_pipeline_loads_a_converted_entry_without_remote_code(converted: Path) -> None:
    entry = {"hub_id": "Qwen/Qwen-7B", "revision": COMMIT, "convert": "qwen1", "converted": str(converted)}
    source = text.resolve_source(entry)
    assert (source.location, source.kwargs) == (str(converted), {})
    assert source.description == f"the conversion of 'Qwen/Qwen-7B' at revision {COMMIT} in '{converted}'"
    assert text.load_tokenizer(entry).pad_token_id == 151643
    with pytest.raises(text.ModelLoadError, match=re.escape(
            f"the conversion of 'Qwen/Qwen-7B' at revision {COMMIT} in 'results/models/none' does not exist; run "
            "`snakemake results/models/none` first")):
        text.resolve_source({**entry, "converted": "results/models/none"})


def test_a_failed_conversion_leaves_no_output_and_its_rerun_keeps_the_finished_shards(
    converted: Path, tmp_path: Path
) -> None:
    broken_vocabulary = tmp_path / "broken.tiktoken"
    broken_vocabulary.write_bytes(b"".join(QWEN1_TIKTOKEN.read_bytes().splitlines(keepends=True)[:1000]))
    source = sharded_qwen1_source(tmp_path / "source", broken_vocabulary)
    out, partial = tmp_path / "models" / "qwen-tiny", tmp_path / "models" / ".qwen-tiny.partial"
    # The vocabulary is read after the weights: a failure there comes after both shards are written.
    with pytest.raises(Qwen1ConversionError, match="must rank 151643 distinct tokens 0..151642"):
        convert_checkpoint(source, out)
    assert not out.exists()
    first, second = (partial / f"model-0000{i}-of-00002.safetensors" for i in (1, 2))
    assert first.is_file() and second.is_file()
    # As a kill would leave them: the second shard gone, a write cut short.
    written_at = first.stat().st_mtime_ns
    second.unlink()
    (partial / ".model-00002-of-00002.safetensors.tmp999").write_bytes(b"cut short")
    shutil.copyfile(QWEN1_TIKTOKEN, source / "qwen.tiktoken")

    convert_checkpoint(source, out)
    assert not partial.exists()
    assert first.name in {p.name for p in out.iterdir()} and (out / first.name).stat().st_mtime_ns == written_at
    assert sorted(p.name for p in out.iterdir()) == [
        "LICENSE", "config.json", "conversion.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"]
    resumed = {**load_file(out / first.name), **load_file(out / second.name)}
    whole = load_file(converted / "model-00001-of-00001.safetensors")
    assert sorted(resumed) == sorted(whole) and all(torch.equal(resumed[n], whole[n]) for n in whole)
    index = json.loads((out / "model.safetensors.index.json").read_text())
    assert index["weight_map"]["model.embed_tokens.weight"] == first.name
    assert index["weight_map"]["lm_head.weight"] == second.name
    assert index["metadata"]["total_size"] == sum(t.numel() * 4 for t in whole.values())


def with_tensors(folder: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    folder.mkdir()
    tensors = load_file(QWEN1_TINY_CHECKPOINT / "model.safetensors")
    change(tensors)
    save_file(tensors, folder / "model.safetensors")
    shutil.copyfile(QWEN1_TINY_CHECKPOINT / "config.json", folder / "config.json")
    return folder


@pytest.mark.parametrize(("change", "message"), [
    (lambda t: t.update({"transformer.h.0.mlp.c_fc.weight": torch.zeros(2)}),
     "no Qwen2 name for the checkpoint tensor 'transformer.h.0.mlp.c_fc.weight'"),
    (lambda t: t.update({"transformer.rotary_emb.inv_freq": torch.zeros(2)}),
     "no Qwen2 name for the checkpoint tensor 'transformer.rotary_emb.inv_freq'"),
    (lambda t: t.update({"transformer.h.2.ln_1.weight": torch.ones(64)}),
     "the checkpoint tensor 'transformer.h.2.ln_1.weight' is not part of a 2-layer Qwen-1 model as its config "
     "describes"),
    (lambda t: t.pop("lm_head.weight"), "the checkpoint lacks 1 tensor(s): lm_head.weight"),
    (lambda t: t.update({"transformer.h.1.mlp.w1.weight": torch.zeros(128, 64)}),
     "the checkpoint tensor 'transformer.h.1.mlp.w1.weight' in {source}/model.safetensors has shape [128, 64], but "
     "the config implies [64, 64]"),
])
def test_a_tensor_the_converter_cannot_place_is_refused_by_name(
    tmp_path: Path, change: Callable[[dict[str, torch.Tensor]], None], message: str
) -> None:
    source = with_tensors(tmp_path / "source", change)
    with pytest.raises(Qwen1ConversionError, match=re.escape(message.format(source=source))):
        convert_checkpoint(source, tmp_path / "out", tiktoken_path=QWEN1_TIKTOKEN)
    assert [p.name for p in tmp_path.iterdir()] == ["source"]


@pytest.mark.parametrize(("key", "value", "message"), [
    ("model_type", "qwen2", "not a Qwen-1 config: model_type is 'qwen2', expected 'qwen'"),
    ("rotary_pct", 0.5, "rotary_pct is 0.5: Qwen2 rotates the whole head, so only 1.0 converts"),
    ("no_bias", False, "no_bias is false: Qwen2 has biases only on q, k and v"),
    ("kv_channels", None, "the Qwen-1 config lacks kv_channels"),
])
def test_a_config_that_is_not_qwen1s_is_refused(tmp_path: Path, key: str, value: object, message: str) -> None:
    source = with_tensors(tmp_path / "source", lambda t: None)
    config = json.loads((source / "config.json").read_text())
    config.pop(key) if value is None else config.update({key: value})
    (source / "config.json").write_text(json.dumps(config))
    with pytest.raises(Qwen1ConversionError, match=re.escape(message)):
        convert_checkpoint(source, tmp_path / "out", tiktoken_path=QWEN1_TIKTOKEN)


def test_a_qwen_72b_like_config_carries_its_own_vocabulary_rope_base_and_dtype(tmp_path: Path) -> None:
    """Qwen-72B's values (vocab 152064, rope base 1e6, eps 1e-5, bf16) on tiny sizes."""
    config = {**json.loads((QWEN1_TINY_CHECKPOINT / "config.json").read_text()), "vocab_size": 152064,
              "padded_vocab_size": 152064, "rotary_emb_base": 1000000, "layer_norm_epsilon": 1e-5, "seq_length": 8192,
              "num_hidden_layers": 1, "hidden_size": 16, "num_attention_heads": 2, "kv_channels": 8, "intermediate_size": 32,
              "use_dynamic_ntk": False, "use_logn_attn": False, "bf16": True}
    shapes = {"transformer.wte.weight": (152064, 16), "lm_head.weight": (152064, 16), "transformer.ln_f.weight": (16,),
              "transformer.h.0.ln_1.weight": (16,), "transformer.h.0.ln_2.weight": (16,),
              "transformer.h.0.attn.c_attn.weight": (48, 16), "transformer.h.0.attn.c_attn.bias": (48,),
              "transformer.h.0.attn.c_proj.weight": (16, 16), "transformer.h.0.mlp.w1.weight": (16, 16),
              "transformer.h.0.mlp.w2.weight": (16, 16), "transformer.h.0.mlp.c_proj.weight": (16, 16)}
    generator = torch.Generator().manual_seed(0)
    tensors = {n: torch.randn(s, generator=generator).to(torch.bfloat16) for n, s in shapes.items()}
    source = tmp_path / "qwen-72b-like"
    source.mkdir()
    save_file(tensors, source / "model.safetensors")
    (source / "config.json").write_text(json.dumps(config))
    out = convert_checkpoint(source, tmp_path / "out", tiktoken_path=QWEN1_TIKTOKEN)

    from transformers import AutoModelForCausalLM

    written = json.loads((out / "config.json").read_text())
    assert (written["vocab_size"], written["rope_parameters"]["rope_theta"], written["rms_norm_eps"],
            written["qwen1_seq_length"], written["intermediate_size"], written["head_dim"], written["dtype"]) == (
        152064, 1e6, 1e-5, 8192, 16, 8, "bfloat16")
    model = AutoModelForCausalLM.from_pretrained(out)
    assert model.dtype == torch.bfloat16
    assert model.model.rotary_emb.inv_freq[1].item() == pytest.approx(1e6 ** (-2 / 8))
    assert torch.equal(model.lm_head.weight, tensors["lm_head.weight"])


def hub_cache_with(snapshot_files: Path, cache: Path, hub_id: str, revision: str) -> None:
    """A Hugging Face cache holding one snapshot, in the hub cache's documented layout."""
    snapshot = cache / f"models--{hub_id.replace('/', '--')}" / "snapshots" / revision
    shutil.copytree(snapshot_files, snapshot)


def test_fetch_and_convert_reads_the_hub_cache_and_says_when_the_hub_is_out_of_reach(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", True)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_CACHE", str(tmp_path / "cache"))
    with pytest.raises(Qwen1ConversionError, match=re.escape(
            f"could not download 'Qwen/Qwen-7B' at revision {COMMIT} from the Hugging Face hub (network):")):
        fetch_and_convert("Qwen/Qwen-7B", COMMIT, tmp_path / "out")
    assert not (tmp_path / "out").exists()

    hub_cache_with(sharded_qwen1_source(tmp_path / "repo"), tmp_path / "cache", "Qwen/Qwen-7B", COMMIT)
    (tmp_path / "out").mkdir()
    (tmp_path / "out" / "stale.txt").write_text("an earlier conversion's, replaced whole")
    out = fetch_and_convert("Qwen/Qwen-7B", COMMIT, tmp_path / "out")
    assert sorted(p.name for p in out.iterdir()) == [
        "LICENSE", "config.json", "conversion.json", "model-00001-of-00002.safetensors",
        "model-00002-of-00002.safetensors", "model.safetensors.index.json", "tokenizer.json", "tokenizer_config.json"]
    assert (out / "LICENSE").read_bytes() == (QWEN1_FIXTURE / "LICENSE").read_bytes()
    assert json.loads((out / "config.json").read_text())["model_type"] == "qwen2"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cache", "out", "repo"]


def config_with(**qwen_entry: object) -> dict:
    config = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    config["models"]["qwen-7b"] = {"hub_id": "Qwen/Qwen-7B", "params_b": 7.7, **qwen_entry}
    return config


@pytest.mark.parametrize(("entry", "message"), [
    ({"convert": "qwen1", "revision": "main"},
     "model 'qwen-7b' sets convert, so it must pin revision to a commit (40 hex digits, not main)"),
    ({"convert": "qwen1", "revision": COMMIT, "trust_remote_code": True},
     "model 'qwen-7b' sets convert, which loads it without remote code; remove trust_remote_code"),
    ({"convert": "qwen1"}, "config error at models/qwen-7b: 'revision' is a dependency of 'convert'"),
    ({"convert": "qwen2", "revision": COMMIT}, "config error at models/qwen-7b/convert: 'qwen2' is not one of"),
])
def test_convert_needs_a_pinned_commit_and_no_remote_code(entry: dict, message: str) -> None:
    with pytest.raises(ConfigError, match=re.escape(message)):
        validate_config(config_with(**entry), REPO / "config" / "schema.yaml")


def test_the_real_config_converts_each_qwen_model_once_before_any_job_loads_it(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "config.yaml"), "-n", check=False)
    assert result.returncode == 0, result.stderr[-3000:]
    jobs = re.findall(r"^rule (\w+):\n((?:    .*\n)*)", result.stdout, flags=re.M)
    conversions = sorted(re.search(r"^    output: (.*)$", body, flags=re.M).group(1)
                         for rule, body in jobs if rule == "convert_qwen1")
    assert conversions == sorted(f"results/models/{m}" for m in QWEN_MODELS)
    loading = {"count_truncated", "embed_features", "train_ground_truth", "train_student", "prompt_baseline"}
    checked = 0
    for rule, body in jobs:
        if rule not in loading:
            continue
        wildcards = dict(re.findall(r"(\w+)=([^,\n]+)", re.search(r"^    wildcards: (.*)$", body, flags=re.M).group(1)))
        model = wildcards["chain"].split("__")[-1] if rule == "train_student" else wildcards["model"]
        inputs = re.search(r"^    input: (.*)$", body, flags=re.M).group(1).split(", ")
        assert (f"results/models/{model}" in inputs) == (model in QWEN_MODELS), (rule, wildcards)
        assert not any(i.startswith("results/models/") and i != f"results/models/{model}" for i in inputs)
        checked += model in QWEN_MODELS
    # Qwen models: 4 x 5 datasets of count_truncated and ground truth, 20 prompts, and each loss's
    # students whose strong model is a Qwen model (4 + 5 + 6 + 7 pairs + the chain end) x 5 datasets.
    assert checked == 20 + 20 + 20 + 2 * 23 * 5
