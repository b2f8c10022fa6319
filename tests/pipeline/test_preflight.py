"""Preflight, offline: a config whose datasets are local copies of their hub repositories and whose
models are tiny local checkpoints passes row by row; each injected fault fails its own row with
its own message; the demo's models pass."""

from __future__ import annotations

import hashlib
import io
import json
import os
from pathlib import Path

import pytest
import yaml

from helpers import (
    QWEN1_FIXTURE,
    QWEN1_TIKTOKEN,
    QWEN1_TINY_CHECKPOINT,
    REPO,
    hub_cache_with_blobs,
    make_tiny_model,
    save_tiny_tokenizer,
    sharded_qwen1_source,
    vision_config,
    write_digits_folder,
)
from w2s.pipeline.rehearsal.hub_layouts import hub_folder
from w2s.pipeline import preflight
from w2s.pipeline.preflight_check import Check


pytestmark = pytest.mark.usefixtures("_private_datasets_cache")


def experiment(datasets: dict, models: dict, mode: str = "full") -> dict:
    return {"seeds": [0], "w2s_slices": 2, "datasets": datasets, "models": models, "ladder": list(models),
            "losses": {"xent": {}}, "training": {"mode": mode, "max_length": 32, "pooling": "last"},
            "resources": {"gpu_memory_gb": 80}}


def rows_of(results: list[Check]) -> list[tuple[str, str, str]]:
    return [(r.status, r.item, r.check) for r in results]


def detail(results: list[Check], item: str, check: str) -> str:
    (row,) = [r for r in results if (r.item, r.check) == (item, check)]
    return row.detail


def test_a_local_mirror_config_passes_every_check(tmp_path: Path, tiny_models: dict[str, Path]) -> None:
    boolq, _ = hub_folder("boolq", tmp_path / "hub")
    cosmos, _ = hub_folder("cosmos_qa", tmp_path / "hub")
    config = experiment(
        {"boolq": {"n_train": 20, "n_test": 10, "mirror": str(boolq)},
         "cosmos_qa": {"n_train": 20, "n_test": 10, "mirror": str(cosmos)}},
        {"bert": {"path": str(tiny_models["tiny-bert"]), "resources": {"gpu": 0}},
         "gpt2": {"path": str(tiny_models["tiny-gpt2"]), "resources": {"gpu": 0}}},
    )
    out = io.StringIO()
    results = preflight.run(config, lock_path=tmp_path / "hub.lock.yaml", parts={"datasets", "models", "machine"},
                            load_weights=True, out=out)
    dataset_checks = ["revision", "train split", "test split", "converts"]
    model_checks = ["source", "config", "tokenizer", "weights", "forward and backward"]
    assert rows_of(results) == (
        [("OK", "dataset boolq", c) for c in dataset_checks] + [("OK", "dataset cosmos_qa", c) for c in dataset_checks]
        + [("OK", "model bert", c) for c in model_checks] + [("OK", "model gpt2", c) for c in model_checks]
        + [("OK", "machine", "GPUs"), ("OK", "model bert", "GPUs for training"), ("OK", "model gpt2", "GPUs for training")]
    )
    assert detail(results, "dataset boolq", "revision") == (
        f"local copy {boolq} of google/boolq@35b264d03638db9f4ce671b711558bf7ff0f80d5 (registry)")
    assert detail(results, "dataset cosmos_qa", "test split").startswith("20 rows (hub split 'validation'), columns ")
    assert detail(results, "dataset boolq", "converts") == (
        "n_train 20 and n_test 10 fit; positive fraction train_gt 0.50, train_w2s 0.70, test 0.70")
    assert detail(results, "model gpt2", "tokenizer") == "TokenizersBackend, 26 tokens, pad '[PAD]' (0)"
    assert detail(results, "model bert", "forward and backward").startswith("loss 0.693, ")
    assert not (tmp_path / "hub.lock.yaml").exists()  # everything was pinned already
    printed = out.getvalue().splitlines()
    assert printed[-1] == f"{len(results)} passed, 0 failed"
    assert printed[1].split() [:4] == ["OK", "dataset", "boolq", "revision"]


