"""The rehearsal's data: every dataset of a config as a local copy in its source's own layout, with rows as long
as the real data's, so that tokenizers, truncation, context checks and memory see the shapes the real run sees.

- Catalogue hub datasets: the repository's layout at its registered revision (hub_layouts), rows in its hub schema
  (hub_rows) whose text fields are padded with English words to lengths drawn around the real data's (TEXT_WORDS).
- Chess puzzles (EleutherAI/lichess-puzzles): games of random legal moves that stop at full-move numbers drawn from
  the real Lichess sample's distribution (FULLMOVE_BINS), with a few games past move 90, each with a legal target.
- ImageNet: an image folder of 1,000 class folders (`n%08d`, sorted as WordNet ids are) of JPEGs of ImageNet's
  typical size.
Datasets from local files or PyPI packages (vader_movies) are read as they are.
"""

from __future__ import annotations

import io
import math
import random
from pathlib import Path
from typing import Any

import chess
import numpy as np

from w2s.data.chess import movetext, write_hub_copy
from w2s.pipeline.rehearsal.hub_layouts import hub_folder
from w2s.pipeline.rehearsal.hub_rows import ROWS, RowBuilder

# Median words of each text field of the real data, as the datasets' papers and cards report them (approximate:
# the hub is unreachable here); each row draws its length from a log-normal around the median (SPREAD), capped at
# TAIL times it, so that a few rows are long, as in the real data.
TEXT_WORDS: dict[str, dict[str, int]] = {
    "amazon_polarity": {"title": 5, "content": 74},
    "sciq": {"question": 14, "correct_answer": 2, "distractor1": 2, "distractor2": 2, "distractor3": 2, "support": 60},
    "anthropic_hh": {"chosen": 180, "rejected": 180},
    "anthropic_hh_pairwise": {"chosen": 180, "rejected": 180},
    "cosmos_qa": {"context": 70, "question": 10, "answer0": 8, "answer1": 8, "answer2": 8, "answer3": 8},
    "boolq": {"question": 9, "passage": 108},
    "sst2": {"sentence": 19},
    "dream": {"dialogue": 20, "question": 8, "choice": 5},
    "ethics_justice": {"scenario": 20},
    "ethics_deontology": {"scenario": 12, "excuse": 10},
    "ethics_virtue": {},
    "ethics_utilitarianism": {"baseline": 15, "less_pleasant": 15},
    "anli_r2": {"premise": 55, "hypothesis": 10},
    "cola": {"sentence": 9},
    "hellaswag": {"ctx": 40, "endings": 20},
    "mc_taco": {"sentence": 20, "question": 8, "answer": 3},
    "openbookqa": {"question_stem": 11, "choices": 3},
    "paws": {"sentence1": 21, "sentence2": 21},
    "quail": {"context": 320, "question": 10, "answers": 5},
    "piqa": {"goal": 8, "sol1": 21, "sol2": 21},
    "quartz": {"para": 25, "question": 15},
    "social_iqa": {"context": 15, "question": 7, "answerA": 3, "answerB": 3, "answerC": 3},
    "multirc": {"paragraph": 250, "question": 10, "answer": 5},
    "wic": {"sentence1": 10, "sentence2": 10},
    "twitter_sentiment": {"text": 20},
}
SPREAD, TAIL = 0.5, 4.0
WORDS = (
    "the of and to in is was for that on with as by at from his her it an were which are this be or had not but "
    "one all their has have they been its who more also new would first after other many most over some such into "
    "time only year two than then could when people made where between these both three during state world good "
    "great movie story film review product quality price question answer because water energy light heat plant cell "
    "animal earth system change increase decrease reason friend family house school work money government court law "
    "player team game season city country river mountain music book write wrote read children woman man before "
    "while though however although never always often still again very really quite well much little long short "
    "small large high low early late right wrong true false better worse best worst happy sad angry tired"
).split()

# Full-move numbers of the puzzle positions in the 1,499 real Lichess puzzles of ../shared (CC0): counts per bin of
# ten moves, 1-9 to 80-89 (measured: median 29, 99th percentile 66, largest 85). Every fixture also holds
# LONG_GAMES games at moves 90 to 95, past the sample's longest.
FULLMOVE_BINS = (24, 335, 418, 412, 172, 104, 20, 10, 4)
LONG_GAMES = 2

# ImageNet's validation images are mostly about 500 by 375 pixels.
IMAGE_SIZE = (500, 375)


def _length(rng: random.Random, median: int) -> int:
    return max(1, min(round(TAIL * median), round(median * math.exp(rng.gauss(0.0, SPREAD)))))


