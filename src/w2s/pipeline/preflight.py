"""Preflight: check in minutes, on the machine that will run it, that a config's real run can start.

    python -m w2s.pipeline.preflight config/config.yaml

Every dataset is read at its revision (unpinned ones are resolved and written to the lock file
beside the config), converted and counted; every model's config, tokenizer and weights load in the
configured dtype, equal their checkpoint (and, where the hub is reachable, the hub's sha256 of each
file), and take one forward and backward pass on two rows at max_length; the machine's GPUs are
compared with what each job will ask for. With --no-weights no weight is downloaded or converted:
the weights files' headers are read and each tensor's shape checked against the config. One row per
check is printed as it finishes, OK, WARN (a check that cannot be made here) or FAIL with the fix,
and the exit status is 1 if any check failed.
"""

import argparse
import sys
import tempfile
from pathlib import Path
from typing import Any, Iterator

from w2s import revisions
from w2s.pipeline import config as w2s_config
from w2s.pipeline import experiment as w2s_experiment
from w2s.pipeline import schema as w2s_schema
from w2s.pipeline import validation as w2s_validation
from w2s.pipeline.dataset_checks import check_dataset
from w2s.pipeline.machine_checks import check_machine
from w2s.pipeline.model_checks import check_model
from w2s.pipeline.preflight_check import FAIL, OK, WARN, Check

def _quiet_progress_bars() -> None:
    """One row per check: the libraries' progress bars would break the table up."""
    import datasets
    import transformers

    datasets.disable_progress_bars()
    transformers.utils.logging.disable_progress_bar()
    transformers.utils.logging.set_verbosity_error()


def run(config: dict[str, Any], *, lock_path: Path | None, parts: set[str], load_weights: bool,
        only: set[str] | None = None, out: Any = None, write_lock: bool = True) -> list[Check]:
    """Run the checks of `parts` (datasets, models, machine), printing each row to `out` (default
    stdout) as it finishes. Revisions are read from the lock file `lock_path` (none: no lock), and those
    resolved are written to it unless not `write_lock`."""
    out = out or sys.stdout
    lock = revisions.read_lock(lock_path) if lock_path is not None else {s: {} for s in revisions.SECTIONS.values()}
    if not write_lock:
        lock_path = None
    results: list[Check] = []

    def emit(rows: Iterator[Check]) -> None:
        for row in rows:
            print(row.line(), file=out, flush=True)
            results.append(row)

    _quiet_progress_bars()
    print(f"{'':<4}  {'item':<24}  {'check':<28}  detail", file=out)
    seed = config["seeds"][0]
    if "datasets" in parts:
        with tempfile.TemporaryDirectory() as fetch_dir:
            for name, entry in config["datasets"].items():
                if only is None or name in only:
                    emit(check_dataset(name, entry, seed, lock, lock_path, Path(fetch_dir)))
    if "models" in parts:
        prompted = set(config.get("prompting", {}).get("models", []))
        names = list(dict.fromkeys([*w2s_experiment.trained_models(config), *prompted]))
        for name in names:
            if only is None or name in only:
                entry = dict(config["models"][name])
                if "convert" in entry:
                    entry["converted"] = f"results/models/{name}"
                emit(check_model(name, entry, w2s_experiment.training_params(config, name), lock, lock_path,
                                 load_weights=load_weights, causal_lm=name in prompted))
    if "machine" in parts:
        emit(check_machine(config, only))
    counts = {status: sum(r.status == status for r in results) for status in (OK, FAIL, WARN)}
    warned = f", {counts[WARN]} could not be checked here (WARN)" if counts[WARN] else ""
    print(f"\n{counts[OK]} passed, {counts[FAIL]} failed{warned}", file=out)
    return results


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2s.pipeline.preflight", description=__doc__.split("\n\n")[0])
    parser.add_argument("config")
    parser.add_argument("--schema", default=str(w2s_schema.SHIPPED_SCHEMA))
    parser.add_argument("--only", nargs="+", metavar="NAME", help="check only these datasets and models")
    parser.add_argument("--skip", nargs="+", choices=["datasets", "models", "machine"], default=[],
                        help="leave out a part")
    parser.add_argument("--no-weights", action="store_true",
                        help="check configs and tokenizers only: download and load no weights")
    parser.add_argument("--lock", help=f"the lock file that revisions are read from and resolved ones written to "
                                       f"(default: {revisions.LOCK_NAME} beside the config, where the workflow reads it)")
    parser.add_argument("--no-lock", action="store_true", help="read the lock file but write nothing to it")
    args = parser.parse_args(argv)
    try:
        config = w2s_config.load_config(args.config, args.schema)
    except (w2s_validation.ConfigError, OSError) as err:
        print(f"{args.config}: {err}", file=sys.stderr)
        return 2
    results = run(config, lock_path=Path(args.lock) if args.lock else revisions.lock_file(args.config),
                  write_lock=not args.no_lock, parts={"datasets", "models", "machine"} - set(args.skip),
                  load_weights=not args.no_weights, only=set(args.only) if args.only else None)
    return 1 if any(r.status == FAIL for r in results) else 0
