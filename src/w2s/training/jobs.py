"""The jobs that load a model: feature extraction and training; called by workflow/scripts/.

Both dispatch on the task (w2s.tasks: the input column and K) and on the training mode: texts are
tokenised for transformers models and images decoded for torchvision and timm models
(w2s.models.vision); a probe fits a linear head on either's frozen features; a pretrained head
predicts with no training.
"""

from __future__ import annotations

import logging
import math
import time
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np
import pandas as pd
import torch
from safetensors.torch import load_file

from w2s import io
from w2s.data import labels as class_probs
from w2s.data.splits import REMAKE_WEAK_LABELS, rows_sha256, weak_label_positions
from w2s.evaluation import metrics
from w2s.models.devices import DTYPES, describe_device, device, frozen_weights_dtype, supported_dtype
from w2s.models.text import (
    ProbeClassifier,
    TextClassifier,
    add_lora,
    disable_dropout,
    empty_backbone,
    generative_checkpoint_files,
    load_backbone,
    load_student_backbone,
    load_tokenizer,
    model_parallel_map,
    place,
)
from w2s.tasks import Task, dataset_task
from w2s.training import generative
from w2s.training.distributed import (
    SINGLE,
    Ranks,
    ShardedCheckpoints,
    full_state_dict,
    layer_blocks,
    shard_from_first,
)
from w2s.training.job import TrainingJob
from w2s.training.loop import Batcher, Selection, embed, fit, predict
from w2s.training.losses import GENERATIVE_LOSSES, LOSSES, NEEDS_BATCH_PROBS
from w2s.training.probe import choose_l2, final_sweep, grid_history
from w2s.training.resume import ResumeCheckpoints, run_key
from w2s.training.settings import EmbeddingSettings, TrainingSettings

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


def embed_features(model_entry: dict[str, Any], settings: EmbeddingSettings, split_paths: dict[str, str],
                   out_path: str, task: dict[str, Any] | None = None, checkpoint: str | None = None) -> None:
    """Frozen features of every prepared split, computed once per model and dataset: pooled hidden
    states of a text model, or the input of an image model's classifier layer (w2s.models.vision).
    With `checkpoint`, a finetuned student's checkpoint folder, the text model is that student's
    backbone (load_student_backbone), whose pooled states its head read: ft(weak) + lp(gt)'s features."""
    on = device()
    compute_dtype = supported_dtype(on, settings.dtype)
    if task is not None and Task.from_params(task).input_column == "image":
        from w2s.models import vision  # torchvision and timm load only for image tasks

        frames = {split: pd.read_parquet(path) for split, path in split_paths.items()}
        model = vision.load_image_model(vision.model_keys(model_entry))
        started = time.perf_counter()
        features = {split: vision.embed_images(model, frame["image"].tolist(), settings.eval_batch_size, on,
                                               compute_dtype, names=frame["id"].tolist())
                    for split, frame in frames.items()}
        n_images = sum(len(frame) for frame in frames.values())
        log.info("embedded %d images in %s in %.1f s", n_images, compute_dtype, time.perf_counter() - started)
    else:
        features = _embed_texts(model_entry, settings, split_paths, on, compute_dtype, checkpoint)
    for split, split_features in features.items():
        log.info("embedded %s: %s", split, tuple(split_features.shape))
    io.write_safetensors(features, out_path)


def _embed_texts(model_entry: dict[str, Any], settings: EmbeddingSettings, split_paths: dict[str, str],
                 on: torch.device, compute_dtype: str, checkpoint: str | None = None) -> dict[str, torch.Tensor]:
    """Pooled features of every split's texts. The splits are embedded together, in order of token count, so
    that every batch pads to nearly its own length; ordered by characters within each split, the demo's
    batches were a third padding."""
    tokenizer = load_tokenizer(model_entry)
    weights_dtype, device_map = frozen_weights_dtype(on, compute_dtype), model_parallel_map(torch.cuda.device_count())
    backbone = (load_backbone(model_entry, weights_dtype, device_map) if checkpoint is None
                else load_student_backbone(model_entry, checkpoint, weights_dtype, device_map))
    classifier = place(TextClassifier(backbone, settings.pooling), on)
    texts = {split: pd.read_parquet(path)["text"].tolist() for split, path in split_paths.items()}
    token_ids = _token_ids(tokenizer, [text for split_texts in texts.values() for text in split_texts],
                           settings.max_length)
    lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
    order = np.argsort(lengths, kind="stable")
    started = time.perf_counter()
    pooled = embed(classifier.features, _token_batcher(tokenizer, token_ids), order, settings.eval_batch_size, on,
                   compute_dtype)
    read = padded_tokens(lengths, order, settings.eval_batch_size)
    log.info("embedded %d texts (%d tokens, %.1f%% of the %d read were padding) in %s in %.1f s", len(token_ids),
             lengths.sum(), 100 * (1 - lengths.sum() / read), read, compute_dtype, time.perf_counter() - started)
    return dict(zip(texts, torch.split(pooled, [len(split_texts) for split_texts in texts.values()])))


