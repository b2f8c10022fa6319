"""The shipped configs that read the hub's text datasets and GPT-2, Qwen-1 and Pythia models, rehearsed end to
end (w2s.pipeline.rehearse): each config's own DAG, rules and code paths at toy scale, preflight first, one run
per job signature. Split from tests/workflow/test_rehearse_other_configs.py so that two test workers share the work."""

from __future__ import annotations

from pathlib import Path

import pytest

from helpers import rehearse_shipped_config


@pytest.mark.parametrize("name", ["config", "chess", "pretraining_axis"])
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    rehearse_shipped_config(name, tmp_path / name)
