"""The shipped configs of the paper's three settings rehearsed end to end (w2s.pipeline.rehearse): NLP on the hub's
text datasets with GPT-2 and Qwen-1 (config.yaml), ImageNet with torchvision and timm models (vision.yaml) and
chess puzzles (chess.yaml); each config's own DAG, rules and code paths at toy scale, preflight first, one run per
job signature. tests/workflow/test_rehearse_sweeps_and_catalogue.py rehearses the others: the two files take
about as long, so two test workers share the work evenly."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import rehearse_shipped_config


@pytest.mark.parametrize("name", ["config", "vision", "chess"])
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    rehearse_shipped_config(name, tmp_path / name)