def _training_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None,
                   oracle_labels_path: str | None = None, n_classes: int = 2) -> pd.DataFrame:
    """Rows to train on, as positions in their split with a soft label (the row's K class
    probabilities), and a true label where the job may see one.

    Ground-truth runs train on train_gt's labels, which are also their true labels. Students train on
    weak labels of rows of train_w2s's label-free view and get no true label; only the opt-in oracle
    of ground_truth_holdout (`oracle_labels_path`, the labelled train_w2s) adds them, joined by id.
    """
    if weak_labels_path is None:
        gt = frames["train_gt"]
        return pd.DataFrame({"row": np.arange(len(gt)),
                             "soft_label": class_probs.as_column(class_probs.one_hot(gt["label"], n_classes)),
                             "true_label": gt["label"].to_numpy()})
    labels = pd.read_parquet(weak_labels_path)
    train_w2s = frames["train_w2s"]
    positions = weak_label_positions(labels, train_w2s, weak_labels_path)
    remake = REMAKE_WEAK_LABELS
    soft = class_probs.read_column(labels, "soft_label", weak_labels_path)
    if soft.shape[1] != n_classes:
        raise ValueError(f"{weak_labels_path}: the weak labels have {soft.shape[1]} classes but this task has "
                         f"{n_classes}, so their supervisor was made for another task; check the dataset's n_classes, "
                         f"then {remake}")
    class_probs.check_probabilities(soft, f"{weak_labels_path}, the soft weak labels", remake)
    rows = pd.DataFrame({"row": positions, "soft_label": class_probs.as_column(soft)})
    if oracle_labels_path is not None:
        oracle = pd.read_parquet(oracle_labels_path)
        if rows_sha256(oracle) != rows_sha256(train_w2s):
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


# The subsample of a data axis draws from its own stream, apart from the holdout's (seeded by `seed` alone).
SUBSAMPLE_STREAM = 1


def nested_subset(rows: pd.DataFrame, n_rows: int, seed: int) -> pd.DataFrame:
    """The first `n_rows` of a seeded permutation of the training rows, in their own order: for one seed and
    one set of rows, a smaller subset is part of every larger one (the data axes, config `axes`)."""
    if not 1 <= n_rows < len(rows):
        raise ValueError(f"a data axis asks for {n_rows} of {len(rows)} training rows; give fewer than "
                         f"{len(rows)} in the config's axes")
    order = np.random.default_rng((seed, SUBSAMPLE_STREAM)).permutation(len(rows))
    return rows.iloc[np.sort(order[:n_rows])]


