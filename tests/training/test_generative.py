"""The generative task kind on tiny random causal LMs: the target-only loss, left-padded batched generation,
exact-match normalisation, metrics from generations (chess: legal moves, accuracy by rating band and theme),
weak-label files, generation on only the slices a supervisor labels, train_gt's own size, and the bad inputs of
generative tasks."""

from __future__ import annotations

import copy
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from helpers import REPO
from generative_fixtures import make_tiny_causal_lm, toy_rows

from w2s import io
from w2s.data import generations
from w2s.data.preparation import prepare
from w2s.data.spec import DatasetError
from w2s.data.splits import W2sSlice, rows_sha256, w2s_slice
from w2s.data.weak_labels import write_weak_labels
from w2s.evaluation import metrics, run_metrics
from w2s.evaluation.summary import run_table
from w2s.pipeline.experiment import generated_slices, slice_rows, train_gt_rows, training_job_params
from w2s.pipeline.validation import ConfigError, validate_config
from w2s.tasks import Task, dataset_task, generative_task
from w2s.training import generative
from w2s.training.jobs import train_model
from w2s.training.losses import IGNORE_INDEX, token_xent
from w2s.training.settings import TrainingSettings


@pytest.fixture(scope="module")
def lm_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_tiny_causal_lm(tmp_path_factory.mktemp("gen") / "tiny-lm", seed=3)


@pytest.fixture(scope="module")
def lm_and_tokenizer(lm_dir: Path):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    return AutoModelForCausalLM.from_pretrained(lm_dir).eval(), AutoTokenizer.from_pretrained(lm_dir)


def test_the_generative_kind_reads_prompts_and_targets_and_has_no_classes() -> None:
    task = dataset_task({"kind": "generative"}, max_new_tokens=5)
    assert (task.input_column, task.label_column, task.n_classes, task.is_generative) == ("prompt", "target", 0, True)
    assert task.params() == {"kind": "generative", "n_classes": 0, "max_new_tokens": 5}
    assert Task.from_params(task.params()) == generative_task(5)
    # Classification tasks' params stay as they were, so their jobs do not rerun.
    assert dataset_task({}).params() == {"kind": "text_classification", "n_classes": 2}


def test_target_tokens_end_with_eos_and_prompts_get_none(lm_and_tokenizer) -> None:
    _, tokenizer = lm_and_tokenizer
    eos = tokenizer.eos_token_id
    assert generative.prompt_ids(tokenizer, ["a b next"]) == [[3, 4, 11]]
    assert generative.target_ids(tokenizer, ["c", "d e"]) == [[5, eos], [6, 7, eos]]


def test_the_loss_reads_target_tokens_only_and_equals_the_models_own_loss(lm_and_tokenizer) -> None:
    lm, tokenizer = lm_and_tokenizer
    train = generative.Encoded(generative.prompt_ids(tokenizer, ["a b c next", "h next"]),
                               generative.target_ids(tokenizer, ["d", "b c"]))
    labels = generative.target_labels(train.targets)
    assert labels.tolist() == [[6, 2, IGNORE_INDEX], [4, 5, 2]]
    batch = generative.training_batch(train, np.array([0, 1]), labels.shape[1], tokenizer.pad_token_id)
    # Row 1 (prompt of 2 tokens) is right-padded to row 0's 6 tokens; its target is predicted at positions 1..3.
    assert batch["target_positions"].tolist() == [[3, 4, 0], [1, 2, 3]]
    assert batch["attention_mask"].tolist() == [[1] * 6, [1] * 5 + [0]]
    with torch.no_grad():
        loss = token_xent(generative.TargetLogits(lm)(**batch), labels)
        # By hand: each row's mean -log p(target token | everything before it), then the mean over rows.
        by_hand = []
        for prompt, target in zip(train.prompts, train.targets):
            log_probs = torch.log_softmax(lm(torch.tensor([prompt + target])).logits[0], dim=-1)
            by_hand.append(-np.mean([log_probs[len(prompt) - 1 + j, t].item() for j, t in enumerate(target)]))
            # transformers' own loss with the prompt labelled IGNORE_INDEX is that row's mean.
            own = lm(torch.tensor([prompt + target]),
                     labels=torch.tensor([[IGNORE_INDEX] * len(prompt) + target])).loss
            assert own.item() == pytest.approx(by_hand[-1], abs=1e-5)
    assert loss.item() == pytest.approx(np.mean(by_hand), abs=1e-5)
    assert np.mean(by_hand) > 1.0  # a random model: far from 0, so a wrong mask would show


