"""Route a job's log lines and warnings to the file Snakemake names in `log:`."""

from __future__ import annotations

import logging


def log_to(path: str, threads: int | None = None) -> None:
    logging.basicConfig(
        filename=path, level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s", force=True
    )
    logging.captureWarnings(True)
    if threads:
        import torch

        torch.set_num_threads(threads)