def _build_model(model_entry: dict[str, Any], settings: TrainingSettings, on: torch.device,
                 n_classes: int = 2, ranks: Ranks = SINGLE) -> tuple[torch.nn.Module, Any]:
    """The classifier full finetuning or LoRA trains, and its tokenizer. With `ranks` of several processes,
    the classifier is sharded over them (w2s.training.distributed.shard), each transformer layer on its own."""
    tokenizer = load_tokenizer(model_entry)
    # float32 master weights; autocast (and, sharded on GPUs, FSDP's mixed precision) supplies settings.dtype.
    # Sharded, rank 0 loads the model on the CPU and the others build it empty; shard_from_first sends the shards.
    if ranks.sharded:
        backbone = load_backbone(model_entry) if ranks.writes_outputs else empty_backbone(model_entry)
    else:
        backbone = load_backbone(model_entry, device_map=model_parallel_map(torch.cuda.device_count()))
    if settings.mode == "lora":
        backbone = add_lora(backbone, settings.lora)
    if settings.gradient_checkpointing:
        # Sharded: non-reentrant checkpointing, which runs FSDP's hooks again when it recomputes a layer.
        backbone.gradient_checkpointing_enable(
            gradient_checkpointing_kwargs={"use_reentrant": False} if ranks.sharded else None)
        if settings.mode == "lora":
            # Frozen embeddings produce no grad, so checkpointed blocks would see none either.
            backbone.enable_input_require_grads()
    model = TextClassifier(backbone, settings.pooling, n_classes)
    if ranks.sharded:
        compute_dtype = supported_dtype(on, settings.dtype)
        shard_from_first(model, layer_blocks(backbone),
                         DTYPES[compute_dtype] if on.type == "cuda" and compute_dtype != "float32" else None, ranks, on)
    else:
        model = place(model, on)
    disable_dropout(model)
    if settings.compile:
        model.compile(dynamic=True)  # in place, so the checkpoint keeps the module's own names
    return model, tokenizer


def train_model(
    model_entry: dict[str, Any],
    settings: TrainingSettings,
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
    task: dict[str, Any] | None = None,
    n_rows: int | None = None,
    ranks: Ranks = SINGLE,
    on: torch.device | None = None,
) -> None:
    """Train on train_gt's true labels, or on weak labels when given; predict test and train_w2s.

    With `n_rows` (a data axis), only a seeded nested subset of that many training rows is trained on
    and held out from (nested_subset).

    The trainer is chosen by the training mode among those the task's kind supports (TRAINERS):
    finetuning (full or lora, text), a probe on the frozen features at `features_path`, or a
    pretrained head that predicts with no training. `task` ({"kind", "n_classes"}, w2s.tasks) is a
    binary text task when not given.

    With `resume_dir`, finetuning saves resume checkpoints there every `checkpoint_every` steps and
    a rerun of the same job continues from the newest one, unless its settings, inputs or code
    (`code_paths`: the rule's code input, the digest of the script and the modules it imports) changed; the
    folder is removed once every output is written.

    With model_selection other than "final", a holdout of the training rows picks the best
    checkpoint: scored against the weak labels (weak_holdout) or, as an opt-in baseline that
    uses ground truth, against their true labels (ground_truth_holdout). A probe is fit to
    convergence instead (_train_probe), the holdout picks the L2 strength, and `out["sweep"]` gets
    the test predictions of every strength; other modes write their one model's test predictions
    there, with no strength.

    `split_paths` maps train_gt (labelled; ground-truth runs only), train_w2s and test (their
    label-free views) to files. A student sees true labels only through `oracle_labels_path`, the
    labelled train_w2s its rule gives it under ground_truth_holdout. Predictions and the sweep hold
    ids and class probabilities; evaluation joins the true labels by id.

    `ranks` is this process's place among several that finetune one model sharded (w2s.training.distributed,
    which starts them and gives `on`, the process's device); only full and lora finetuning of a
    classification task shard.
    """
    torch.manual_seed(seed)
    if weak_labels_path is not None and settings.model_selection == "ground_truth_holdout" \
            and oracle_labels_path is None:
        raise ValueError("model_selection ground_truth_holdout scores a student against true labels, but the job "
                         "was given no oracle labels; the train_student rule gives them as input oracle_labels")
    the_task = Task.from_params(task) if task is not None else dataset_task({})
    mode = settings.mode
    if mode not in the_task.spec.modes:
        raise ValueError(f"training mode {mode} does not apply to a {the_task.kind} task; use one of "
                         f"{', '.join(the_task.spec.modes)}")
    trainer = KIND_TRAINERS.get(the_task.kind, TRAINERS)[mode]
    if ranks.sharded and trainer is not _finetune:
        what = f"{the_task.kind} tasks" if the_task.kind in KIND_TRAINERS else f"training mode {mode}"
        raise ValueError(f"{what} train in one process, but this job has {ranks.world}; set the model's "
                         "resources.processes to 1 (several GPUs then hold the model's layers, spread by device_map)")
    frames = {split: _read_split(path, split, mode) for split, path in split_paths.items()}
    train_split = "train_gt" if weak_labels_path is None else "train_w2s"
    if the_task.is_generative:
        rows = generative.training_rows(frames, weak_labels_path, oracle_labels_path)
    else:
        rows = _training_rows(frames, weak_labels_path, oracle_labels_path, the_task.n_classes)
    if n_rows is not None:
        rows = nested_subset(rows, n_rows, seed)
        log.info("data axis: trains on %d of its %s rows", n_rows, train_split)
    holdout = None
    if settings.model_selection != "final" and mode != "pretrained_head":
        rows, holdout = split_holdout(rows, settings.holdout_frac, seed)
    # A twin's starting weights count too: a retrained generative finetuning stage resumes nothing of before.
    inputs = [*split_paths.values(), *(p for p in (weak_labels_path, features_path, oracle_labels_path) if p),
              *generative_checkpoint_files(model_entry)]
    trainer(TrainingJob(model_entry, settings, seed, the_task, frames, train_split, rows, holdout, loss,
                        loss_params or {}, out, features_path, inputs, resume_dir, code_paths, ranks,
                        on if on is not None else device()))


