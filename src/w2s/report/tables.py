"""The report's tables: the summary tables section (PGR per dataset and loss, ground-truth and prompted accuracy,
generative finetuning, chess, seeds, losses, probe fits, published references) and the provenance section."""

from __future__ import annotations

from typing import Any

import pandas as pd

from w2s.evaluation.reference import SOURCE as REFERENCE_SOURCE
from w2s.evaluation.summary import uses_ground_truth_selection
from w2s.report.aggregation import (
    CEILING,
    GT_SELECTION,
    SUPERVISOR_KINDS,
    column_or_nan,
    marked_labels,
    seed_mean,
    students,
)
from w2s.report.markup import esc, formatted, rounded, table_html

METRIC_NAMES = {"accuracy": "accuracy", "auroc": "AUROC", "pgr": "PGR", "pgr_auroc": "PGR (AUROC)",
                "agreement": "agreement"}

def _pgr_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and loss: trained students, how many have a defined PGR, and its median and mean."""
    grouped = students(summary).groupby(["dataset", "loss"], sort=True)
    table = pd.DataFrame({
        "students": grouped.size(),
        "with defined PGR": grouped["pgr"].count(),
        "median PGR": grouped["pgr"].median(),
        "mean PGR": grouped["pgr"].mean(),
    }).reset_index()
    return formatted(table, ["median PGR", "mean PGR"])


def ground_truth_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Test accuracy per dataset and model of models trained on ground-truth labels, the ceilings every
    PGR is measured against, and of prompted models with their number of shots."""
    runs = summary[summary["kind"].isin(["ground_truth", "prompt", *SUPERVISOR_KINDS])]
    generative = column_or_nan(runs, "task_kind").eq("generative")
    auroc_kind = runs.get("auroc_kind", pd.Series("AUROC", index=runs.index)).astype(object).fillna("AUROC")
    runs = runs.assign(method=[_method(run) for _, run in runs.iterrows()], task=_task_names(runs),
                       auroc_kind=auroc_kind.where(~generative, "none (generative: exact match)"))
    table = seed_mean(runs, ["dataset", "task", "model", "model_rank", "params_b", "method", "auroc_kind"],
                       ["accuracy", "auroc"])
    table = table.sort_values(["dataset", "model_rank", "model", "method"]).drop(columns="model_rank")
    table = table.rename(columns={"params_b": "params (B)", "accuracy": "test accuracy", "auroc": "AUROC",
                                  "auroc_kind": "AUROC kind"})
    table = table[["dataset", "task", "model", "method", "params (B)", "seeds", "test accuracy", "AUROC", "AUROC kind"]]
    return formatted(table, ["params (B)", "test accuracy", "AUROC"])


