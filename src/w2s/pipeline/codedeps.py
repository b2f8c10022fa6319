"""The package code a script runs: the modules of one package its imports reach, found by reading
the source with `ast`, never by importing it; and the digest file of that code, which a rule depends on.

What counts: every `import` and `from ... import` statement anywhere in a file, at module level,
inside functions or under `if TYPE_CHECKING:`. A lazy import inside a function runs in the job
whenever that function does, and reading the code cannot tell which functions run, so every one
counts; a module counted in vain costs a rerun, a module missed costs a stale result. Relative
imports resolve against the importing module's package, and `from pkg import name` counts
`pkg/name.py` when that file exists (else `name` is an attribute of the package). Importing
`pkg.mod` runs `pkg/__init__.py` first, so the package's `__init__.py` counts too. Imports of
other packages are not followed, and names built at run time (`importlib.import_module(f"...")`)
are not seen. A string that is a whole 'module:function' reference (a registered loss's function,
w2s.training.loss_registry, resolved when a job trains) counts as an import of its module.

A rule's code input is one digest file per script (write_digest): the sha256 of the script and of
every module of its closure, one line each as `sha256sum` writes them. It is rewritten only when a
line changes, so its time moves with the code's content, not with the files' times: a `touch`, or a
`git checkout` of another commit and back, reruns nothing.
"""

from __future__ import annotations

import ast
import functools
import hashlib
import os
import re
from pathlib import Path

# A 'module:function' reference, which the package resolves by importing the module at run time.
REFERENCE = re.compile(r"[A-Za-z_][\w.]*:[A-Za-z_]\w*")


def _module_file(package_dir: Path, module: str) -> Path | None:
    """The file of `module` (dotted, starting with the package's name), or None if it has none."""
    parts = module.split(".")[1:]
    base = package_dir.joinpath(*parts)
    for candidate in (base.with_suffix(".py") if parts else None, base / "__init__.py"):
        if candidate is not None and candidate.is_file():
            return candidate
    return None


def _module_name(package_dir: Path, path: Path) -> str:
    relative = path.relative_to(package_dir).with_suffix("")
    parts = [package_dir.name, *relative.parts]
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def _imported_modules(source: Path, importer: str | None, is_package: bool) -> frozenset[str]:
    """Dotted names every import statement in `source` may load: for `from m import a`, m and m.a.
    `importer` is the source's own module name (None for a script outside the package), against
    which relative imports resolve. Read once per version of the file: loading the workflow derives
    the closure of every script, and most scripts reach the same modules."""
    status = source.stat()
    return _read_imports(source, status.st_mtime_ns, status.st_size, importer, is_package)


@functools.lru_cache(maxsize=4096)
def _read_imports(source: Path, _mtime_ns: int, _size: int, importer: str | None, is_package: bool) -> frozenset[str]:
    """_imported_modules of `source` as it is at that time and size (the cache's key)."""
    try:
        tree = ast.parse(source.read_text(), filename=str(source))
    except SyntaxError as err:
        raise ValueError(f"cannot read the imports of {source}: {err}") from err
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                if importer is None:
                    raise ValueError(f"{source} uses a relative import (line {node.lineno}) outside a package")
                # One dot is the package itself in its __init__.py, and a module's package elsewhere.
                anchor = importer.split(".")
                drop = node.level - 1 if is_package else node.level
                if drop >= len(anchor):
                    raise ValueError(f"{source} line {node.lineno}: relative import beyond the top-level package")
                base = ".".join(anchor[: len(anchor) - drop])
                module = f"{base}.{node.module}" if node.module else base
            else:
                module = node.module or ""
            names.add(module)
            names.update(f"{module}.{alias.name}" for alias in node.names if alias.name != "*")
        elif isinstance(node, ast.Constant) and isinstance(node.value, str) and REFERENCE.fullmatch(node.value):
            names.add(node.value.partition(":")[0])
    return frozenset(names)


def import_closure(source: str | Path, package_dir: str | Path) -> list[Path]:
    """Every file of the package at `package_dir` (a folder with `__init__.py`, named as the package
    is imported) that `source` imports, directly or through other modules of the package, sorted;
    `source` itself is not listed."""
    package_dir = Path(package_dir).resolve()
    if not (package_dir / "__init__.py").is_file():
        raise ValueError(f"{package_dir} is no package: it has no __init__.py")
    package = package_dir.name
    start = Path(source).resolve()
    found: set[Path] = set()
    pending = [start]
    seen = {start}
    while pending:
        path = pending.pop()
        importer = _module_name(package_dir, path) if path.is_relative_to(package_dir) else None
        for name in _imported_modules(path, importer, path.name == "__init__.py"):
            if name != package and not name.startswith(f"{package}."):
                continue
            # Loading pkg.a.b runs pkg/__init__.py and pkg/a/__init__.py first.
            parts = name.split(".")
            for depth in range(1, len(parts) + 1):
                target = _module_file(package_dir, ".".join(parts[:depth]))
                if target is None:
                    continue
                found.add(target)
                if target not in seen:
                    seen.add(target)
                    pending.append(target)
    found.discard(start)
    return sorted(found)


def code_digest(files: list[Path], root: str | Path) -> str:
    """One line per file, `sha256  path` with the path relative to `root` (as `sha256sum` writes them, so
    `sha256sum -c` in `root` names a file that changed since), sorted by path: what the files say, not where
    the checkout is."""
    named = sorted((_name_under(Path(f), Path(root)), Path(f)) for f in files)
    return "".join(f"{hashlib.sha256(path.read_bytes()).hexdigest()}  {name}\n" for name, path in named)


def _name_under(file: Path, root: Path) -> str:
    """`file`'s path relative to `root`: as given, through a link among `root`'s entries (a workflow folder of links
    to a checkout's folders, as tests/workflow/test_your_data.py makes), or with both resolved; else its absolute path."""
    resolved = file.resolve()
    candidates = [(Path(os.path.abspath(file)), Path(os.path.abspath(root)), ""), (resolved, root.resolve(), "")]
    if root.is_dir():
        candidates += [(resolved, entry.resolve(), entry.name + "/") for entry in sorted(root.iterdir())
                       if entry.is_symlink()]
    for path, folder, prefix in candidates:
        if path.is_relative_to(folder):
            return prefix + path.relative_to(folder).as_posix()
    return resolved.as_posix()


def write_digest(path: str | Path, files: list[Path], root: str | Path) -> Path:
    """The digest file of `files` (code_digest) at `path`, rewritten only when their content changed. A first
    digest takes the newest time among the files, so that results built from this code before the digest
    existed (or after its folder was deleted) stay as current as the files' times made them."""
    path = Path(path)
    content = code_digest(files, root)
    if path.is_file() and path.read_text() == content:
        return path
    path.parent.mkdir(parents=True, exist_ok=True)
    # Written beside and renamed: a job that loads the workflow meanwhile reads the old digest or the new one.
    staged = path.with_name(f".{path.name}.{os.getpid()}")
    staged.write_text(content)
    if not path.exists():
        newest = max(Path(f).stat().st_mtime_ns for f in files)
        os.utime(staged, ns=(newest, newest))
    os.replace(staged, path)
    return path
