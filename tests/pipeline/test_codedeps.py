"""Code dependencies derived from imports: the closure of a script inside the package, its digest file (every
rule's code input), and the exact jobs a dry run plans after a module changes."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import pytest
import yaml

from helpers import LINEAGES, LOSSES, REPO, copy_workflow, planned_jobs, snakemake, tiny_config
from w2s.pipeline.codedeps import import_closure, write_digest

PACKAGE = REPO / "src" / "w2s"
SCRIPTS = REPO / "workflow" / "scripts"


def write(path: Path, text: str) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def test_the_closure_follows_direct_transitive_relative_and_function_level_imports(tmp_path: Path) -> None:
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", "VERSION = 1\n")
    write(pkg / "direct.py", "from pkg import sibling\nfrom pkg.viafrom import name\n")
    write(pkg / "sibling.py", "from . import relative\nfrom .relativefrom import name\n")
    write(pkg / "relative.py", "import os\n")
    write(pkg / "relativefrom.py", "name = 1\n")
    write(pkg / "viafrom.py", "name = 1\n\ndef lazy():\n    import pkg.lazy as module\n    return module\n")
    write(pkg / "lazy.py", "from .sub.deep import name\n")
    write(pkg / "sub" / "__init__.py", "")
    write(pkg / "sub" / "deep.py", "from .. import parent\nname = 1\n")
    write(pkg / "parent.py", "import pkg.direct\n")  # a cycle back to the start
    write(pkg / "unused.py", "import pkg.direct\n")
    # `VERSION` is an attribute of the package, not a module; numpy is outside it.
    script = tmp_path / "scripts" / "job.py"
    write(script, "import numpy\nfrom pkg import VERSION\n\nif VERSION:\n    from pkg.direct import sibling\n")
    assert [p.relative_to(tmp_path).as_posix() for p in import_closure(script, pkg)] == [
        "pkg/__init__.py", "pkg/direct.py", "pkg/lazy.py", "pkg/parent.py", "pkg/relative.py",
        "pkg/relativefrom.py", "pkg/sibling.py", "pkg/sub/__init__.py", "pkg/sub/deep.py", "pkg/viafrom.py",
    ]
    # A module of the package as the start: not listed itself, though the cycle reaches it again.
    assert [p.relative_to(tmp_path).as_posix() for p in import_closure(pkg / "lazy.py", pkg)] == [
        "pkg/__init__.py", "pkg/direct.py", "pkg/parent.py", "pkg/relative.py", "pkg/relativefrom.py",
        "pkg/sibling.py", "pkg/sub/__init__.py", "pkg/sub/deep.py", "pkg/viafrom.py",
    ]


def test_a_module_named_by_a_module_function_reference_counts_as_imported(tmp_path: Path) -> None:
    """A registered loss's function is resolved from its reference when a job trains (w2s.training.loss_registry):
    editing its module reruns the jobs as an edit of an imported module does."""
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", "")
    write(pkg / "registry.py", 'LOSSES = {"toy": "pkg.toy_loss:toy", "not_ours": "numpy:mean"}\n'
                               '"""pkg.docstring_only: a sentence is no reference."""\n')
    write(pkg / "toy_loss.py", "def toy():\n    return 0\n")
    write(pkg / "docstring_only.py", "")
    script = tmp_path / "scripts" / "job.py"
    write(script, "from pkg import registry\n")
    assert [p.relative_to(tmp_path).as_posix() for p in import_closure(script, pkg)] == [
        "pkg/__init__.py", "pkg/registry.py", "pkg/toy_loss.py"]


def test_a_module_edited_in_the_same_process_is_read_again(tmp_path: Path) -> None:
    """Imports are read once per version of a file (its time and size), so an edit is seen at once, even one
    that keeps the file's size, as a long-lived process (a test session) may make."""
    pkg = tmp_path / "pkg"
    write(pkg / "__init__.py", "")
    write(pkg / "a.py", "")
    write(pkg / "b.py", "")
    write(pkg / "c.py", "")
    script = tmp_path / "job.py"
    write(script, "import pkg.a\n")
    assert [p.name for p in import_closure(script, pkg)] == ["__init__.py", "a.py"]
    write(pkg / "a.py", "import pkg.b\n")
    os.utime(pkg / "a.py", ns=(1, 1))
    assert [p.name for p in import_closure(script, pkg)] == ["__init__.py", "a.py", "b.py"]
    write(pkg / "a.py", "import pkg.c\n")  # the same size, a later time
    os.utime(pkg / "a.py", ns=(2, 2))
    assert [p.name for p in import_closure(script, pkg)] == ["__init__.py", "a.py", "c.py"]