def generative_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Every run of a generative_finetuning twin beside the same run of its model without the stage (the
    ceiling, or the student with the same supervisors and loss): test accuracy and PGR, means over the seeds
    both have. Empty when no run started from generative finetuning."""
    if "generative_finetuning" not in summary or not summary["generative_finetuning"].eq(True).any():
        return pd.DataFrame()
    twins = summary[summary["generative_finetuning"].eq(True)]
    pairs = twins.merge(summary, left_on=["dataset", "seed", "run_without_generative_finetuning"],
                        right_on=["dataset", "seed", "run"], suffixes=("", "_without"))
    pairs = pairs.assign(run=[CEILING if kind == "ground_truth" else loss
                              for kind, loss in zip(pairs["kind"], pairs["loss"])],
                         lineage=pairs["lineage_without"])
    table = seed_mean(pairs, ["dataset", "run", "lineage"], ["accuracy_without", "accuracy", "pgr_without", "pgr"])
    table = table.rename(columns={"run": "ceiling or loss", "accuracy_without": "accuracy without",
                                  "accuracy": "accuracy with", "pgr_without": "PGR without", "pgr": "PGR with"})
    table = table[["dataset", "ceiling or loss", "lineage", "seeds", "accuracy without", "accuracy with",
                   "PGR without", "PGR with"]]
    return formatted(table, ["accuracy without", "accuracy with", "PGR without", "PGR with"])


# A chess run's metrics beyond exact match (w2s.evaluation.run_metrics._chess_metrics), named as the chess table shows them.
CHESS_COLUMNS = {"accuracy": "exact match", "legal_move_rate": "legal moves", "weak_labels_legal_move_rate":
                 "weak labels: legal moves", "weak_labels_empty": "weak labels: empty"}


def chess_table(summary: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and run of a chess task, means over seeds: exact match, the share of legal moves among the
    test generations and among the weak labels it learned from, its empty weak labels, then exact match per
    rating band and on the test split's most frequent themes where the data has them (the Lichess CSV).
    Empty when no run is a chess run."""
    if "legal_move_rate" not in summary or summary["legal_move_rate"].isna().all():
        return pd.DataFrame()
    runs = summary[summary["legal_move_rate"].notna()]
    runs = runs.assign(run=marked_labels(runs["run"], runs["gt_selected"]))
    breakdowns = [c for c in runs.columns if c.startswith(("accuracy_rating_", "accuracy_theme_"))
                  and runs[c].notna().any()]
    values = [c for c in CHESS_COLUMNS if c in runs] + breakdowns
    table = seed_mean(runs, ["dataset", "run", "chain_length"], values)
    table = table.sort_values(["dataset", "chain_length", "run"]).drop(columns="chain_length")
    names = {**CHESS_COLUMNS, **{c: c.removeprefix("accuracy_rating_") + " rated" if c.startswith("accuracy_rating_")
                                 else c.removeprefix("accuracy_theme_") for c in breakdowns}}
    table = table[["dataset", "run", "seeds", *values]].rename(columns=names)
    rates = [names[c] for c in values if c != "weak_labels_empty"]
    return rounded(formatted(table, rates), {names["weak_labels_empty"]: 0} if "weak_labels_empty" in values else {})


def _left_out_puzzles(summary: pd.DataFrame) -> str:
    """The puzzles preparation left out past max_moves, per dataset and seed, in words; "" where none was set."""
    if "puzzles_over_max_moves" not in summary or summary["puzzles_over_max_moves"].isna().all():
        return ""
    counts = summary.dropna(subset=["puzzles_over_max_moves"]).groupby(["dataset", "seed"])["puzzles_over_max_moves"]
    return "; ".join(f"{dataset} seed {seed}: {int(n)}" for (dataset, seed), n in counts.first().items())


def _task_names(runs: pd.DataFrame) -> list[str]:
    """Each run's task in words: its kind and number of classes (w2s.tasks); summaries from before task kinds
    existed are binary text tasks."""
    kinds = column_or_nan(runs, "task_kind")
    classes = column_or_nan(runs, "n_classes")
    return ["generative, exact match" if kind == "generative" else
            f"{kind if isinstance(kind, str) else 'text_classification'}, {int(k) if pd.notna(k) else 2} classes"
            for kind, k in zip(kinds, classes)]


def _method(run: pd.Series) -> str:
    """How a ground-truth or prompted model came by its predictions: training mode, or shots; a simulated or
    ensemble supervisor, how it makes its labels."""
    if run["kind"] in SUPERVISOR_KINDS:
        return str(run["weak_method"])
    if run["kind"] == "prompt":
        shots = run.get("shots")
        label = f"{int(shots)}-shot prompt" if pd.notna(shots) else "prompt"
    else:
        mode = run.get("mode")
        if mode == "pretrained_head":
            label = "pretrained head as is (no training)"
        else:
            label = f"trained ({mode})" if isinstance(mode, str) else "trained"
    return label + (GT_SELECTION if run["gt_selected"] else "")