def test_target_logits_run_the_output_layer_on_target_positions_only(lm_and_tokenizer) -> None:
    """A chess game of ~1,000 tokens has ~10 target positions: the output layer (Qwen: 152k words) sees those
    only, and gives the full forward's logits there."""
    lm, tokenizer = lm_and_tokenizer
    train = generative.Encoded(generative.prompt_ids(tokenizer, ["a b c next", "h next"]),
                               generative.target_ids(tokenizer, ["d", "b c"]))
    labels = generative.target_labels(train.targets)
    batch = generative.training_batch(train, np.array([0, 1]), labels.shape[1], tokenizer.pad_token_id)
    seen = []
    hook = lm.get_output_embeddings().register_forward_hook(lambda module, args, out: seen.append(args[0].shape))
    try:
        with torch.no_grad():
            logits = generative.TargetLogits(lm)(**batch)
    finally:
        hook.remove()
    assert seen == [torch.Size([2, 3, lm.config.hidden_size])]  # 2 rows x 3 target slots, not 2 x 6 positions
    with torch.no_grad():
        full = lm(input_ids=batch["input_ids"], attention_mask=batch["attention_mask"]).logits
    index = batch["target_positions"].unsqueeze(-1).expand(-1, -1, full.shape[-1])
    assert torch.allclose(logits, full.gather(1, index), atol=1e-6)


def test_left_padded_batched_generation_equals_generating_each_prompt_alone(lm_and_tokenizer) -> None:
    lm, tokenizer = lm_and_tokenizer
    prompts = generative.prompt_ids(tokenizer, ["a next", "b c d e f next", "g h next", "c"])
    cpu = torch.device("cpu")
    together = generative.generate(lm, tokenizer, prompts, 4, 4, cpu)
    alone = [generative.generate(lm, tokenizer, [p], 4, 1, cpu)[0] for p in prompts]
    assert together == alone
    assert len(set(together)) > 1 and all(together)  # distinct, non-empty texts: the comparison means something


def test_generation_stops_at_the_end_of_text_token_and_drops_it(lm_and_tokenizer) -> None:
    lm, tokenizer = lm_and_tokenizer
    prompt = generative.prompt_ids(tokenizer, ["b c d e f next"])
    raw = lm.generate(torch.tensor(prompt), attention_mask=torch.ones(1, len(prompt[0]), dtype=torch.long),
                      do_sample=False, max_new_tokens=4, eos_token_id=None, pad_token_id=0)[0, len(prompt[0]):].tolist()
    assert raw[1] != raw[0]
    # A tokenizer whose end-of-text token is the second token the model generates: generation stops there.
    stopping = copy.deepcopy(tokenizer)
    stopping.eos_token = tokenizer.convert_ids_to_tokens(raw[1])
    assert generative.generate(lm, stopping, prompt, 4, 1, torch.device("cpu")) == [tokenizer.decode(raw[:1])]
    assert generative.generate(lm, tokenizer, prompt, 4, 1, torch.device("cpu")) == [tokenizer.decode(raw)]


def test_exact_match_compares_the_first_word_of_each_text() -> None:
    assert [metrics.normalise_answer(t) for t in ["  Nf3  ", "Nf3 Nc6 3. Bb5", "", " \n", "nf3"]] == [
        "Nf3", "Nf3", "", "", "nf3"]
    assert metrics.exact_match(["Nf3 e5", " d4", "", "Qh5"], ["Nf3", "d4 ", "e4", "Qh4"]) == 0.5
    rates = metrics.answer_agreement(["a", "b x", "c", "d"], ["a", "c", "c", "e"], ["a", "b", "z", "z"])
    # Same answer on rows 0 and 2; the supervisor is right on row 0 only.
    assert rates == {"agreement": 0.5, "agreement_supervisor_right": 1.0, "agreement_supervisor_wrong": 1 / 3}


