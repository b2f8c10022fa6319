"""Chess puzzles as (prompt, target) texts: the paper's chess task (Burns et al. 2023, appendix A.2).

The prompt is the game so far as PGN movetext in the form of the paper and of the `ctx` column of
EleutherAI/lichess-puzzles: every half-move numbered ("1. e4 1... e5 2. Nf3"), ending with the
number of the move to find ("2..." when Black is to move, "3." when White is). The target is that
move in SAN with a leading space (" Nc6"), as the hub's `target` column has it: prompt + target is
the game text as pretraining saw it, and a tokenizer that folds a leading space into a word reads
the move as it would inside a game.

Two row schemas are read by one converter (puzzle_example):
- EleutherAI/lichess-puzzles (id, ctx, target): ctx is a real game's moves up to the puzzle
  position (it already holds the first move of Lichess's `Moves`, the opponent's), target the
  solution's first move. The moves are replayed with python-chess and the prompt is written anew
  from them, so it is the form above whatever the spacing; the target must be legal there.
- The Lichess puzzle CSV (PuzzleId, FEN, Moves, ...): the game's moves are not in it, only the
  position before the opponent's move (FEN) and the moves from there in UCI. The prompt is then a
  PGN game from that position: its FEN and SetUp tags, a blank line, the opponent's move and the
  number of the move to find ('[FEN "..."]\\n[SetUp "1"]\\n\\n16... bxc5 17.'); the target is
  `Moves`' second move in SAN.

A bad row raises PuzzleError naming the puzzle and what to fix; no row is dropped silently.
puzzle_record also gives the puzzle's move number (that of the move to find, which a prompt of the hub's
schema grows with: preparation leaves out those above a dataset's max_moves, w2s.data.preparation) and, from
the CSV, its Rating and Themes, by which the metrics break accuracy down (rating_band).

prompt_position replays either prompt form, so that a generation can be checked for a legal move where
the prompt leaves the game (legal_move_rate).

mate_in_one_puzzles and write_hub_copy make offline puzzles in the hub's schema and file layout:
positions from seeded random games where the side to move has exactly one mating move (found by
trying every legal move; no engine), so each target is the one right answer.
"""

from __future__ import annotations

import argparse
import random
import re
import sys
from pathlib import Path
from typing import Any, Mapping, Sequence

import chess
import pyarrow as pa
import pyarrow.parquet as pq

HUB_ID = "EleutherAI/lichess-puzzles"
HUB_COLUMNS = ("id", "ctx", "target")
# The Lichess puzzle database's CSV header (database.lichess.org); the converter reads the first three.
LICHESS_CSV_COLUMNS = ("PuzzleId", "FEN", "Moves", "Rating", "RatingDeviation", "Popularity", "NbPlays", "Themes",
                       "GameUrl", "OpeningTags")
# The hub repository keeps its one train split in two parquet shards under data/.
HUB_SHARDS = 2
# A move number: "12." before White's move, "12..." before Black's.
MOVE_NUMBER = re.compile(r"(\d+)\.(\.\.)?")
FEN_TAG = re.compile(r'\[FEN "([^"]+)"\]')
# Accuracy is broken down by puzzle rating in bands this wide, the last open-ended (Lichess ratings run
# from about 400 to 3,300).
RATING_BAND_WIDTH = 500
LOWEST_RATING_BAND, HIGHEST_RATING_BAND = 1000, 2500


class PuzzleError(ValueError):
    """A puzzle row whose moves cannot be read or played, or whose target is no legal move."""


def move_number(board: chess.Board) -> str:
    """The PGN move number before the side to move plays: "12." for White, "12..." for Black."""
    return f"{board.fullmove_number}." + ("" if board.turn == chess.WHITE else "..")


def movetext(start: chess.Board, moves: Sequence[chess.Move]) -> str:
    """`moves` played from `start`, every half-move numbered, then the number of the move to find."""
    board = start.copy(stack=False)
    parts = []
    for move in moves:
        parts.append(f"{move_number(board)} {board.san(move)}")
        board.push(move)
    parts.append(move_number(board))
    return " ".join(parts)


def puzzle_example(row: Mapping[str, Any]) -> tuple[str, str]:
    """(prompt, target) of a row of EleutherAI/lichess-puzzles or of the Lichess puzzle CSV."""
    record = puzzle_record(row)
    return record["prompt"], record["target"]