# The splits whose inputs (texts or images) a mode reads; finetuning reads every split's. A probe trains on
# features and needs train_w2s's inputs only to check the weak labels' hash; a pretrained head predicts
# train_w2s and test. Elsewhere ids and labels suffice, which spares reading gigabytes of images.
SPLITS_WITH_INPUTS = {"probe": {"train_w2s"}, "pretrained_head": set(PREDICTED_SPLITS)}


def _read_split(path: str, split: str, mode: str) -> pd.DataFrame:
    if mode not in SPLITS_WITH_INPUTS or split in SPLITS_WITH_INPUTS[mode]:
        return pd.read_parquet(path)
    import pyarrow.parquet as pq

    return pd.read_parquet(path, columns=[c for c in ("id", "label") if c in pq.read_schema(path).names])


def _finetune(job: TrainingJob) -> None:
    """Minibatch training of a text model's backbone (full or LoRA) and head (w2s.training.loop)."""
    settings, frames, rows, holdout, on, ranks = job.settings, job.frames, job.rows, job.holdout, job.on, job.ranks
    model, tokenizer = _build_model(job.model_entry, settings, on, job.task.n_classes, ranks)
    compute_dtype = settings.dtype

    def batcher_for(split: str) -> Batcher:
        return _text_batcher(tokenizer, frames[split]["text"].tolist(), settings.max_length)

    def order_of(split: str, positions: np.ndarray) -> np.ndarray:
        return _by_length(frames[split]["text"].iloc[positions].tolist())

    train_batcher = batcher_for(job.train_split)
    selection = None
    if holdout is not None:
        positions = holdout["row"].to_numpy()
        holdout_labels = _selection_labels(holdout, settings.model_selection)
        holdout_order = order_of(job.train_split, positions)

        def holdout_accuracy() -> float:
            probs = predict(model, lambda r: train_batcher(positions[r]), holdout_order,
                            settings.eval_batch_size, on, compute_dtype, ranks)
            return metrics.accuracy(probs, holdout_labels)

        steps_per_epoch = max(1, math.ceil(len(rows) / settings.batch_size))
        selection = Selection(holdout_accuracy, max(1, round(steps_per_epoch / settings.evals_per_epoch)))

    resume = _resume_checkpoints(job, model)
    targets = torch.tensor(np.stack(rows["soft_label"].to_numpy()), dtype=torch.float32)
    train_rows = rows["row"].to_numpy()
    history = fit(
        model,
        lambda batch: train_batcher(train_rows[batch]),
        targets,
        lambda logits, t, step_frac, batch: LOSSES[job.loss](logits, t, step_frac, batch=batch, **job.loss_params),
        settings.schedule(job.seed),
        on,
        compute_dtype,
        selection,
        lengths=_text_lengths(frames[job.train_split]["text"].iloc[train_rows]),
        needs_batch_probs=job.loss in NEEDS_BATCH_PROBS,
        resume=resume,
        ranks=ranks,
    )
    log.info("trained %d steps, final loss %.4f", len(history), history[-1]["loss"])
    if selection is not None:
        scored = pd.DataFrame(history).dropna(subset=["selection_score"])
        best = scored.loc[scored["selection_score"].idxmax()]
        log.info("kept step %d: holdout accuracy %.4f (%s)", best["step"], best["selection_score"],
                 settings.model_selection)

    probs = {split: predict(model, batcher_for(split), order_of(split, np.arange(len(frames[split]))),
                            settings.eval_batch_size, on, compute_dtype, ranks)
             for split in PREDICTED_SPLITS}
    # Every process takes part in gathering the sharded weights; rank 0 writes the outputs.
    state = full_state_dict(model) if ranks.sharded else None
    if not ranks.writes_outputs:
        return
    _write_predictions(frames, probs, job.out, "training diverged: lower lr or use dtype float32")
    processes = f", {ranks.world} processes" if ranks.sharded else ""
    io.write_parquet(pd.DataFrame(history).assign(device=describe_device(on) + processes), job.out["history"])
    io.write_parquet(final_sweep(frames["test"], probs["test"]), job.out["sweep"])
    _save_checkpoint(model, tokenizer, job.out["checkpoint"], state)
    if resume is not None:
        resume.clear()


