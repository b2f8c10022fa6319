"""Generative tasks (w2s.tasks kind `generative`): a causal LM trained on a prompt's target text, and its
greedy generations as predictions and weak labels.

A training row is the prompt's tokens, then the target's tokens and the end-of-text token. The loss is
next-token cross-entropy on the target tokens and the end-of-text token only (w2s.training.losses.token_xent):
the model reads the whole row, right-padded, and `TargetLogits` keeps the logits that predict each target
token. Generation is the model's own `generate`, greedy, batched with left padding, at most
`max_new_tokens` tokens per prompt; a generation is the text of its new tokens up to the end-of-text token.
"""

from __future__ import annotations

import logging
import math
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn

from w2s import io
from w2s.data.generations import GENERATION_COLUMN, prediction_frame, training_targets
from w2s.data.splits import w2s_slice
from w2s.evaluation import metrics
from w2s.models.devices import autocast, describe_device, device
from w2s.models.lora import add_lora
from w2s.models.text import disable_dropout, load_pretrained, load_tokenizer, model_parallel_map, place
from w2s.tasks import Task
from w2s.training.job import TrainingJob
from w2s.training.loop import Selection, fit
from w2s.training.outputs import PREDICTED_SPLITS
from w2s.training.losses import IGNORE_INDEX, token_xent
from w2s.training.resume import ResumeCheckpoints

log = logging.getLogger("w2s")


class ContextError(ValueError):
    """A prompt (with its target, or with the tokens to generate) does not fit the model's context."""


@dataclass(frozen=True)
class Encoded:
    """Token ids of training rows: each row's prompt's, and its target's followed by the end-of-text token."""

    prompts: list[list[int]]
    targets: list[list[int]]


def prompt_ids(tokenizer: Any, prompts: list[str]) -> list[list[int]]:
    """The prompts tokenised as the tokenizer does a text, with its special tokens (a BOS where it adds one)."""
    return tokenizer(list(prompts))["input_ids"] if len(prompts) else []


def target_ids(tokenizer: Any, targets: list[str]) -> list[list[int]]:
    """The targets tokenised as a continuation (no special tokens), each ended by the end-of-text token where
    the tokenizer has one, so that a trained model learns to stop."""
    ending = [] if tokenizer.eos_token_id is None else [tokenizer.eos_token_id]
    ids = tokenizer(list(targets), add_special_tokens=False)["input_ids"] if len(targets) else []
    return [row + ending for row in ids]


def context_length(max_length: int, model_config: Any) -> int:
    """The most tokens a row may hold: training.max_length, or the model's own position limit where lower."""
    limits = [max_length] + [getattr(model_config, name) for name in ("n_positions", "max_position_embeddings")
                             if isinstance(getattr(model_config, name, None), int)]
    return min(limits)


def check_context(ids: list[str], lengths: list[int], context: int, what: str, split: str) -> None:
    """Refuse rows longer than the context, naming them: a generative row cannot be truncated, since cutting
    a prompt changes its question and cutting a target changes its answer."""
    too_long = [(row_id, n) for row_id, n in zip(ids, lengths) if n > context]
    if too_long:
        longest = max(n for _, n in too_long)
        shown = ", ".join(str(row_id) for row_id, _ in too_long[:5])
        raise ContextError(
            f"{len(too_long)} of {len(ids)} rows of {split} are longer than the context of {context} tokens: {what} "
            f"comes to up to {longest} tokens (ids {shown}{', ...' if len(too_long) > 5 else ''}); raise "
            "training.max_length (up to the model's position limit), lower generation.max_new_tokens, or leave "
            "the long prompts out of the data (chess puzzles: lower datasets.<name>.max_moves, docs/datasets.md)")


class TargetLogits(nn.Module):
    """A causal LM whose forward returns, for each row, the logits that predict its target tokens: (n, T, V),
    where `target_positions` (n, T) are the positions whose next token is a target token (0 where a row has
    fewer than T; their labels are IGNORE_INDEX, so no loss reads them).

    The output layer runs on those positions' hidden states only: the LM's own forward would compute every
    position's logits, (n, L, V), for a chess game of ~1,000 tokens and Qwen's 152k-word vocabulary some
    600 MB a row in float32 and their gradient, of which ~10 positions are read."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor,
                target_positions: torch.Tensor) -> torch.Tensor:
        hidden = self.lm.get_decoder()(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        index = target_positions.unsqueeze(-1).expand(-1, -1, hidden.shape[-1])
        return self.lm.get_output_embeddings()(hidden.gather(1, index))


def target_labels(target_ids: list[list[int]]) -> torch.Tensor:
    """Every row's target token ids, IGNORE_INDEX after its last: (n, longest target)."""
    width = max(len(ids) for ids in target_ids)
    labels = torch.full((len(target_ids), width), IGNORE_INDEX, dtype=torch.long)
    for row, ids in enumerate(target_ids):
        labels[row, : len(ids)] = torch.tensor(ids, dtype=torch.long)
    return labels


