"""The jobs that load a model: feature extraction and training; called by workflow/scripts/."""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from w2s import io

from w2s.evaluation import metrics
from w2s.data.sources import rows_sha256
from w2s.training.losses import LOSSES, NEEDS_BATCH_PROBS
from w2s.training.probe import ProbeSettings, choose_l2, final_sweep, grid_history
from w2s.training.resume import ResumeCheckpoints, run_key
from w2s.models.text import (ProbeClassifier, TextClassifier, add_lora, disable_dropout, load_backbone,
                        load_tokenizer, model_parallel_map, place)
from w2s.training.loop import (Batcher, Schedule, Selection, describe_device, device, embed, fit, frozen_weights_dtype,
                       predict, supported_dtype)

log = logging.getLogger("w2s")
PREDICTED_SPLITS = ("test", "train_w2s")


def _token_ids(tokenizer: Any, texts: list[str], max_length: int) -> list[list[int]]:
    """Each text's token ids, cut to max_length: tokenised once, then padded batch by batch."""
    return tokenizer(texts, truncation=True, max_length=max_length)["input_ids"]


def _token_batcher(tokenizer: Any, token_ids: list[list[int]]) -> Batcher:
    def batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        padded = tokenizer.pad({"input_ids": [token_ids[i] for i in rows]}, return_tensors="pt")
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"]}
    return batch


def _text_batcher(tokenizer: Any, texts: list[str], max_length: int) -> Batcher:
    return _token_batcher(tokenizer, _token_ids(tokenizer, texts, max_length))


def _text_lengths(texts: pd.Series | list[str]) -> np.ndarray:
    """Characters per text: a tokenizer-free stand-in for token counts, good enough to group rows that pad alike."""
    return np.fromiter((len(t) for t in texts), dtype=np.int64, count=len(texts))


def _by_length(texts: list[str]) -> np.ndarray:
    return np.argsort(_text_lengths(texts), kind="stable")


def padded_tokens(lengths: np.ndarray, order: np.ndarray, batch_size: int) -> int:
    """Tokens the model reads when rows go in `order`, `batch_size` at a time, each batch padded to its longest row."""
    return sum(int(lengths[order[i : i + batch_size]].max()) * len(order[i : i + batch_size])
               for i in range(0, len(order), batch_size))


def embed_features(model_entry: dict[str, Any], params: dict[str, Any],
                   split_paths: dict[str, str], out_path: str) -> None:
    """Frozen pooled features of every prepared split, computed once per model and dataset.

    The splits are embedded together, in order of token count, so that every batch pads to nearly
    its own length; ordered by characters within each split, the demo's batches were a third padding.
    """
    on = device()
    compute_dtype = supported_dtype(on, params["dtype"])
    tokenizer = load_tokenizer(model_entry)
    backbone = load_backbone(model_entry, frozen_weights_dtype(on, compute_dtype),
                             model_parallel_map(torch.cuda.device_count()))
    classifier = place(TextClassifier(backbone, params["pooling"]), on)
    texts = {split: pd.read_parquet(path)["text"].tolist() for split, path in split_paths.items()}
    token_ids = _token_ids(tokenizer, [text for split_texts in texts.values() for text in split_texts],
                           params["max_length"])
    lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
    order = np.argsort(lengths, kind="stable")
    started = time.perf_counter()
    pooled = embed(classifier.features, _token_batcher(tokenizer, token_ids), order, params["eval_batch_size"], on,
                   compute_dtype)
    read = padded_tokens(lengths, order, params["eval_batch_size"])
    log.info("embedded %d texts (%d tokens, %.1f%% of the %d read were padding) in %s in %.1f s", len(token_ids),
             lengths.sum(), 100 * (1 - lengths.sum() / read), read, compute_dtype, time.perf_counter() - started)
    features = dict(zip(texts, torch.split(pooled, [len(split_texts) for split_texts in texts.values()])))
    for split, split_features in features.items():
        log.info("embedded %s: %s", split, tuple(split_features.shape))
    io.write_safetensors(features, out_path)