def test_exact_match_takes_a_san_move_with_or_without_its_check_or_mate_sign() -> None:
    texts = [" Qxf7#", "Nf3+ ", "O-O-O#", "exd8=Q+", "e4", "C#", "a+", "Ke2++"]
    assert [metrics.normalise_answer(t) for t in texts] == ["Qxf7", "Nf3", "O-O-O", "exd8=Q", "e4", "C#", "a+", "Ke2++"]
    assert metrics.exact_match([" Qxf7", "Nf3 Nc6", " e8=Q#", " Qh5"], [" Qxf7#", " Nf3+", " e8=Q+", " Qh4#"]) == 0.75
    # An empty answer is never right, not even against an empty weak label.
    assert metrics.exact_match(["", " ", "b"], ["", " ", "b"]) == 1 / 3


def test_answer_intervals_resample_the_rows_as_the_class_bootstrap_does() -> None:
    targets = ["a", "b", "c", "d", "e", "f", "g", "h"]
    student = ["a", "b", "c", "d", "x", "x", "x", "x"]
    weak = ["a", "b", "x", "x", "x", "x", "x", "x"]
    ceiling = list(targets)
    got = metrics.answer_intervals(targets, student, 200, 0, weak=weak, ceiling=ceiling, supervisor=weak)
    # The same rows as correct classes: class 1 is a right answer.
    right = lambda answers: np.array([[0.0, 1.0] if a == t else [1.0, 0.0] for a, t in zip(answers, targets)])  # noqa: E731
    ones = np.tile([0.0, 1.0], (8, 1))
    expected = metrics.bootstrap_intervals(np.ones(8, dtype=int), right(student), 200, 0, weak=right(weak),
                                           ceiling=ones)
    assert got["accuracy_ci"] == expected["accuracy_ci"] and got["pgr_ci"] == expected["pgr_ci"]
    assert got["auroc_ci"] is None and got["pgr_auroc_ci"] is None and got["agreement_ci"] is not None


def _splits(tmp_path: Path, n_gt: int = 12, n_w2s: int = 8, n_test: int = 6) -> dict[str, str]:
    rows = toy_rows(n_gt + n_w2s + n_test, 5)

    def frame(part: list[dict], start: int) -> pd.DataFrame:
        return pd.DataFrame({"id": [f"train:{start + i}" for i in range(len(part))],
                             "prompt": [r["question"] for r in part], "target": [r["answer"] for r in part]})

    gt, w2s, test = frame(rows[:n_gt], 0), frame(rows[n_gt:n_gt + n_w2s], n_gt), frame(rows[n_gt + n_w2s:], 100)
    paths = {}
    for name, data in (("train_gt", gt), ("train_w2s", w2s[["id", "prompt"]]), ("test", test[["id", "prompt"]])):
        paths[name] = str(tmp_path / f"{name}.parquet")
        data.to_parquet(paths[name])
    return paths


def _settings(**overrides) -> TrainingSettings:
    config = {"training": {"lr": 1e-2, "epochs": 1, "batch_size": 4, "minibatch_size": 2, "eval_batch_size": 4,
                           "max_length": 16, "model_selection": "final", **overrides},
              "models": {"lm": {}}}
    return TrainingSettings.from_params(training_job_params(config, "lm"))


def _outputs(directory: Path) -> dict[str, str]:
    return {key: str(directory / key) for key in ("predictions", "history", "sweep", "checkpoint")}