def _resume_checkpoints(job: TrainingJob, model: torch.nn.Module | None = None) -> ResumeCheckpoints | None:
    """Where finetuning saves and finds its resume checkpoints, keyed by everything the run depends on:
    a sharded run's (of `model`) by its number of processes too, whose shards its checkpoints hold."""
    if job.resume_dir is None:
        return None
    identity = {"model_entry": job.model_entry, "params": job.settings.identity(), "seed": job.seed,
                "loss": job.loss, "loss_params": job.loss_params}
    if job.task.is_generative:  # the generation length changes the predictions and the selection
        identity["task"] = job.task.params()
    if job.ranks.sharded:
        assert model is not None, "a sharded run's checkpoints hold its model's shards"
        identity["processes"] = job.ranks.world
        return ShardedCheckpoints(job.resume_dir, run_key(identity, job.input_paths, job.code_paths),
                                  job.settings.checkpoint_every, model, job.ranks)
    return ResumeCheckpoints(job.resume_dir, run_key(identity, job.input_paths, job.code_paths),
                             job.settings.checkpoint_every)


def _finetune_generative(job: TrainingJob) -> None:
    """A causal LM finetuned (full or lora) on a generative task's targets (w2s.training.generative)."""
    if job.loss not in GENERATIVE_LOSSES:
        raise ValueError(f"loss {job.loss} is defined on class probabilities; a generative task trains with "
                         f"{', '.join(sorted(GENERATIVE_LOSSES))} on its targets' tokens")
    generative.finetune(job, _resume_checkpoints(job))


def _write_predictions(frames: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], out: dict[str, str],
                       fix: str) -> None:
    """Every predicted split's (split, id, probs) rows: the K class probabilities of each row."""
    predictions = []
    for split in PREDICTED_SPLITS:
        class_probs.check_probabilities(probs[split], f"{split} predictions", fix)
        predictions.append(pd.DataFrame({"split": split, "id": frames[split]["id"],
                                         "probs": class_probs.as_column(probs[split])}))
    io.write_parquet(pd.concat(predictions, ignore_index=True), out["predictions"])


def _predict_with_own_head(job: TrainingJob) -> None:
    """A pretrained classifier used as it is (AlexNet's ImageNet head): no training, its softmax predicts.
    Its history is one row that says so, and its checkpoint records the model entry it was loaded from."""
    from w2s.models import vision

    on, settings = device(), job.settings
    model = vision.load_image_model(vision.model_keys(job.model_entry))
    probs = {split: vision.predict_with_head(model, job.frames[split]["image"].tolist(), settings.eval_batch_size,
                                             on, supported_dtype(on, settings.dtype), job.task.n_classes,
                                             f"{split} of the pretrained head", names=job.frames[split]["id"].tolist())
             for split in PREDICTED_SPLITS}
    _write_predictions(job.frames, probs, job.out, "the pretrained head's outputs are not probabilities")
    history = pd.DataFrame({"step": [0], "trained": [False], "device": [describe_device(on)]})
    io.write_parquet(history, job.out["history"])
    io.write_parquet(final_sweep(job.frames["test"], probs["test"]), job.out["sweep"])
    with io.staged_directory(job.out["checkpoint"]) as staging:
        io.write_json({"pretrained_head": True, "model_entry": job.model_entry}, staging / "model_entry.json")