def test_dataset_rows_fit_generative_binary_and_many_class_tasks(tmp_path: Path) -> None:
    """A generative task's splits have targets, not classes: its row counts distinct targets (config/chess.yaml
    failed here on every run), where a binary task's gives the positive fraction and a many-class task's the
    classes present."""
    from w2s.data.chess import mate_in_one_puzzles, write_hub_copy

    puzzles = write_hub_copy(tmp_path / "lichess-puzzles", mate_in_one_puzzles(8, seed=0))
    boolq, _ = hub_folder("boolq", tmp_path / "hub")
    topics = {split: tmp_path / f"topics-{split}.jsonl" for split in ("train", "test")}
    for split, path in topics.items():
        path.write_text("".join(json.dumps({"text": f"{split} text {i}", "label": i % 3}) + "\n" for i in range(30)))
    config = experiment(
        {"chess_puzzles": {"kind": "generative", "n_train": 4, "n_test": 2, "mirror": str(puzzles)},
         "boolq": {"n_train": 20, "n_test": 10, "mirror": str(boolq)},
         "topics": {"n_classes": 3, "n_train": 12, "n_test": 6, "balance": True,
                    "data_files": {split: str(path) for split, path in topics.items()}}}, {})
    results = preflight.run(config, lock_path=None, parts={"datasets"}, load_weights=False, out=io.StringIO())
    assert [r for r in results if r.status != "OK"] == []
    assert detail(results, "dataset chess_puzzles", "train split").startswith("8 rows (hub split 'train'), columns ")
    assert detail(results, "dataset chess_puzzles", "converts") == (
        "n_train 4 and n_test 2 fit; a generative task: distinct targets per split train_gt 2, train_w2s 2, test 2")
    assert detail(results, "dataset boolq", "converts") == (
        "n_train 20 and n_test 10 fit; positive fraction train_gt 0.50, train_w2s 0.70, test 0.70")
    assert detail(results, "dataset topics", "converts") == (
        "n_train 12 and n_test 6 fit; 3 classes; classes present per split train_gt 3, train_w2s 3, test 3")


def test_the_lock_file_is_beside_the_config_wherever_the_package_is_installed(tmp_path: Path) -> None:
    """A non-editable install puts w2s in site-packages; the lock file still goes beside the config that
    preflight was given, where the workflow reads it (config/config.yaml -> config/hub.lock.yaml)."""
    import shutil
    import subprocess
    import sys

    site = tmp_path / "lib" / "python3.11" / "site-packages"
    shutil.copytree(REPO / "src" / "w2s", site / "w2s", ignore=shutil.ignore_patterns("__pycache__"))
    # w2s.pipeline.schema reads the schema beside the package at import (not this test's subject).
    (tmp_path / "lib" / "python3.11" / "config").mkdir()
    shutil.copyfile(REPO / "config" / "schema.yaml", tmp_path / "lib" / "python3.11" / "config" / "schema.yaml")
    experiment_dir = tmp_path / "experiment"
    experiment_dir.mkdir()
    config_path = experiment_dir / "config.yaml"
    rows = experiment_dir / "sst2.jsonl"
    rows.write_text(json.dumps({"idx": 0, "sentence": "fine", "label": 1}) + "\n")
    config_path.write_text(yaml.safe_dump(experiment(
        {"sst2": {"n_train": 20, "n_test": 10, "data_files": {"train": str(rows), "test": str(rows)}}},
        {"small": {"hub_id": "org/small"}, "tiny": {"hub_id": "org/tiny"}})))
    commit = "0123456789abcdef0123456789abcdef01234567"
    script = (
        "import sys\n"
        "from w2s import revisions\n"
        "from w2s.pipeline import preflight\n"
        f"assert preflight.__file__.startswith({str(site)!r}), preflight.__file__\n"
        f"revisions.resolve_head = lambda repo_type, hub_id, branch: {commit!r}\n"
        f"sys.exit(preflight.main([{str(config_path)!r}, '--skip', 'datasets', 'machine', '--no-weights']))\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=300,
                          env={**os.environ, "PYTHONPATH": str(site), "HF_HUB_OFFLINE": "1"})
    lock = experiment_dir / "hub.lock.yaml"
    assert f"written to {lock}: commit it" in done.stdout, done.stdout + done.stderr
    assert preflight_lock_entries(lock) == {"org/small@main": commit, "org/tiny@main": commit}
    assert not (tmp_path / "lib" / "python3.11" / "config" / "hub.lock.yaml").exists()


