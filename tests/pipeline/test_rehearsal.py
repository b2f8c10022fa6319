"""The rehearsal's parts: job signatures and the selection of runs that covers them, config only_runs, the
miniature models in their kinds' layouts, and data fixtures as long as the real data."""

from __future__ import annotations

import json
import statistics
from collections import Counter
from pathlib import Path

import pytest
import yaml
from safetensors import safe_open

from helpers import REPO, snakemake
from w2s.data.chess import puzzle_example
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import rehearse
from w2s.pipeline.rehearsal import fixtures
from w2s.pipeline.rehearsal.miniatures import Miniatures, MiniatureError, model_kind
from w2s.pipeline.rehearsal.plan import Job, describe_signature, parse_dry_run, select, signature


def dry_run(config: str, *args: str) -> str:
    return snakemake(REPO, "-n", "--configfile", config, *args, cores=None).stdout


def filled(path: Path) -> dict:
    config = w2s_schema.apply_defaults(yaml.safe_load(path.read_text()), w2s_schema.SHIPPED_SCHEMA)
    return {**config, **w2s_experiment.with_generative_variants(config)}


@pytest.fixture(scope="module")
def shipped_jobs() -> list[Job]:
    return parse_dry_run(dry_run("config/config.yaml"))


def test_a_dry_runs_listing_becomes_jobs() -> None:
    listing = (
        "[Mon Dec  7 03:06:54 2026]\nrule train_student:\n"
        "    input: results/a.parquet, /repo/workflow/scripts/train_model.py (cached)\n"
        "    output: results/x/checkpoint, results/x/predictions.parquet\n    jobid: 287\n"
        "    wildcards: dataset=sciq, seed=0, loss=logconf, chain=gpt2__qwen-7b\n"
        "    resources: tmpdir=/tmp, gpu=2, runtime=420, processes=2\n"
        "localrule all:\n    input: results/report/report.html\n    jobid: 0\n")
    student, final = parse_dry_run(listing)
    assert (student.rule, student.processes, student.inputs, student.outputs) == (
        "train_student", 2, ["results/a.parquet", "/repo/workflow/scripts/train_model.py"],
        ["results/x/checkpoint", "results/x/predictions.parquet"])
    assert student.wildcards == {"dataset": "sciq", "seed": "0", "loss": "logconf", "chain": "gpt2__qwen-7b"}
    assert (final.rule, final.inputs, final.outputs) == ("all", ["results/report/report.html"], [])


def test_signatures_tell_code_paths_apart_and_not_data(shipped_jobs: list[Job]) -> None:
    config = filled(REPO / "config/config.yaml")
    jobs = {(job.rule, tuple(job.wildcards.values())): job for job in shipped_jobs}

    def key(rule: str, *wildcards: str) -> tuple:
        return signature(jobs[(rule, wildcards)], config)

    # Models of one kind and settings on other datasets: one signature.
    assert key("train_ground_truth", "sciq", "0", "gpt2") == key("train_ground_truth", "boolq", "0", "gpt2-medium")
    assert describe_signature(key("train_ground_truth", "sciq", "0", "qwen-72b")) == (
        "train_ground_truth × qwen1 × full × adafactor × bfloat16 × selection final × pooling last × gradient "
        "checkpointing × sharded × text_classification")
    # Sharded over 2 or 3 processes alike; sharded against one process, Adafactor against AdamW, logconf against
    # xent, GPT-2 against Qwen-1.
    assert key("train_ground_truth", "sciq", "0", "qwen-7b") == key("train_ground_truth", "sciq", "0", "qwen-14b")
    assert key("train_ground_truth", "sciq", "0", "qwen-7b") != key("train_ground_truth", "sciq", "0", "qwen-1.8b")
    assert key("train_ground_truth", "sciq", "0", "qwen-7b") != key("train_ground_truth", "sciq", "0", "qwen-72b")
    assert key("train_student", "sciq", "0", "xent", "gpt2__qwen-7b") \
        != key("train_student", "sciq", "0", "logconf", "gpt2__qwen-7b")
    assert key("count_truncated", "sciq", "0", "gpt2") != key("count_truncated", "sciq", "0", "qwen-7b")
    # Every dataset's conversion is its own.
    assert key("prepare_data", "sciq", "0") != key("prepare_data", "boolq", "0")