def _training_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None,
                   oracle_labels_path: str | None = None) -> pd.DataFrame:
    """Rows to train on, as positions in their split with a soft label, and a true label where the
    job may see one.

    Ground-truth runs train on train_gt's labels, which are also their true labels. Students train on
    weak labels of rows of train_w2s's label-free view and get no true label; only the opt-in oracle
    of ground_truth_holdout (`oracle_labels_path`, the labelled train_w2s) adds them, joined by id.
    """
    if weak_labels_path is None:
        gt = frames["train_gt"]
        return pd.DataFrame({"row": np.arange(len(gt)), "soft_label": gt["label"].to_numpy(dtype=np.float64),
                             "true_label": gt["label"].to_numpy()})
    labels = pd.read_parquet(weak_labels_path)
    train_w2s = frames["train_w2s"]
    remake = "delete it and let the weak_labels rule make it again from this dataset and seed"
    # Ids alone repeat across datasets ("train:17"); the hash of every (id, text) pair does not.
    made_for = labels["train_w2s_sha256"].unique().tolist() if "train_w2s_sha256" in labels else []
    ours = rows_sha256(train_w2s)
    if made_for != [ours]:
        raise ValueError(f"{weak_labels_path}: the weak labels were made for train_w2s rows whose ids and texts hash "
                         f"to {made_for or 'nothing (no train_w2s_sha256 column)'}, but this job's train_w2s hashes to "
                         f"{ours}, so they label other data; {remake}")
    position = pd.Series(np.arange(len(train_w2s)), index=train_w2s["id"])
    missing = set(labels["id"]) - set(position.index)
    if missing or labels["id"].duplicated().any():
        raise ValueError(f"{weak_labels_path}: {len(missing)} weak-label ids are not in train_w2s, or ids repeat, "
                         f"so the file was not written by the weak_labels rule; {remake}")
    metrics.check_probabilities(labels["soft_label"], f"{weak_labels_path}, the soft weak labels", remake)
    rows = pd.DataFrame({"row": position.loc[labels["id"]].to_numpy(),
                         "soft_label": labels["soft_label"].to_numpy(dtype=np.float64)})
    if oracle_labels_path is not None:
        oracle = pd.read_parquet(oracle_labels_path)
        if rows_sha256(oracle) != ours:
            raise ValueError(f"{oracle_labels_path}: the ground-truth oracle's rows are not this job's train_w2s "
                             "rows; rerun prepare_data for this dataset and seed")
        rows["true_label"] = oracle.set_index("id").loc[labels["id"], "label"].to_numpy()
    return rows