def test_training_writes_generations_and_weak_labels_carry_prompts(lm_dir: Path, tmp_path: Path) -> None:
    paths = _splits(tmp_path)
    out = _outputs(tmp_path / "gt")
    task = generative_task(3)
    train_model({"path": str(lm_dir)}, _settings(), 0, paths, out, task=task.params())
    predictions = pd.read_parquet(out["predictions"])
    assert list(predictions.columns) == ["split", "id", "generation"]
    assert predictions.groupby("split").size().to_dict() == {"test": 6, "train_w2s": 8}
    assert (tmp_path / "gt" / "checkpoint" / "model" / "model.safetensors").is_file()
    history = pd.read_parquet(out["history"])
    assert len(history) == 3  # one epoch of 12 rows in batches of 4
    # Weak labels: slice 1 of 2 of train_w2s, each generation beside its prompt and id.
    weak = tmp_path / "weak.parquet"
    train_w2s = pd.read_parquet(paths["train_w2s"])
    write_weak_labels(out["predictions"], paths["train_w2s"], W2sSlice(1, 2), str(weak))
    labels = pd.read_parquet(weak)
    w2s_predictions = predictions[predictions["split"] == "train_w2s"].iloc[:4]
    assert labels["id"].tolist() == train_w2s["id"].iloc[:4].tolist()
    assert labels["prompt"].tolist() == train_w2s["prompt"].iloc[:4].tolist()
    # An empty generation (whitespace only) stays a weak label, as "".
    assert labels["generation"].tolist() == [text if text.strip() else "" for text in w2s_predictions["generation"]]
    assert set(labels["train_w2s_sha256"]) == {rows_sha256(train_w2s)}
    # A student trains on them: its rows' targets are the weak generations.
    rows = generations.training_targets(str(weak), train_w2s)
    assert rows["row"].tolist() == [0, 1, 2, 3] and rows["target"].tolist() == labels["generation"].tolist()


def test_a_weak_label_file_whose_prompts_differ_from_the_split_is_refused(tmp_path: Path) -> None:
    train_w2s = pd.DataFrame({"id": ["train:1", "train:2"], "prompt": ["a b next", "c d next"]})
    weak = pd.DataFrame({"id": ["train:1", "train:2"], "prompt": ["a b next", "h h next"], "generation": ["b", "d"],
                         "train_w2s_sha256": rows_sha256(train_w2s)})
    path = tmp_path / "weak.parquet"
    weak.to_parquet(path)
    with pytest.raises(ValueError) as err:
        generations.training_targets(str(path), train_w2s)
    assert str(err.value) == (
        f"{path}: the prompts of 1 weak labels are not the prompts train_w2s has under their ids (id train:2: the "
        "weak label answers 'h h next', train_w2s asks 'c d next'), so the generations answer other questions; "
        "delete it and let the weak_labels rule make it again from this dataset and seed")


def test_an_empty_generation_is_kept_as_a_weak_label_and_counted(tmp_path: Path) -> None:
    train_w2s = pd.DataFrame({"id": [f"train:{i}" for i in range(4)], "prompt": ["a next"] * 4})
    predictions = pd.DataFrame({"split": "train_w2s", "id": train_w2s["id"], "generation": ["b", " ", "b", ""]})
    paths = {name: str(tmp_path / f"{name}.parquet") for name in ("predictions", "train_w2s")}
    predictions.to_parquet(paths["predictions"])
    train_w2s.to_parquet(paths["train_w2s"])
    out = tmp_path / "weak.parquet"
    write_weak_labels(paths["predictions"], paths["train_w2s"], W2sSlice(1, 1), str(out))
    labels = pd.read_parquet(out)
    assert labels["generation"].tolist() == ["b", "", "b", ""]
    assert labels["empty"].tolist() == [False, True, False, True]
    # The student learns every row: an empty weak label is the end-of-text token alone.
    assert generations.training_targets(str(out), train_w2s)["target"].tolist() == ["b", "", "b", ""]


def test_a_prompt_longer_than_the_context_is_refused_before_training(lm_dir: Path, tmp_path: Path) -> None:
    paths = _splits(tmp_path)
    test = pd.read_parquet(paths["test"])
    test.loc[2, "prompt"] = " ".join(["a"] * 12) + " next"  # 13 tokens + 4 to generate > 16
    test.to_parquet(paths["test"])
    out = _outputs(tmp_path / "gt")
    with pytest.raises(generative.ContextError) as err:
        train_model({"path": str(lm_dir)}, _settings(), 0, paths, out, task=generative_task(4).params())
    assert str(err.value) == (
        "1 of 6 rows of test are longer than the context of 16 tokens: prompt + generation.max_new_tokens (4) comes "
        "to up to 17 tokens (ids train:102); raise training.max_length (up to the model's position limit), lower "
        "generation.max_new_tokens, or leave the long prompts out of the data (chess puzzles: lower "
        "datasets.<name>.max_moves, docs/datasets.md)")
    assert not any(Path(p).exists() for p in out.values())