def _seed_table(seeds: pd.DataFrame) -> pd.DataFrame:
    """Per dataset and run: seeds, and each metric's mean over seeds with its interval over seeds."""
    table = pd.DataFrame({
        "dataset": seeds["dataset"],
        "run": marked_labels(seeds["run"], uses_ground_truth_selection(seeds)),
        "seeds": seeds["n_seeds"],
    })
    for metric, name in METRIC_NAMES.items():
        table[name] = [
            "–" if pd.isna(mean) else f"{mean:.3f}" if pd.isna(low) else f"{mean:.3f} [{low:.3f}, {high:.3f}]"
            for mean, low, high in zip(seeds[f"{metric}_mean"], seeds[f"{metric}_seed_ci_low"],
                                       seeds[f"{metric}_seed_ci_high"])
        ]
    return table


def _loss_table(losses: pd.DataFrame) -> pd.DataFrame:
    """Per loss and lineage length: median and mean PGR across datasets, and how many pairs they count."""
    names = {"pgr_median": "median PGR", "pgr_mean": "mean PGR", "pgr_pairs_counted": "pairs counted",
             "pgr_pairs_excluded": "pairs excluded", "pgr_auroc_median": "median PGR (AUROC)",
             "pgr_auroc_mean": "mean PGR (AUROC)", "pgr_auroc_pairs_counted": "pairs counted (AUROC)",
             "pgr_auroc_pairs_excluded": "pairs excluded (AUROC)"}
    table = losses.assign(loss=marked_labels(losses["loss"], uses_ground_truth_selection(losses)))
    table = table[["loss", "lineage", "datasets", "pairs", *names]].rename(columns=names)
    return formatted(table, ["median PGR", "mean PGR", "median PGR (AUROC)", "mean PGR (AUROC)"])


def _reference_table(comparison: pd.DataFrame) -> pd.DataFrame:
    """Measured values beside the published ones they match; ≈ marks a value published only roughly."""
    table = comparison.assign(
        quantity=marked_labels(comparison["quantity"], uses_ground_truth_selection(comparison)),
        published=[f"≈{v:.3f}" if approximate else f"{v:.3f}"
                   for v, approximate in zip(comparison["reference"], comparison["approximate"].eq(True))],
    )
    table = table[["dataset", "model", "hub_id", "loss", "quantity", "measured", "published", "difference", "basis"]]
    # Accuracy rows have no loss and median-PGR rows no model.
    table[["model", "hub_id", "loss"]] = table[["model", "hub_id", "loss"]].fillna("–")
    return formatted(table.rename(columns={"hub_id": "hub id"}), ["measured", "difference"])


def _probe_table(curves: pd.DataFrame | None) -> pd.DataFrame:
    """Per probe run and seed: the chosen L2 strength, its holdout accuracy, training loss and convergence."""
    if curves is None or "l2" not in curves or curves["l2"].isna().all():
        return pd.DataFrame()
    probes = curves.dropna(subset=["l2"])
    every_converged = probes.groupby(["dataset", "run", "seed"])["converged"].all().rename("all converged")
    chosen = probes[probes["chosen"].eq(True)].join(every_converged, on=["dataset", "run", "seed"])
    table = pd.DataFrame({
        "dataset": chosen["dataset"], "run": marked_labels(chosen["run"], chosen["model_selection"].eq(
            "ground_truth_holdout") & chosen["kind"].eq("student")),
        "seed": chosen["seed"], "chosen L2": [f"{v:.0e}" for v in chosen["l2"]],
        "holdout accuracy": chosen["holdout_accuracy"], "training loss": chosen["train_loss"],
        "iterations": chosen["iterations"], "rounds": chosen["rounds"],
        "all converged": chosen["all converged"].map({True: "yes", False: "NO"}),
    }).sort_values(["dataset", "run", "seed"])
    return formatted(table, ["holdout accuracy", "training loss"])


