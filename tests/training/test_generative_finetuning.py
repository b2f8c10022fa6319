"""Generative finetuning (paper Section 5.2): the stage's next-token loss, its checkpoint, the twins that start
from it in the job graph, and the config faults it refuses."""

from __future__ import annotations

import math
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import yaml
from helpers import SCHEMA, minimal_config, snakemake, sst2_rows, validation_error, write_jsonl
from safetensors.torch import load_file

from w2s.models.text import (
    ModelLoadError,
    job_model_entry,
    load_backbone,
    load_causal_lm,
    load_tokenizer,
    pool,
    resolve_source,
)
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.training.unsupervised_lm import (
    NextTokenLosses,
    generative_finetune,
    lm_batcher,
    per_token_loss,
    read_texts,
)
from w2s.training.losses import Batch
from w2s.training.settings import GenerativeFinetuningSettings

TEXTS = ["the film was really good", "bad plot", "a dull movie"]  # 5, 2 and 3 tokens


def settings(**overrides: object) -> GenerativeFinetuningSettings:
    params = {**w2s_schema.GENERATIVE_DEFAULTS, "lr": 1e-2, "epochs": 2, "batch_size": 8, "minibatch_size": 3,
              "max_length": 16, **overrides}
    return GenerativeFinetuningSettings.from_params({k: v for k, v in params.items() if k != "splits"})


def views(tmp_path: Path, n: int) -> Path:
    rows = sst2_rows(n, seed=3)
    path = tmp_path / "unlabelled_train.parquet"
    pd.DataFrame({"id": [f"train:{r['idx']}" for r in rows], "text": [r["sentence"] for r in rows]}).to_parquet(path)
    return path


def test_the_loss_is_the_mean_next_token_cross_entropy_over_every_text_token_with_padding_masked(
        tiny_models: dict[str, Path]) -> None:
    entry = {"path": str(tiny_models["tiny-gpt2"])}
    tokenizer = load_tokenizer(entry)
    tokenizer.padding_side = "right"
    lm = load_causal_lm(entry).eval()
    ids = [tokenizer(text)["input_ids"] for text in TEXTS]
    assert [len(i) for i in ids] == [5, 2, 3]
    batch = lm_batcher(tokenizer, ids)(np.arange(3))
    # Padding (right) is no target; every real token is.
    assert (batch["labels"] == -100).tolist() == [[False] * 5, [False] * 2 + [True] * 3, [False] * 3 + [True] * 2]
    # By hand: each row alone (unpadded), -log softmax of token t + 1 at position t, mean over the 4 + 1 + 2 tokens.
    terms = []
    with torch.no_grad():
        for row in ids:
            logits = lm(input_ids=torch.tensor([row])).logits[0].double()
            terms += [float(torch.logsumexp(logits[t], 0) - logits[t, row[t + 1]]) for t in range(len(row) - 1)]
        assert len(terms) == 7
        counts = torch.tensor([[4.0], [1.0], [2.0]])
        row_losses = NextTokenLosses(lm)(**batch)
        whole = per_token_loss(row_losses, counts, 0.0, Batch(3, counts))
        # Minibatches of one batch add up to the batch's mean, as fit accumulates them.
        halves = sum(per_token_loss(row_losses[part], counts[part], 0.0, Batch(3, counts)) for part in ([0], [1, 2]))
        own = lm(**batch).loss  # transformers' own causal LM loss with the same labels
    assert math.isclose(float(whole), sum(terms) / 7, rel_tol=1e-6)
    assert math.isclose(float(halves), sum(terms) / 7, rel_tol=1e-6)
    assert math.isclose(float(own), sum(terms) / 7, rel_tol=1e-6)


def test_the_stage_changes_the_weights_saves_them_exactly_and_lowers_the_loss(tiny_models: dict[str, Path],
                                                                               tmp_path: Path) -> None:
    original = {"path": str(tiny_models["tiny-gpt2"])}
    out = {"checkpoint": str(tmp_path / "checkpoint"), "history": str(tmp_path / "history.parquet")}
    texts = views(tmp_path, 24)
    generative_finetune(original, settings(), 0, [str(texts)], out, resume_dir=tmp_path / ".resume")
    history = pd.read_parquet(out["history"])
    assert history["step"].tolist() == list(range(6))  # 2 epochs of 24 texts, 8 a batch
    assert not (tmp_path / ".resume").exists()
    twin = {"generative_checkpoint": out["checkpoint"]}
    saved = load_file(Path(out["checkpoint"]) / "model.safetensors")
    reloaded = load_causal_lm(twin)
    for name, tensor in reloaded.state_dict().items():
        if name in saved:  # the tied lm_head is saved once, as the embedding
            assert torch.equal(tensor, saved[name]), name
    before, after = load_backbone(original).state_dict(), load_backbone(twin).state_dict()
    assert before.keys() == after.keys()
    assert all(not torch.equal(before[k], after[k]) for k in before if k.endswith("weight") and "ln" not in k)

    def mean_loss(entry: dict) -> float:
        tokenizer = load_tokenizer(entry)
        ids = [i for i in tokenizer(read_texts([str(texts)]))["input_ids"] if len(i) >= 2]
        counts = torch.tensor([[len(i) - 1.0] for i in ids])
        with torch.no_grad():
            rows = NextTokenLosses(load_causal_lm(entry).eval())(**lm_batcher(tokenizer, ids)(np.arange(len(ids))))
        return float(per_token_loss(rows, counts, 0.0, Batch(len(ids), counts)))

    assert mean_loss(twin) < mean_loss(original) - 0.1


