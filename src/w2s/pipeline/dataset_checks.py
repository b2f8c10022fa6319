"""Preflight's dataset checks: each dataset read at its revision (an unpinned one resolved and written to the lock
file), converted and counted."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path
from typing import Any, Iterator

from w2s import revisions
from w2s.data import catalogue, packaged, preparation, reading
from w2s.data.spec import DatasetSpec
from w2s.pipeline.preflight_check import FAIL, OK, Check, lock_note, run_check

def check_dataset(name: str, entry: dict[str, Any], seed: int, lock: dict[str, dict[str, str]],
                  lock_path: Path | None, fetch_dir: Path) -> Iterator[Check]:
    item = f"dataset {name}"
    spec = catalogue.dataset_spec(name, entry)
    if spec.folder is not None:
        # A local folder of images: nothing to pin; reading it is the check.
        yield run_check(item, spec.folder[0], lambda: _count_rows(name, "train", None, reading.data_source(name, entry),
                                                             spec))
        yield run_check(item, "converts", lambda: _converts(name, entry, seed, None, reading.data_source(name, entry)))
        return
    source = reading.data_source(name, entry, lock)
    data_files = entry.get("data_files") or None
    if name == "vader_movies" and not data_files:
        target = fetch_dir / "movieReviewSnippets_GroundTruth.txt"
        fetched = run_check(item, "fetch", lambda: _fetch_vader(target))
        yield fetched
        if fetched.status == FAIL:
            return
        data_files = {"train": str(target)}
    if not data_files and source.revision is None and source.mirror is None:
        resolved: dict[str, reading.DataSource] = {}

        def resolve() -> str:
            head = revisions.resolve_head("dataset", source.hub_id, source.branch)
            resolved["source"] = replace(source, revision=head, pinned_by="lock")
            return lock_note("dataset", source.hub_id, source.branch, head, lock_path)

        row = run_check(item, "revision", resolve)
        yield row
        if row.status == FAIL:
            return
        source = resolved["source"]
    elif not data_files:
        where = f"local copy {source.mirror} of " if source.mirror else ""
        yield Check(OK, item, "revision", f"{where}{source.hub_id}@{source.revision} ({source.pinned_by})")
    for split in ("train", "test"):
        if spec.splits[split] is None:
            continue
        yield run_check(item, f"{split} split", lambda split=split: _count_rows(name, split, data_files, source, spec))
    yield run_check(item, "converts", lambda: _converts(name, entry, seed, data_files, source))


def _fetch_vader(target: Path) -> str:
    packaged.fetch_vader_movies(target)
    return f"{packaged.VADER_MEMBER} from {catalogue.DATASETS['vader_movies'].hub_id}, sha256 checked"


def _count_rows(name: str, split: str, data_files: dict[str, str] | None, source: reading.DataSource,
                spec: DatasetSpec) -> str:
    rows = reading.load_rows(name, split, data_files, source, spec)
    if spec.folder is not None:  # records of (id, image, label)
        return f"{len(rows):,} images in {len({row['label'] for row in rows})} class folders"
    hub_split = spec.splits[split]
    return f"{len(rows):,} rows (hub split '{hub_split}'), columns {', '.join(rows.column_names)}"


def _converts(name: str, entry: dict[str, Any], seed: int, data_files: dict[str, str] | None,
              source: reading.DataSource) -> str:
    splits = preparation.prepare(name, entry["n_train"], entry["n_test"], seed, data_files,
                             balance=entry.get("balance", False), source=source, entry=entry)
    task = catalogue.dataset_spec(name, entry).task
    n_classes = task.n_classes
    balance = preparation.label_balance(splits, n_classes)
    fits = "n_train {:,} and n_test {:,} fit; ".format(entry["n_train"], entry["n_test"])
    if task.is_generative:  # targets, not classes
        return fits + "a generative task: distinct targets per split " + ", ".join(
            f"{split} {stats['distinct_targets']:,}" for split, stats in balance.items())
    if n_classes > 2:
        return fits + f"{n_classes} classes; classes present per split " + ", ".join(
            f"{split} {sum(f > 0 for f in stats['class_fractions'])}" for split, stats in balance.items())
    return fits + "positive fraction " + ", ".join(
        f"{split} {stats['positive_fraction']:.2f}" for split, stats in balance.items())
