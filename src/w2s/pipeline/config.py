"""A config file read and checked as the workflow does (load_config), and the command that checks config
files: `python -m w2s.pipeline.config CONFIG...`."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Any

import yaml

from w2s.pipeline.schema import SHIPPED_SCHEMA
from w2s.pipeline.validation import ConfigError, check_data_files, validate_config


def load_config(path: str | Path, schema_path: str | Path) -> dict[str, Any]:
    """A config file, validated, with its local data checked (check_data_files) from the working directory."""
    config = read_config(path)
    validate_config(config, schema_path)
    check_data_files(config, Path.cwd())
    return config


def read_config(path: str | Path) -> Any:
    try:
        with Path(path).open() as stream:  # a stream, so that the error names the file
            return yaml.safe_load(stream)
    except yaml.YAMLError as err:
        raise ConfigError(f"not valid YAML; fix the line named here:\n{err}") from err


def main(argv: list[str] | None = None) -> int:
    """Check config files as the workflow does, and say what each local data file holds. Snakemake's own
    message for a --configfile that is not YAML names neither the file nor the line; this names both."""
    parser = argparse.ArgumentParser(prog="python -m w2s.pipeline.config", description="check w2s config files")
    parser.add_argument("configs", nargs="+", metavar="CONFIG")
    parser.add_argument("--schema", default=str(SHIPPED_SCHEMA))
    args = parser.parse_args(argv)
    failed = 0
    for path in args.configs:
        try:
            config = read_config(path)
            validate_config(config, args.schema)
            notes = check_data_files(config, Path.cwd())
        except (ConfigError, OSError) as err:
            print(f"{path}: {err}", file=sys.stderr)
            failed += 1
        else:
            print(f"{path}: valid" + "".join(f"\n  {note}" for note in notes))
    return 1 if failed else 0


if __name__ == "__main__":
    raise SystemExit(main())
