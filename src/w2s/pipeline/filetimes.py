"""Record the bytes and modification times of files, and put the times back after a DVC checkout.

DVC rewrites the times of the files it checks out (`dvc pull`, `dvc checkout`, and files new to
its cache at the end of each stage `dvc repro` runs), so pulled data looks newer than every model
trained on it. Snakemake compares checksums only for files below `--max-checksum-file-size` (1 MB by
default) and times for larger ones, and would retrain everything. A manifest written next to the
files records each one's md5 (the hash DVC stores) and mtime; `restore` sets a file's time back
only where its bytes are still the recorded ones.

    python -m w2s.pipeline.filetimes record results/report/file_times.json results/report results/summary.csv
    python -m w2s.pipeline.filetimes restore results/data results/report
"""

from __future__ import annotations

import argparse
import hashlib
import logging
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from w2s import io

MANIFEST_NAME = "file_times.json"

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class RestoreCounts:
    restored: int = 0
    mismatched: int = 0
    missing: int = 0

    def __add__(self, other: RestoreCounts) -> RestoreCounts:
        return RestoreCounts(self.restored + other.restored, self.mismatched + other.mismatched,
                             self.missing + other.missing)


def md5_of(path: str | Path) -> str:
    with open(path, "rb") as f:
        return hashlib.file_digest(f, "md5").hexdigest()


def write_manifest(manifest: str | Path, files: Iterable[str | Path]) -> None:
    """Record md5 and mtime_ns of each file, keyed by its path relative to the manifest's folder."""
    manifest = Path(manifest)
    entries = {
        Path(os.path.relpath(f, manifest.parent)).as_posix(): {"md5": md5_of(f), "mtime_ns": os.stat(f).st_mtime_ns}
        for f in files
    }
    io.write_json(entries, manifest, allow_empty=True)  # no files is a record too


def files_under(paths: Iterable[str | Path], *, exclude: str | Path) -> list[Path]:
    """The files named, and every file inside the folders named, except `exclude`."""
    found = []
    for path in map(Path, paths):
        found += sorted(p for p in path.rglob("*") if p.is_file()) if path.is_dir() else [path]
    return [f for f in found if f.resolve() != Path(exclude).resolve()]


def restore_manifest(manifest: str | Path) -> RestoreCounts:
    """Set each recorded file's mtime back to the recorded one where its md5 still matches."""
    manifest = Path(manifest)
    restored = mismatched = missing = 0
    for name, entry in io.read_json(manifest).items():
        path = manifest.parent / name
        if not path.is_file():
            missing += 1
            log.warning("%s: missing, recorded in %s", path, manifest)
        elif md5_of(path) != entry["md5"]:
            mismatched += 1
            log.warning("%s: content differs from %s, time left as it is", path, manifest)
        else:
            os.utime(path, ns=(os.stat(path).st_atime_ns, entry["mtime_ns"]))
            restored += 1
    return RestoreCounts(restored, mismatched, missing)


def restore_tree(root: str | Path) -> RestoreCounts:
    """Restore the times recorded by every manifest under root."""
    total = RestoreCounts()
    for manifest in sorted(Path(root).rglob(MANIFEST_NAME)):
        total += restore_manifest(manifest)
    log.info("%s: %d file times restored, %d mismatched, %d missing",
             root, total.restored, total.mismatched, total.missing)
    return total


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m w2s.pipeline.filetimes", description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    record = commands.add_parser("record", help="record the files under PATH in MANIFEST")
    record.add_argument("manifest", metavar="MANIFEST")
    record.add_argument("paths", nargs="+", metavar="PATH")
    restore = commands.add_parser("restore", help=f"restore the times recorded in every {MANIFEST_NAME} under ROOT")
    restore.add_argument("roots", nargs="+", metavar="ROOT")
    args = parser.parse_args(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    if args.command == "record":
        files = files_under(args.paths, exclude=args.manifest)
        write_manifest(args.manifest, files)
        log.info("%s: recorded %d files", args.manifest, len(files))
    else:
        # Mismatches are logged, not failed: a file rewritten since its manifest keeps its new time,
        # which is the one Snakemake should see.
        for root in args.roots:
            restore_tree(root)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