def puzzle_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """A row's prompt and target, the number of the move to find (`move_number`) and, from the Lichess puzzle
    CSV, the puzzle's `rating` and `themes` (space-separated, as Lichess writes them)."""
    if "ctx" in row:
        return _transcript_example(str(row.get("id")), row["ctx"], row["target"])
    if "FEN" in row and "Moves" in row:
        record = _lichess_csv_example(str(row.get("PuzzleId")), row["FEN"], row["Moves"])
        return {**record, "rating": int(row["Rating"]), "themes": str(row["Themes"])}
    raise PuzzleError(
        f"a row with columns {', '.join(sorted(row))} is in neither puzzle schema: {HUB_ID}'s "
        f"({', '.join(HUB_COLUMNS)}) or the Lichess puzzle CSV's ({', '.join(LICHESS_CSV_COLUMNS[:3])}, ...); "
        "point data_files at a file in one of them"
    )


def _transcript_example(puzzle_id: str, ctx: Any, target: Any) -> dict[str, Any]:
    board = _replayed(f"puzzle {puzzle_id}", chess.Board(), str(ctx), "ctx", "fix the row's ctx")
    return {"prompt": movetext(chess.Board(), board.move_stack),
            "target": " " + _target_san(puzzle_id, board, target, "ctx"), "move_number": board.fullmove_number}


def _replayed(who: str, board: chess.Board, moves: str, what: str, fix: str) -> chess.Board:
    """`board` after the SAN moves of `moves` (`what`, in errors that start with `who` and end with `fix`),
    whose move numbers, where present, must be the position's."""
    tokens = MOVE_NUMBER.sub(lambda number: f" {number.group(0)} ", moves).split()
    for token in tokens:
        if MOVE_NUMBER.fullmatch(token):
            if token != move_number(board):
                raise PuzzleError(
                    f"{who}: {what} numbers half-move {len(board.move_stack) + 1} '{token}', but it is "
                    f"{move_number(board)}; {fix} (the game's moves in SAN, each numbered)"
                )
            continue
        try:
            board.push_san(token)
        except ValueError as err:
            raise PuzzleError(
                f"{who}: half-move {len(board.move_stack) + 1} of {what}, '{token}', is no legal move in "
                f"the position {board.fen()} ({_why(err)}); {fix} (the game's moves in SAN)"
            ) from err
    return board


def prompt_position(prompt: str) -> chess.Board:
    """The position a prompt of either form leaves the game in: its moves replayed from the initial position,
    or from its FEN tag (the CSV's PGN form, whose moves follow the tags after a blank line)."""
    tags, _, moves = prompt.rpartition("\n\n")
    fen = FEN_TAG.search(tags)
    return _replayed("a prompt", chess.Board(fen.group(1)) if fen else chess.Board(), moves, "the prompt",
                     "prepare the data again")


def is_legal_answer(board: chess.Board, generation: str) -> bool:
    """Whether a generation's answer (its first word, as exact match reads it) is a legal move in SAN in
    `board`; python-chess also reads the null move "--", which is no move."""
    words = str(generation).split()
    if not words:
        return False
    try:
        return board.parse_san(words[0]) != chess.Move.null()
    except ValueError:
        return False


def legal_move_rate(prompts: Sequence[str], generations: Sequence[str]) -> float:
    """The share of generations whose answer is a legal move where its prompt leaves the game; an empty one is
    not."""
    legal = [is_legal_answer(prompt_position(prompt), text) for prompt, text in zip(prompts, generations, strict=True)]
    return sum(legal) / len(legal)