def test_preparing_a_generative_dataset_keeps_prompts_and_targets(tmp_path: Path) -> None:
    from generative_fixtures import write_toy_parquet

    entry = {"kind": "generative", "data_files": {"train": str(write_toy_parquet(tmp_path / "t.parquet", 30, 0))},
             "input_column": "question", "label_column": "answer", "splits": {"train": "train", "test": None}}
    splits = prepare("toy", 20, 6, 0, entry["data_files"], entry=entry)
    assert {name: list(frame.columns) for name, frame in splits.items()} == {
        name: ["id", "prompt", "target"] for name in ("train_gt", "train_w2s", "test")}
    assert [len(frame) for frame in splits.values()] == [10, 10, 6]
    source = pd.read_parquet(tmp_path / "t.parquet")
    first = splits["test"].iloc[0]
    index = int(first["id"].split(":")[1])
    assert (first["prompt"], first["target"]) == (source["question"][index], source["answer"][index])
    empty = source.assign(answer=[" "] + source["answer"].tolist()[1:])
    empty.to_parquet(tmp_path / "t.parquet")
    with pytest.raises(DatasetError, match="row 0 of the train split of 'toy' has an empty target"):
        prepare("toy", 28, 2, 0, entry["data_files"], entry=entry)


def _config(**dataset) -> dict:
    model = {"path": "models/lm", "resources": {"gpu": 0}}
    return {"seeds": [0], "w2s_slices": 2, "ladder": ["weak", "strong"], "losses": {"xent": {}},
            "datasets": {"toy": {"kind": "generative", "data_files": {"train": "t.parquet"}, "n_train": 20,
                                 "n_test": 6, **dataset}},
            "models": {"weak": dict(model), "strong": dict(model)}}


@pytest.mark.parametrize(("change", "message"), [
    ({"dataset": {"n_classes": 2}}, "dataset 'toy' is a generative task, whose rows are a prompt and a target text, "
     "not one of K classes: n_classes does not apply to it; remove n_classes"),
    ({"losses": {"xent": {}, "logconf": {}}}, "dataset 'toy' is a generative task, which trains students with "
     "next-token cross-entropy on the weak model's generated tokens (xent); loss 'logconf' is defined on class "
     "probabilities and has no generative form here, so remove it from losses or run the generative task from "
     "its own config"),
    ({"prompting": {"models": ["weak"], "shots": [0]}}, "dataset 'toy' is a generative task, but prompting "
     "baselines ask binary text questions with two label words; remove the prompting block"),
    ({"training": {"mode": "probe", "model_selection": "weak_holdout"}}, "model 'weak' trains in mode probe, which a generative task does not "
     "support; use one of full, lora"),
    ({"dataset": {"n_train_gt": 19}}, "dataset 'toy': n_train_gt 19 leaves 1 of n_train's 20 rows to train_w2s, "
     "fewer than w2s_slices (2), which each need rows of their own; lower n_train_gt or raise n_train"),
    ({"dataset": {"n_train_gt": 20}}, "dataset 'toy': n_train_gt 20 leaves 0 of n_train's 20 rows to train_w2s, "
     "fewer than w2s_slices (2), which each need rows of their own; lower n_train_gt or raise n_train"),
    ({"dataset": {"max_moves": 75}}, "dataset 'toy' sets max_moves, the highest move number of a chess puzzle kept "
     "at preparation, but only chess_puzzles has moves; remove max_moves"),
])
def test_the_validator_says_what_does_not_apply_to_a_generative_task(change: dict, message: str) -> None:
    config = _config(**change.pop("dataset", {}))
    config.update(change)
    with pytest.raises(ConfigError) as err:
        validate_config(config, REPO / "config" / "schema.yaml")
    assert str(err.value) == message


