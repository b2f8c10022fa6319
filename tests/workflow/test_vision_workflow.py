"""The image-classification task kind end to end: the paper's vision config planned offline, and a
real Snakemake run on scikit-learn's 8x8 digits (10 classes) with tiny randomly initialised torchvision
and timm models: a pretrained-head weak supervisor (AlexNet's shape, used as it is), linear probes on
frozen embeddings, and a bootstrap chain."""

from __future__ import annotations

import io as bytes_io
import json
from collections import Counter
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import yaml
from helpers import N_DIGIT_CLASSES, REPO, planned_jobs, snakemake, vision_config, write_digits_folder

LINEAGES = ("alexnet__mobilenet", "alexnet__vit", "mobilenet__vit", "alexnet__mobilenet__vit")


def test_vision_config_plans_the_papers_sweep_offline(tmp_path: Path) -> None:
    (tmp_path / "data" / "imagenet" / "val").mkdir(parents=True)  # where your ImageNet copy goes
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "vision.yaml"), "-n")
    counts = Counter(rule for rule, _ in planned_jobs(result.stdout).elements())
    # 3 seeds; AlexNet predicts with its own head, the two DINO probes train on embeddings computed
    # once per seed; 3 ladder pairs x 2 losses; AlexNet and ResNet50 label train_w2s.
    assert counts == {"prepare_data": 3, "embed_features": 6, "train_ground_truth": 9, "weak_labels": 6,
                      "train_student": 18, "evaluate": 27, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
                      "report": 1}


def test_vision_config_without_the_imagenet_folder_says_where_to_point_it(tmp_path: Path) -> None:
    result = snakemake(tmp_path, "--configfile", str(REPO / "config" / "vision.yaml"), "-n", check=False)
    assert result.returncode != 0
    assert ("dataset 'imagenet': image_folder is 'data/imagenet/val', which is no folder (relative to "
            f"{tmp_path}); point it at your local copy (ImageNet is licensed, so nothing downloads it)") in result.stderr


@pytest.fixture(scope="module")
def vision_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    workdir = tmp_path_factory.mktemp("vision")
    config = vision_config(write_digits_folder(workdir / "digits"))
    (workdir / "vision.yaml").write_text(yaml.safe_dump(config))
    dry = snakemake(workdir, "--configfile", "vision.yaml", "-n")
    counts = Counter(rule for rule, _ in planned_jobs(dry.stdout).elements())
    # No truncation counts (images are not truncated) and no embedding of the pretrained head's model.
    assert counts == {"prepare_data": 1, "embed_features": 2, "train_ground_truth": 3, "weak_labels": 3,
                      "train_student": 4, "evaluate": 7, "summarize": 1, "leaderboard": 1, "training_curves": 1, "provenance": 1,
                      "report": 1}
    snakemake(workdir, "--configfile", "vision.yaml")
    return workdir


def test_prepared_splits_hold_the_image_files_bytes_and_labels(vision_run: Path) -> None:
    from PIL import Image

    data = vision_run / "results" / "data" / "digits" / "seed0"
    splits = {split: pd.read_parquet(data / f"{split}.parquet") for split in ("train_gt", "train_w2s", "test")}
    assert {split: len(frame) for split, frame in splits.items()} == {"train_gt": 300, "train_w2s": 300, "test": 300}
    ids = [set(frame["id"]) for frame in splits.values()]
    assert not (ids[0] & ids[1] or ids[0] & ids[2] or ids[1] & ids[2])
    first = splits["test"].iloc[0]
    assert Image.open(bytes_io.BytesIO(first["image"])).size == (8, 8)
    assert set(pd.read_parquet(data / "unlabelled" / "test.parquet").columns) == {"id", "image"}
    balance = json.loads((data / "label_balance.json").read_text())
    assert len(balance["test"]["class_fractions"]) == N_DIGIT_CLASSES
    assert abs(sum(balance["test"]["class_fractions"]) - 1) < 1e-9


def test_weak_labels_hold_ten_class_probabilities(vision_run: Path) -> None:
    labels = pd.read_parquet(vision_run / "results" / "digits" / "seed0" / "gt" / "alexnet" / "weak_labels.parquet")
    soft = np.stack(labels["soft_label"].to_numpy())
    assert soft.shape == (150, N_DIGIT_CLASSES)  # slice 1 of 2 of train_w2s's 300 rows
    np.testing.assert_allclose(soft.sum(axis=1), 1, atol=1e-6)
    assert (labels["hard_label"].to_numpy() == soft.argmax(axis=1)).all()
    assert "label" not in labels.columns


def test_the_pretrained_head_trains_nothing_and_probes_embed_once(vision_run: Path) -> None:
    seed = vision_run / "results" / "digits" / "seed0"
    history = pd.read_parquet(seed / "gt" / "alexnet" / "history.parquet")
    assert history["trained"].tolist() == [False]
    recorded = json.loads((seed / "gt" / "alexnet" / "checkpoint" / "model_entry.json").read_text())
    assert recorded["pretrained_head"] is True and recorded["model_entry"]["name"] == "alexnet"
    assert sorted(p.name for p in (seed / "features").iterdir()) == ["mobilenet.safetensors", "vit.safetensors"]


def test_every_run_is_scored_as_a_ten_class_task(vision_run: Path) -> None:
    seed = vision_run / "results" / "digits" / "seed0"
    runs = ["gt/alexnet", "gt/mobilenet", "gt/vit"] + [f"w2s/xent/{lineage}" for lineage in LINEAGES]
    for run in runs:
        metrics = json.loads((seed / run / "metrics.json").read_text())
        assert (metrics["task_kind"], metrics["n_classes"]) == ("image_classification", N_DIGIT_CLASSES), run
        assert metrics["auroc_kind"] == "macro one-vs-rest AUROC", run
        assert "test_positive_fraction" not in metrics and "max_length" not in metrics, run
        assert 0 <= metrics["accuracy"] <= 1, run
    student = json.loads((seed / "w2s" / "xent" / "alexnet__mobilenet__vit" / "metrics.json").read_text())
    assert student["supervisor_run"] == "w2s/xent/alexnet__mobilenet" and student["weak_model"] == "alexnet"
    # A probe on the frozen features of even a random MobileNet separates the digits far above chance (0.1;
    # 0.877 here), while the random AlexNet head, used as it is, is at chance.
    accuracy = {model: json.loads((seed / "gt" / model / "metrics.json").read_text())["accuracy"]
                for model in ("alexnet", "mobilenet")}
    assert accuracy["mobilenet"] > 0.8 and accuracy["alexnet"] < 0.2


def test_report_names_each_task_and_the_pretrained_head(vision_run: Path) -> None:
    page = (vision_run / "results" / "report" / "report.html").read_text()
    assert "image_classification, 10 classes" in page
    assert "pretrained head as is (no training)" in page
    assert "macro one-vs-rest AUROC" in page
