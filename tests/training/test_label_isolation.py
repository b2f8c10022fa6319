"""Ground truth never reaches a student: on a small real workflow, no input of a student or
weak-label job holds a label column, except the labelled train_w2s that a ground_truth_holdout
student gets as its oracle; weak labels are matched to their rows by a hash of ids and texts."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import pandas as pd
import pyarrow.parquet as pq
import pytest
import yaml

from helpers import snakemake, tiny_config
from w2s.data.splits import rows_sha256
from w2s.training.rows import training_rows

# Columns that hold a true label; a weak label (soft_label, hard_label) is what a student may read.
TRUE_LABEL_COLUMNS = {"label", "true_label"}
LINEAGES = ("small__mid", "small__mid__big")
SEED_DIR = "results/sst2/seed0"
DATA_DIR = "results/data/sst2/seed0"


# --------------------------------------------------------------------------- the hash of a split's rows


def test_rows_sha256_hashes_each_id_text_pair_as_a_json_line() -> None:
    one = pd.DataFrame({"id": ["train:0"], "text": ["a good film"]})
    assert rows_sha256(one) == hashlib.sha256(b'["train:0", "a good film"]\n').hexdigest()
    assert rows_sha256(one) == "9dab859dfd0a8a4dc7e424027d783451cdf96f36edef9408a4861a38aced4acf"


def test_rows_sha256_depends_on_ids_texts_and_order_but_not_on_labels() -> None:
    rows = pd.DataFrame({"id": ["train:0", "train:1"], "text": ["a good film", "a dull film"]})
    digest = rows_sha256(rows)
    assert rows_sha256(rows.assign(label=[1, 0])) == digest
    assert rows_sha256(rows.iloc[::-1]) != digest
    assert rows_sha256(rows.assign(id=["train:0", "train:2"])) != digest
    assert rows_sha256(rows.assign(text=["a good film", "a dull film!"])) != digest
    # The pair boundary counts: ("train:0", "a b") is not ("train:0 a", "b").
    assert rows_sha256(pd.DataFrame({"id": ["x"], "text": ["a\nb"]})) != rows_sha256(
        pd.DataFrame({"id": ["x", "a"], "text": ["", "b"]}))


def test_weak_labels_made_for_other_rows_are_refused(tmp_path: Path) -> None:
    """Same ids, another dataset's texts: only the hash tells them apart, since no label is read."""
    ours = pd.DataFrame({"id": ["train:0", "train:1", "train:2"], "text": ["good", "bad", "fine"]})
    theirs = ours.assign(text=["great", "awful", "fine"])
    path = tmp_path / "weak_labels.parquet"
    pd.DataFrame({"id": ["train:0", "train:1"], "soft_label": [[0.1, 0.9], [0.8, 0.2]], "hard_label": [1, 0],
                  "train_w2s_sha256": rows_sha256(theirs)}).to_parquet(path, index=False)
    message = (f"{path}: the weak labels were made for train_w2s rows whose ids and inputs hash to "
               f"['{rows_sha256(theirs)}'], but this job's train_w2s hashes to {rows_sha256(ours)}, so they label "
               "other data; delete it and let the weak_labels rule make it again from this dataset and seed")
    with pytest.raises(ValueError) as refused:
        training_rows({"train_w2s": ours}, str(path))
    assert str(refused.value) == message
    # Weak labels written before the hash existed name no rows at all.
    pd.read_parquet(path).drop(columns="train_w2s_sha256").to_parquet(path, index=False)
    with pytest.raises(ValueError, match=r"hash to nothing \(no train_w2s_sha256 column\), but this job's"):
        training_rows({"train_w2s": ours}, str(path))


# --------------------------------------------------------------------------- the inputs of a real workflow


def job_inputs(dry_run: str, rule: str) -> dict[str, list[str]]:
    """The data inputs of each `rule` job of a dry run, keyed by the job's run folder; the code digest
    (.snakemake/w2s-code/<script>.sha256) is left out."""
    jobs = re.findall(rf"^rule {rule}:\n    input: (.*)\n    output: ([^,\n]+)", dry_run, flags=re.M)
    inputs = {}
    for listed, first_output in jobs:
        run = str(Path(first_output).parent.relative_to(SEED_DIR))
        paths = [p.removesuffix(" (cached)") for p in listed.split(", ")]
        inputs[run] = [p for p in paths if not p.endswith(".py.sha256")]
    return inputs