def test_n_train_gt_sizes_train_gt_and_train_w2s_gets_the_rest_of_n_train(tmp_path: Path) -> None:
    from generative_fixtures import write_toy_parquet

    files = {"train": str(write_toy_parquet(tmp_path / "t.parquet", 40, 0))}
    entry = {"kind": "generative", "data_files": files, "input_column": "question", "label_column": "answer",
             "splits": {"train": "train", "test": None}, "n_train": 20, "n_test": 6}
    assert [len(f) for f in prepare("toy", 20, 6, 0, files, entry=entry).values()] == [10, 10, 6]  # half: the default
    entry["n_train_gt"] = 5
    splits = prepare("toy", 20, 6, 0, files, entry=entry)
    assert [len(f) for f in splits.values()] == [5, 15, 6]
    assert (train_gt_rows(entry), [slice_rows(20, 3, k, 5) for k in (1, 2, 3)]) == (5, [5, 5, 5])
    assert [len(w2s_slice(splits["train_w2s"], k, 3)) for k in (1, 2, 3)] == [5, 5, 5]
    config = _config(n_train_gt=5)
    config.update({"w2s_slices": 3, "axes": {"n_gt_rows": [5]}})
    with pytest.raises(ConfigError) as err:
        validate_config(config, REPO / "config" / "schema.yaml")
    assert str(err.value) == ("axes.n_gt_rows has 5, but dataset 'toy' has 5 rows in train_gt (n_train 20, n_train_gt "
                              "5, w2s_slices 3); the run with every row is planned anyway, so give values below 5 or "
                              "raise n_train")


def _ladder_config(**axes: list[int]) -> dict:
    config = _config()
    config["models"]["mid"] = dict(config["models"]["weak"])
    config.update({"ladder": ["weak", "mid", "strong"], "chains": [["weak", "mid", "strong"]], "axes": axes})
    return config


def test_a_run_generates_on_train_w2s_only_where_it_labels_a_slice_for_a_student() -> None:
    config = _ladder_config(n_gt_rows=[4], n_weak_labels=[3])
    config["w2s_slices"] = 2
    assert {run: generated_slices(config, chain, None) for run, chain in (
        ("gt/weak", ["weak"]), ("gt/mid", ["mid"]), ("gt/strong", ["strong"]), ("weak__mid", ["weak", "mid"]),
        ("weak__strong", ["weak", "strong"]), ("mid__strong", ["mid", "strong"]),
        ("weak__mid__strong", ["weak", "mid", "strong"]))} == {
        # The ground-truth models of direct pairs and chain roots label slice 1; the chain's first step labels
        # slice 2 for its second; the strongest model and every last step supervise nobody.
        "gt/weak": [1], "gt/mid": [1], "gt/strong": [], "weak__mid": [2], "weak__strong": [], "mid__strong": [],
        "weak__mid__strong": []}
    # A data axis: the weak model on n train_gt rows labels slice 1; an axis student supervises nobody.
    assert generated_slices(config, ["weak"], ("n_gt_rows", 4)) == [1]
    assert generated_slices(config, ["weak", "mid"], ("n_weak_labels", 3)) == []


def test_a_supervisor_generates_on_its_slice_only_and_weak_labels_are_read_from_it(lm_dir: Path,
                                                                                   tmp_path: Path) -> None:
    paths = _splits(tmp_path)
    out = _outputs(tmp_path / "gt")
    train_model({"path": str(lm_dir)}, _settings(), 0, paths, out,
                task=generative_task(3, generated_slices=(2,), n_slices=2).params())
    predictions = pd.read_parquet(out["predictions"])
    train_w2s = pd.read_parquet(paths["train_w2s"])
    assert predictions.groupby("split").size().to_dict() == {"test": 6, "train_w2s": 4}
    assert predictions.query("split == 'train_w2s'")["id"].tolist() == w2s_slice(train_w2s, 2, 2)["id"].tolist()
    weak = tmp_path / "weak.parquet"
    write_weak_labels(out["predictions"], paths["train_w2s"], W2sSlice(2, 2), str(weak))
    assert pd.read_parquet(weak)["id"].tolist() == train_w2s["id"].iloc[4:].tolist()
    with pytest.raises(ValueError) as err:
        write_weak_labels(out["predictions"], paths["train_w2s"], W2sSlice(1, 2), str(weak))
    assert str(err.value) == (
        f"{out['predictions']}: the supervisor generated nothing for 4 of the 4 prompts of train_w2s slice 1/2 (ids "
        "train:12, train:13, train:14, train:15), so it was trained to label another slice; delete its predictions "
        "and let its training rule make them again")