def preflight_lock_entries(lock: Path) -> dict[str, str]:
    from w2s import revisions

    return revisions.read_lock(lock)["models"]


def test_each_injected_fault_fails_its_own_row(tmp_path: Path, tiny_models: dict[str, Path],
                                               remote_code_model: Path) -> None:
    script_only = tmp_path / "hub" / "allenai" / "cosmos_qa"
    script_only.mkdir(parents=True)
    (script_only / "cosmos_qa.py").write_text("# a loading script\n")
    layout = {"": {"train": "default/train/0000.parquet"}}  # the export lost its validation split
    no_validation, _ = hub_folder("social_iqa", tmp_path / "hub", layout)
    no_pad = make_tiny_model(tmp_path / "no-pad", "gpt2", 2)
    _tokenizer_without_pad(no_pad)
    save_tiny_tokenizer(remote_code_model)  # so that only its weights are at fault
    config = experiment(
        {"cosmos_qa": {"n_train": 20, "n_test": 10, "mirror": str(script_only)},
         "social_iqa": {"n_train": 20, "n_test": 10, "mirror": str(no_validation)}},
        {"bert": {"path": str(tiny_models["tiny-bert"])}, "no-pad": {"path": str(no_pad)},
         "reinit": {"path": str(remote_code_model), "trust_remote_code": True}},
    )
    config_path = tmp_path / "config.yaml"
    config_path.write_text(yaml.safe_dump(config))
    results = preflight.run(config, lock_path=None, parts={"datasets", "models"}, load_weights=True,
                            out=io.StringIO())
    failed = {(r.item, r.check): r.detail for r in results if r.status == "FAIL"}
    assert set(failed) == {("dataset cosmos_qa", "train split"), ("dataset cosmos_qa", "test split"),
                           ("dataset cosmos_qa", "converts"), ("dataset social_iqa", "test split"),
                           ("dataset social_iqa", "converts"), ("model no-pad", "tokenizer"),
                           ("model reinit", "weights")}
    assert "holds a loading script and no data files (cosmos_qa.py)" in failed[("dataset cosmos_qa", "train split")]
    assert "refs/convert/parquet" in failed[("dataset cosmos_qa", "train split")]
    assert "has no split 'validation', which dataset 'social_iqa' reads as its test split" in \
        failed[("dataset social_iqa", "test split")]
    assert failed[("model no-pad", "tokenizer")].startswith("the tokenizer has neither a pad token nor an eos token")
    assert failed[("model reinit", "weights")].startswith(
        f"the weights loaded from the local path '{remote_code_model}' are not the checkpoint's: "
        "attn.c_proj.weight differs in 1,024 of 1,024 compared elements")
    assert [r.status for r in results if r.item == "dataset social_iqa"] == ["OK", "OK", "FAIL", "FAIL"]
    assert preflight.main([str(config_path), "--skip", "machine", "--no-lock"]) == 1


def _tokenizer_without_pad(directory: Path) -> None:
    config = json.loads((directory / "tokenizer_config.json").read_text())
    for key in ("pad_token", "eos_token"):
        config.pop(key, None)
    (directory / "tokenizer_config.json").write_text(json.dumps(config))
    special = directory / "special_tokens_map.json"
    if special.exists():
        mapping = json.loads(special.read_text())
        mapping.pop("pad_token", None)
        mapping.pop("eos_token", None)
        special.write_text(json.dumps(mapping))


def test_the_demos_models_pass(capsys: pytest.CaptureFixture[str]) -> None:
    status = preflight.main([str(REPO / "config" / "demo.yaml"), "--skip", "datasets", "--only", "minilm",
                             "--no-lock"])
    printed = capsys.readouterr().out
    assert status == 0, printed
    assert "OK    model minilm              weights" in printed
    assert "forward" in printed and printed.rstrip().endswith("7 passed, 0 failed")
    assert "smollm2" not in printed  # --only reaches the GPU rows too


