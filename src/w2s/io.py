"""Atomic writes: an artifact appears under its final name only once it is complete."""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pandas as pd


def _staging(path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    return path.with_name(f".{path.name}.tmp{os.getpid()}")


def write_parquet(frame: pd.DataFrame, path: str | Path) -> None:
    final = Path(path)
    staging = _staging(final)
    frame.to_parquet(staging, index=False)
    staging.replace(final)


def write_json(payload: Any, path: str | Path) -> None:
    final = Path(path)
    staging = _staging(final)
    staging.write_text(json.dumps(payload, indent=2, sort_keys=True, allow_nan=False) + "\n")
    staging.replace(final)


def write_text(text: str, path: str | Path) -> None:
    final = Path(path)
    staging = _staging(final)
    staging.write_text(text)
    staging.replace(final)


def write_safetensors(tensors: dict[str, Any], path: str | Path) -> None:
    from safetensors.torch import save_file

    final = Path(path)
    staging = _staging(final)
    save_file({k: v.detach().cpu().contiguous() for k, v in tensors.items()}, str(staging))
    staging.replace(final)


def read_json(path: str | Path) -> Any:
    return json.loads(Path(path).read_text())