def test_bad_sources_are_refused_with_what_to_fix(tmp_path: Path) -> None:
    write(tmp_path / "pkg" / "__init__.py", "")
    write(tmp_path / "job.py", "from . import pkg\n")
    with pytest.raises(ValueError, match=r"job\.py uses a relative import \(line 1\) outside a package"):
        import_closure(tmp_path / "job.py", tmp_path / "pkg")
    write(tmp_path / "job.py", "import pkg.\n")
    with pytest.raises(ValueError, match=r"cannot read the imports of .*job\.py: invalid syntax"):
        import_closure(tmp_path / "job.py", tmp_path / "pkg")
    with pytest.raises(ValueError, match=r"is no package: it has no __init__\.py"):
        import_closure(tmp_path / "job.py", tmp_path)


# The Snakefile read by Snakemake's own parser: each rule's script and code input, as JSON.
RULES_OF_WORKFLOW = """
import json, sys
from pathlib import Path
from snakemake.api import SnakemakeApi
from snakemake.io import get_flag_value, is_flagged
from snakemake.settings.types import ConfigSettings, OutputSettings, ResourceSettings

with SnakemakeApi(OutputSettings()) as api:
    workflow = api.workflow(resource_settings=ResourceSettings(cores=1), snakefile=Path(sys.argv[1]),
                            config_settings=ConfigSettings(configfiles=[Path(sys.argv[2])]), workdir=Path(sys.argv[3]))
    rules = {}
    for rule in workflow._workflow.rules:
        script = str((Path(rule.snakefile).parent / rule.script).resolve()) if rule.script else None
        code = rule.input.get("code", [])
        code = [get_flag_value(f, "sourcecache_entry") if is_flagged(f, "sourcecache_entry") else str(f)
                for f in ([code] if isinstance(code, str) else code)]
        rules[rule.name] = {"script": script, "code": code, "shell": rule.shellcmd, "run": rule.run_func_src}
print(json.dumps(rules))
"""


def parsed_rules(tmp_path: Path) -> dict[str, dict]:
    result = subprocess.run(
        [sys.executable, "-c", RULES_OF_WORKFLOW, str(REPO / "Snakefile"), str(REPO / "config" / "demo.yaml"),
         str(tmp_path)], capture_output=True, text=True, check=True,
    )
    return json.loads(result.stdout.strip().splitlines()[-1])


def test_a_digest_lists_each_file_by_content_and_moves_only_when_a_content_does(tmp_path: Path) -> None:
    root = tmp_path / "checkout"
    write(root / "workflow" / "job.py", "import pkg.a\n")
    write(root / "pkg" / "a.py", "A = 1\n")
    files = [root / "workflow" / "job.py", root / "pkg" / "a.py"]
    set_time(files[:1], 1_000)
    set_time(files[1:], 2_000)
    digest = tmp_path / "work" / ".snakemake" / "w2s-code" / "job.py.sha256"
    assert write_digest(digest, files, root) == digest
    # sha256sum's lines, sorted by path inside the checkout; a first digest takes the files' newest time.
    assert digest.read_text() == "".join(f"{hashlib.sha256(f.read_bytes()).hexdigest()}  {name}\n"
                                         for f, name in zip(files[::-1], ["pkg/a.py", "workflow/job.py"]))
    assert digest.stat().st_mtime == 2_000
    check = subprocess.run(["sha256sum", "-c", str(digest)], cwd=root, capture_output=True, text=True)
    assert check.stdout.splitlines() == ["pkg/a.py: OK", "workflow/job.py: OK"]
    # Touched, or moved to another folder: the same content, the same digest, untouched.
    set_time(files, 3_000)
    moved = tmp_path / "moved"
    root.rename(moved)
    write_digest(digest, [moved / "workflow" / "job.py", moved / "pkg" / "a.py"], moved)
    assert digest.stat().st_mtime == 2_000
    # Changed: rewritten now.
    write(moved / "pkg" / "a.py", "A = 2\n")
    write_digest(digest, [moved / "workflow" / "job.py", moved / "pkg" / "a.py"], moved)
    assert digest.stat().st_mtime > 3_000
    assert hashlib.sha256(b"A = 2\n").hexdigest() in digest.read_text()
    assert sorted(p.name for p in digest.parent.iterdir()) == ["job.py.sha256"]


