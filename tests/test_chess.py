"""Chess puzzles (w2s.data.chess): hand-checked conversions of rows in the schemas of EleutherAI/lichess-puzzles
and of the Lichess puzzle CSV, the errors a bad row gets, the offline mate-in-one generator, its hub layout read
through the registry's own load_dataset arguments, and config/chess.yaml's sizes and models."""

from __future__ import annotations

import random
from dataclasses import replace
from pathlib import Path

import chess
import pandas as pd
import pytest
import yaml
from conftest import REPO

from w2s.data import sources
from w2s.data.chess import (
    HUB_COLUMNS,
    PuzzleError,
    mate_in_one_puzzles,
    mating_moves,
    puzzle_example,
    write_hub_copy,
)
from w2s.data.sources import data_source, load_arguments
from w2s.pipeline.config import ConfigError, _check_dataset

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


@pytest.fixture(autouse=True)
def _private_datasets_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import datasets.config

    monkeypatch.setattr(datasets.config, "HF_DATASETS_CACHE", tmp_path / "hf_cache")
    monkeypatch.setattr(datasets.config, "HF_UPDATE_DOWNLOAD_COUNTS", False)


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
    spec = sources.DATASETS["chess_puzzles"]
    assert spec.convert(SCHOLARS_MATE, random.Random(0)) == puzzle_example(SCHOLARS_MATE)
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
    convert = sources.DATASETS["chess_puzzles"].convert
    assert [convert(row, random.Random(0)) for row in rows] == [(row["ctx"], row["target"]) for row in generated]


def test_a_lichess_csv_file_is_read_through_data_files(tmp_path: Path) -> None:
    csv = tmp_path / "lichess_db_puzzle.csv"
    pd.DataFrame([LICHESS_0009B]).to_csv(csv, index=False)
    rows = sources._load_rows("chess_puzzles", "train", {"train": str(csv)}, data_source("chess_puzzles"))
    assert [sources.DATASETS["chess_puzzles"].convert(row, random.Random(0)) for row in rows] == [
        puzzle_example(LICHESS_0009B)]


def test_prepare_writes_prompt_and_target_splits(generated: list[dict[str, str]], tmp_path: Path) -> None:
    folder = write_hub_copy(tmp_path / "lichess-puzzles", generated)
    source = replace(data_source("chess_puzzles"), mirror=str(folder))
    splits = sources.prepare("chess_puzzles", n_train=4, n_test=2, seed=0, source=source)
    assert [len(splits[s]) for s in ("train_gt", "train_w2s", "test")] == [2, 2, 2]
    by_ctx = {row["ctx"]: row["target"] for row in generated}
    for frame in splits.values():
        assert list(frame.columns) == ["id", "prompt", "target"]
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


def test_the_chess_config_gives_each_student_and_step_50k_puzzles_and_tests_on_5k() -> None:
    config = yaml.safe_load((REPO / "config" / "chess.yaml").read_text())
    puzzles = config["datasets"]["chess_puzzles"]
    slices = config["w2s_slices"]
    assert (puzzles["kind"], puzzles["n_test"]) == ("generative", 5000)
    assert (puzzles["n_train"] - puzzles["n_train"] // 2) // slices == 50000
    assert max(len(chain) - 1 for chain in config["chains"]) == slices
    assert (config["training"]["mode"], list(config["losses"])) == ("full", ["xent"])
    paper = yaml.safe_load((REPO / "config" / "config.yaml").read_text())
    assert config["ladder"] == paper["ladder"]
    for name, entry in config["models"].items():
        assert {k: v for k, v in entry.items() if k != "loss_params"} == \
            {k: v for k, v in paper["models"][name].items() if k != "loss_params"}, name
