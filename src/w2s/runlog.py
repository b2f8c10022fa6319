"""Route a job's log lines, warnings and any fatal error to the file Snakemake names in `log:`; on the
terminal a failed job leaves one line, and Snakemake's run ends with each failed job's own message."""

from __future__ import annotations

import logging
import re
import sys
from pathlib import Path
from types import TracebackType
from typing import Callable, TextIO

FAILED = "job failed: "
# How Snakemake's own log names a failed job's log files (Snakemake 8 and 9).
FAILED_JOB_LOGS = re.compile(r"^Error in rule (\S+):$|^\s+log: (.+) \(check log file\(s\) for error details\)$")


def _fatal_hook(path: str) -> Callable[[type[BaseException], BaseException, TracebackType | None], None]:
    def log_fatal(kind: type[BaseException], error: BaseException, trace: TracebackType | None) -> None:
        logging.getLogger("w2s").critical("%s%s", FAILED, error, exc_info=(kind, error, trace))
        # The traceback is in the log; the terminal, where Snakemake shows it among its own report of the job,
        # gets the message alone.
        sys.stderr.write(f"{kind.__name__}: {error} (traceback in {path})\n")

    return log_fatal


def log_to(path: str, threads: int | None = None, prefix: str = "") -> None:
    """Log to `path`; `prefix` starts every line (a training process's rank, where several share the file).
    An exception the job does not catch is logged with its traceback, and written to stderr as one line."""
    logging.basicConfig(
        filename=path, level=logging.INFO, format=f"%(asctime)s {prefix}%(levelname)s %(name)s: %(message)s",
        force=True,
    )
    logging.captureWarnings(True)
    sys.excepthook = _fatal_hook(path)
    if threads:
        import torch

        torch.set_num_threads(threads)


def failed_job_message(log_path: Path) -> str | None:
    """The message a failed job logged (FAILED), without its traceback; None when it logged none."""
    if not log_path.is_file():
        return None
    text = log_path.read_text(errors="replace")
    start = text.rfind(FAILED)
    if start < 0:
        return None
    message = text[start + len(FAILED):].split("\nTraceback (most recent call last):", 1)[0]
    return " ".join(message.split())


def report_failures(snakemake_logs: str | list[str], out: TextIO | None = None) -> None:
    """Snakemake's `onerror`: each failed job's rule, log file and own message, read from the job logs that
    Snakemake's log (`snakemake_logs`) names, so that they are the last lines of the run."""
    out = out or sys.stderr
    paths = [snakemake_logs] if isinstance(snakemake_logs, str) else list(snakemake_logs)
    rule = None
    for snakemake_log in filter(lambda path: Path(path).is_file(), paths):
        for line in Path(snakemake_log).read_text(errors="replace").splitlines():
            match = FAILED_JOB_LOGS.match(line)
            if match is None:
                continue
            if match.group(1):
                rule = match.group(1)
                continue
            for job_log in match.group(2).split(", "):
                message = failed_job_message(Path(job_log))
                if message is not None:
                    print(f"{rule} failed: {message} (log: {job_log})", file=out)
