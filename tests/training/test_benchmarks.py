"""The engine's benchmark script (benchmarks/run.py, `make benchmark`) still imports the package names it uses:
it runs only on request, so a moved name would otherwise break it unseen until a GPU is lent."""

import subprocess
import sys

from helpers import REPO


def test_the_benchmark_script_starts() -> None:
    done = subprocess.run([sys.executable, str(REPO / "benchmarks" / "run.py"), "--help"],
                          capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert "--only {throughput,quality,sweep,rerun,fsdp}" in done.stdout
