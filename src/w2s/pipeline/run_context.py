"""A run's context: the identity (w2s.evaluation.identity) its evaluate job receives as the `context` param and
writes into its metrics, derived from the run id and the config (with its defaults and generative variants filled
in, rules/common.smk). A plain dict in the identity's key order: Snakemake records the param as its repr."""

from __future__ import annotations

from typing import Any

from w2s.evaluation.identity import RunContext, WeakSupervision, run_identity
from w2s.pipeline.experiment import (ft_weak_lp_gt_params, generative_base, generative_variants, slice_rows,
                                     supervisor_entry, supervisor_kind, supervisor_method, task_params,
                                     train_gt_rows, trained_models, training_params)
from w2s.pipeline.runs import Axis, parse_run, prompt_shots, run_axis, student_run, supervisor_run


def weak_context(config: dict[str, Any], name: str) -> WeakSupervision:
    """What supervises a lineage from its root `name`: a model, a simulated or an ensemble supervisor, in words."""
    entry = config["supervisors"].get(name, {})
    return {
        "weak_kind": supervisor_kind(config, name),
        "weak_method": supervisor_method(config, name),
        "weak_structure": entry.get("simulate"),
        "weak_like": entry.get("like"),
        "weak_members": ", ".join(entry["ensemble"]) if "ensemble" in entry else None,
    }


def trained_rows(config: dict[str, Any], kind: str, chain: list[str], axis: Axis | None,
                 dataset: str) -> tuple[int | None, int | None]:
    """(n_gt_rows, n_weak_labels) of a run: the train_gt rows its lineage's weak model (or a ground-truth run
    itself) trained on, and the weak labels a student trained on (its step's slice, or the axis's n)."""
    if kind not in ("ground_truth", "student"):
        return None, None
    entry = config["datasets"][dataset]
    n_train_gt = train_gt_rows(entry)
    n_gt_rows = axis[1] if axis and axis[0] == "n_gt_rows" else n_train_gt
    if kind == "ground_truth":
        return n_gt_rows, None
    if axis and axis[0] == "n_weak_labels":
        return n_gt_rows, axis[1]
    return n_gt_rows, slice_rows(entry["n_train"], config["w2s_slices"], len(chain) - 1, n_train_gt)


def run_context(config: dict[str, Any], dataset: str, seed: int | str, run: str) -> RunContext:
    """The context of run `run` on `dataset` and `seed`: its identity and weak supervision; a simulated or
    ensemble supervisor's is supervisor_context."""
    kind, loss, chain = parse_run(run)
    if kind in ("simulated", "ensemble"):
        return supervisor_context(config, dataset, seed, run, kind, chain[0])
    axis = run_axis(run)
    model = chain[-1]
    training = ft_weak_lp_gt_params(config, model) if kind == "ft_weak_lp_gt" else training_params(config, model)
    selection = training["model_selection"] if kind != "prompt" else "final"
    n_gt_rows, n_weak_labels = trained_rows(config, kind, chain, axis, dataset)
    trained = trained_models(config, variants=True)
    task = task_params(config, dataset)
    context: RunContext = {
        **run_identity(
            dataset=dataset, seed=int(seed), run=run, kind=kind, model=model,
            model_rank=trained.index(model) if model in trained else None,
            params_b=config["models"][model].get("params_b"), loss=loss, lineage=" → ".join(chain),
            chain_length=len(chain), weak_model=chain[0],
            supervisor_run=supervisor_run(config, loss, chain, axis) if kind == "student" else None,  # type: ignore[arg-type]
            student_run=student_run(loss, chain) if kind == "ft_weak_lp_gt" else None,  # type: ignore[arg-type]
            data_axis=axis[0] if axis else None, n_gt_rows=n_gt_rows, n_weak_labels=n_weak_labels,
            hub_id=config["models"][model].get("hub_id"), mode="prompt" if kind == "prompt" else training["mode"],
            task_kind=task["kind"], n_classes=task["n_classes"],
            shots=prompt_shots(run) if kind == "prompt" else None, model_selection=selection,
            # Selecting a student on true labels breaks the weak-supervision premise.
            uses_ground_truth_selection=kind == "student" and selection == "ground_truth_holdout",
        ),
        **weak_context(config, chain[0]),
    }
    variants = generative_variants(config)
    if variants:
        # Whether the model started from generative finetuning, and the same run without it, for the report.
        context["generative_finetuning"] = model in variants
        base_chain = [generative_base(config, m) for m in chain]
        context["run_without_generative_finetuning"] = (
            None if model not in variants
            else f"gt/{base_chain[-1]}" if kind == "ground_truth" else student_run(loss, base_chain))  # type: ignore[arg-type]
    return context


def supervisor_context(config: dict[str, Any], dataset: str, seed: int | str, run: str, kind: str,
                       name: str) -> RunContext:
    """A simulated or ensemble supervisor's identity in its metrics: no model, mode or training of its own."""
    task = task_params(config, dataset)
    return {
        **run_identity(
            dataset=dataset, seed=int(seed), run=run, kind=kind, model=name, model_rank=None, params_b=None,
            loss=None, lineage=name, chain_length=1, weak_model=name, supervisor_run=None, student_run=None,
            data_axis=None, n_gt_rows=None, n_weak_labels=None, hub_id=None, mode=kind, task_kind=task["kind"],
            n_classes=task["n_classes"], shots=None, model_selection=None, uses_ground_truth_selection=False,
        ),
        "supervisor": supervisor_entry(config, name),
        **weak_context(config, name),
    }