CHESS_PROMPTS = ["1. e4 1... e5 2. Qh5 2... Nc6 3. Bc4 3... Nf6 4.", "1. f3 1... e5 2. g4 2...",
                 '[FEN "r2qr1k1/b1p2ppp/pp4n1/P1P1p3/4P1n1/B2P2Pb/3NBP1P/RN1QR1K1 b - - 1 16"]\n[SetUp "1"]\n\n'
                 "16... bxc5 17.", "1. e4 1... e5 2. Qh5 2... Nc6 3. Bc4 3... Nf6 4."]


def _chess_run(tmp_path: Path, csv_schema: bool) -> dict[str, str]:
    """A chess student's evaluation inputs: four test puzzles (rating and themes where the CSV schema has them),
    the predictions of the student and its lineage, and its supervisor's weak labels (one empty, one illegal)."""
    ids = [f"train:{i}" for i in range(4)]
    tmp_path.mkdir(exist_ok=True)
    test = pd.DataFrame({"id": ids, "prompt": CHESS_PROMPTS, "target": [" Qxf7#", " Qh4#", " Bxg4", " Qxf7#"]})
    if csv_schema:
        test = test.assign(rating=[900, 1250, 1320, 2600], themes=["mateIn1 short", "mateIn1 opening", "advantage",
                                                                      "mateIn1"])
    paths = {"test": str(tmp_path / "test.parquet"), "weak_labels": str(tmp_path / "weak_labels.parquet")}
    test.to_parquet(paths["test"])
    generated = {"self": [" Qxf7", " Qh4#", " Bxg4", " Nf3"], "supervisor": [" Qxf7#", " Qh5", " Bxg4", " Qxf7#"],
                 "weak": [" Qxf7#", " Qh5", " Bxg4", " Qxf7#"], "ceiling": [" Qxf7#", " Qh4#", " Bxg4", " Qxf7#"]}
    for role, texts in generated.items():
        paths[role] = str(tmp_path / f"{role}.parquet")
        pd.DataFrame({"split": "test", "id": ids, "generation": texts}).to_parquet(paths[role])
    pd.DataFrame({"id": ["train:9", "train:10", "train:11"], "prompt": CHESS_PROMPTS[:3],
                  "generation": [" Qxf7#", "", " Kz9"], "empty": [False, True, False],
                  "train_w2s_sha256": "x"}).to_parquet(paths["weak_labels"])
    return paths


def test_chess_metrics_add_legal_moves_weak_label_counts_and_accuracy_by_rating_band_and_theme(tmp_path: Path) -> None:
    paths = _chess_run(tmp_path, csv_schema=True)
    balance = {"train_gt": {"n": 4, "distinct_targets": 3, "over_max_moves": 2},
               "train_w2s": {"n": 3, "distinct_targets": 3, "over_max_moves": 1},
               "test": {"n": 4, "distinct_targets": 3, "over_max_moves": 0}}
    out = tmp_path / "metrics.json"
    run_metrics.evaluate("w2s/xent/a__b", {role: paths[role] for role in ("self", "supervisor", "weak", "ceiling")},
                  paths["test"], 50, 0, str(out), {"kind": "student", "task_kind": "generative",
                                                   "dataset": "chess_puzzles"},
                  label_balance=balance, weak_labels_path=paths["weak_labels"])
    result = io.read_json(out)
    # The student's " Qxf7" matches " Qxf7#"; " Nf3" is legal there but wrong.
    assert (result["accuracy"], result["legal_move_rate"]) == (0.75, 1.0)
    weak_labels = (result["weak_labels_n"], result["weak_labels_empty"], result["weak_labels_legal_move_rate"])
    assert weak_labels == (3, 1, 1 / 3)
    assert result["puzzles_over_max_moves"] == 3
    assert result["accuracy_by_rating_band"] == {"<1000": {"n": 1, "accuracy": 1.0},
                                                 "1000-1499": {"n": 2, "accuracy": 1.0},
                                                 "2500+": {"n": 1, "accuracy": 0.0}}
    assert result["accuracy_by_theme"] == {"mateIn1": {"n": 3, "accuracy": 2 / 3}, "short": {"n": 1, "accuracy": 1.0},
                                           "opening": {"n": 1, "accuracy": 1.0}, "advantage": {"n": 1, "accuracy": 1.0}}
    assert (result["accuracy_rating_<1000"], result["accuracy_rating_2500+"]) == (1.0, 0.0)
    assert result["accuracy_theme_mateIn1"] == 2 / 3
    # The hub's schema has no rating or themes: no breakdown, the rest as before.
    paths = _chess_run(tmp_path / "hub", csv_schema=False)
    run_metrics.evaluate("gt/b", {"self": paths["self"]}, paths["test"], 50, 0, str(out),
                  {"kind": "ground_truth", "task_kind": "generative", "dataset": "chess_puzzles"})
    result = io.read_json(out)
    assert (result["accuracy"], result["legal_move_rate"]) == (0.75, 1.0)
    assert not [key for key in result if "rating" in key or "theme" in key or key.startswith("weak_labels")]


