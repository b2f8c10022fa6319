"""Sharded finetuning (w2s.training.distributed, FSDP2) on the CPU over gloo: one torchrun launch of two processes
(tests/fsdp_worker.py) trains tiny models sharded and in one process, and the two must agree; another meets a
sharded job's faults. Both run with W2S_STRICT_COLLECTIVES=1: any collective w2s calls outside Ranks fails them."""

from __future__ import annotations

import ast
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torch.distributed as dist

from helpers import REPO
from job_settings import training_settings
from w2s.training import distributed
from w2s.training.distributed import COLLECTIVES, PROCESS_GROUP_TIMEOUT, Ranks
from w2s.training.jobs import train_model
from w2s.training.launch import train
from w2s.training.loop import make_optimizer

# float32 on both sides; only the order of the sums differs.
TOLERANCE = 1e-5


def launch(*args: str) -> dict | list:
    """tests/fsdp_worker.py ARGS in two torchrun processes with strict collectives; what rank 0 wrote to its OUT."""
    result = subprocess.run(
        [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node=2",
         str(REPO / "tests" / "fsdp_worker.py"), *args],
        capture_output=True, text=True, timeout=300, env={**os.environ, distributed.STRICT_COLLECTIVES_ENV: "1"})
    assert result.returncode == 0, result.stderr[-6000:] + result.stdout[-3000:]
    return json.loads(Path(args[-1]).read_text())