def _padded(value: Any, median: int, rng: random.Random) -> Any:
    """A text (or each text of a list, or a choices dict's texts) lengthened with words to about `median`."""
    if isinstance(value, str):
        missing = _length(rng, median) - len(value.split())
        return value if missing <= 0 else value.rstrip() + " " + " ".join(rng.choices(WORDS, k=missing))
    if isinstance(value, list):
        return [_padded(item, median, rng) for item in value]
    if isinstance(value, dict) and "text" in value:
        return {**value, "text": _padded(value["text"], median, rng)}
    return value


def realistic_rows(name: str, seed: int = 0) -> RowBuilder:
    """The dataset's hub_rows builder with its text fields padded to the real data's lengths (TEXT_WORDS). A
    transcript (anthropic_hh) is padded at its end, within the last reply, so that chosen and rejected keep
    their shared prompt."""
    base, lengths = ROWS[name], TEXT_WORDS[name]

    def rows(split: str, n: int) -> list[dict]:
        rng = random.Random(f"{name}/{split}/{seed}")
        return [{key: _padded(value, lengths[key], rng) if key in lengths else value for key, value in row.items()}
                for row in base(split, n)]

    return rows


def write_hub_dataset(name: str, root: Path, n_rows: dict[str, int]) -> Path:
    """A catalogue dataset's repository under `root` in its registered layout, rows as long as the real data's."""
    folder, _ = hub_folder(name, root, n_rows=n_rows, rows_of=realistic_rows(name))
    return folder


def _fullmove_numbers(n: int, rng: random.Random) -> list[int]:
    bins = rng.choices(range(len(FULLMOVE_BINS)), weights=FULLMOVE_BINS, k=max(0, n - LONG_GAMES))
    numbers = [max(2, 10 * b + rng.randrange(10)) for b in bins]
    return [90 + rng.randrange(6) for _ in range(min(n, LONG_GAMES))] + numbers


def _game_to(fullmove: int, rng: random.Random) -> chess.Board | None:
    """A game of random legal moves up to `fullmove` (White or Black to move), or None if it ended before."""
    board = chess.Board()
    stop = 2 * (fullmove - 1) + rng.randrange(2)
    while board.ply() < stop:
        if board.is_game_over(claim_draw=False):
            return None
        board.push(rng.choice(list(board.legal_moves)))
    return None if board.is_game_over(claim_draw=False) else board


def chess_puzzles(n: int, seed: int) -> list[dict[str, str]]:
    """`n` rows in EleutherAI/lichess-puzzles' schema (id, ctx, target) at the real sample's game lengths: the
    moves so far as the hub writes them and a legal move in SAN, a mating one where the position has one."""
    rng = random.Random(seed)
    rows = []
    for index, fullmove in enumerate(_fullmove_numbers(n, rng)):
        board = None
        while board is None:
            board = _game_to(fullmove, rng)
        mates = [m for m in board.legal_moves if board.gives_check(m) and _mates(board, m)]
        target = rng.choice(mates or list(board.legal_moves))
        rows.append({"id": f"rehearsal{index:05d}", "ctx": movetext(chess.Board(), board.move_stack),
                     "target": " " + board.san(target)})
    return rows


def _mates(board: chess.Board, move: chess.Move) -> bool:
    board.push(move)
    try:
        return board.is_checkmate()
    finally:
        board.pop()


def write_chess_puzzles(folder: Path, n: int, seed: int = 0) -> Path:
    return write_hub_copy(folder, chess_puzzles(n, seed))


def write_image_folder(folder: Path, n_classes: int, per_class: int, seed: int = 0) -> Path:
    """`n_classes` class folders named as sorted WordNet ids, each holding `per_class` JPEGs of ImageNet's
    typical size: smooth colour gradients with a class-dependent hue, so that they compress as photos do."""
    from PIL import Image

    rng = np.random.default_rng(seed)
    width, height = IMAGE_SIZE
    ramp = np.linspace(0.0, 1.0, width)[None, :, None] * np.linspace(0.3, 1.0, height)[:, None, None]
    for label in range(n_classes):
        directory = folder / f"n{label:08d}"
        directory.mkdir(parents=True, exist_ok=True)
        for index in range(per_class):
            colour = rng.uniform(0, 255, size=3) * (0.5 + 0.5 * np.sin(label + np.arange(3)))
            pixels = np.clip(ramp * colour + rng.normal(0, 4, size=(height, width, 3)), 0, 255).astype(np.uint8)
            buffer = io.BytesIO()
            Image.fromarray(pixels).save(buffer, format="JPEG", quality=85)
            (directory / f"img{index:04d}.JPEG").write_bytes(buffer.getvalue())
    return folder
