"""docs/your-data.md as written: each numbered example's files written, its commands run in order in a
copy of the checkout (offline), and every output it shows found in what its command printed."""

from __future__ import annotations

import os
import re
import subprocess
from dataclasses import dataclass
from pathlib import Path

import pytest
from helpers import REPO, interpreter_first_on_path

DOC = REPO / "docs" / "your-data.md"
# A fenced block: its language, its file name (title="..."), its body.
FENCE = re.compile(r"^```(\w*)(?: title=\"([^\"]+)\")?\n(.*?)^```$", re.MULTILINE | re.DOTALL)
# What a copy of the checkout needs to run the workflow and the examples.
CHECKOUT = ("Snakefile", "rules", "workflow", "config", "src", "examples")


@dataclass(frozen=True)
class Block:
    language: str
    title: str | None
    body: str


def doc_examples() -> dict[str, list[Block]]:
    """The numbered sections of the doc ("## 1. ..."), each its fenced blocks in order."""
    examples = {}
    for section in re.split(r"^## ", DOC.read_text(), flags=re.MULTILINE)[1:]:
        heading = section.splitlines()[0]
        if re.match(r"\d+\. ", heading):
            examples[heading] = [Block(m.group(1), m.group(2), m.group(3)) for m in FENCE.finditer(section)]
    return examples


EXAMPLES = doc_examples()


def test_the_doc_has_its_five_examples_each_with_a_check_preflight_and_run() -> None:
    assert [heading.split(".")[0] for heading in EXAMPLES] == ["1", "2", "3", "4", "5"]
    for heading, blocks in EXAMPLES.items():
        commands = "\n".join(block.body for block in blocks if block.language == "bash")
        for step in ("python -m w2s.pipeline.config ", "python -m w2s.pipeline.preflight ", "snakemake --cores 2 "):
            assert step in commands, (heading, step)
        assert any(block.title and block.title.endswith(".yaml") for block in blocks), heading


def shown_lines_in_order(shown: str, printed: str) -> list[str]:
    """The lines of `shown` not found in `printed` in their order (each stripped of its spaces at the ends)."""
    lines = [line.strip() for line in printed.splitlines()]
    missing, at = [], 0
    for line in (line.strip() for line in shown.splitlines() if line.strip()):
        try:
            at = lines.index(line, at) + 1
        except ValueError:
            missing.append(line)
    return missing


@pytest.mark.parametrize("heading", list(EXAMPLES))
def test_each_example_runs_as_written(heading: str, tmp_path: Path) -> None:
    for name in CHECKOUT:
        (tmp_path / name).symlink_to(REPO / name)
    # Offline, and the datasets cache of this run only; `python` and `snakemake` are this interpreter's.
    env = interpreter_first_on_path({**os.environ, "HF_HUB_OFFLINE": "1",
                                     "HF_DATASETS_CACHE": str(tmp_path / "hf-datasets")})
    printed = None
    for block in EXAMPLES[heading]:
        if block.title is not None:
            (tmp_path / block.title).write_text(block.body)
        elif block.language == "bash":
            result = subprocess.run(["bash", "-euo", "pipefail", "-c", block.body], cwd=tmp_path, env=env,
                                    capture_output=True, text=True)
            printed = result.stdout + result.stderr
            assert result.returncode == 0, f"{heading}: `{block.body.strip()}` failed:\n{printed[-4000:]}"
        elif block.language == "text":
            assert printed is not None, f"{heading}: an output block before any command"
            assert shown_lines_in_order(block.body, printed) == [], f"{heading}: printed instead:\n{printed[-4000:]}"
    assert (tmp_path / "results" / "report" / "report.html").is_file()
    assert (tmp_path / "results" / "summary.csv").is_file()