def test_a_broken_config_is_named_and_checks_nothing(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    broken = tmp_path / "broken.yaml"
    broken.write_text("seeds: [0\n")
    assert preflight.main([str(broken)]) == 2
    assert f"{broken}: not valid YAML" in capsys.readouterr().err


@pytest.mark.skipif(not QWEN1_FIXTURE.is_dir(), reason="../shared/fixtures/qwen1 is absent")
def test_a_converted_qwen1_is_checked_and_a_tokenizer_too_large_for_its_embedding_fails(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The tiny Qwen-1 checkpoint has 512 embedding rows; Qwen's real tokenizer pads with id 151643. The file the
    conversion read is compared with the hub's sha256; with the hub out of reach, that row warns."""
    from types import SimpleNamespace

    from huggingface_hub import HfApi

    from w2s.models import qwen1

    monkeypatch.chdir(tmp_path)  # preflight finds a converted model at results/models/<name>
    qwen1.convert_checkpoint(QWEN1_TINY_CHECKPOINT, tmp_path / "results" / "models" / "qwen-7b",
                             tiktoken_path=QWEN1_TIKTOKEN)
    source_sha256 = hashlib.sha256((QWEN1_TINY_CHECKPOINT / "model.safetensors").read_bytes()).hexdigest()
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo_id, **_: SimpleNamespace(siblings=[
        SimpleNamespace(rfilename="model.safetensors", lfs=SimpleNamespace(sha256=source_sha256))]))
    revision = "d4efd21e866b9cb3466cb65b963933f5e98016d1"
    config = experiment({}, {"qwen-7b": {"hub_id": "Qwen/Qwen-7B", "revision": revision, "convert": "qwen1"},
                             "other": {"hub_id": "Qwen/Qwen-7B", "revision": revision, "convert": "qwen1"}})
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=True, only={"qwen-7b"},
                            out=io.StringIO())
    assert rows_of(results) == [("OK", "model qwen-7b", c) for c in ("source", "config", "tokenizer", "weights",
                                                                    "weights sha256")] + [
        ("FAIL", "model qwen-7b", "forward and backward")]
    assert detail(results, "model qwen-7b", "weights sha256") == (
        f"1 file equals the hub's at Qwen/Qwen-7B@{revision} (LFS sha256): model.safetensors {source_sha256}")
    monkeypatch.undo()
    monkeypatch.chdir(tmp_path)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    offline = preflight.run(config, lock_path=None, parts={"models"}, load_weights=True, only={"qwen-7b"},
                            out=io.StringIO())
    assert [r for r in offline if r.check == "weights sha256"] == [Check(
        "WARN", "model qwen-7b", "weights sha256",
        f"could not reach the hub to compare the weights' sha256 with Qwen/Qwen-7B@{revision} (OfflineModeIsEnabled); "
        f"run preflight where the hub is reachable to compare them. The files' sha256: model.safetensors "
        f"{source_sha256}")]
    assert detail(results, "model qwen-7b", "tokenizer") == "Qwen2Tokenizer, 151,851 tokens, pad '<|endoftext|>' (151643)"
    assert detail(results, "model qwen-7b", "forward and backward") == (
        "the tokenizer gives id 151643 but the model's embedding has 512 rows: the tokenizer does not belong to "
        "these weights")


class FakeHub:
    """The hub's downloads, served from local folders in each repository's layout, recording every file fetched
    and how many of its bytes: hf_hub_download and snapshot_download fetch whole files, get_safetensors_metadata
    (as huggingface_hub does with range requests) the index and the first 8 + N bytes of each safetensors file."""

    def __init__(self, repositories: dict[str, Path]) -> None:
        self.repositories = repositories
        self.fetched: list[tuple[str, int]] = []

    def _whole(self, repo_id: str, filename: str) -> str:
        path = self.repositories[repo_id] / filename
        self.fetched.append((filename, path.stat().st_size))
        return str(path)

    def hf_hub_download(self, repo_id: str, filename: str, *, revision: str | None = None, **_: object) -> str:
        return self._whole(repo_id, filename)

    def snapshot_download(self, repo_id: str, *, revision: str | None = None, allow_patterns: list[str] | None = None,
                          **_: object) -> str:
        from fnmatch import fnmatch

        folder = self.repositories[repo_id]
        for path in sorted(folder.iterdir()):
            if allow_patterns is None or any(fnmatch(path.name, pattern) for pattern in allow_patterns):
                self._whole(repo_id, path.name)
        return str(folder)

    def get_safetensors_metadata(self, repo_id: str, *, revision: str | None = None, **_: object) -> object:
        from huggingface_hub.utils import SafetensorsFileMetadata, SafetensorsRepoMetadata, TensorInfo

        folder = self.repositories[repo_id]
        index = folder / "model.safetensors.index.json"
        weight_map = json.loads(Path(self._whole(repo_id, index.name)).read_text())["weight_map"] if index.exists() \
            else None
        files = sorted(set(weight_map.values())) if weight_map else ["model.safetensors"]
        metadata = {}
        for file in files:
            with (folder / file).open("rb") as handle:
                length = int.from_bytes(handle.read(8), "little")
                header = json.loads(handle.read(length))
            self.fetched.append((file, 8 + length))
            tensors = {name: TensorInfo(dtype=info["dtype"], shape=info["shape"], data_offsets=tuple(info["data_offsets"]))
                       for name, info in header.items() if name != "__metadata__"}
            metadata[file] = SafetensorsFileMetadata(metadata=header.get("__metadata__", {}), tensors=tensors)
        weight_map = weight_map or {name: "model.safetensors" for name in metadata["model.safetensors"].tensors}
        return SafetensorsRepoMetadata(metadata=None, sharded=index.exists(), weight_map=weight_map,
                                       files_metadata=metadata)

    def install(self, monkeypatch: pytest.MonkeyPatch) -> None:
        """The fakes in huggingface_hub's namespace, where w2s looks them up; transformers, which binds the real
        functions when first imported, is imported first so that it keeps reading the cache."""
        import huggingface_hub
        import transformers.utils.hub  # noqa: F401

        for name in ("hf_hub_download", "snapshot_download", "get_safetensors_metadata"):
            monkeypatch.setattr(huggingface_hub, name, getattr(self, name))


