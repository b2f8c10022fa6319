"""File-time manifests: a time is put back only on a file whose bytes are the recorded ones."""

from __future__ import annotations

import hashlib
import logging
import os
from pathlib import Path

import pytest

from w2s.pipeline import filetimes

from w2s import io
from w2s.pipeline.filetimes import RestoreCounts

RECORDED_NS = 1_600_000_000_123_456_789
LATER_NS = 1_700_000_000_000_000_000


def write_files(folder: Path, contents: dict[str, str], mtime_ns: int) -> list[Path]:
    paths = []
    for name, text in contents.items():
        path = folder / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
        os.utime(path, ns=(mtime_ns, mtime_ns))
        paths.append(path)
    return paths


def test_manifest_records_md5_and_time_by_path_relative_to_its_folder(tmp_path: Path) -> None:
    (data,) = write_files(tmp_path / "data", {"train.parquet": "rows"}, RECORDED_NS)
    filetimes.write_manifest(tmp_path / "data" / filetimes.MANIFEST_NAME, [data])
    assert io.read_json(tmp_path / "data" / filetimes.MANIFEST_NAME) == {
        "train.parquet": {"md5": hashlib.md5(b"rows").hexdigest(), "mtime_ns": RECORDED_NS}
    }


def test_restore_sets_back_only_files_whose_md5_matches(tmp_path: Path) -> None:
    same, changed, deleted = write_files(
        tmp_path, {"same.parquet": "a", "changed.parquet": "b", "deleted.json": "c"}, RECORDED_NS
    )
    manifest = tmp_path / filetimes.MANIFEST_NAME
    filetimes.write_manifest(manifest, [same, changed, deleted])
    # What a checkout leaves: the same bytes under a new time, other bytes, a file gone.
    write_files(tmp_path, {"same.parquet": "a", "changed.parquet": "B"}, LATER_NS)
    deleted.unlink()

    assert filetimes.restore_manifest(manifest) == RestoreCounts(restored=1, mismatched=1, missing=1)
    assert same.stat().st_mtime_ns == RECORDED_NS
    assert changed.stat().st_mtime_ns == LATER_NS


def test_cli_records_a_folder_and_files_beside_it_and_restores_every_manifest_under_a_root(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.chdir(tmp_path)
    data = write_files(tmp_path, {"results/data/a/seed0/test.parquet": "t"}, RECORDED_NS)
    filetimes.write_manifest("results/data/a/seed0/file_times.json", data)
    report = write_files(tmp_path, {"results/report/report.html": "<p>", "results/report/figures/f.png": "png",
                                    "results/summary.csv": "run\n"}, RECORDED_NS)
    assert filetimes.main(["record", "results/report/file_times.json", "results/report", "results/summary.csv"]) == 0
    assert sorted(io.read_json("results/report/file_times.json")) == ["../summary.csv", "figures/f.png", "report.html"]
    for path in data + report:
        os.utime(path, ns=(LATER_NS, LATER_NS))

    with caplog.at_level(logging.INFO, logger="w2s.pipeline.filetimes"):
        assert filetimes.main(["restore", "results"]) == 0
    assert [p.stat().st_mtime_ns for p in data + report] == [RECORDED_NS] * 4
    assert "results: 4 file times restored, 0 mismatched, 0 missing" in caplog.messages


def test_restore_of_a_root_that_does_not_exist_restores_nothing(tmp_path: Path) -> None:
    assert filetimes.restore_tree(tmp_path / "results" / "report") == RestoreCounts()