def test_a_digest_names_files_reached_through_a_workflow_folder_of_links_inside_it(tmp_path: Path) -> None:
    """docs/your-data.md's test runs the workflow from a folder of links to the checkout's folders: the digest still
    names each file under the workflow folder (once, the failure: 'is not in the subpath of')."""
    checkout = tmp_path / "checkout"
    write(checkout / "workflow" / "job.py", "import pkg.a\n")
    write(checkout / "pkg" / "a.py", "A = 1\n")
    linked = tmp_path / "linked"
    linked.mkdir()
    for name in ("workflow", "pkg"):
        (linked / name).symlink_to(checkout / name)
    digest = write_digest(tmp_path / "job.py.sha256", [(linked / "workflow" / "job.py").resolve(),
                                                      linked / "pkg" / "a.py"], linked)
    assert [line.split("  ")[1] for line in digest.read_text().splitlines()] == ["pkg/a.py", "workflow/job.py"]


def test_every_rule_that_runs_a_script_declares_the_digest_of_its_script_and_every_module_it_imports(
    tmp_path: Path
) -> None:
    rules = parsed_rules(tmp_path)
    scripts = {name: Path(rule["script"]).name for name, rule in rules.items() if rule["script"]}
    assert scripts == {
        "fetch_vader_movies": "fetch_vader_movies.py", "prepare_data": "prepare_data.py",
        "count_truncated": "count_truncated.py", "convert_qwen1": "convert_qwen1.py",
        "embed_features": "embed_features.py", "train_ground_truth": "train_model.py",
        "weak_labels": "weak_labels.py", "train_student": "train_model.py", "prompt_baseline": "prompt_baseline.py",
        "evaluate": "evaluate.py", "summarize": "summarize.py", "training_curves": "training_curves.py",
        "provenance": "provenance.py", "report": "report.py", "leaderboard": "leaderboard.py",
        "prepare_ood_test": "prepare_ood_test.py",
        "simulate_supervisor": "simulate_supervisor.py", "ensemble_supervisor": "ensemble_supervisor.py",
        "generative_finetuning": "generative_finetuning.py", "embed_student_features": "embed_features.py",
        "train_ground_truth_n_gt_rows": "train_model.py", "train_student_n_weak_labels": "train_model.py",
        "train_student_n_gt_rows": "train_model.py", "train_ft_weak_lp_gt": "train_model.py",
        "run_method": "run_method.py",
    }
    # Only `all` runs no script, and no rule runs shell or Python code of its own that could import w2s.
    assert [(name, rule["shell"], rule["run"]) for name, rule in rules.items() if not rule["script"]] == \
        [("all", None, None)]
    for name, rule in rules.items():
        if rule["script"]:
            script = Path(rule["script"])
            digest = tmp_path / ".snakemake" / "w2s-code" / f"{script.name}.sha256"
            assert rule["code"] == [str(digest)], name
            listed = [line.split("  ", 1)[1] for line in digest.read_text().splitlines()]
            assert listed == sorted(p.relative_to(REPO).as_posix() for p in [script, *import_closure(script, PACKAGE)])
    # The closure names the modules a training job runs, the lazily imported weights included.
    assert [p.relative_to(PACKAGE).as_posix() for p in import_closure(SCRIPTS / "train_model.py", PACKAGE)] == [
        "__init__.py", "data/__init__.py", "data/generations.py", "data/images.py", "data/labels.py", "data/splits.py",
        "evaluation/__init__.py", "evaluation/metrics.py", "io.py", "models/__init__.py", "models/devices.py",
        "models/lora.py", "models/packages.py", "models/source.py", "models/text.py", "models/torchvision_ops.py", "models/vision.py",
        "models/weights.py", "params.py", "pipeline/__init__.py", "pipeline/gpus.py", "runlog.py", "tasks.py",
        "training/__init__.py", "training/distributed.py", "training/features.py", "training/finetune.py",
        "training/generative.py", "training/heads.py", "training/job.py", "training/jobs.py", "training/launch.py",
        "training/loop.py", "training/loss_registry.py", "training/losses.py", "training/outputs.py",
        "training/probe.py", "training/resume.py", "training/rows.py", "training/settings.py",
        "training/sharded_adafactor.py",
    ]


