"""Where a method's code is: a config's `entry` in one of three forms, checked without running it (check_entry,
torch-free, for the config validator), its source file (source_file, the method job's code input, so an edit reruns
its runs) and the callable itself (load_method).

- "path/to/file.py:function": a file of its own, the path relative to the working directory (or absolute);
- "package.module:function": a module on the Python path (an installed package, or PYTHONPATH);
- "name": registered by an installed package under the entry-point group `w2s.methods`.
"""

from __future__ import annotations

import hashlib
import importlib
import importlib.metadata
import importlib.util
import re
from pathlib import Path
from typing import Any, Callable

ENTRY_POINT_GROUP = "w2s.methods"
_IDENTIFIER = r"[A-Za-z_][A-Za-z0-9_]*"
_MODULE = rf"{_IDENTIFIER}(\.{_IDENTIFIER})*"
FORMS = ('"path/to/file.py:function", "package.module:function", or the name of an entry point in the group '
         f"'{ENTRY_POINT_GROUP}'")


class EntryError(ValueError):
    """A method's entry is malformed, or names code that cannot be found; the message says which and how to fix."""


def check_entry(entry: str) -> str | None:
    """Why `entry` is not a method entry in one of FORMS, or None when its form is right."""
    if ":" not in entry:
        return None if re.fullmatch(r"[A-Za-z0-9_.-]+", entry) else f"'{entry}' is none of {FORMS}"
    target, function = entry.rsplit(":", 1)
    if not re.fullmatch(_IDENTIFIER, function):
        return f"'{function}' after the ':' of '{entry}' is not a Python function name"
    if target.endswith(".py") or re.fullmatch(_MODULE, target):
        return None
    return f"'{target}' before the ':' of '{entry}' is neither a .py file nor a module name"


def _entry_point(name: str) -> importlib.metadata.EntryPoint:
    found = [point for point in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP) if point.name == name]
    if not found:
        raise EntryError(f"no installed package registers a method '{name}' under the entry-point group "
                         f"'{ENTRY_POINT_GROUP}'; install it, or give the entry as {FORMS}")
    return found[0]


def _target(entry: str) -> tuple[str, str]:
    """(module or file, function) of an entry, an entry point's resolved to its 'module:function'."""
    if ":" not in entry:
        entry = _entry_point(entry).value
    target, function = entry.rsplit(":", 1)
    return target, function


def source_file(entry: str, workdir: Path = Path(".")) -> Path:
    """The file that holds the method's code; imports its packages' parents but runs no method."""
    problem = check_entry(entry)
    if problem:
        raise EntryError(problem)
    target, _ = _target(entry)
    if target.endswith(".py"):
        path = Path(target) if Path(target).is_absolute() else workdir / target
        if not path.is_file():
            raise EntryError(f"method file '{target}' does not exist (from {workdir.resolve()}); fix the entry's path")
        return path
    try:
        spec = importlib.util.find_spec(target)
    except (ImportError, ValueError) as err:
        raise EntryError(f"cannot find module '{target}' of method entry '{entry}': {err}") from err
    if spec is None or spec.origin is None or not Path(spec.origin).is_file():
        raise EntryError(f"cannot find module '{target}' of method entry '{entry}' on the Python path; install its "
                         "package or add its folder to PYTHONPATH, or give the entry as a file: 'path/to/file.py:function'")
    return Path(spec.origin)


def load_method(entry: str, workdir: Path = Path(".")) -> Callable[..., Any]:
    """The method's callable."""
    target, function = _target(entry)
    if target.endswith(".py"):
        path = source_file(entry, workdir)
        spec = importlib.util.spec_from_file_location(f"w2s_method_{path.stem}", path)
        assert spec is not None and spec.loader is not None
        module = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(module)
    else:
        module = importlib.import_module(target)
    found = getattr(module, function, None)
    if not callable(found):
        raise EntryError(f"method entry '{entry}': {target} has no function '{function}'")
    return found


def provenance(entry: str, workdir: Path = Path(".")) -> dict[str, Any]:
    """What the report records of a method's code: its entry, file, the file's sha256 and its package's version."""
    path = source_file(entry, workdir)
    target, _ = _target(entry)
    version = None
    if not target.endswith(".py"):
        try:
            version = importlib.metadata.version(target.split(".")[0])
        except importlib.metadata.PackageNotFoundError:
            pass
    return {"entry": entry, "file": str(path), "sha256": hashlib.sha256(path.read_bytes()).hexdigest(),
            "version": version}
