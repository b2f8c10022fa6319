"""Chess puzzles (w2s.data.chess): hand-checked conversions of rows in the schemas of EleutherAI/lichess-puzzles
and of the Lichess puzzle CSV, the errors a bad row gets, the offline mate-in-one generator, its hub layout read
through the registry's own load_dataset arguments, puzzles past max_moves left out at preparation, legal-move
checks of generations, and config/chess.yaml's sizes, models and move limit (against Qwen's real tokenizer
and the real Lichess sample, where ../shared has them)."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import chess
import pandas as pd
import pytest
import yaml
from helpers import REPO

from w2s.data import catalogue, preparation, reading
from w2s.data.chess import (
    HUB_COLUMNS,
    PuzzleError,
    legal_move_rate,
    mate_in_one_puzzles,
    mating_moves,
    movetext,
    prompt_position,
    puzzle_example,
    puzzle_record,
    rating_band,
    write_hub_copy,
)
from w2s.data.preparation import label_balance
from w2s.data.reading import data_source, load_arguments
from w2s.data.spec import DatasetError
from w2s.pipeline.experiment import slice_rows, train_gt_rows
from w2s.pipeline.validation import _check_dataset, ConfigError

SHARED = REPO.parent / "shared"
LICHESS_SAMPLE = SHARED / "datasets" / "lichess-puzzles-sample" / "lichess_db_puzzle.csv"
QWEN_TIKTOKEN = SHARED / "fixtures" / "qwen1" / "tokenizer" / "qwen.tiktoken"

# Hand-checked: Scholar's mate (White's queen on h5 and bishop on c4 both hit f7; after 3... Nf6 the
# knight no longer guards h5-f7, and Qxf7 is mate), and Fool's mate (after 1. f3 e5 2. g4 the e1-h4
# diagonal is open and Qh4 is mate).
SCHOLARS_MATE = {"id": "scholar", "ctx": "1. e4 1... e5 2. Qh5 2... Nc6 3. Bc4 3... Nf6 4.", "target": " Qxf7#"}
FOOLS_MATE = {"id": "fool", "ctx": "1. f3 1... e5 2. g4 2...", "target": " Qh4#"}
# The sample row of the Lichess puzzle database's card (Lichess/chess-puzzles): Black's b6 pawn takes on c5
# (the opponent's move), then White's e2 bishop takes the g4 knight.
LICHESS_0009B = {
    "PuzzleId": "0009B", "FEN": "r2qr1k1/b1p2ppp/pp4n1/P1P1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 b - - 1 16",
    "Moves": "b6c5 e2g4 h3g4 d1g4", "Rating": 1112, "RatingDeviation": 74, "Popularity": 87, "NbPlays": 569,
    "Themes": "advantage middlegame short", "GameUrl": "https://lichess.org/4MWQCxQ6/black#31",
    "OpeningTags": "Kings_Pawn_Game Kings_Pawn_Game_Leonardis_Variation",
}
AFTER_E4_E5 = "rnbqkbnr/pppp1ppp/8/4p3/4P3/8/PPPP1PPP/RNBQKBNR w KQkq - 0 2"


pytestmark = pytest.mark.usefixtures("_private_datasets_cache")


def test_a_hub_row_becomes_the_numbered_transcript_and_the_move_with_a_leading_space() -> None:
    assert puzzle_example(SCHOLARS_MATE) == ("1. e4 1... e5 2. Qh5 2... Nc6 3. Bc4 3... Nf6 4.", " Qxf7#")
    # Black to move: the prompt ends with Black's move number.
    assert puzzle_example(FOOLS_MATE) == ("1. f3 1... e5 2. g4 2...", " Qh4#")


def test_a_transcript_in_another_spacing_or_numbering_is_written_in_the_hubs_form() -> None:
    row = {"id": "scholar", "ctx": "1.e4 e5 2. Qh5   Nc6 3. Bc4 Nf6", "target": "Qxf7"}
    # python-chess writes the mate sign the target left out.
    assert puzzle_example(row) == puzzle_example(SCHOLARS_MATE)


def test_a_lichess_csv_row_becomes_a_pgn_game_from_its_position() -> None:
    prompt, target = puzzle_example(LICHESS_0009B)
    assert prompt == ('[FEN "r2qr1k1/b1p2ppp/pp4n1/P1P1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 b - - 1 16"]\n[SetUp "1"]\n\n'
                      "16... bxc5 17.")
    assert target == " Bxg4"


def test_the_registry_converts_with_the_same_function() -> None:
    spec = catalogue.DATASETS["chess_puzzles"]
    # The prompt and target, then the columns preparation keeps: the move number, and the CSV's rating and themes.
    assert spec.convert(SCHOLARS_MATE, random.Random(0)) == (*puzzle_example(SCHOLARS_MATE), {"move_number": 4})
    assert spec.convert(LICHESS_0009B, random.Random(0)) == (
        *puzzle_example(LICHESS_0009B), {"move_number": 17, "rating": 1112, "themes": "advantage middlegame short"})
    assert (spec.hub_id, spec.splits, spec.task.kind) == ("EleutherAI/lichess-puzzles", {"train": "train", "test": None},
                                                          "generative")
    assert spec.revision == "787a704697824359fceb7aca8be2ea23dce2f463"


@pytest.mark.parametrize(("row", "message"), [
    ({"id": "00sHx", "ctx": "1. e4 1... e5 2.", "target": " Ke3"},
     f"puzzle 00sHx: the target 'Ke3' is no legal move for White in the position after ctx ({AFTER_E4_E5}): illegal "
     "there; fix the row's target (the solution's first move, in SAN)"),
    ({"id": "amb", "ctx": "1. Nf3 1... a6 2. Nc3 2... a5 3. Ne4 3... a4 4.", "target": " Ng5"},
     "puzzle amb: the target 'Ng5' is no legal move for White in the position after ctx "
     "(rnbqkbnr/1ppppppp/8/8/p3N3/5N2/PPPPPPPP/R1BQKB1R w KQkq - 0 4): ambiguous there; fix the row's target (the "
     "solution's first move, in SAN)"),
    ({"id": "00sHx", "ctx": "1. e4 1... e5 2. Kz3", "target": " Nc6"},
     f"puzzle 00sHx: half-move 3 of ctx, 'Kz3', is no legal move in the position {AFTER_E4_E5} (not SAN); fix the "
     "row's ctx (the game's moves in SAN)"),
    ({"id": "num", "ctx": "1. e4 2... e5", "target": " Nf3"},
     "puzzle num: ctx numbers half-move 2 '2...', but it is 1...; fix the row's ctx (the game's moves in SAN, each "
     "numbered)"),
    ({**LICHESS_0009B, "Moves": "b6c5 e2e4"},
     "puzzle 0009B: the second (the solution's first) move of Moves, 'e2e4', is no legal move in the position "
     "r2qr1k1/b1p2ppp/p5n1/P1p1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 w - - 0 17; fix the row's Moves (UCI moves from its FEN)"),
    ({**LICHESS_0009B, "Moves": "b6c5"},
     "puzzle 0009B: Moves 'b6c5' holds 1 move(s), but a Lichess puzzle lists the opponent's move, then the solution; "
     "fix the row's Moves"),
    ({"text": "1. e4", "label": 1},
     "a row with columns label, text is in neither puzzle schema: EleutherAI/lichess-puzzles's (id, ctx, target) or "
     "the Lichess puzzle CSV's (PuzzleId, FEN, Moves, ...); point data_files at a file in one of them"),
])
def test_a_bad_row_names_the_puzzle_and_what_to_fix(row: dict, message: str) -> None:
    with pytest.raises(PuzzleError) as caught:
        puzzle_example(row)
    assert str(caught.value) == message


@pytest.fixture(scope="module")
def generated() -> list[dict[str, str]]:
    return mate_in_one_puzzles(8, seed=0)


def test_every_generated_target_is_the_one_legal_mate_in_one(generated: list[dict[str, str]]) -> None:
    assert len(generated) == 8
    assert len({row["ctx"] for row in generated}) == 8
    for row in generated:
        assert puzzle_example(row) == (row["ctx"], row["target"])  # the prompt is the hub's form already
        board = chess.Board()
        for token in row["ctx"].split():
            if not token[0].isdigit():
                board.push_san(token)
        move = board.parse_san(row["target"].strip())
        assert mating_moves(board) == [move], row["id"]
        board.push(move)
        assert board.is_checkmate(), row["id"]


def test_the_generator_is_deterministic_for_a_seed(generated: list[dict[str, str]]) -> None:
    # Puzzles are found one game after another, so a shorter run is a prefix of a longer one.
    assert mate_in_one_puzzles(3, seed=0) == generated[:3]
    assert mate_in_one_puzzles(1, seed=1)[0]["ctx"] != generated[0]["ctx"]


def test_the_generated_hub_copy_is_read_with_the_registrys_arguments(generated: list[dict[str, str]],
                                                                     tmp_path: Path) -> None:
    import datasets

    folder = write_hub_copy(tmp_path / "lichess-puzzles", generated)
    assert sorted(p.relative_to(folder).as_posix() for p in folder.rglob("*") if p.is_file()) == [
        "README.md", "data/train-00000-of-00002.parquet", "data/train-00001-of-00002.parquet"]
    path, kwargs = load_arguments(replace(data_source("chess_puzzles"), mirror=str(folder)), "train")
    rows = datasets.load_dataset(path, **kwargs)
    assert rows.features == datasets.Features({column: datasets.Value("string") for column in HUB_COLUMNS})
    assert rows.to_list() == generated
    convert = catalogue.DATASETS["chess_puzzles"].convert
    assert [convert(row, random.Random(0))[:2] for row in rows] == [(row["ctx"], row["target"]) for row in generated]


def test_a_lichess_csv_file_is_read_through_data_files(tmp_path: Path) -> None:
    csv = tmp_path / "lichess_db_puzzle.csv"
    pd.DataFrame([LICHESS_0009B]).to_csv(csv, index=False)
    rows = reading.load_rows("chess_puzzles", "train", {"train": str(csv)}, data_source("chess_puzzles"))
    assert [catalogue.DATASETS["chess_puzzles"].convert(row, random.Random(0))[:2] for row in rows] == [
        puzzle_example(LICHESS_0009B)]


def test_prepare_writes_prompt_and_target_splits(generated: list[dict[str, str]], tmp_path: Path) -> None:
    folder = write_hub_copy(tmp_path / "lichess-puzzles", generated)
    source = replace(data_source("chess_puzzles"), mirror=str(folder))
    splits = preparation.prepare("chess_puzzles", n_train=4, n_test=2, seed=0, source=source)
    assert [len(splits[s]) for s in ("train_gt", "train_w2s", "test")] == [2, 2, 2]
    by_ctx = {row["ctx"]: row["target"] for row in generated}
    for frame in splits.values():
        assert list(frame.columns) == ["id", "prompt", "target", "move_number"]
        assert all(by_ctx[prompt] == target for prompt, target in zip(frame["prompt"], frame["target"]))


def test_a_catalogue_generative_dataset_states_its_kind() -> None:
    _check_dataset("chess_puzzles", {"kind": "generative", "n_train": 8, "n_test": 4})
    with pytest.raises(ConfigError) as caught:
        _check_dataset("chess_puzzles", {"n_train": 8, "n_test": 4})
    assert str(caught.value) == ("dataset 'chess_puzzles' is a generative task in the catalogue; set kind: generative "
                                 "in its entry")
    with pytest.raises(ConfigError) as caught:
        _check_dataset("chess_puzzles", {"kind": "generative", "n_classes": 2, "n_train": 8, "n_test": 4})
    assert str(caught.value) == ("dataset 'chess_puzzles' is in the catalogue, which fixes its source and its "
                                 "generative task; remove n_classes, or give the dataset another name to read it as "
                                 "a standard one")


def test_the_chess_config_is_the_papers_50k_ground_truth_50k_per_step_and_5k_test() -> None:
    config = yaml.safe_load((REPO / "config" / "chess.yaml").read_text())
    puzzles = config["datasets"]["chess_puzzles"]
    slices = config["w2s_slices"]
    assert (puzzles["kind"], puzzles["n_test"]) == ("generative", 5000)
    # The weak models and ceilings learn on 50k ground-truth puzzles; each student and chain step on its own 50k.
    assert train_gt_rows(puzzles) == 50000
    assert [slice_rows(puzzles["n_train"], slices, k, puzzles["n_train_gt"]) for k in range(1, slices + 1)] == \
        [50000] * slices
    assert max(len(chain) - 1 for chain in config["chains"]) == slices
    assert (config["training"]["mode"], list(config["losses"])) == ("full", ["xent"])
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["ladder"] == paper["ladder"]
    for name, entry in config["models"].items():
        assert {k: v for k, v in entry.items() if k != "loss_params"} == \
            {k: v for k, v in paper["models"][name].items() if k != "loss_params"}, name


def random_game(seed: int, plies: int) -> list[chess.Move]:
    """A game of uniformly random legal moves, `plies` half-moves long (a longer one where a game ends first is
    not needed: the caller asks for fewer than any ended game here has)."""
    rng, board = random.Random(seed), chess.Board()
    while board.ply() < plies and not board.is_game_over():
        board.push(rng.choice(list(board.legal_moves)))
    return board.move_stack


def prompt_at(moves: list[chess.Move], move_to_find: int, black: bool) -> str:
    """The transcript prompt whose move to find is number `move_to_find`, White's or Black's."""
    return movetext(chess.Board(), moves[: 2 * (move_to_find - 1) + black])


@pytest.mark.skipif(not QWEN_TIKTOKEN.is_file(), reason="../shared/fixtures/qwen1 is absent")
def test_with_max_moves_every_qwen_prompt_of_a_long_game_fits_the_context_with_its_generation() -> None:
    from w2s.models.qwen1 import build_tokenizer

    config = yaml.safe_load((REPO / "config" / "chess.yaml").read_text())
    max_moves = config["datasets"]["chess_puzzles"]["max_moves"]
    room = config["training"]["max_length"] - config["generation"]["max_new_tokens"]
    tokenizer = build_tokenizer(QWEN_TIKTOKEN)
    games = [random_game(seed, 2 * 90) for seed in range(40)]
    games = [moves for moves in games if len(moves) == 2 * 90]
    assert len(games) >= 30

    def longest(move_to_find: int) -> int:
        prompts = [prompt_at(moves, move_to_find, black) for moves in games for black in (False, True)]
        return max(len(ids) for ids in tokenizer(prompts)["input_ids"])

    # About 6.5 Qwen tokens a half-move (digits are single tokens): at move 79 a prompt no longer fits.
    assert longest(max_moves) <= room < longest(80)


def test_preparation_leaves_out_puzzles_past_max_moves_the_same_for_every_model_and_counts_them(
        tmp_path: Path) -> None:
    rows = mate_in_one_puzzles(12, seed=2)
    numbers = [int(row["ctx"].split()[-1].rstrip(".")) for row in rows]  # the number of each move to find
    limit = sorted(numbers)[5]
    kept = sum(n <= limit for n in numbers)
    folder = write_hub_copy(tmp_path / "lichess-puzzles", rows)
    source = replace(data_source("chess_puzzles"), mirror=str(folder))
    entry = {"kind": "generative", "n_train": kept - 2, "n_test": 2, "max_moves": limit}
    splits = preparation.prepare("chess_puzzles", n_train=kept - 2, n_test=2, seed=0, source=source, entry=entry)
    prepared = pd.concat(splits.values())
    assert sorted(prepared["move_number"]) == sorted(n for n in numbers if n <= limit)
    # Rows are read in the seed's shuffled order until the splits are full: the long ones met before the last
    # row taken are counted.
    order = list(range(len(rows)))
    random.Random(0).shuffle(order)
    last = max(order.index(int(i.split(":")[1])) for i in prepared["id"])
    balance = label_balance(splits, 0)
    assert sum(split["over_max_moves"] for split in balance.values()) == \
        sum(numbers[i] > limit for i in order[:last]) > 0
    with pytest.raises(DatasetError) as err:
        preparation.prepare("chess_puzzles", n_train=10, n_test=2, seed=0, source=source,
                            entry={**entry, "n_train": 10})
    assert str(err.value) == (f"dataset 'chess_puzzles' has only {kept} usable rows in its train split but the config "
                              f"asks for 12; lower n_train or n_test, or raise max_moves ({12 - kept} puzzles are past "
                              f"move {limit})")
    # Without the limit every puzzle is kept, and the count is absent.
    splits = preparation.prepare("chess_puzzles", n_train=10, n_test=2, seed=0, source=source,
                                 entry={"kind": "generative", "n_train": 10, "n_test": 2})
    assert all("over_max_moves" not in split for split in label_balance(splits, 0).values())


@pytest.mark.skipif(not LICHESS_SAMPLE.is_file(), reason="../shared/datasets/lichess-puzzles-sample is absent")
def test_the_real_lichess_sample_converts_through_the_csv_path_with_its_rating_and_themes(tmp_path: Path) -> None:
    rows = reading.load_rows("chess_puzzles", "train", {"train": str(LICHESS_SAMPLE)}, data_source("chess_puzzles"))
    assert len(rows) == 1499
    converted = [puzzle_example(row) for row in rows]
    mates = [target for row, (_, target) in zip(rows, converted) if "mateIn1" in row["Themes"].split()]
    assert len(mates) == 508 and all(target.endswith("#") for target in mates)
    # max_moves 75 (config/chess.yaml) leaves out the 6 puzzles whose move to find is numbered 76 or more.
    assert sum(puzzle_record(row)["move_number"] > 75 for row in rows) == 6
    entry = {"kind": "generative", "n_train": 1400, "n_train_gt": 400, "n_test": 93, "max_moves": 75,
             "data_files": {"train": str(LICHESS_SAMPLE)}}
    splits = preparation.prepare("chess_puzzles", 1400, 93, 0, entry["data_files"], entry=entry)
    assert [len(splits[s]) for s in ("train_gt", "train_w2s", "test")] == [400, 1000, 93]
    assert sum(split["over_max_moves"] for split in label_balance(splits, 0).values()) == 6
    test = splits["test"]
    assert list(test.columns) == ["id", "prompt", "target", "move_number", "rating", "themes"]
    by_id = {f"train:{i}": row for i, row in enumerate(rows)}
    first = by_id[test["id"].iloc[0]]
    assert (test["rating"].iloc[0], test["themes"].iloc[0]) == (first["Rating"], first["Themes"])
    # Every target is a legal move where its prompt leaves the game.
    assert legal_move_rate(test["prompt"], test["target"]) == 1.0


def test_a_prompts_position_is_replayed_from_the_start_or_from_its_fen() -> None:
    prompt, _ = puzzle_example(SCHOLARS_MATE)
    assert prompt_position(prompt).fen() == "r1bqkb1r/pppp1ppp/2n2n2/4p2Q/2B1P3/8/PPPP1PPP/RNB1K1NR w KQkq - 4 4"
    csv_prompt, _ = puzzle_example(LICHESS_0009B)
    assert prompt_position(csv_prompt).fen() == "r2qr1k1/b1p2ppp/p5n1/P1p1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 w - - 0 17"


def test_a_generation_is_legal_when_its_first_word_is_a_legal_san_move_there() -> None:
    prompt, _ = puzzle_example(SCHOLARS_MATE)
    prompts = [prompt] * 8
    # Legal: with or without the mate sign, followed by more text; illegal: empty, another piece's move, a null
    # move (python-chess parses "--"), lower-case piece letters, text.
    generations = [" Qxf7#", "Qxf7", " Qxf7# 4... Ke7", "", " Qxf8", " --", " qxf7", " checkmate"]
    assert legal_move_rate(prompts, generations) == 3 / 8


def test_ratings_fall_in_500_point_bands() -> None:
    assert [rating_band(r) for r in (399, 999, 1000, 1499, 1500, 2499, 2500, 3100)] == [
        "<1000", "<1000", "1000-1499", "1000-1499", "1500-1999", "2000-2499", "2500+", "2500+"]