def label_columns(workdir: Path, path: str) -> list[str]:
    if not path.endswith(".parquet"):
        return []  # features: one tensor of embeddings per split
    return sorted(TRUE_LABEL_COLUMNS & set(pq.read_schema(workdir / path).names))


@pytest.fixture(scope="module")
def oracle_run(tiny_models: dict[str, Path], tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, str]:
    """The tiny ladder's chain small -> mid -> big with xent, evaluated, where `mid` picks its
    checkpoint on true labels; then a dry run that plans every job again and lists each one's inputs."""
    workdir = tmp_path_factory.mktemp("label_isolation")
    config = tiny_config(tiny_models, workdir)
    config["losses"] = {"xent": {}}
    del config["prompting"]
    config["models"]["mid"]["training"]["model_selection"] = "ground_truth_holdout"
    (workdir / "config.yaml").write_text(yaml.safe_dump(config))
    targets = [f"{SEED_DIR}/w2s/xent/{lineage}/metrics.json" for lineage in LINEAGES]
    snakemake(workdir, *targets, "--configfile", "config.yaml")
    return workdir, snakemake(workdir, *targets, "-n", "--forceall", "--configfile", "config.yaml").stdout


def test_no_student_or_weak_label_job_reads_a_label_but_the_oracle(oracle_run: tuple[Path, str]) -> None:
    workdir, dry_run = oracle_run
    students, weak_labels = job_inputs(dry_run, "train_student"), job_inputs(dry_run, "weak_labels")
    assert sorted(students) == [f"w2s/xent/{lineage}" for lineage in LINEAGES]
    assert sorted(weak_labels) == ["gt/small", "w2s/xent/small__mid"]
    unlabelled = [f"{DATA_DIR}/unlabelled/train_w2s.parquet", f"{DATA_DIR}/unlabelled/test.parquet"]
    assert students["w2s/xent/small__mid__big"] == [*unlabelled, f"{SEED_DIR}/w2s/xent/small__mid/weak_labels.parquet",
                                                    f"{SEED_DIR}/features/big.safetensors"]
    assert weak_labels["gt/small"] == [f"{DATA_DIR}/unlabelled/train_w2s.parquet",
                                       f"{SEED_DIR}/gt/small/predictions.parquet"]
    labelled = {(rule, run): [path for path in paths if label_columns(workdir, path)]
                for rule, jobs in (("train_student", students), ("weak_labels", weak_labels))
                for run, paths in jobs.items()}
    # mid selects on ground truth, so its one student gets the labelled train_w2s, and nothing else does.
    assert {job: paths for job, paths in labelled.items() if paths} == {
        ("train_student", "w2s/xent/small__mid"): [f"{DATA_DIR}/train_w2s.parquet"]}
    assert label_columns(workdir, f"{DATA_DIR}/train_w2s.parquet") == ["label"]


def test_predictions_and_weak_labels_carry_no_label_and_metrics_mark_the_oracle(oracle_run: tuple[Path, str]) -> None:
    workdir, _ = oracle_run
    seed_dir = workdir / SEED_DIR
    for run in ("gt/small", "gt/mid", "w2s/xent/small__mid", "w2s/xent/small__mid__big"):
        assert pq.read_schema(seed_dir / run / "predictions.parquet").names == ["split", "id", "probs"], run
    assert pq.read_schema(seed_dir / "gt/small/weak_labels.parquet").names == [
        "id", "soft_label", "hard_label", "train_w2s_sha256"]
    selected = {lineage: json.loads((seed_dir / f"w2s/xent/{lineage}/metrics.json").read_text())
                ["uses_ground_truth_selection"] for lineage in LINEAGES}
    assert selected == {"small__mid": True, "small__mid__big": False}
    # The oracle student selected on true labels, so its holdout scores exist.
    history = pd.read_parquet(seed_dir / "w2s/xent/small__mid/history.parquet")
    assert history["selection_score"].notna().any()
