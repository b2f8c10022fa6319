"""Route a job's log lines, warnings and any fatal error to the file Snakemake names in `log:`."""

from __future__ import annotations

import logging
import sys
from types import TracebackType


def _log_fatal(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
    logging.getLogger("w2s").critical("job failed: %s", error, exc_info=(kind, error, trace))
    sys.__excepthook__(kind, error, trace)


def log_to(path: str, threads: int | None = None, prefix: str = "") -> None:
    """Log to `path`; `prefix` starts every line (a training process's rank, where several share the file)."""
    logging.basicConfig(
        filename=path, level=logging.INFO, format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = _log_fatal
    if threads:
        import torch

        torch.set_num_threads(threads)