def rating_band(rating: float) -> str:
    """A puzzle rating's band of RATING_BAND_WIDTH points: "<1000", "1000-1499", ..., "2500+"."""
    if rating < LOWEST_RATING_BAND:
        return f"<{LOWEST_RATING_BAND}"
    if rating >= HIGHEST_RATING_BAND:
        return f"{HIGHEST_RATING_BAND}+"
    low = int(rating // RATING_BAND_WIDTH * RATING_BAND_WIDTH)
    return f"{low}-{low + RATING_BAND_WIDTH - 1}"


def _target_san(puzzle_id: str, board: chess.Board, target: Any, context: str) -> str:
    """The target move in SAN as python-chess writes it, checked legal in `board`."""
    text = "" if target is None else str(target).strip()
    side = "White" if board.turn == chess.WHITE else "Black"
    try:
        return board.san(board.parse_san(text))
    except ValueError as err:
        raise PuzzleError(
            f"puzzle {puzzle_id}: the target '{text}' is no legal move for {side} in the position after {context} "
            f"({board.fen()}): {_why(err)}; fix the row's target (the solution's first move, in SAN)"
        ) from err


def _why(err: ValueError) -> str:
    """Why python-chess refused a SAN move, in words (its own message repeats the position)."""
    if isinstance(err, chess.AmbiguousMoveError):
        return "ambiguous there"
    return "illegal there" if isinstance(err, chess.IllegalMoveError) else "not SAN"


def _lichess_csv_example(puzzle_id: str, fen: Any, moves: Any) -> dict[str, Any]:
    try:
        start = chess.Board(str(fen))
    except ValueError as err:
        raise PuzzleError(f"puzzle {puzzle_id}: FEN '{fen}' is no valid position ({err}); fix the row's FEN") from err
    ucis = str(moves).split()
    if len(ucis) < 2:
        raise PuzzleError(
            f"puzzle {puzzle_id}: Moves '{moves}' holds {len(ucis)} move(s), but a Lichess puzzle lists the "
            "opponent's move, then the solution; fix the row's Moves"
        )
    opponent = _legal_uci(puzzle_id, start, ucis[0], "first (the opponent's)")
    board = start.copy(stack=False)
    board.push(opponent)
    solution = _legal_uci(puzzle_id, board, ucis[1], "second (the solution's first)")
    return {"prompt": f'[FEN "{start.fen()}"]\n[SetUp "1"]\n\n{movetext(start, [opponent])}',
            "target": " " + board.san(solution), "move_number": board.fullmove_number}


def _legal_uci(puzzle_id: str, board: chess.Board, uci: str, which: str) -> chess.Move:
    try:
        move: chess.Move | None = chess.Move.from_uci(uci)
    except ValueError:  # not UCI at all
        move = None
    if move is None or not board.is_legal(move):
        raise PuzzleError(
            f"puzzle {puzzle_id}: the {which} move of Moves, '{uci}', is no legal move in the position "
            f"{board.fen()}; fix the row's Moves (UCI moves from its FEN)"
        )
    return move


def mating_moves(board: chess.Board) -> list[chess.Move]:
    """Every legal move of the side to move that checkmates."""
    mates = []
    for move in board.legal_moves:
        if board.gives_check(move):
            board.push(move)
            if board.is_checkmate():
                mates.append(move)
            board.pop()
    return mates


def mate_in_one_puzzles(n_puzzles: int, seed: int, *, min_plies: int = 10, max_plies: int = 300) -> list[dict[str, str]]:
    """`n_puzzles` rows in the hub's schema (id, ctx, target): each from its own game of uniformly random
    legal moves (random.Random(seed)), at its first position after `min_plies` half-moves where the side
    to move has exactly one mating move, which is the target. A game that ends or reaches `max_plies`
    first is dropped. The same seed gives the same rows (for one python-chess version: its move order)."""
    rng = random.Random(seed)
    rows: list[dict[str, str]] = []
    while len(rows) < n_puzzles:
        board = chess.Board()
        while board.ply() < max_plies and not board.is_game_over():
            mates = mating_moves(board) if board.ply() >= min_plies else []
            if len(mates) == 1:
                rows.append({"id": f"mate1-s{seed}-{len(rows):05d}", "ctx": movetext(chess.Board(), board.move_stack),
                             "target": " " + board.san(mates[0])})
                break
            board.push(rng.choice(list(board.legal_moves)))
    return rows


HUB_README = """---
dataset_info:
  features:
  - name: id
    dtype: string
  - name: ctx
    dtype: string
  - name: target
    dtype: string
configs:
- config_name: default
  data_files:
  - split: train
    path: data/train-*
---
Offline mate-in-one puzzles in the schema and layout of {hub_id} (w2s.data.chess).
"""


def write_hub_copy(folder: str | Path, rows: Sequence[Mapping[str, str]]) -> Path:
    """`rows` (id, ctx, target) laid out as the hub repository is: README.md with its `configs:` and the
    train split in data/train-0000k-of-00002.parquet; `datasets.load_dataset(folder, split="train")`
    reads it as it reads the hub, and a config's `mirror:` can point at it."""
    folder = Path(folder)
    (folder / "data").mkdir(parents=True, exist_ok=True)
    bounds = [len(rows) * shard // HUB_SHARDS for shard in range(HUB_SHARDS + 1)]
    schema = pa.schema([(column, pa.string()) for column in HUB_COLUMNS])
    for shard in range(HUB_SHARDS):
        part = rows[bounds[shard]:bounds[shard + 1]]
        table = pa.Table.from_pylist([{column: row[column] for column in HUB_COLUMNS} for row in part], schema=schema)
        pq.write_table(table, folder / "data" / f"train-{shard:05d}-of-{HUB_SHARDS:05d}.parquet")
    (folder / "README.md").write_text(HUB_README.format(hub_id=HUB_ID))
    return folder


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        prog="python -m w2s.data.chess",
        description=f"Write offline mate-in-one puzzles as a local copy of {HUB_ID} (set datasets.chess_puzzles.mirror "
        "to the folder).",
    )
    parser.add_argument("folder", type=Path)
    parser.add_argument("--puzzles", type=int, default=100)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args(argv)
    write_hub_copy(args.folder, mate_in_one_puzzles(args.puzzles, args.seed))
    print(f"{args.puzzles} mate-in-one puzzles (seed {args.seed}) written to {args.folder}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