def test_the_selection_covers_every_signature_of_the_real_dag(shipped_jobs: list[Job]) -> None:
    config = filled(REPO / "config/config.yaml")
    plan = select(shipped_jobs, config)
    assert plan.signatures == {signature(job, config) for job in shipped_jobs}
    assert len(plan.jobs) < len(shipped_jobs) // 10
    rules = Counter(job.rule for job in plan.jobs)
    assert rules["prepare_data"] == 5 and rules["report"] == rules["summarize"] == 1
    # The largest model, sharded with Adafactor, trains as a student under each loss: logconf's run is selected, and
    # xent's student of the same lineage trains as what logconf's evaluation compares it with.
    assert {run.split("/")[3] for run in plan.runs if run.endswith("__qwen-72b")} == {"logconf"}
    assert {job.wildcards["loss"] for job in plan.jobs
            if job.rule == "train_student" and job.wildcards["chain"].endswith("__qwen-72b")} == {"xent", "logconf"}
    # Selected runs' jobs are a closed sub-DAG: every input another job makes is made by a selected job.
    outputs = {path for job in plan.jobs for path in job.outputs}
    made = {path for job in shipped_jobs for path in job.outputs}
    assert all(path in outputs for job in plan.jobs if job.rule not in ("summarize", "training_curves", "leaderboard",
                                                                         "provenance", "report", "all")
               for path in job.inputs if path in made)


def test_only_runs_builds_the_named_runs_and_what_they_need() -> None:
    jobs = parse_dry_run(dry_run("config/config.yaml", "--config", "only_runs=['sciq/seed0/w2s/xent/gpt2__gpt2-medium']"))
    assert Counter(job.rule for job in jobs) == {
        "prepare_data": 5, "count_truncated": 1, "train_ground_truth": 2, "weak_labels": 1, "train_student": 1,
        "evaluate": 1, "training_curves": 1, "leaderboard": 1, "provenance": 1, "summarize": 1, "report": 1, "all": 1}
    [summary] = [job for job in jobs if job.rule == "summarize"]
    assert [path for path in summary.inputs if path.endswith("metrics.json")] == [
        "results/sciq/seed0/w2s/xent/gpt2__gpt2-medium/metrics.json"]


def test_only_runs_that_match_nothing_are_refused() -> None:
    result = snakemake(REPO, "-n", "--configfile", "config/config.yaml", "--config",
                       "only_runs=['sciq/seed0/gt/gpt3']", cores=None, check=False)
    assert result.returncode != 0
    assert ("Invalid config: only_runs 'sciq/seed0/gt/gpt3' match no run of this config; a run is named "
            "'<dataset>/seed<seed>/<run>', e.g. 'sciq/seed0/gt/gpt2'") in result.stderr


def test_jobs_that_shard_in_the_real_run_shard_over_two_processes_in_the_rehearsal() -> None:
    config = filled(REPO / "config/config.yaml")
    real = {model: rehearse._real_processes(config, model) for model in config["ladder"]}
    assert real == {"gpt2": 1, "gpt2-medium": 1, "gpt2-large": 1, "gpt2-xl": 1, "qwen-1.8b": 1, "qwen-7b": 2,
                    "qwen-14b": 3, "qwen-72b": 8}
    # Generative tasks train in one process whatever the model's size.
    chess_config = filled(REPO / "config/chess.yaml")
    assert {rehearse._real_processes(chess_config, model) for model in chess_config["ladder"]} == {1}