def summary_tables_html(summary: pd.DataFrame, seed_summary: pd.DataFrame | None, loss_summary: pd.DataFrame | None,
                        reference: pd.DataFrame | None, curves: pd.DataFrame | None) -> str:
    """The summary tables section's body: PGR and ground-truth accuracy from the per-run summary, then each of
    summarize's other tables that was given."""
    parts = [
        "<p>PGR per dataset and loss over every trained student (each run and seed counts once, chain steps "
        "included); median and mean are taken over students with a defined PGR.</p>",
        table_html(_pgr_table(summary), "No students in the summary."),
        "<p>Test accuracy and AUROC, mean over seeds, of every model trained on ground-truth labels (the ceilings), "
        "of every pretrained head used as it is, of every simulated or ensemble supervisor (a simulated one has "
        "its real model's accuracy by construction; its probabilities are its labels, so its AUROC is that of hard "
        "labels), and of every prompted model, with its number of in-context examples. Each task is scored with its own metrics: AUROC is the binary one for two classes and the "
        "macro one-vs-rest one (the mean over classes of each class against the rest) for more.</p>",
        table_html(ground_truth_table(summary), "No ground-truth or prompted models in the summary."),
    ]
    generative = generative_table(summary)
    if not generative.empty:
        parts += ["<p>Generative finetuning (the paper's Section 5.2): each model of generative_finetuning "
                  "trained with its next-token loss on the task's texts without labels, then as its twin "
                  "(<code>&lt;model&gt;-genft</code>) a ceiling and a student of the same supervisors, beside "
                  "the same run from the hub's weights. Each twin's PGR is measured against its own ceiling; "
                  "the lineage names the model without the stage.</p>",
                  table_html(generative, "")]
    chess = chess_table(summary)
    if not chess.empty:
        left_out = _left_out_puzzles(summary)
        parts += ["<p>Chess puzzles, mean over seeds: exact match (a move with or without its check or mate sign), "
                  "the share of test generations that are a legal move where the prompt leaves the game, the same "
                  "for the weak labels a student learned from and how many of them were empty; then exact match per "
                  "puzzle rating band and on the test split's most frequent themes where the data has them (the "
                  "Lichess CSV; the hub's puzzles have neither)."
                  + (f" Puzzles left out at preparation, past max_moves: {esc(left_out)}." if left_out else "")
                  + "</p>", table_html(chess, "")]
    if seed_summary is not None:
        parts += ["<p>Per run, each metric's mean over seeds with a 95% bootstrap interval over seeds "
                  "(seeds resampled with replacement; no interval with a single seed).</p>",
                  table_html(_seed_table(seed_summary), "No runs in the seed summary.")]
    if loss_summary is not None:
        parts += ["<p>PGR per loss and lineage (direct weak→strong pairs, or bootstrap chains of a given length) "
                  "across datasets, from seed means: as in the reference code, a (dataset, pair) counts only when "
                  "its ceiling is above its weak model, and the excluded ones are counted beside.</p>",
                  table_html(_loss_table(loss_summary), "No students in the loss summary.")]
    probes = _probe_table(curves)
    if not probes.empty:
        parts += ["<p>Probe heads, fit to convergence: per run and seed, the L2 strength chosen on the held-out "
                  "rows (against their training labels: weak labels for students), that accuracy, and the fit on "
                  "every training row at that strength: its final training loss (mean loss, without the penalty), "
                  "L-BFGS iterations and rounds, and whether every fit of the run converged.</p>",
                  table_html(probes, "")]
    if reference is not None:
        parts += [f"<p>Measured values beside published ones ({esc(REFERENCE_SOURCE)}) where the dataset, the hub "
                  "id of the model and full finetuning match; median PGR over direct pairs of such models.</p>",
                  table_html(_reference_table(reference), "No run matches a published configuration.")]
    return "".join(parts)