# Python's own import machinery, for every script: what importing its w2s imports loads.
LOADED_BY_IMPORTS = """
import ast, importlib, json, sys
from pathlib import Path

loaded = {}
for script in sorted(Path(sys.argv[1]).glob("*.py")):
    for name in [m for m in list(sys.modules) if m == "w2s" or m.startswith("w2s.")]:
        del sys.modules[name]
    for node in ast.parse(script.read_text()).body:
        if isinstance(node, ast.Import):
            [importlib.import_module(a.name) for a in node.names]
        elif isinstance(node, ast.ImportFrom):
            importlib.import_module(node.module)
    loaded[script.name] = sorted(m for m in sys.modules if m == "w2s" or m.startswith("w2s."))
print(json.dumps(loaded))
"""


def test_the_closure_covers_every_module_python_loads_for_each_script() -> None:
    result = subprocess.run([sys.executable, "-c", LOADED_BY_IMPORTS, str(SCRIPTS)], capture_output=True,
                            text=True, check=True)
    loaded = json.loads(result.stdout.strip().splitlines()[-1])
    assert len(loaded) == 19
    for script, modules in loaded.items():
        closure = {p.relative_to(PACKAGE.parent).with_suffix("").as_posix().replace("/", ".")
                   for p in import_closure(SCRIPTS / script, PACKAGE)}
        closure = {m.removesuffix(".__init__") for m in closure}
        assert set(modules) <= closure, (script, sorted(set(modules) - closure))


# --- a dry run of a copy of the workflow, every output in place, after one module changes ----------

def dry_run(checkout: Path) -> str:
    return snakemake(checkout, "--configfile", "tiny.yaml", "-n", snakefile=checkout / "Snakefile", cores=1,
                     env={**os.environ, "PYTHONPATH": str(checkout / "src")}).stdout


def set_time(paths: list[Path], when: float) -> None:
    for path in paths:
        os.utime(path, (when, when))


def test_editing_a_module_reruns_exactly_the_jobs_whose_scripts_import_it(tmp_path: Path) -> None:
    checkout = copy_workflow(tmp_path / "checkout")
    models = {"tiny-bert": tmp_path / "tiny-bert", "tiny-gpt2": tmp_path / "tiny-gpt2"}  # never loaded
    (checkout / "tiny.yaml").write_text(yaml.safe_dump(tiny_config(models, tmp_path)))
    now = time.time()
    set_time([p for p in tmp_path.rglob("*") if p.is_file()], now - 1000)

    # Every output and benchmark of the plan, as if the workflow had run: empty, all equally recent.
    plan = dry_run(checkout)
    assert sum(planned_jobs(plan).values()) == 40
    outputs = [Path(checkout, f) for line in plan.splitlines() if line.startswith(("    output: ", "    benchmark: "))
               for f in line.split(": ", 1)[1].split(", ")]
    for path in outputs:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.touch()
    set_time(outputs, now - 100)

    losses = checkout / "src" / "w2s" / "training" / "losses.py"
    losses.write_text(losses.read_text() + "# edited\n")
    set_time([losses], now - 50)
    seed_dir = "results/sst2/seed0"
    students = [f"w2s/{loss}/{lineage}" for loss in LOSSES for lineage in LINEAGES]
    # training/losses.py is imported by jobs.py (training, feature extraction), not by prompting, which takes its
    # device helpers from models/devices.py.
    assert planned_jobs(dry_run(checkout)) == Counter(
        [("embed_features", f"{seed_dir}/features/big.safetensors")]
        + [("train_ground_truth", f"{seed_dir}/gt/{m}/checkpoint") for m in ("small", "mid", "big")]
        + [("train_student", f"{seed_dir}/{run}/checkpoint") for run in students]
        + [("weak_labels", f"{seed_dir}/{run}/weak_labels.parquet")
           for run in ("gt/small", "gt/mid", "w2s/xent/small__mid", "w2s/logconf/small__mid")]
        + [("evaluate", f"{seed_dir}/{run}/metrics.json") for run in ["gt/small", "gt/mid", "gt/big", *students]]
        + [("summarize", "results/summary.parquet"), ("training_curves", "results/training_curves.parquet"),
           ("leaderboard", "results/leaderboard.csv"), ("provenance", "results/report/provenance.json"),
           ("report", "results/report/report.html")]
    )

    # The run finished after the code's last change: each script's digest is older than every output.
    set_time(outputs, now - 40)
    set_time(list((checkout / ".snakemake" / "w2s-code").iterdir()), now - 45)
    report = checkout / "src" / "w2s" / "report" / "page.py"
    report.write_text(report.read_text() + "# edited\n")
    set_time([report], now - 30)
    assert planned_jobs(dry_run(checkout)) == Counter([("report", "results/report/report.html")])