def test_the_gpt2_miniature_keeps_the_hub_checkpoints_key_names_and_gpt2s_vocabulary(tmp_path: Path) -> None:
    Miniatures(tmp_path / "hub", tmp_path / "torch").place(
        {"hub_id": "openai-community/gpt2", "revision": "607a30d783dfa663caf39e06633721c8d4cfcd7e"})
    snapshot = tmp_path / "hub/models--openai-community--gpt2/snapshots/607a30d783dfa663caf39e06633721c8d4cfcd7e"
    with safe_open(str(snapshot / "model.safetensors"), framework="pt") as weights:
        keys = set(weights.keys())
    assert {"wte.weight", "h.0.attn.c_attn.weight", "h.0.attn.bias", "ln_f.weight"} <= keys
    assert not any(key.startswith("transformer.") for key in keys)
    from transformers import PreTrainedTokenizerFast

    tokenizer = PreTrainedTokenizerFast(tokenizer_file=str(snapshot / "tokenizer.json"))
    # GPT-2's own ids: "Hello" 15496, " world" 995, <|endoftext|> 50256.
    assert tokenizer("Hello world")["input_ids"] == [15496, 995]
    assert tokenizer.convert_tokens_to_ids("<|endoftext|>") == 50256


def test_the_qwen1_miniature_converts_with_qwens_own_vocabulary(tmp_path: Path) -> None:
    from w2s.models.qwen1 import convert_checkpoint

    revision = "fec78c0e3b3b10dd9f0ce775c34a686a3255a7d1"
    Miniatures(tmp_path / "hub", tmp_path / "torch").place(
        {"hub_id": "Qwen/Qwen-72B", "revision": revision, "convert": "qwen1"})
    snapshot = tmp_path / f"hub/models--Qwen--Qwen-72B/snapshots/{revision}"
    qwen1 = json.loads((snapshot / "config.json").read_text())
    assert (qwen1["model_type"], qwen1["vocab_size"], qwen1["rotary_emb_base"]) == ("qwen", 152064, 1000000)
    index = json.loads((snapshot / "model.safetensors.index.json").read_text())
    assert set(index["weight_map"].values()) == {"model-00001-of-00002.safetensors", "model-00002-of-00002.safetensors"}
    converted = convert_checkpoint(snapshot, tmp_path / "converted")
    from transformers import AutoTokenizer

    tokenizer = AutoTokenizer.from_pretrained(converted)
    # Qwen's ids for the label words (fixtures/qwen1/README.md): " yes" 9834, " no" 902.
    assert tokenizer(" yes no")["input_ids"] == [9834, 902]


def test_a_hub_model_without_a_miniature_is_named() -> None:
    with pytest.raises(MiniatureError, match="no miniature for the hub model 'meta-llama/Llama-3.1-8B'"):
        model_kind({"hub_id": "meta-llama/Llama-3.1-8B"})


def test_fixture_texts_are_as_long_as_the_real_datas() -> None:
    rows = fixtures.realistic_rows("quail")("train", 200)
    words = [len(row["context"].split()) for row in rows]
    assert 280 <= statistics.median(words) <= 360 and max(words) > 500
    hh = fixtures.realistic_rows("anthropic_hh_pairwise")("train", 40)
    # Padding lengthens the last reply only: chosen and rejected still share their prompt.
    usable = [row for i, row in enumerate(hh) if i % 4 != 3]
    assert all(row["chosen"].rpartition("\n\nAssistant: ")[0] == row["rejected"].rpartition("\n\nAssistant: ")[0]
               for row in usable)


def test_chess_fixtures_reach_past_move_90_with_legal_targets() -> None:
    rows = fixtures.chess_puzzles(60, seed=0)
    moves = []
    for row in rows:
        prompt, target = puzzle_example(row)  # replays the moves and checks the target is legal
        moves.append(int(prompt.split()[-1].rstrip(".")))
        assert target == row["target"]
    assert max(moves) >= 90 and statistics.median(moves) < 40
