"""The other two shipped configs rehearsed end to end (w2s.pipeline.rehearse): the offline catalogue on its
packaged models (real weights: the longest rehearsal) and chess puzzles. Split from
tests/workflow/test_rehearse_text_and_vision.py so that two test workers share the work evenly."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import rehearse_shipped_config


@pytest.mark.parametrize("name", ["catalogue", "chess"])
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    rehearse_shipped_config(name, tmp_path / name)