@pytest.mark.skipif(not QWEN1_FIXTURE.is_dir(), reason="../shared/fixtures/qwen1 is absent")
def test_no_weights_reads_a_qwen1_checkpoints_config_tokenizer_and_headers_only(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """--no-weights downloaded and converted every Qwen-1 checkpoint (about 200 GB for config/config.yaml); it
    reads config.json, qwen.tiktoken and the safetensors headers, checks every tensor's name and shape against
    the config, and converts nothing."""
    repo = sharded_qwen1_source(tmp_path / "Qwen-7B")
    hub = FakeHub({"Qwen/Qwen-7B": repo})
    hub.install(monkeypatch)
    monkeypatch.chdir(tmp_path)  # where a conversion would write results/models/qwen-7b
    revision = "d4efd21e866b9cb3466cb65b963933f5e98016d1"
    config = experiment({}, {"qwen-7b": {"hub_id": "Qwen/Qwen-7B", "revision": revision, "convert": "qwen1"}})
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=False, out=io.StringIO())
    shards = ["model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"]
    assert [name for name, _ in hub.fetched] == ["config.json", "qwen.tiktoken", "model.safetensors.index.json",
                                                 *shards]
    headers = {name: size for name, size in hub.fetched if name in shards}
    assert all(size < (repo / name).stat().st_size / 20 for name, size in headers.items()), headers
    assert not (tmp_path / "results").exists()
    assert rows_of(results) == [("OK", "model qwen-7b", check) for check in ("checkpoint headers", "config",
                                                                             "tokenizer")]
    assert detail(results, "model qwen-7b", "checkpoint headers") == (
        "19 tensors in 2 files, float32, 0.49 MB of weights at Qwen/Qwen-7B@d4efd21e866b9cb3466cb65b963933f5e98016d1, "
        "each named and shaped as config.json describes Qwen-1; read from the file headers, nothing downloaded or "
        "converted")
    assert detail(results, "model qwen-7b", "config") == (
        "qwen2 after conversion: hidden_size 64, num_hidden_layers 2, vocab_size 512")
    assert detail(results, "model qwen-7b", "tokenizer") == (
        "TokenizersBackend, 151,851 tokens, pad '<|endoftext|>' (151643)")


