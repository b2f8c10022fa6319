"""Four shipped configs rehearsed end to end (w2s.pipeline.rehearse): NLP on the hub's text datasets with GPT-2 and
Qwen-1 (config.yaml), the NLP suite's 22 datasets, the Pythia pretraining axis and ImageNet with torchvision and
timm models (vision.yaml); each config's own DAG, rules and code paths at toy scale, preflight first, one run per
job signature. tests/workflow/test_rehearse_catalogue_and_chess.py rehearses the other two: the two files take
about as long (about 590 s each on 2 cores), so two test workers share the work evenly."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import rehearse_shipped_config


@pytest.mark.parametrize("name", ["config", "vision", "nlp_suite", "pretraining_axis"])
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    rehearse_shipped_config(name, tmp_path / name)