def test_the_stage_reads_label_free_views_only(tmp_path: Path) -> None:
    labelled = tmp_path / "train_gt.parquet"
    pd.DataFrame({"id": ["train:0"], "text": ["good"], "label": [1]}).to_parquet(labelled)
    with pytest.raises(ValueError, match="has a label column; generative finetuning reads the label-free views"):
        read_texts([str(labelled)])


def test_the_stage_reads_a_generative_tasks_prompts_never_its_targets(tmp_path: Path) -> None:
    view = tmp_path / "unlabelled_train_gt.parquet"
    pd.DataFrame({"id": ["train:0", "train:1"], "prompt": ["1. e4 e5 2.", "1. d4 d5 2."]}).to_parquet(view)
    assert read_texts([str(view)]) == ["1. e4 e5 2.", "1. d4 d5 2."]
    labelled = tmp_path / "train_gt.parquet"
    pd.read_parquet(view).assign(target=[" Nf3", " c4"]).to_parquet(labelled)
    with pytest.raises(ValueError, match="has a target column; generative finetuning reads the label-free views"):
        read_texts([str(labelled)])


def test_a_twin_job_loads_the_stage_checkpoint_it_was_given(tmp_path: Path) -> None:
    entry = job_model_entry({"hub_id": "gpt2"}, {"generative_checkpoint": tmp_path / "genft"})
    with pytest.raises(ModelLoadError, match=re.escape(f"the generative finetuning checkpoint '{tmp_path / 'genft'}' "
                                                       "does not exist; run `snakemake")):
        resolve_source(entry)
    (tmp_path / "genft").mkdir()
    assert resolve_source(entry).location == str(tmp_path / "genft")
    assert resolve_source({"hub_id": "gpt2"}).location == "gpt2"


def genft_config() -> dict:
    config = minimal_config()
    config["generative_finetuning"] = {"models": ["b"]}
    return config


def test_twins_follow_their_model_in_the_ladder_and_every_lineage_that_ends_in_it() -> None:
    config = genft_config()
    w2s_validation.validate_config(config, SCHEMA)
    assert w2s_experiment.trained_models(config, variants=True) == ["a", "b", "b-genft", "c"]
    assert w2s_experiment.student_chains(config, variants=True) == [["a", "b"], ["a", "b-genft"], ["a", "b", "c"]]
    assert w2s_experiment.trained_models(config) == ["a", "b", "c"]
    expanded = w2s_experiment.with_generative_variants(config)["models"]
    assert expanded["b-genft"] == expanded["b"] == {"path": "y"}
    assert w2s_experiment.generative_params(w2s_schema.apply_defaults(config, SCHEMA)) == {
        k: v for k, v in sorted(w2s_schema.GENERATIVE_DEFAULTS.items()) if k != "splits"}


@pytest.mark.parametrize("change, message", [
    (lambda c: c["generative_finetuning"].update(models=["nope"]),
     "unknown model 'nope' in generative_finetuning.models; valid models are: a, b, c"),
    (lambda c: c["models"].update(d={"path": "w"}) or c["generative_finetuning"].update(models=["d"]),
     "generative_finetuning.models names 'd', which is in neither the ladder nor a chain, so its twin would train "
     "nothing; add it to the ladder or remove it from generative_finetuning.models"),
    (lambda c: c["models"].update({"b-genft": {"path": "w"}}),
     "model name 'b-genft' is taken: generative_finetuning makes that twin of 'b'; rename the model"),
    (lambda c: c["ladder"].append("b-genft"),
     "ladder names 'b-genft', the twin generative_finetuning makes of 'b', which gets a twin of every lineage that "
     "ends in 'b'; write 'b' instead"),
    (lambda c: c["models"].update(b={"family": "torchvision", "name": "alexnet", "weights": None}),
     "generative_finetuning.models names 'b', a torchvision model; the stage trains a causal language model's "
     "next-token loss, so name transformers causal language models only"),
    (lambda c: c["datasets"].update(digits={"n_train": 8, "n_test": 4, "n_classes": 10, "image_folder": "x",
                                            "kind": "image_classification"}),
     "dataset 'digits' is a image_classification task, but generative finetuning learns from texts; run it from a "
     "config of text or generative tasks"),
    (lambda c: c["generative_finetuning"].update(splits=["train_gt", "labels"]),
     "config error at generative_finetuning/splits/1: 'labels' is not one of ['train_gt', 'train_w2s', 'test']"),
])
def test_bad_generative_finetuning_configs_are_refused(change, message: str) -> None:
    config = genft_config()
    change(config)
    assert validation_error(config) == message


