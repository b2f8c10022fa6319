"""Atomic writers: nothing under the final name until the artifact is complete and not empty."""

from __future__ import annotations

from pathlib import Path

import pandas as pd
import pytest

from w2s import io


def leftovers(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def test_an_empty_table_or_metrics_document_is_refused_and_nothing_is_written(tmp_path: Path) -> None:
    with pytest.raises(io.EmptyOutputError, match=r"predictions.parquet: refusing to write a table with no rows \(\['id', 'prob'\]\)"):
        io.write_parquet(pd.DataFrame({"id": [], "prob": []}), tmp_path / "predictions.parquet")
    with pytest.raises(io.EmptyOutputError, match=r"metrics.json: refusing to write an empty JSON document \(\{\}\)"):
        io.write_json({}, tmp_path / "metrics.json")
    assert leftovers(tmp_path) == []
    io.write_json([], tmp_path / "file_times.json", allow_empty=True)
    io.write_parquet(pd.DataFrame({"id": []}), tmp_path / "none.parquet", allow_empty=True)
    assert leftovers(tmp_path) == ["file_times.json", "none.parquet"]
    assert io.read_json(tmp_path / "file_times.json") == []


def test_a_writer_that_produces_an_empty_file_publishes_nothing(tmp_path: Path) -> None:
    with pytest.raises(io.EmptyOutputError, match="report.html: the written file is empty; nothing was published"):
        io.write_text("", tmp_path / "report.html")
    assert leftovers(tmp_path) == []


def test_a_failing_writer_leaves_the_previous_file_and_no_staging_file(tmp_path: Path) -> None:
    target = tmp_path / "summary.parquet"
    io.write_parquet(pd.DataFrame({"accuracy": [0.75]}), target)
    with pytest.raises(ValueError):
        io.write_parquet(pd.DataFrame({"mixed": [1, "a"]}), target)  # pyarrow cannot store the column
    assert leftovers(tmp_path) == ["summary.parquet"]
    assert pd.read_parquet(target)["accuracy"].tolist() == [0.75]


def test_a_staged_directory_appears_whole_replaces_an_old_one_and_vanishes_on_failure(tmp_path: Path) -> None:
    target = tmp_path / "checkpoint"
    with io.staged_directory(target) as staging:
        (staging / "head.safetensors").write_bytes(b"weights")
        assert not target.exists()
    assert leftovers(target) == ["head.safetensors"]
    with io.staged_directory(target) as staging:
        (staging / "adapter.safetensors").write_bytes(b"new weights")
    assert leftovers(target) == ["adapter.safetensors"]
    with pytest.raises(RuntimeError, match="out of memory"):
        with io.staged_directory(target) as staging:
            (staging / "half.safetensors").write_bytes(b"part")
            raise RuntimeError("out of memory")
    assert leftovers(tmp_path) == ["checkpoint"] and leftovers(target) == ["adapter.safetensors"]
    with pytest.raises(io.EmptyOutputError, match="the written folder is empty"):
        with io.staged_directory(tmp_path / "figures"):
            pass
    assert leftovers(tmp_path) == ["checkpoint"]
