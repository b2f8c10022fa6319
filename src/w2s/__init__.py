"""Weak-to-strong generalization experiments: data, models, training, evaluation, report, and the
pipeline around them."""

import os
import sys
from pathlib import Path

from w2s.models.torchvision_ops import declare_before_torchvision

# The folder of the Snakemake workflow this process runs for: rules/common.smk sets it before it imports w2s, and
# its jobs inherit it. Under it the package reads the workflow's config/schema.yaml (w2s.pipeline.schema).
WORKFLOW_DIR_ENV = "W2S_WORKFLOW_DIR"


def _warn_of_another_checkout() -> None:
    """A job whose w2s is not its workflow's (an environment built from another checkout) runs other code than the
    workflow's rules name: say so, with both folders. The workflow's own process says it from rules/common.smk."""
    workflow_dir = os.environ.get(WORKFLOW_DIR_ENV)
    package = Path(__file__).resolve().parent
    if not workflow_dir or "snakemake.workflow" in sys.modules:
        return
    if package == Path(workflow_dir).resolve() / "src" / "w2s":
        return
    sys.stderr.write(
        f"Warning: this job imports the w2s package in {package}, not the one of its workflow in {workflow_dir}, "
        f"so it runs that checkout's code. Build the job's environment from {workflow_dir} (environment.yml installs "
        "the package from W2S_ROOT) or put its src folder first on PYTHONPATH.\n"
    )


_warn_of_another_checkout()
declare_before_torchvision()