def test_a_students_metrics_count_its_empty_weak_labels_in_any_generative_task(tmp_path: Path) -> None:
    paths = _chess_run(tmp_path, csv_schema=False)
    out = tmp_path / "metrics.json"
    run_metrics.evaluate("w2s/xent/a__b", {role: paths[role] for role in ("self", "supervisor", "weak", "ceiling")},
                  paths["test"], 50, 0, str(out), {"kind": "student", "task_kind": "generative", "dataset": "toy"},
                  weak_labels_path=paths["weak_labels"])
    result = io.read_json(out)
    assert (result["weak_labels_n"], result["weak_labels_empty"]) == (3, 1)
    # Legal moves are a chess measure: another generative task has none.
    assert "legal_move_rate" not in result and "weak_labels_legal_move_rate" not in result


def test_the_report_shows_a_chess_table_of_legal_moves_and_accuracy_by_rating_band_and_theme(tmp_path: Path) -> None:
    from w2s.report.aggregation import with_selection_marked
    from w2s.report.tables import chess_table, summary_tables_html

    paths = _chess_run(tmp_path, csv_schema=True)
    balance = {"train_gt": {"n": 4, "distinct_targets": 3, "over_max_moves": 2}}
    records = []
    for run, kind, roles in (("gt/b", "ground_truth", ("self",)),
                             ("w2s/xent/a__b", "student", ("self", "supervisor", "weak", "ceiling"))):
        out = tmp_path / f"{kind}.json"
        run_metrics.evaluate(run, {role: paths[role] for role in roles}, paths["test"], 50, 0, str(out),
                      {"dataset": "chess_puzzles", "seed": 0, "run": run, "kind": kind, "task_kind": "generative",
                       "chain_length": 1 if kind == "ground_truth" else 2, "weak_model": "a", "weak_kind": "model"},
                      label_balance=balance, weak_labels_path=paths["weak_labels"] if kind == "student" else None)
        records.append(io.read_json(out))
    summary = with_selection_marked(run_table(records))
    table = chess_table(summary)
    assert table.to_dict("records") == [
        {"dataset": "chess_puzzles", "run": "gt/b", "seeds": 1, "exact match": "0.750", "legal moves": "1.000",
         "weak labels: legal moves": "–", "weak labels: empty": "–", "<1000 rated": "1.000",
         "1000-1499 rated": "1.000", "2500+ rated": "0.000", "mateIn1": "0.667", "short": "1.000", "opening": "1.000", "advantage": "1.000"},
        {"dataset": "chess_puzzles", "run": "w2s/xent/a__b", "seeds": 1, "exact match": "0.750", "legal moves": "1.000",
         "weak labels: legal moves": "0.333", "weak labels: empty": "1", "<1000 rated": "1.000",
         "1000-1499 rated": "1.000", "2500+ rated": "0.000", "mateIn1": "0.667", "short": "1.000", "opening": "1.000",
         "advantage": "1.000"}]
    html = summary_tables_html(summary, None, None, None, None)
    assert "Puzzles left out at preparation, past max_moves: chess_puzzles seed 0: 2." in html
    assert "<th>weak labels: legal moves</th>" in html
    # Without chess runs the table is absent.
    assert chess_table(summary.drop(columns=["legal_move_rate"])).empty
