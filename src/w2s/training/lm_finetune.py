"""Generative finetuning (Burns et al. 2023, Section 5.2): a causal LM trained with its next-token loss on a
task's texts without labels, before weak-to-strong training starts from it.

The stage runs on the training loop of every other job (w2s.training.loop.fit): the language model is
wrapped so that its output per row is the summed next-token loss of the row's text, and the loss of a batch is
their sum over the batch's number of predicted tokens, so minibatches accumulate to the batch's per-token
mean. Padding is no target (-100), as in transformers' own `labels`.
"""

from __future__ import annotations

import logging
from dataclasses import asdict, dataclass, fields
from pathlib import Path
from typing import Any, Sequence

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from w2s import io
from w2s.models.devices import describe_device, device
from w2s.models.text import disable_dropout, load_causal_lm, load_tokenizer, model_parallel_map, place
from w2s.params import check_keys
from w2s.training.loop import Batcher, Schedule, fit
from w2s.training.losses import Batch
from w2s.training.resume import ResumeCheckpoints, run_key

log = logging.getLogger("w2s")
IGNORED = -100  # the target id cross_entropy and transformers' `labels` skip


@dataclass(frozen=True)
class GenerativeSettings:
    """generative_finetuning's hyperparameters as its job receives them (w2s.pipeline.experiment.generative_params)."""

    lr: float
    epochs: float
    batch_size: int
    minibatch_size: int
    max_length: int
    weight_decay: float
    warmup_frac: float
    max_grad_norm: float
    optimizer: str
    dtype: str
    gradient_checkpointing: bool
    checkpoint_every: int

    @classmethod
    def from_params(cls, params: dict[str, Any]) -> "GenerativeSettings":
        check_keys("generative finetuning params", params, [field.name for field in fields(cls)])
        return cls(**params)

    def schedule(self, seed: int) -> Schedule:
        names = [field.name for field in fields(Schedule) if field.name != "seed"]
        return Schedule(**{name: getattr(self, name) for name in names}, seed=seed)


def next_token_losses(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Each row's summed cross-entropy of predicting token t + 1 from tokens up to t, shape (rows, 1); targets
    equal to -100 (padding) count nothing."""
    predicted, targets = logits[:, :-1].float(), labels[:, 1:]
    losses = F.cross_entropy(predicted.reshape(-1, predicted.shape[-1]), targets.reshape(-1),
                             ignore_index=IGNORED, reduction="none")
    return losses.view(targets.shape).sum(dim=1, keepdim=True)


class NextTokenLosses(nn.Module):
    """A causal LM whose forward gives every row's summed next-token loss: the per-row output fit expects."""

    def __init__(self, lm: nn.Module):
        super().__init__()
        self.lm = lm

    def forward(self, input_ids: torch.Tensor, attention_mask: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        logits = self.lm(input_ids=input_ids, attention_mask=attention_mask).logits
        return next_token_losses(logits, labels.to(logits.device))


def per_token_loss(row_losses: torch.Tensor, predicted_tokens: torch.Tensor, step_frac: float,
                   batch: Batch) -> torch.Tensor:
    """A minibatch's share of its batch's mean loss per predicted token: fit's targets are each row's number
    of predicted tokens, so the batch's are their sum."""
    return row_losses.sum() / batch.targets.sum()


def lm_batcher(tokenizer: Any, token_ids: list[list[int]]) -> Batcher:
    """Right-padded rows with their labels: the input ids, padding replaced by -100."""

    def batch(rows: np.ndarray) -> dict[str, torch.Tensor]:
        padded = tokenizer.pad({"input_ids": [token_ids[i] for i in rows]}, return_tensors="pt")
        labels = padded["input_ids"].masked_fill(padded["attention_mask"] == 0, IGNORED)
        return {"input_ids": padded["input_ids"], "attention_mask": padded["attention_mask"], "labels": labels}

    return batch


# What a labelled split holds and a label-free view never does: a class, or a generative task's answer.
LABEL_COLUMNS = ("label", "target")


def read_texts(paths: Sequence[str]) -> list[str]:
    """The texts of label-free split views, in the order given; a labelled split is refused, since the stage
    must not see a label."""
    texts: list[str] = []
    for path in paths:
        frame = pd.read_parquet(path)
        labels = [column for column in LABEL_COLUMNS if column in frame]
        if labels:
            raise ValueError(f"{path} has a {labels[0]} column; generative finetuning reads the label-free views "
                             "(results/data/<dataset>/seed<seed>/unlabelled/<split>.parquet)")
        # A classification view holds texts; a generative one holds prompts (chess: the game so far), never targets.
        texts.extend(frame["text" if "text" in frame else "prompt"].tolist())
    return texts


def generative_finetune(model_entry: dict[str, Any], settings: GenerativeSettings, seed: int, text_paths: Sequence[str],
                        out: dict[str, str], resume_dir: str | Path | None = None,
                        code_paths: Sequence[str | Path] = ()) -> None:
    """Finetune the model's causal LM on the texts at `text_paths` with the next-token loss on every text token
    (the first token of a row is no target; texts are cut at max_length); save it as a save_pretrained
    folder with its tokenizer to out["checkpoint"] and one row per optimiser step to out["history"].

    Texts of fewer than two tokens predict nothing and are skipped. With `resume_dir`, a killed job resumes
    as a training job does (w2s.training.resume)."""
    torch.manual_seed(seed)
    on = device()
    tokenizer = load_tokenizer(model_entry)
    saved_side, tokenizer.padding_side = tokenizer.padding_side, "right"  # positions count from each row's start
    texts = read_texts(text_paths)
    token_ids = [ids for ids in tokenizer(texts, truncation=True, max_length=settings.max_length)["input_ids"]
                 if len(ids) >= 2]
    if not token_ids:
        raise ValueError(f"none of the {len(texts)} texts of {', '.join(map(str, text_paths))} has two tokens, so "
                         "there is no next token to learn; check the splits' text column")
    lm = load_causal_lm(model_entry, device_map=model_parallel_map(torch.cuda.device_count()))
    disable_dropout(lm)
    if settings.gradient_checkpointing:
        lm.gradient_checkpointing_enable()
    model = place(NextTokenLosses(lm), on)
    lengths = np.fromiter((len(ids) for ids in token_ids), dtype=np.int64, count=len(token_ids))
    predicted_tokens = torch.tensor(lengths - 1, dtype=torch.float32).unsqueeze(1)
    resume = None
    if resume_dir is not None:
        identity = {"model_entry": model_entry, "params": asdict(settings), "seed": seed}
        resume = ResumeCheckpoints(resume_dir, run_key(identity, text_paths, code_paths), settings.checkpoint_every)
    history = fit(model, lm_batcher(tokenizer, token_ids), predicted_tokens, per_token_loss,
                  settings.schedule(seed), on, settings.dtype, lengths=lengths, resume=resume)
    log.info("generative finetuning on %d texts (%d predicted tokens): %d steps, loss %.4f -> %.4f", len(token_ids),
             int(predicted_tokens.sum()), len(history), history[0]["loss"], history[-1]["loss"])
    # fit's batch_target_accuracy compares class outputs; a row's summed loss is none.
    steps = pd.DataFrame(history).drop(columns="batch_target_accuracy").assign(device=describe_device(on))
    io.write_parquet(steps, out["history"])
    tokenizer.padding_side = saved_side  # the twin's jobs pad as the model's own tokenizer does
    with io.staged_directory(out["checkpoint"]) as staging:
        lm.save_pretrained(staging, safe_serialization=True)
        tokenizer.save_pretrained(staging)
    if resume is not None:
        resume.clear()