def training_batch(encoded: Encoded, rows: np.ndarray, width: int, pad_id: int) -> dict[str, torch.Tensor]:
    """Rows of prompt + target tokens, right-padded, with the positions whose logits predict each target token
    (the target's j-th token is predicted at prompt length + j - 1), `width` slots per row."""
    sequences = [encoded.prompts[i] + encoded.targets[i] for i in rows]
    longest = max(len(s) for s in sequences)
    input_ids = torch.full((len(rows), longest), pad_id, dtype=torch.long)
    attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
    positions = torch.zeros((len(rows), width), dtype=torch.long)
    for k, (i, sequence) in enumerate(zip(rows, sequences)):
        input_ids[k, : len(sequence)] = torch.tensor(sequence)
        attention_mask[k, : len(sequence)] = 1
        n_prompt, n_target = len(encoded.prompts[i]), len(encoded.targets[i])
        positions[k, :n_target] = torch.arange(n_prompt - 1, n_prompt - 1 + n_target)
    return {"input_ids": input_ids, "attention_mask": attention_mask, "target_positions": positions}


def target_agreement(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """How many rows' every target token is the model's most probable next token (teacher-forced)."""
    hits = (logits.argmax(-1) == labels) | (labels == IGNORE_INDEX)
    return hits.all(dim=1).sum()


@torch.inference_mode()
def generate(lm: nn.Module, tokenizer: Any, prompt_ids: list[list[int]], max_new_tokens: int, batch_size: int,
             on: torch.device, compute_dtype: str = "float32") -> list[str]:
    """Every prompt's greedy generation (the model's own `generate`, do_sample off), in row order.

    Prompts go in order of length, `batch_size` at a time, left-padded so that every row's next token follows
    its own last one; the attention mask hides the padding. A generation is the decoded text of the new tokens
    before the first end-of-text token, special tokens left out.
    """
    lm.eval()
    eos, pad = tokenizer.eos_token_id, tokenizer.pad_token_id
    order = np.argsort([len(ids) for ids in prompt_ids], kind="stable")
    texts: list[str] = [""] * len(prompt_ids)
    for start in range(0, len(order), batch_size):
        rows = order[start : start + batch_size]
        longest = max(len(prompt_ids[i]) for i in rows)
        input_ids = torch.full((len(rows), longest), pad, dtype=torch.long)
        attention_mask = torch.zeros((len(rows), longest), dtype=torch.long)
        for k, i in enumerate(rows):
            ids = prompt_ids[i]
            input_ids[k, longest - len(ids):] = torch.tensor(ids)
            attention_mask[k, longest - len(ids):] = 1
        with autocast(on, compute_dtype):
            out = lm.generate(input_ids=input_ids.to(on), attention_mask=attention_mask.to(on), do_sample=False,
                              max_new_tokens=max_new_tokens, min_new_tokens=0, pad_token_id=pad, eos_token_id=eos,
                              num_beams=1, temperature=None, top_p=None, top_k=None)
        for k, i in enumerate(rows):
            new = out[k, longest:].tolist()
            if eos is not None and eos in new:
                new = new[: new.index(eos)]
            texts[i] = tokenizer.decode(new, skip_special_tokens=True)
    return texts


def build_lm(model_entry: dict[str, Any], mode: str, lora: Any, gradient_checkpointing: bool,
             on: torch.device) -> tuple[nn.Module, Any]:
    """The causal LM (float32 master weights; autocast supplies the compute dtype), LoRA-wrapped in mode lora,
    and its tokenizer."""
    tokenizer = load_tokenizer(model_entry)
    lm, _ = load_pretrained(model_entry, device_map=model_parallel_map(torch.cuda.device_count()), causal_lm=True)
    if mode == "lora":
        lm = add_lora(lm, lora)
    if gradient_checkpointing:
        lm.gradient_checkpointing_enable()
        if mode == "lora":
            lm.enable_input_require_grads()
    lm = place(lm, on)
    disable_dropout(lm)
    return lm, tokenizer


def predicted_frames(frames: dict[str, pd.DataFrame], task: Task) -> dict[str, pd.DataFrame]:
    """The rows a generative run generates on: all of test, and of train_w2s the slices its task names (those
    its weak labels are read from; none for a run that supervises nobody), or every row where the task names
    no slices."""
    predicted = {split: frames[split] for split in PREDICTED_SPLITS}
    if task.n_slices is not None:
        train_w2s = predicted["train_w2s"]
        parts = [w2s_slice(train_w2s, index, task.n_slices) for index in task.generated_slices]
        predicted["train_w2s"] = pd.concat(parts) if parts else train_w2s.iloc[:0]
    return predicted


def finetune(job: TrainingJob, resume: ResumeCheckpoints | None) -> None:
    """Train a causal LM on its rows' targets (true targets, or a supervisor's generations for a student) and
    write its greedy generations on test and on the slices of train_w2s it labels as predictions
    (predicted_frames, w2s.data.generations).

    With a holdout, every evaluation generates on the held-out rows and scores exact match against their
    training targets (normalise_answer); the best-scoring weights are kept, as in classification.
    """
    settings, frames, rows, holdout, on = job.settings, job.frames, job.rows, job.holdout, device()
    max_new_tokens = job.task.max_new_tokens
    assert max_new_tokens is not None, "a generative task's params carry max_new_tokens"
    lm, tokenizer = build_lm(job.model_entry, settings.mode, settings.lora, bool(settings.gradient_checkpointing), on)
    context = context_length(settings.max_length, lm.config)
    train_frame = frames[job.train_split]
    every = rows if holdout is None else pd.concat([rows, holdout])
    split_prompts = prompt_ids(tokenizer, train_frame["prompt"].tolist())
    targets = dict(zip(every["row"], target_ids(tokenizer, every["target"].tolist())))
    check_context(list(train_frame["id"].iloc[every["row"]]),
                  [len(split_prompts[r]) + len(targets[r]) for r in every["row"]], context,
                  "prompt + target + end-of-text", job.train_split)
    predicted = predicted_frames(frames, job.task)
    prompts = {split: prompt_ids(tokenizer, frame["prompt"].tolist()) for split, frame in predicted.items()}
    for split, ids in prompts.items():
        check_context(predicted[split]["id"].tolist(), [len(p) + max_new_tokens for p in ids], context,
                      f"prompt + generation.max_new_tokens ({max_new_tokens})", split)

    train_rows = rows["row"].to_numpy()
    train = Encoded([split_prompts[r] for r in train_rows], [targets[r] for r in train_rows])
    labels = target_labels(train.targets)
    pad = tokenizer.pad_token_id

    def generate_rows(ids: list[list[int]]) -> list[str]:
        return generate(lm, tokenizer, ids, max_new_tokens, settings.eval_batch_size, on, settings.dtype)

    selection = None
    if holdout is not None:
        held_prompts = [split_prompts[r] for r in holdout["row"]]
        held_targets = holdout["true_target" if settings.model_selection == "ground_truth_holdout" else "target"]

        def holdout_exact_match() -> float:
            return metrics.exact_match(generate_rows(held_prompts), held_targets)

        steps_per_epoch = max(1, math.ceil(len(rows) / settings.batch_size))
        selection = Selection(holdout_exact_match, max(1, round(steps_per_epoch / settings.evals_per_epoch)))

    history = fit(
        TargetLogits(lm),
        lambda batch: training_batch(train, batch, labels.shape[1], pad),
        labels,
        lambda logits, t, step_frac, batch: token_xent(logits, t, step_frac, batch=batch),
        settings.schedule(job.seed),
        on,
        settings.dtype,
        selection,
        lengths=np.array([len(p) + len(t) for p, t in zip(train.prompts, train.targets)]),
        resume=resume,
        agreement=target_agreement,
    )
    log.info("trained %d steps, final loss %.4f", len(history), history[-1]["loss"])
    generations = {split: generate_rows(ids) for split, ids in prompts.items()}
    for split, texts in generations.items():
        empty = sum(not metrics.normalise_answer(text) for text in texts)
        log.info("%s: %d generations, %d empty", split, len(texts), empty)
    io.write_parquet(prediction_frame({split: frame["id"] for split, frame in predicted.items()}, generations),
                     job.out["predictions"])
    io.write_parquet(pd.DataFrame(history).assign(device=describe_device(on)), job.out["history"])
    # A generative run has one model and no L2 strengths: its sweep is its test generations, chosen.
    io.write_parquet(pd.DataFrame({"l2": np.nan, "chosen": True, "id": frames["test"]["id"].to_numpy(),
                                   GENERATION_COLUMN: generations["test"]}), job.out["sweep"])
    with io.staged_directory(job.out["checkpoint"]) as staging:
        lm.save_pretrained(staging / "model", safe_serialization=True)
        tokenizer.save_pretrained(staging / "model")
    if resume is not None:
        resume.clear()


def training_rows(frames: dict[str, pd.DataFrame], weak_labels_path: str | None,
                  oracle_labels_path: str | None = None) -> pd.DataFrame:
    """Rows to train on, as positions in their split with a target text: train_gt's targets for a ground-truth
    run, a supervisor's generations (w2s.data.generations) for a student; with the opt-in oracle of
    ground_truth_holdout also the true target (`true_target`), joined by id."""
    if weak_labels_path is None:
        gt = frames["train_gt"]
        return pd.DataFrame({"row": np.arange(len(gt)), "target": gt["target"].to_numpy(),
                             "true_target": gt["target"].to_numpy()})
    rows = training_targets(weak_labels_path, frames["train_w2s"])
    if oracle_labels_path is not None:
        oracle = pd.read_parquet(oracle_labels_path).set_index("id")
        ids = frames["train_w2s"]["id"].to_numpy()[rows["row"].to_numpy()]
        rows["true_target"] = oracle.loc[ids, "target"].to_numpy()
    return rows