def provenance_html(record: dict[str, Any]) -> str:
    """The provenance section's body, where the numbers came from: code, config, packages, devices, data version,
    and each job's cost."""
    git = record["git"]
    if git.get("commit"):
        code = f"git commit {git['commit']}" + (" with uncommitted changes (dirty)" if git.get("dirty") else ", clean")
        uncommitted = [f"{f['path']} ({f['status']})" for f in git.get("files", []) if f["status"] != "committed"]
        if uncommitted:
            code += "; config and data files not committed: " + ", ".join(uncommitted)
    else:
        code = git.get("note", "no git state recorded")
    dvc = record["dvc_data"]
    if dvc.get("recorded"):
        data_version = "; ".join(
            f"{out['path']}: md5 {out['md5']}" + (f", {out['nfiles']} files" if out.get("nfiles") else "")
            for out in dvc["outs"]) + f" (from {dvc['lock_file']})"
    else:
        data_version = dvc["note"]
    devices = "; ".join(f"{d['device']}: {d['runs']} runs" for d in record["training_devices"]) or "–"
    packages = ", ".join(f"{name} {version or 'not installed'}" for name, version in record["packages"].items())
    facts = pd.DataFrame([
        ("code", code), ("config sha256", record["config_sha256"]), ("data version (DVC)", data_version),
        ("training devices", devices), ("report built on", record["built_on"]), ("packages", packages),
    ], columns=["what", "value"])
    artifacts = pd.DataFrame(record["artifacts"], columns=["artifact", "wall_s", "max_rss_mb", "cpu_time_s"])
    artifacts = artifacts.sort_values("wall_s", ascending=False).rename(columns={
        "wall_s": "wall time (s)", "max_rss_mb": "peak memory (MB RSS)", "cpu_time_s": "CPU time (s)"})
    total = artifacts["wall time (s)"].sum()
    data_files = pd.DataFrame(record["data_files"], columns=["path", "md5", "bytes"])
    sources = pd.DataFrame([_source_row(source) for source in record.get("data_sources", [])],
                           columns=["dataset", "read from", "commit", "pinned by"]).drop_duplicates()
    models = pd.DataFrame([_model_row(source) for source in record.get("model_sources", [])],
                          columns=["model", "read from", "revision", "pinned by"])
    return (
        "<p>The code, config, packages and data behind every number above; git and DVC state as when the "
        "report was built.</p>"
        + facts.to_html(index=False, border=0, classes="summary provenance", escape=True)
        + "<p>The data each dataset was prepared from: a hub repository at a commit, or local files.</p>"
        + table_html(sources, "No data source recorded.")
        + "<p>The models, each from a hub repository at a revision (a commit, tag or branch) or from local files.</p>"
        + table_html(models, "No model source recorded.")
        + f"<details><summary>Wall time and peak memory of {len(artifacts)} jobs that load a model "
        f"({total:.0f} s in all), from Snakemake's benchmark files</summary>"
        + table_html(rounded(artifacts, {"wall time (s)": 1, "peak memory (MB RSS)": 0, "CPU time (s)": 1}),
                      "No benchmark files.")
        + f"</details><details><summary>{len(data_files)} prepared data files and their md5</summary>"
        + table_html(data_files, "No prepared data files.")
        + "</details>"
    )


def _model_row(source: dict[str, Any]) -> tuple[str, str, str, str]:
    if source["hub_id"] is None:
        return source["model"], source["local"], "–", "–"
    return source["model"], source["hub_id"], source["revision"] or "–", source["pinned_by"]


def _source_row(source: dict[str, Any]) -> tuple[str, str, str, str]:
    if source.get("local_files"):
        files = ", ".join(f"{split} sha256 {digest[:12]}" for split, digest in source["local_files"].items())
        return source["dataset"], "local files", files, "their content"
    where = f"{source['hub_id']} ({source['branch']})" + (f", local copy {source['mirror']}" if source["mirror"] else "")
    return source["dataset"], where, source["revision"] or "–", source["pinned_by"]
