"""The package's layers and its freedom from import circles, as pyproject.toml's import-linter contracts state
them (docs/design.md, "Layers"): the package keeps both, and an upward import or a circle breaks them by name."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

from helpers import REPO

LINT = "import sys; from importlinter.cli import lint_imports_command; sys.argv[0] = 'lint-imports'; " \
       "lint_imports_command()"


def lint_imports(package_root: Path, config: Path) -> subprocess.CompletedProcess:
    """import-linter's contracts in `config` on the w2s package under `package_root`, in a process of its own
    that imports that package."""
    env = {**os.environ, "PYTHONPATH": str(package_root)}
    return subprocess.run([sys.executable, "-c", LINT, "--config", str(config), "--no-cache"],
                          capture_output=True, text=True, env=env, cwd=package_root)


def test_the_package_keeps_its_layers_and_has_no_import_circles() -> None:
    linted = lint_imports(REPO / "src", REPO / "pyproject.toml")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    assert "Contracts: 2 kept, 0 broken." in linted.stdout


def test_an_upward_import_and_a_circle_are_named(tmp_path: Path) -> None:
    shutil.copytree(REPO / "src" / "w2s", tmp_path / "w2s", ignore=shutil.ignore_patterns("__pycache__"))
    # data reaching up to the pipeline, and the training loop importing the launcher that imports it
    with open(tmp_path / "w2s" / "data" / "labels.py", "a") as labels:
        labels.write("\nfrom w2s.pipeline import gpus\n")
    with open(tmp_path / "w2s" / "training" / "loop.py", "a") as loop:
        loop.write("\nfrom w2s.training import launch\n")
    linted = lint_imports(tmp_path, REPO / "pyproject.toml")
    assert linted.returncode == 1, linted.stdout + linted.stderr
    report = " ".join(linted.stdout.split())
    assert "Contracts: 0 kept, 2 broken." in report
    assert "w2s.data is not allowed to import w2s.pipeline: - w2s.data.labels -> w2s.pipeline.gpus" in report
    assert "No cycles are allowed in w2s.training." in report