def job_blocks(output: str) -> list[dict[str, str]]:
    """Each job of a dry run's listing: its rule, outputs and inputs as written."""
    blocks = re.findall(r"^(?:local)?rule (\w+):\n((?:    .*\n)*)", output, flags=re.M)
    return [{"rule": rule, **dict(re.findall(r"^    (input|output): (.*)$", body, flags=re.M))}
            for rule, body in blocks]


def test_one_stage_per_dataset_seed_and_model_starts_every_twin_job(tiny_models: dict[str, Path],
                                                                      tmp_path: Path) -> None:
    """A dry run: the stage runs once per (dataset, seed, model), and exactly the twin's ground-truth run,
    features and students (direct, chain step and the twin of a probe) read its checkpoint."""
    train = write_jsonl(sst2_rows(48, 1), tmp_path / "train.jsonl")
    test = write_jsonl(sst2_rows(16, 2), tmp_path / "test.jsonl")
    gpt2, bert = str(tiny_models["tiny-gpt2"]), str(tiny_models["tiny-bert"])
    config = {
        "seeds": [0, 1], "w2s_slices": 2,
        "datasets": {"sst2": {"n_train": 32, "n_test": 12, "data_files": {"train": str(train), "test": str(test)}}},
        "models": {"weak": {"path": bert, "training": {"mode": "probe", "probe": {"l2_grid": [0.1]}}},
                   "strong": {"path": gpt2, "training": {"mode": "full"}},
                   "probed": {"path": gpt2, "training": {"mode": "probe", "probe": {"l2_grid": [0.1]}}}},
        "ladder": ["weak", "strong", "probed"], "chains": [["weak", "strong", "probed"]],
        "losses": {"xent": {}, "logconf": {}},
        "generative_finetuning": {"models": ["strong", "probed"]},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    listing = snakemake(tmp_path, "--configfile", "config.yaml", "-n").stdout
    jobs = job_blocks(listing)
    stages = sorted(job["output"] for job in jobs if job["rule"] == "generative_finetuning")
    assert stages == [f"results/sst2/seed{s}/genft/{m}/checkpoint, results/sst2/seed{s}/genft/{m}/history.parquet"
                      for s in (0, 1) for m in ("probed", "strong")]
    stage_inputs = {job["input"].split(", /")[0] for job in jobs if job["rule"] == "generative_finetuning"}
    assert stage_inputs == {f"results/data/sst2/seed{s}/unlabelled/train_gt.parquet, "
                            f"results/data/sst2/seed{s}/unlabelled/train_w2s.parquet" for s in (0, 1)}
    starting = sorted((job["rule"], job["output"].split(",")[0])
                      for job in jobs for s in (0, 1) for m in ("strong", "probed")
                      if f"results/sst2/seed{s}/genft/{m}/checkpoint" in job.get("input", "").split(", ")
                      and job["rule"] != "generative_finetuning")
    runs = {"strong": [("train_ground_truth", "gt/strong-genft")]
            + [("train_student", f"w2s/{loss}/weak__strong-genft") for loss in ("logconf", "xent")],
            "probed": [("embed_features", "features/probed-genft.safetensors")]}
    expected = [(rule, f"results/sst2/seed{s}/{path}" + ("" if path.endswith("safetensors") else "/checkpoint"))
                for s in (0, 1) for rule, path in runs["strong"] + runs["probed"]]
    assert starting == sorted(expected)
    # The probe twin's head and students read the twin's features; the chain's twin learns from strong's student.
    twin_students = sorted(job["output"].split(",")[0] for job in jobs
                           if job["rule"] == "train_student" and "probed-genft/" in job["output"]
                           and "seed0" in job["output"])
    assert twin_students == [f"results/sst2/seed0/w2s/{loss}/{chain}/checkpoint" for loss in ("logconf", "xent")
                             for chain in ("strong__probed-genft", "weak__probed-genft", "weak__strong__probed-genft")]
    chained = next(job for job in jobs if job.get("output", "").startswith(
        "results/sst2/seed0/w2s/xent/weak__strong__probed-genft/checkpoint"))
    assert "results/sst2/seed0/w2s/xent/weak__strong/weak_labels.parquet" in chained["input"]
    assert "results/sst2/seed0/features/probed-genft.safetensors" in chained["input"]


def test_a_probe_twin_embeds_with_the_stage_checkpoint(tiny_models: dict[str, Path], tmp_path: Path) -> None:
    """A real run of the stage and the twin's feature job: its features are the finetuned backbone's, computed
    here by hand, and differ from the original weights' features."""
    train = write_jsonl(sst2_rows(24, 1), tmp_path / "train.jsonl")
    test = write_jsonl(sst2_rows(8, 2), tmp_path / "test.jsonl")
    gpt2 = str(tiny_models["tiny-gpt2"])
    config = {
        "seeds": [0], "w2s_slices": 1,
        "datasets": {"sst2": {"n_train": 16, "n_test": 6, "data_files": {"train": str(train), "test": str(test)}}},
        "models": {"weak": {"path": gpt2, "training": {"mode": "probe", "probe": {"l2_grid": [0.1]}}, "resources": {"gpu": 0}},
                   "probed": {"path": gpt2, "training": {"mode": "probe", "pooling": "last", "max_length": 16,
                                                         "probe": {"l2_grid": [0.1]}},
                              "resources": {"gpu": 0}}},
        "ladder": ["weak", "probed"], "losses": {"xent": {}},
        "generative_finetuning": {"models": ["probed"], "lr": 1e-2, "epochs": 2, "batch_size": 4,
                                  "minibatch_size": 4, "max_length": 16},
        "resources": {"gpu_memory_gb": 80},
    }
    (tmp_path / "config.yaml").write_text(yaml.safe_dump(config))
    snakemake(tmp_path, "results/sst2/seed0/features/probed-genft.safetensors", "--configfile", "config.yaml")
    twin = load_file(tmp_path / "results/sst2/seed0/features/probed-genft.safetensors")
    checkpoint = tmp_path / "results/sst2/seed0/genft/probed/checkpoint"
    texts = pd.read_parquet(tmp_path / "results/data/sst2/seed0/unlabelled/test.parquet")["text"].tolist()

    def by_hand(entry: dict) -> torch.Tensor:
        encoded = load_tokenizer(entry)(texts, padding=True, truncation=True, max_length=16, return_tensors="pt")
        with torch.no_grad():
            hidden = load_backbone(entry).eval()(**encoded).last_hidden_state
        return pool(hidden, encoded["attention_mask"], "last")

    torch.testing.assert_close(twin["test"], by_hand({"generative_checkpoint": str(checkpoint)}), rtol=1e-5, atol=1e-5)
    assert (twin["test"] - by_hand({"path": gpt2})).abs().max() > 1e-2


def test_the_report_sets_each_twin_run_beside_the_same_run_without_the_stage() -> None:
    from w2s.report.tables import generative_table

    def run(seed: int, run: str, kind: str, loss: str | None, lineage: str, accuracy: float, pgr: float | None,
            twin_of: str | None) -> dict:
        return {"dataset": "sst2", "seed": seed, "run": run, "kind": kind, "loss": loss, "lineage": lineage,
                "accuracy": accuracy, "pgr": pgr, "generative_finetuning": twin_of is not None,
                "run_without_generative_finetuning": twin_of}

    rows = []
    for seed, shift in ((0, 0.0), (1, 0.1)):
        rows += [run(seed, "gt/b", "ground_truth", None, "b", 0.7 + shift, None, None),
                 run(seed, "gt/b-genft", "ground_truth", None, "b-genft", 0.8 + shift, None, "gt/b"),
                 run(seed, "w2s/xent/a__b", "student", "xent", "a → b", 0.6 + shift, 0.2 + shift, None),
                 run(seed, "w2s/xent/a__b-genft", "student", "xent", "a → b-genft", 0.65, 0.5, "w2s/xent/a__b")]
    table = generative_table(pd.DataFrame(rows))
    assert table.to_dict("records") == [
        {"dataset": "sst2", "ceiling or loss": "ground truth (ceiling)", "lineage": "b", "seeds": 2,
         "accuracy without": "0.750", "accuracy with": "0.850", "PGR without": "–", "PGR with": "–"},
        {"dataset": "sst2", "ceiling or loss": "xent", "lineage": "a → b", "seeds": 2,
         "accuracy without": "0.650", "accuracy with": "0.650", "PGR without": "0.250", "PGR with": "0.500"},
    ]
    assert generative_table(pd.DataFrame(rows).drop(columns="generative_finetuning")).empty