@pytest.fixture(scope="module")
def parity(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> dict:
    workdir = tmp_path_factory.mktemp("fsdp")
    return launch(str(tiny_models["tiny-bert"]), str(tiny_models["tiny-gpt2"]), str(workdir),
                  str(workdir / "parity.json"))


@pytest.fixture(scope="module")
def faults(tmp_path_factory: pytest.TempPathFactory) -> list[dict]:
    """What each of the two processes saw, in rank order."""
    workdir = tmp_path_factory.mktemp("fsdp-faults")
    return launch("faults", str(workdir), str(workdir / "faults.json"))


def test_one_sharded_step_equals_the_single_process_step(parity: dict) -> None:
    assert parity["full_xent_1_step"]["weights"] < TOLERANCE
    assert parity["full_xent_1_step"]["losses"] < TOLERANCE


def test_several_uneven_logconf_steps_with_selection_equal_the_single_process_run(parity: dict) -> None:
    run = parity["full_logconf_6_steps"]
    assert run["weights"] < TOLERANCE
    assert run["losses"] < TOLERANCE
    # logconf's threshold, from every process's probabilities gathered, at each of the 6 steps.
    assert run["threshold_steps"] == 6
    assert run["thresholds"] < TOLERANCE


def test_lora_sharded_equals_lora_in_one_process(parity: dict) -> None:
    assert parity["lora_xent_3_steps"]["weights"] < TOLERANCE
    assert parity["lora_xent_3_steps"]["losses"] < TOLERANCE


def test_sharded_adafactor_equals_torch_adafactor_in_one_process(parity: dict) -> None:
    # The factored second moments' row and column means are taken over the whole matrix, summed over shards.
    assert parity["full_adafactor_6_steps"]["weights"] < TOLERANCE
    assert parity["full_adafactor_6_steps"]["losses"] < TOLERANCE


def test_sharded_adafactor_steps_slices_and_empty_shards_like_torch(faults: list[dict]) -> None:
    # A convolution's 3-d weight (its column factor sharded too) and a 1-row weight (nothing on rank 1), 4 steps.
    assert faults[0]["adafactor_shapes"] < TOLERANCE


def test_adafactor_is_torchs_in_one_process_and_steps_only_sharded_parameters_in_several() -> None:
    assert type(make_optimizer("adafactor", [torch.nn.Parameter(torch.zeros(2, 2))], 0.1, 0.0)) is torch.optim.Adafactor
    with pytest.raises(ValueError, match=r"ShardedAdafactor steps parameters sharded by rows over all 2 processes "
                                         r"\(fully_shard\), but one of shape \(2, 2\) is a plain tensor"):
        make_optimizer("adafactor", [torch.nn.Parameter(torch.zeros(2, 2))], 0.1, 0.0, Ranks(0, 2))


def test_a_sharded_run_killed_mid_way_resumes_to_the_same_weights(parity: dict) -> None:
    for resumed in (parity["resumed_after_step_2"], parity["adafactor_resumed_after_step_2"]):
        assert resumed["weights"] < TOLERANCE
        assert resumed["losses"] == 0.0
        assert resumed["checkpoints"] == ["step-00000006"]


def test_every_process_gets_its_rows_and_as_many_chunks() -> None:
    rows = np.arange(7)
    first, second = Ranks(0, 2), Ranks(1, 2)
    assert [c.tolist() for c in first.chunks(rows, 3)] == [[0, 2, 4], [6]]
    assert [c.tolist() for c in second.chunks(rows, 3)] == [[1, 3, 5], []]
    # One process: consecutive slices, as training always cut its batches.
    assert [c.tolist() for c in Ranks(0, 1).chunks(rows, 3)] == [[0, 1, 2], [3, 4, 5], [6]]
    assert Ranks(0, 1).gather(torch.ones(2, 3)).shape == (2, 3)


def test_jobs_that_do_not_shard_refuse_several_processes_and_say_what_to_set(tmp_path: Path) -> None:
    two = Ranks(0, 2)
    with pytest.raises(ValueError, match="training mode probe train in one process, but this job has 2; set the "
                                         "model's resources.processes to 1"):
        train_model({"path": "unused"}, training_settings(mode="probe"), 0, {}, {}, ranks=two)
    with pytest.raises(ValueError, match="generative tasks train in one process, but this job has 2"):
        train_model({"path": "unused"}, training_settings(mode="full"), 0, {}, {},
                    task={"kind": "generative", "n_classes": 0, "max_new_tokens": 4}, ranks=two)
    with pytest.raises(ValueError, match="a training job runs in 1 or more processes, got 0; fix the model's "
                                         "resources.processes"):
        train(0, {}, str(tmp_path / "log"), 2)


def test_a_checkpoint_folder_rank_0_cannot_create_fails_every_process_at_once(faults: list[dict]) -> None:
    # Rank 0's mkdir fails where a file stands; the others learn it before any barrier, so nobody waits forever.
    for seen in faults:
        assert "could not write the sharded resume checkpoint of step 1 to " in seen["unwritable_folder"]
        assert "/key/step-00000001: rank 0: [Errno 20] Not a directory" in seen["unwritable_folder"]
        assert seen["unwritable_folder"].endswith("no earlier checkpoint exists, free disk space if it is full and "
                                                  "rerun to resume")


def test_strict_collectives_name_w2s_code_that_bypasses_ranks(faults: list[dict]) -> None:
    for seen in faults:
        assert seen["direct_call"].startswith("w2s.training.rogue.total (line 3) calls torch.distributed.all_reduce "
                                              "directly; w2s's collectives go through the methods of "
                                              "w2s.training.distributed.Ranks")
        # Ranks' own collectives pass, and so do FSDP's and torch.distributed.checkpoint's, called by torch.
        assert seen["total"] == [3.0]


def test_model_selection_snapshots_a_sharded_parameter_in_host_memory(faults: list[dict]) -> None:
    # Sharded as the parameter is, so torch.distributed.checkpoint saves it, but on the CPU: the GPU memory model
    # (w2s.pipeline.resources) has no room for a second copy of the weights.
    for seen in faults:
        assert seen["snapshot"] == {"is_dtensor": True, "placements": "(Shard(dim=0),)", "local_device": "cpu",
                                    "own_storage": True, "restored": True}


def test_ranks_put_every_collectives_tensors_on_the_jobs_device(monkeypatch: pytest.MonkeyPatch) -> None:
    # NCCL serves CUDA tensors only; here the job's device is the meta device, which no tensor is on by chance.
    sent: list[tuple[str, str]] = []
    monkeypatch.setattr(dist, "all_reduce", lambda t: sent.append(("all_reduce", str(t.device))))
    monkeypatch.setattr(dist, "broadcast", lambda t, src: sent.append(("broadcast", str(t.device))))
    monkeypatch.setattr(dist, "broadcast_object_list",
                        lambda objects, src, device: sent.append(("broadcast_object_list", str(device))))
    on_meta = Ranks(0, 2, torch.device("meta"))
    assert on_meta.total(torch.tensor([1])).device.type == "meta"
    on_meta.broadcast(torch.zeros(2))
    on_meta.broadcast_object({"checkpoint": None})
    assert sent == [("all_reduce", "meta"), ("broadcast", "meta"), ("broadcast_object_list", "meta")]


def test_w2s_calls_torch_distributed_collectives_only_through_ranks() -> None:
    """Every call of (or reference to) a torch.distributed collective in src/w2s, by any import style, is in a method
    of w2s.training.distributed.Ranks, which hands it to Ranks._collective."""
    offenders = []
    for path in sorted((REPO / "src" / "w2s").rglob("*.py")):
        helper = path == REPO / "src" / "w2s" / "training" / "distributed.py"
        offenders += [f"{path.relative_to(REPO)}:{line} in {where}"
                      for line, where in collective_calls(ast.parse(path.read_text()))
                      if not (helper and where.startswith("Ranks."))]
    assert offenders == []


def collective_calls(tree: ast.Module) -> list[tuple[int, str]]:
    """(line, enclosing function) of every call in `tree` of, or reference to, a collective of torch.distributed."""
    modules = {"torch.distributed", "torch.distributed.distributed_c10d"}
    aliases: dict[str, str] = {}  # local name -> what it stands for
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            aliases.update({a.asname or a.name.split(".")[0]: a.name if a.asname else a.name.split(".")[0]
                            for a in node.names})
        elif isinstance(node, ast.ImportFrom) and node.module:
            aliases.update({a.asname or a.name: f"{node.module}.{a.name}" for a in node.names})

    def dotted(node: ast.expr) -> str | None:
        if isinstance(node, ast.Name):
            return aliases.get(node.id, node.id)
        if isinstance(node, ast.Attribute):
            base = dotted(node.value)
            return f"{base}.{node.attr}" if base else None
        return None

    found = []

    def visit(node: ast.AST, where: str) -> None:
        for child in ast.iter_child_nodes(node):
            inside = f"{where}.{child.name}".lstrip(".") if isinstance(
                child, (ast.FunctionDef, ast.AsyncFunctionDef, ast.ClassDef)) else where
            if isinstance(child, (ast.Name, ast.Attribute)) and not isinstance(getattr(child, "ctx", None), ast.Store):
                name = dotted(child)
                if name and name.rsplit(".", 1)[0] in modules and name.rsplit(".", 1)[1] in COLLECTIVES:
                    found.append((child.lineno, inside))
            visit(child, inside)

    visit(tree, "")
    return found


def test_the_collective_scan_finds_every_import_style() -> None:
    source = """
import torch
import torch.distributed as dist
from torch.distributed import barrier
from torch.distributed import distributed_c10d as c10d

def a(): torch.distributed.all_reduce(x)
def b(): dist.broadcast_object_list(x)
def c(): barrier()
class D:
    def e(self): c10d.all_gather(x, y)
    def f(self): self.g(dist.all_gather_object, x)
"""
    assert collective_calls(ast.parse(source)) == [(7, "a"), (8, "b"), (9, "c"), (11, "D.e"), (12, "D.f")]


def test_the_process_group_waits_as_long_as_rank_0_works_alone(monkeypatch: pytest.MonkeyPatch) -> None:
    joined: dict = {}
    monkeypatch.setattr(dist, "init_process_group", lambda backend, **options: joined.update(options))
    monkeypatch.delenv(distributed.STRICT_COLLECTIVES_ENV, raising=False)
    assert distributed.init_process_group(Ranks(1, 2)) == Ranks(1, 2, torch.device("cpu"))
    assert joined["timeout"] == PROCESS_GROUP_TIMEOUT
    # Rank 0 hashing (or loading) Qwen-72B's 291 GB of float32 weights at 100 MB/s, twice over.
    assert PROCESS_GROUP_TIMEOUT.total_seconds() >= 2 * 72.7e9 * 4 / 100e6
