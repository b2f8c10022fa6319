"""Tiny generative-task inputs for the tests: a word-level tokenizer over a few letters with an end-of-text
token, randomly initialised GPT-2 causal LMs, and a toy task in a (prompt, target) schema."""

from __future__ import annotations

import random
from pathlib import Path

import pandas as pd

LETTERS = list("abcdefgh")
SPECIALS = ["[PAD]", "[UNK]", "[EOS]"]
WORDS = [*SPECIALS, *LETTERS, "next"]


def successor(letter: str) -> str:
    return LETTERS[(LETTERS.index(letter) + 1) % len(LETTERS)]


def toy_rows(n: int, seed: int) -> list[dict]:
    """Prompts of three letters; the target is the letter after the last one (h is followed by a)."""
    rng = random.Random(seed)
    rows = []
    for _ in range(n):
        letters = [rng.choice(LETTERS) for _ in range(3)]
        rows.append({"question": " ".join(letters), "answer": successor(letters[-1])})
    return rows


def write_toy_parquet(path: Path, n: int, seed: int) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(toy_rows(n, seed)).to_parquet(path)
    return path


def make_tiny_causal_lm(directory: Path, seed: int, n_layer: int = 1, n_embd: int = 16) -> Path:
    """A randomly initialised GPT-2 with its LM head and a word-level tokenizer whose eos is [EOS]."""
    import torch
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import GPT2Config, GPT2LMHeadModel, PreTrainedTokenizerFast

    torch.manual_seed(seed)
    vocab = {word: i for i, word in enumerate(WORDS)}
    model = GPT2LMHeadModel(GPT2Config(vocab_size=len(vocab), n_embd=n_embd, n_layer=n_layer, n_head=2,
                                       n_positions=16, bos_token_id=2, eos_token_id=2, pad_token_id=0))
    directory.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(directory)
    core = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    core.pre_tokenizer = pre_tokenizers.Whitespace()
    core.decoder = decoders.WordPiece()  # joins words with spaces
    PreTrainedTokenizerFast(tokenizer_object=core, pad_token="[PAD]", unk_token="[UNK]", eos_token="[EOS]",
                            model_max_length=16).save_pretrained(directory)
    return directory
