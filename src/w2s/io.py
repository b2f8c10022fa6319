"""Atomic writes: an artifact appears under its final name only once it is complete.

Every writer stages the artifact under a hidden name beside its final one, checks it is not
empty, and renames it: a rename on one filesystem is atomic, so a reader (or Snakemake after a
crash) sees the whole artifact or nothing. A table with no rows or a JSON document with nothing
in it is refused, because downstream it would look like a finished result.
"""

from __future__ import annotations

import contextlib
import json
import os
import shutil
from pathlib import Path
from typing import Any, Iterator

import pandas as pd


class EmptyOutputError(ValueError):
    """A writer was asked to publish an artifact with nothing in it."""


def _staging(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def _publish(staging: Path, final: Path) -> None:
    """Rename a written staging file to its final name, unless it came out empty."""
    if staging.stat().st_size == 0:
        staging.unlink()
        raise EmptyOutputError(f"{final}: the written file is empty; nothing was published")
    staging.replace(final)


@contextlib.contextmanager
def _staged_file(path: str | Path) -> Iterator[Path]:
    final = Path(path)
    staging = _staging(final)
    try:
        yield staging
        _publish(staging, final)
    finally:
        staging.unlink(missing_ok=True)


def write_parquet(frame: pd.DataFrame, path: str | Path, *, allow_empty: bool = False) -> None:
    if frame.empty and not allow_empty:
        raise EmptyOutputError(f"{path}: refusing to write a table with no rows ({list(frame.columns)})")
    with _staged_file(path) as staging:
        frame.to_parquet(staging, index=False)


def write_json(payload: Any, path: str | Path, *, allow_empty: bool = False) -> None:
    if not payload and not allow_empty:
        raise EmptyOutputError(f"{path}: refusing to write an empty JSON document ({payload!r})")
    write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n", path)


def write_text(text: str, path: str | Path) -> None:
    write_bytes(text.encode(), path)


def write_bytes(data: bytes, path: str | Path) -> None:
    with _staged_file(path) as staging:
        staging.write_bytes(data)


def write_safetensors(tensors: dict[str, Any], path: str | Path) -> None:
    from safetensors.torch import save_file

    with _staged_file(path) as staging:
        save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(staging))


@contextlib.contextmanager
def staged_directory(path: str | Path) -> Iterator[Path]:
    """A folder to fill, renamed to `path` when the block ends without error and removed if it fails.

    An existing folder at `path` is replaced only after the new one is complete.
    """
    final = Path(path)
    staging = _staging(final)
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        yield staging
        if not any(staging.iterdir()):
            raise EmptyOutputError(f"{final}: the written folder is empty; nothing was published")
        if final.exists():
            # Renaming over a non-empty folder fails, so the old one steps aside first.
            retired = final.with_name(f".{final.name}.old{os.getpid()}")
            final.replace(retired)
            staging.replace(final)
            shutil.rmtree(retired)
        else:
            staging.replace(final)
    finally:
        shutil.rmtree(staging, ignore_errors=True)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