@pytest.mark.skipif(not QWEN1_FIXTURE.is_dir(), reason="../shared/fixtures/qwen1 is absent")
def test_no_weights_names_a_qwen1_tensor_whose_header_shape_is_wrong(tmp_path: Path,
                                                                     monkeypatch: pytest.MonkeyPatch) -> None:
    from safetensors.torch import load_file, save_file
    import torch

    repo = sharded_qwen1_source(tmp_path / "Qwen-7B")
    second = repo / "model-00002-of-00002.safetensors"
    tensors = load_file(second)
    tensors["transformer.h.1.mlp.w1.weight"] = torch.zeros(128, 64)
    save_file(tensors, second)
    FakeHub({"Qwen/Qwen-7B": repo}).install(monkeypatch)
    revision = "d4efd21e866b9cb3466cb65b963933f5e98016d1"
    config = experiment({}, {"qwen-7b": {"hub_id": "Qwen/Qwen-7B", "revision": revision, "convert": "qwen1"}})
    monkeypatch.chdir(tmp_path)
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=False, out=io.StringIO())
    assert rows_of(results) == [("FAIL", "model qwen-7b", "checkpoint headers")]
    assert detail(results, "model qwen-7b", "checkpoint headers") == (
        f"the checkpoint tensor 'transformer.h.1.mlp.w1.weight' in model-00002-of-00002.safetensors of "
        f"Qwen/Qwen-7B@{revision} has shape [128, 64], but the config implies [64, 64]")


def test_no_weights_reads_a_hub_models_headers_instead_of_its_weights(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]) -> None:
    """A hub model's config and tokenizer come from the cache (here holding nothing else), its weights' shapes,
    dtypes and sizes from the file headers, checked against the model its config describes."""
    import shutil
    from types import SimpleNamespace

    from huggingface_hub import HfApi

    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--org--tiny-gpt2" / "snapshots" / commit
    shutil.copytree(tiny_models["tiny-gpt2"], snapshot, ignore=shutil.ignore_patterns("*.safetensors"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    hub = FakeHub({"org/tiny-gpt2": tiny_models["tiny-gpt2"]})
    hub.install(monkeypatch)
    weights = tiny_models["tiny-gpt2"] / "model.safetensors"
    monkeypatch.setattr(HfApi, "model_info", lambda self, repo_id, **_: SimpleNamespace(
        sha=commit, siblings=[SimpleNamespace(rfilename="model.safetensors", size=weights.stat().st_size)]))
    config = experiment({}, {"gpt2": {"hub_id": "org/tiny-gpt2", "revision": commit}})
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=False, out=io.StringIO())
    assert rows_of(results) == [("OK", "model gpt2", check) for check in ("source", "config", "tokenizer",
                                                                          "weights headers")]
    assert [name for name, _ in hub.fetched] == ["model.safetensors"]
    assert hub.fetched[0][1] < weights.stat().st_size / 5
    assert detail(results, "model gpt2", "weights headers").startswith(
        f"16 tensors in 1 file, float32, 0.02 MB of weights at org/tiny-gpt2@{commit}, each shaped as config.json "
        "describes the model; read from the file headers, nothing downloaded")


def test_no_weights_offline_checks_what_the_cache_holds_and_warns_of_the_rest(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch, tiny_models: dict[str, Path]) -> None:
    """With HF_HUB_OFFLINE=1 the config and tokenizer come from the cache; the size and the headers, which only
    the hub has, are said to be unknown rather than failed."""
    import shutil

    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = tmp_path / "hub" / "models--org--tiny-gpt2" / "snapshots" / commit
    shutil.copytree(tiny_models["tiny-gpt2"], snapshot, ignore=shutil.ignore_patterns("*.safetensors"))
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    config = experiment({}, {"gpt2": {"hub_id": "org/tiny-gpt2", "revision": commit}})
    out = io.StringIO()
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=False, out=out)
    assert rows_of(results) == [("OK", "model gpt2", "source"), ("OK", "model gpt2", "config"),
                                ("OK", "model gpt2", "tokenizer"), ("WARN", "model gpt2", "weights headers")]
    assert detail(results, "model gpt2", "source") == (
        "the hub id 'org/tiny-gpt2'; weights' size unknown: the hub is out of reach (OfflineModeIsEnabled)")
    assert detail(results, "model gpt2", "weights headers") == (
        f"could not reach the hub to read the weights' headers at org/tiny-gpt2@{commit} (OfflineModeIsEnabled); "
        "run preflight where the hub is reachable to check them")
    assert out.getvalue().splitlines()[-1] == "3 passed, 0 failed, 1 could not be checked here (WARN)"


