"""What every classification trainer writes: the class probabilities of the predicted splits, and the
checkpoint of the trained model (its head alone for a probe)."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
import torch

from w2s import io
from w2s.data import labels as class_probs
from w2s.data.splits import OOD_SPLIT
from w2s.models.text import TextClassifier

# The splits every trainer predicts: the held-out test split, and train_w2s, where a supervisor's predictions
# become its students' weak labels (a generative task predicts only the slices it labels, w2s.training.generative).
PREDICTED_SPLITS = ("test", "train_w2s")


def predicted_splits(frames: dict[str, Any]) -> tuple[str, ...]:
    """The splits a job predicts: PREDICTED_SPLITS, and the out-of-distribution test split where it has one."""
    return PREDICTED_SPLITS + ((OOD_SPLIT,) if OOD_SPLIT in frames else ())


def write_predictions(frames: dict[str, pd.DataFrame], probs: dict[str, np.ndarray], out: dict[str, str],
                       fix: str) -> None:
    """Every predicted split's (split, id, probs) rows: the K class probabilities of each row."""
    predictions = []
    for split in predicted_splits(frames):
        class_probs.check_probabilities(probs[split], f"{split} predictions", fix)
        predictions.append(pd.DataFrame({"split": split, "id": frames[split]["id"],
                                         "probs": class_probs.as_column(probs[split])}))
    io.write_parquet(pd.concat(predictions, ignore_index=True), out["predictions"])


def save_checkpoint(model: torch.nn.Module, tokenizer: Any, directory: str,
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
