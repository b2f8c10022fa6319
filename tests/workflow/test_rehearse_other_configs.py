"""The other shipped configs rehearsed end to end (w2s.pipeline.rehearse): the NLP suite's 22 datasets, ImageNet
with torchvision and timm models, and the offline catalogue on its packaged models."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import rehearse_shipped_config


@pytest.mark.parametrize("name", ["nlp_suite", "vision", "catalogue"])
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    rehearse_shipped_config(name, tmp_path / name)
