"""Write a tiny randomly initialised GPT-2 causal LM with a byte-level tokenizer to a folder, for trying a
generative task's config end to end in seconds (docs/your-data.md). It has learnt nothing: its accuracy
says only that the pipeline ran. Point a model's `path:` at the folder.

    python examples/tiny_causal_lm.py models/tiny-weak --layers 1 --width 16
"""

from __future__ import annotations

import argparse
from pathlib import Path

# Before transformers: a CPU-only torch needs w2s's stand-in for torchvision's compiled operators.
import w2s  # noqa: F401

SPECIAL_TOKENS = ["<pad>", "<|endoftext|>"]


def byte_level_tokenizer(max_length: int):  # -> transformers.PreTrainedTokenizerFast
    """Every text as its UTF-8 bytes, one token each (GPT-2's byte-to-character map, no merges), then the
    pad and end-of-text tokens: any text can be written, nothing needs training."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    alphabet = pre_tokenizers.ByteLevel.alphabet()
    vocab = {character: index for index, character in enumerate(sorted(alphabet))}
    vocab.update({token: len(vocab) + i for i, token in enumerate(SPECIAL_TOKENS)})
    core = Tokenizer(models.BPE(vocab=vocab, merges=[]))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    return PreTrainedTokenizerFast(tokenizer_object=core, pad_token="<pad>", eos_token="<|endoftext|>",
                                   model_max_length=max_length)


def write_tiny_causal_lm(folder: Path, layers: int, width: int, positions: int, seed: int) -> Path:
    import torch
    from transformers import GPT2Config, GPT2LMHeadModel

    tokenizer = byte_level_tokenizer(positions)
    torch.manual_seed(seed)
    model = GPT2LMHeadModel(GPT2Config(
        vocab_size=len(tokenizer), n_embd=width, n_layer=layers, n_head=2, n_positions=positions,
        bos_token_id=tokenizer.eos_token_id, eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id,
    ))
    folder.mkdir(parents=True, exist_ok=True)
    model.save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("folder", type=Path)
    parser.add_argument("--layers", type=int, default=1)
    parser.add_argument("--width", type=int, default=16, help="hidden size (two attention heads)")
    parser.add_argument("--positions", type=int, default=128, help="the longest prompt + generation, in bytes")
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    folder = write_tiny_causal_lm(args.folder, args.layers, args.width, args.positions, args.seed)
    print(f"wrote a random {args.layers}-layer GPT-2 of width {args.width} to {folder}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