def test_the_loaded_weights_are_compared_with_the_hubs_sha256(tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                                                tiny_models: dict[str, Path]) -> None:
    """Where the hub is reachable, each loaded weights file's sha256 is compared with the LFS sha256 the hub gives
    (model_info with files_metadata); a file the hub disagrees with fails its own row, named."""
    from types import SimpleNamespace

    from huggingface_hub import HfApi

    commit = "0123456789abcdef0123456789abcdef01234567"
    snapshot = hub_cache_with_blobs(tiny_models["tiny-gpt2"], tmp_path / "hub", "org/tiny-gpt2", commit)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_OFFLINE", True)
    monkeypatch.setattr("huggingface_hub.constants.HF_HUB_CACHE", str(tmp_path / "hub"))
    weights = snapshot / "model.safetensors"
    loaded = hashlib.sha256(weights.read_bytes()).hexdigest()
    hub_sha256 = {"sha256": "f" * 64}
    asked: list[dict] = []

    def model_info(self: HfApi, repo_id: str, **kwargs: object) -> SimpleNamespace:
        asked.append({"repo_id": repo_id, **kwargs})
        return SimpleNamespace(sha=commit, siblings=[
            SimpleNamespace(rfilename="config.json", size=500, lfs=None),
            SimpleNamespace(rfilename="model.safetensors", size=weights.stat().st_size,
                            lfs=SimpleNamespace(sha256=hub_sha256["sha256"]))])

    monkeypatch.setattr(HfApi, "model_info", model_info)
    config = experiment({}, {"gpt2": {"hub_id": "org/tiny-gpt2", "revision": commit, "resources": {"gpu": 0}}})
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=True, out=io.StringIO())
    assert [r for r in results if r.status != "OK"] == [Check(
        "FAIL", "model gpt2", "weights sha256",
        f"model.safetensors: the hub's sha256 at org/tiny-gpt2@{commit} is {'f' * 64}, the loaded file's is {loaded}; "
        f"the file in the Hugging Face cache ({weights.resolve()}) is not the hub's: delete it and run preflight "
        "again to download it anew")]
    assert {"repo_id": "org/tiny-gpt2", "revision": commit, "files_metadata": True} in asked

    hub_sha256["sha256"] = loaded
    results = preflight.run(config, lock_path=None, parts={"models"}, load_weights=True, out=io.StringIO())
    assert detail(results, "model gpt2", "weights sha256") == (
        f"1 file equals the hub's at org/tiny-gpt2@{commit} (LFS sha256): model.safetensors {loaded}")


def test_an_image_task_is_checked_folder_and_models(tmp_path: Path) -> None:
    """The vision task's rows: the image folder read and split, a torchvision model whose weights enum
    resolves without a download, a timm model named by its hub repository, and a random model loaded and
    run on one image; a model name torchvision lacks fails its own row."""
    config = vision_config(write_digits_folder(tmp_path / "digits"))
    config["models"]["alexnet"]["weights"] = "AlexNet_Weights.IMAGENET1K_V1"
    config["models"]["vit"]["pretrained"] = True
    config["models"]["broken"] = {"family": "torchvision", "name": "alexnot", "weights": None}
    config["ladder"] = ["alexnet", "mobilenet", "vit", "broken"]
    checked = preflight.run(config, lock_path=None, parts={"datasets", "models"}, load_weights=False,
                            out=io.StringIO())
    assert rows_of(checked) == [
        ("OK", "dataset digits", "image_folder"), ("OK", "dataset digits", "converts"),
        ("OK", "model alexnet", "source"), ("OK", "model mobilenet", "source"), ("OK", "model vit", "source"),
        ("FAIL", "model broken", "source")]
    assert detail(checked, "dataset digits", "image_folder") == "1,797 images in 10 class folders"
    assert detail(checked, "dataset digits", "converts") == ("n_train 600 and n_test 300 fit; 10 classes; classes "
                                                             "present per split train_gt 10, train_w2s 10, test 10")
    assert detail(checked, "model alexnet", "source") == ("torchvision alexnet with AlexNet_Weights.IMAGENET1K_V1: "
                                                          "1000 classes")
    assert detail(checked, "model vit", "source") == ("timm vit_base_patch8_224.dino from the hub repository "
                                                      "timm/vit_base_patch8_224.dino")
    assert detail(checked, "model broken", "source") == "torchvision has no model 'alexnot'"
    loaded = preflight.run({**config, "ladder": ["mobilenet", "vit"]}, lock_path=None, parts={"models"},
                           load_weights=True, only={"mobilenet"}, out=io.StringIO())
    assert detail(loaded, "model mobilenet", "weights and forward") == "features (1, 1024), its own head: 10 classes"
