"""Every shipped config rehearsed end to end (w2s.pipeline.rehearse): its own DAG, rules and code paths at toy
scale, preflight first, one run per job signature. A failure names the config, the job and its signature."""

from __future__ import annotations

import io
from pathlib import Path

import pandas as pd
import pytest

from conftest import REPO
from w2s.pipeline import rehearse
from w2s.pipeline.rehearsal.plan import signature

SHIPPED = ["config", "nlp_suite", "vision", "chess", "pretraining_axis", "catalogue"]


@pytest.mark.parametrize("name", SHIPPED)
def test_the_shipped_config_rehearses(name: str, tmp_path: Path) -> None:
    printed = io.StringIO()
    try:
        result = rehearse.rehearse(REPO / "config" / f"{name}.yaml", tmp_path / name, out=printed)
    except rehearse.RehearsalError as err:
        pytest.fail(str(err), pytrace=False)
    assert result.plan is not None
    # Every job signature of the config's whole DAG ran at least once.
    whole = {signature(job, result.filled) for job in result.whole}
    assert result.plan.signatures == whole
    summary = pd.read_csv(tmp_path / name / "results" / "summary.csv")
    runs = {f"{row.dataset}/seed{row.seed}/{row.run}" for row in summary.itertuples()}
    assert runs == set(result.plan.runs) or not result.plan.runs
    assert (tmp_path / name / "results" / "report" / "report.html").stat().st_size > 0
    assert f"rehearsal of {REPO / 'config' / f'{name}.yaml'}: {len(result.plan.jobs)} of {len(result.whole)} jobs run" \
        in printed.getvalue()