def split_holdout(rows: pd.DataFrame, fraction: float, seed: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """A seeded random `fraction` of the training rows, kept out of training to select the model."""
    n_holdout = int(round(fraction * len(rows)))
    if not 1 <= n_holdout < len(rows):
        raise ValueError(f"holdout_frac {fraction} of {len(rows)} training rows leaves no rows to "
                         "train or to select on; change training.holdout_frac")
    order = np.random.default_rng(seed).permutation(len(rows))
    return rows.iloc[order[n_holdout:]], rows.iloc[order[:n_holdout]]


def _build_model(model_entry: dict[str, Any], params: dict[str, Any],
                 on: torch.device) -> tuple[torch.nn.Module, Any]:
    """The classifier full finetuning or LoRA trains, and its tokenizer."""
    tokenizer = load_tokenizer(model_entry)
    # float32 master weights; autocast supplies params["dtype"].
    backbone = load_backbone(model_entry, device_map=model_parallel_map(torch.cuda.device_count()))
    if params["mode"] == "lora":
        backbone = add_lora(backbone, params["lora"])
    if params["gradient_checkpointing"]:
        backbone.gradient_checkpointing_enable()
        if params["mode"] == "lora":
            # Frozen embeddings produce no grad, so checkpointed blocks would see none either.
            backbone.enable_input_require_grads()
    model = place(TextClassifier(backbone, params["pooling"]), on)
    disable_dropout(model)
    if params["compile"]:
        model.compile(dynamic=True)  # in place, so the checkpoint keeps the module's own names
    return model, tokenizer


def train_model(
    model_entry: dict[str, Any],
    params: dict[str, Any],
    seed: int,
    split_paths: dict[str, str],
    out: dict[str, str],
    loss: str = "xent",
    loss_params: dict[str, Any] | None = None,
    weak_labels_path: str | None = None,
    features_path: str | None = None,
    oracle_labels_path: str | None = None,
    resume_dir: str | Path | None = None,
    code_paths: Sequence[str | Path] = (),
) -> None:
    """Train on train_gt's true labels, or on weak labels when given; predict test and train_w2s.

    With `resume_dir`, training saves resume checkpoints there every `checkpoint_every` steps and
    a rerun of the same job continues from the newest one, unless its settings, inputs or code
    (`code_paths`: the rule's code input, the script and the modules it imports) changed; the
    folder is removed once every output is written.

    With model_selection other than "final", a holdout of the training rows picks the best
    checkpoint: scored against the weak labels (weak_holdout) or, as an opt-in baseline that
    uses ground truth, against their true labels (ground_truth_holdout). In probe mode the
    features at `features_path` are fit to convergence instead (_train_probe), the holdout picks
    the L2 strength, and `out["sweep"]` gets the test predictions of every strength; other modes
    write their one model's test predictions there, with no strength.

    `split_paths` maps train_gt (labelled; ground-truth runs only), train_w2s and test (their
    label-free views) to files. A student sees true labels only through `oracle_labels_path`, the
    labelled train_w2s its rule gives it under ground_truth_holdout. Predictions and the sweep hold
    ids and probabilities; evaluation joins the true labels by id.
    """
    torch.manual_seed(seed)
    on = device()
    frames = {split: pd.read_parquet(path) for split, path in split_paths.items()}
    train_split = "train_gt" if weak_labels_path is None else "train_w2s"
    if weak_labels_path is not None and params["model_selection"] == "ground_truth_holdout" \
            and oracle_labels_path is None:
        raise ValueError("model_selection ground_truth_holdout scores a student against true labels, but the job "
                         "was given no oracle labels; the train_student rule gives them as input oracle_labels")
    rows = _training_rows(frames, weak_labels_path, oracle_labels_path)
    holdout = None
    if params["model_selection"] != "final":
        rows, holdout = split_holdout(rows, params["holdout_frac"], seed)

    if params["mode"] == "probe":
        _train_probe(frames, train_split, rows, holdout, load_file(features_path), params, loss, loss_params, out)
        return
    model, tokenizer = _build_model(model_entry, params, on)
    compute_dtype = params["dtype"]

    def batcher_for(split: str) -> Batcher:
        return _text_batcher(tokenizer, frames[split]["text"].tolist(), params["max_length"])

    def order_of(split: str, positions: np.ndarray) -> np.ndarray:
        return _by_length(frames[split]["text"].iloc[positions].tolist())

    train_batcher = batcher_for(train_split)
    selection = None
    if holdout is not None:
        positions = holdout["row"].to_numpy()
        holdout_labels = _selection_labels(holdout, params["model_selection"])
        holdout_order = order_of(train_split, positions)

        def holdout_accuracy() -> float:
            probs = predict(model, lambda r: train_batcher(positions[r]), holdout_order,
                            params["eval_batch_size"], on, compute_dtype)
            return metrics.accuracy(probs, holdout_labels)

        steps_per_epoch = max(1, math.ceil(len(rows) / params["batch_size"]))
        selection = Selection(holdout_accuracy, max(1, round(steps_per_epoch / params["evals_per_epoch"])))

    resume = None
    if resume_dir is not None:
        inputs = [*split_paths.values(),
                  *(p for p in (weak_labels_path, features_path, oracle_labels_path) if p is not None)]
        identity = {"model_entry": model_entry, "params": params, "seed": seed, "loss": loss,
                    "loss_params": loss_params or {}}
        resume = ResumeCheckpoints(resume_dir, run_key(identity, inputs, code_paths), params["checkpoint_every"])

    soft = rows["soft_label"].to_numpy()
    targets = torch.tensor(np.stack([1 - soft, soft], axis=1), dtype=torch.float32)
    train_rows = rows["row"].to_numpy()
    history = fit(
        model,
        lambda batch: train_batcher(train_rows[batch]),
        targets,
        lambda logits, t, step_frac, batch: LOSSES[loss](logits, t, step_frac, batch=batch, **(loss_params or {})),
        Schedule.from_params(params, seed),
        on,
        compute_dtype,
        selection,
        lengths=_text_lengths(frames[train_split]["text"].iloc[train_rows]),
        needs_batch_probs=loss in NEEDS_BATCH_PROBS,
        resume=resume,
    )
    log.info("trained %d steps, final loss %.4f", len(history), history[-1]["loss"])
    if selection is not None:
        scored = pd.DataFrame(history).dropna(subset=["selection_score"])
        best = scored.loc[scored["selection_score"].idxmax()]
        log.info("kept step %d: holdout accuracy %.4f (%s)", best["step"], best["selection_score"],
                 params["model_selection"])

    predictions = []
    for split in PREDICTED_SPLITS:
        every_row = np.arange(len(frames[split]))
        probs = predict(model, batcher_for(split), order_of(split, every_row), params["eval_batch_size"], on,
                        compute_dtype)
        metrics.check_probabilities(probs, f"{split} predictions", "training diverged: lower lr or use dtype float32")
        predictions.append(pd.DataFrame({"split": split, "id": frames[split]["id"], "prob": probs}))
    io.write_parquet(pd.concat(predictions, ignore_index=True), out["predictions"])
    io.write_parquet(pd.DataFrame(history).assign(device=describe_device(on)), out["history"])
    test = predictions[PREDICTED_SPLITS.index("test")]
    io.write_parquet(final_sweep(frames["test"], test["prob"].to_numpy()), out["sweep"])
    _save_checkpoint(model, tokenizer, out["checkpoint"])
    if resume is not None:
        resume.clear()


def _selection_labels(holdout: pd.DataFrame, model_selection: str) -> np.ndarray:
    """The 0/1 labels held-out rows are scored against: their training labels (weak ones for a
    student), or their true labels under the opt-in ground_truth_holdout."""
    column = "true_label" if model_selection == "ground_truth_holdout" else "soft_label"
    return (holdout[column].to_numpy() > 0.5).astype(int)


def _train_probe(frames: dict[str, pd.DataFrame], train_split: str, rows: pd.DataFrame, holdout: pd.DataFrame | None,
                 features: dict[str, torch.Tensor], params: dict[str, Any], loss: str,
                 loss_params: dict[str, Any] | None, out: dict[str, str]) -> None:
    """A linear head fit to convergence at every L2 strength of training.probe.l2_grid (w2s.training.probe).

    The strength is chosen on the held-out rows, each strength refit on every training row, and the
    chosen refit predicts; the test predictions of every strength go to the sweep.
    """
    settings = ProbeSettings.from_params(params)
    every = rows if holdout is None else pd.concat([rows, holdout], ignore_index=True)
    held = None if holdout is None else np.arange(len(rows), len(every))
    held_labels = None if holdout is None else _selection_labels(holdout, params["model_selection"])
    x = features[train_split][torch.tensor(every["row"].to_numpy())]
    started = time.perf_counter()
    points, chosen = choose_l2(x, every["soft_label"].to_numpy(), held, held_labels, loss, loss_params, settings)
    history = grid_history(points, chosen)
    for point in history.itertuples():
        log.info("l2 %g: holdout accuracy %.4f (%s), training loss %.4f, %d iterations in %d rounds, %s", point.l2,
                 point.selection_score, params["model_selection"], point.loss, point.iterations, point.rounds,
                 "converged" if point.converged else "NOT converged")
    best = points[chosen]
    log.info("chose l2 %g; %d fits in %.1f s", best.l2, len(points) * (1 if holdout is None else 2),
             time.perf_counter() - started)
    predictions = []
    for split in PREDICTED_SPLITS:
        probs = best.fit.probs(features[split])
        metrics.check_probabilities(probs, f"{split} predictions", "the probe fit diverged; raise the smallest l2")
        predictions.append(pd.DataFrame({"split": split, "id": frames[split]["id"], "prob": probs}))
    test = frames["test"]
    sweep = pd.concat([pd.DataFrame({"l2": point.l2, "chosen": i == chosen, "id": test["id"],
                                     "prob": point.fit.probs(features["test"])})
                       for i, point in enumerate(points)], ignore_index=True)
    io.write_parquet(pd.concat(predictions, ignore_index=True), out["predictions"])
    io.write_parquet(history.assign(device=describe_device(torch.device("cpu"))), out["history"])
    io.write_parquet(sweep, out["sweep"])
    model = ProbeClassifier(x.shape[1])
    model.head.load_state_dict(best.fit.head_state())
    _save_checkpoint(model, None, out["checkpoint"])


def _save_checkpoint(model: torch.nn.Module, tokenizer: Any, directory: str) -> None:
    """Weights as safetensors: the head alone in probe mode, else the whole model."""
    with io.staged_directory(directory) as staging:
        if isinstance(model, TextClassifier):
            model.backbone.save_pretrained(staging / "backbone", safe_serialization=True)
            tokenizer.save_pretrained(staging / "backbone")
        io.write_safetensors(model.head.state_dict(), staging / "head.safetensors")
