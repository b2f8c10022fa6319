"""The other shipped configs rehearsed end to end (w2s.pipeline.rehearse): the NLP suite's 22 datasets, the
Pythia pretraining axis and the offline catalogue on its packaged models. Split from
tests/workflow/test_rehearse_paper_settings.py so that two test workers share the work."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import rehearse_shipped_config


@pytest.mark.parametrize("name", ["catalogue", "nlp_suite", "pretraining_axis"])
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    rehearse_shipped_config(name, tmp_path / name)