def _selection_labels(holdout: pd.DataFrame, model_selection: str) -> np.ndarray:
    """The class labels held-out rows are scored against: their training labels' most probable class
    (weak ones for a student), or their true labels under the opt-in ground_truth_holdout."""
    if model_selection == "ground_truth_holdout":
        return holdout["true_label"].to_numpy()
    return class_probs.hard(np.stack(holdout["soft_label"].to_numpy()))


def _train_probe(job: TrainingJob) -> None:
    """A linear head fit to convergence at every L2 strength of training.probe.l2_grid (w2s.training.probe).

    The strength is chosen on the held-out rows, each strength refit on every training row, and the
    chosen refit predicts; the test predictions of every strength go to the sweep.
    """
    settings, rows, holdout, frames = job.settings, job.rows, job.holdout, job.frames
    assert job.features_path is not None, "a probe trains on the features its rule gives as input"
    assert settings.probe is not None, "a probe head's params carry the probe block"
    features = load_file(job.features_path)
    every = rows if holdout is None else pd.concat([rows, holdout], ignore_index=True)
    held = None if holdout is None else np.arange(len(rows), len(every))
    held_labels = None if holdout is None else _selection_labels(holdout, settings.model_selection)
    x = features[job.train_split][torch.tensor(every["row"].to_numpy())]
    started = time.perf_counter()
    on = device()
    points, chosen = choose_l2(x, np.stack(every["soft_label"].to_numpy()), held, held_labels, job.loss,
                               job.loss_params, settings.probe, on)
    history = grid_history(points, chosen)
    for point in history.itertuples():
        log.info("l2 %g: holdout accuracy %.4f (%s), training loss %.4f, %d iterations in %d rounds, %s", point.l2,
                 point.selection_score, settings.model_selection, point.loss, point.iterations, point.rounds,
                 "converged" if point.converged else "NOT converged")
    best = points[chosen]
    log.info("chose l2 %g; %d fits in %.1f s", best.l2, len(points) * (1 if holdout is None else 2),
             time.perf_counter() - started)
    probs = {split: best.fit.probs(features[split]) for split in PREDICTED_SPLITS}
    _write_predictions(frames, probs, job.out, "the probe fit diverged; raise the smallest l2")
    test = frames["test"]
    sweep = pd.concat([pd.DataFrame({"l2": point.l2, "chosen": i == chosen, "id": test["id"],
                                     "probs": class_probs.as_column(point.fit.probs(features["test"]))})
                       for i, point in enumerate(points)], ignore_index=True)
    io.write_parquet(history.assign(device=describe_device(on)), job.out["history"])
    io.write_parquet(sweep, job.out["sweep"])
    model = ProbeClassifier(x.shape[1], job.task.n_classes)
    model.head.load_state_dict(best.fit.head_state())
    _save_checkpoint(model, None, job.out["checkpoint"])


# The trainer of each training mode; a task kind says which modes apply to it (w2s.tasks).
TRAINERS: dict[str, Callable[[TrainingJob], None]] = {
    "full": _finetune,
    "lora": _finetune,
    "probe": _train_probe,
    "pretrained_head": _predict_with_own_head,
}
# Kinds whose modes train otherwise than TRAINERS' classifiers: a generative task's causal LM.
KIND_TRAINERS: dict[str, dict[str, Callable[[TrainingJob], None]]] = {
    "generative": {"full": _finetune_generative, "lora": _finetune_generative},
}


def _save_checkpoint(model: torch.nn.Module, tokenizer: Any, directory: str,
                     state: dict[str, torch.Tensor] | None = None) -> None:
    """Weights as safetensors: the head alone in probe mode, else the whole model. `state` is the model's
    whole state dict where its parameters are sharded (w2s.training.distributed.full_state_dict)."""

    def part(prefix: str) -> dict[str, torch.Tensor]:
        assert state is not None
        return {name[len(prefix):]: value for name, value in state.items() if name.startswith(prefix)}

    with io.staged_directory(directory) as staging:
        if isinstance(model, TextClassifier):
            gathered = {} if state is None else {"state_dict": part("backbone.")}
            model.backbone.save_pretrained(staging / "backbone", safe_serialization=True, **gathered)
            tokenizer.save_pretrained(staging / "backbone")
        io.write_safetensors(model.head.state_dict() if state is None else part("head."), staging / "head.safetensors")
