"""Image data sources and image backbones, on scikit-learn's 8x8 digits encoded as PNG files and
tiny randomly initialised torchvision and timm models."""

from __future__ import annotations

import io
import re
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
import torchvision
from PIL import Image

# w2s before torchvision and timm: it makes torchvision importable beside a CPU torch.
from w2s.data.images import ImageDataError, decode_image, read_image_folder, read_imagenet
from w2s.data.preparation import prepare
from w2s.data.spec import DatasetError
from w2s.models.text import ModelLoadError
from w2s.models.vision import embed_images, load_image_model, predict_with_head, preprocess_transform

# Class folder names whose sorted order differs from the digit they hold: index = sorted position.
NAMES = ["zero", "one", "two", "three", "four", "five", "six", "seven", "eight", "nine"]
SORTED_NAMES = sorted(NAMES)  # eight, five, four, nine, one, seven, six, three, two, zero
PER_CLASS = 5
TINY_ALEXNET = {"family": "torchvision", "name": "alexnet", "weights": None, "model_kwargs": {"num_classes": 10},
                "preprocess": {"resize": 64}}
TINY_VIT = {"family": "timm", "name": "vit_base_patch8_224.dino", "pretrained": False,
            "model_kwargs": {"img_size": 32, "depth": 1, "embed_dim": 32, "num_heads": 2},
            "preprocess": {"resize": 32}}


def _png(pixels: np.ndarray) -> bytes:
    """An 8x8 digit (values 0..16) as an 8-bit greyscale PNG."""
    buffer = io.BytesIO()
    Image.fromarray((pixels * 255 / 16).astype(np.uint8), mode="L").save(buffer, format="PNG")
    return buffer.getvalue()


@pytest.fixture(scope="module")
def digits() -> tuple[list[bytes], np.ndarray]:
    from sklearn.datasets import load_digits

    data = load_digits()
    return [_png(image) for image in data.images], data.target.astype(np.int64)


@pytest.fixture
def folder(tmp_path: Path, digits: tuple[list[bytes], np.ndarray]) -> Path:
    """PER_CLASS digits of each class under root/<name of the digit>/img_<index>.png."""
    images, targets = digits
    root = tmp_path / "digits"
    for digit, name in enumerate(NAMES):
        (root / name).mkdir(parents=True)
        for index in np.flatnonzero(targets == digit)[:PER_CLASS]:
            (root / name / f"img_{index:04d}.png").write_bytes(images[index])
    return root


def test_image_folder_follows_torchvision_imagefolder(folder: Path) -> None:
    source = read_image_folder(folder)
    assert source.classes == SORTED_NAMES
    assert len(source.rows) == 10 * PER_CLASS
    # eight comes first in sorted order, so digit 8 has index 0 and its files come first
    assert source.rows.id[0] == "eight/img_0008.png" and source.rows.label[0] == 0
    assert source.rows.image[0] == (folder / "eight" / "img_0008.png").read_bytes()
    assert list(source.rows.label[:PER_CLASS]) == [0] * PER_CLASS
    reference = torchvision.datasets.ImageFolder(str(folder))
    assert [(str(folder / i), label) for i, label in zip(source.rows.id, source.rows.label)] == reference.samples


def test_image_folder_class_count_must_match(folder: Path) -> None:
    with pytest.raises(ImageDataError, match=re.escape(
            f"image folder {folder} has 10 class folders but n_classes is 1000; set n_classes")):
        read_image_folder(folder, n_classes=1000)


def test_broken_image_file_is_named(folder: Path) -> None:
    (folder / "three" / "img_9999.png").write_bytes(b"not a png")
    with pytest.raises(ImageDataError, match=re.escape(
            f"image folder {folder}: file three/img_9999.png is not a readable image (UnidentifiedImageError")) as err:
        read_image_folder(folder)
    assert str(err.value).endswith("replace it with an intact image file (JPEG, PNG, ...) or remove it from the data")


def test_truncated_image_fails_on_decode_naming_the_row(digits: tuple[list[bytes], np.ndarray]) -> None:
    images, _ = digits
    assert decode_image(images[0], "row 0").size == (8, 8) and decode_image(images[0], "row 0").mode == "RGB"
    model = load_image_model(TINY_VIT)
    # The header survives, so reading would pass; the body does not decode.
    with pytest.raises(ImageDataError, match=r"^val:3 is not a readable image \(OSError: image file is truncated\)"):
        embed_images(model, images[:3] + [images[3][:60]], 2, names=["val:0", "val:1", "val:2", "val:3"])


def test_imagenet_root_reads_torchvision_layout(tmp_path: Path, folder: Path) -> None:
    # torchvision.datasets.ImageNet after parsing: root/meta.bin and root/val/<wnid>/<file>
    wnids = [f"n{index:08d}" for index in (9, 3, 5, 1, 7, 2, 0, 8, 4, 6)]
    root = tmp_path / "imagenet"
    for name, wnid in zip(NAMES, wnids):
        (folder / name).rename(folder / wnid)
    root.mkdir()
    folder.rename(root / "val")
    torch.save(({wnid: (f"class {wnid}", "alias") for wnid in wnids}, []), root / "meta.bin")
    source = read_imagenet(root, "val")
    assert source.classes == [f"class n{index:08d}" for index in range(10)]
    assert source.rows.id[0] == "val/n00000000/img_0006.png" and source.rows.label[0] == 0  # wnid n…0 holds sixes
    as_folder = read_image_folder(root / "val")
    assert list(as_folder.rows.label) == list(source.rows.label)
    assert list("val/" + as_folder.rows.id) == list(source.rows.id)


def test_imagenet_root_without_archives_says_what_it_needs(tmp_path: Path) -> None:
    with pytest.raises(ImageDataError, match=re.escape(
            f"torchvision ImageNet val split in {tmp_path} cannot be read "
            "(The archive ILSVRC2012_devkit_t12.tar.gz")) as err:
        read_imagenet(tmp_path)
    assert str(err.value).endswith("the folder needs ILSVRC2012_devkit_t12.tar.gz (or the meta.bin parsed from it) "
                                   "and ILSVRC2012_img_val.tar (or the folder val/ extracted from it)")


def _hub_parquet(path: Path, images: list[bytes], labels: list[int], image_column: str = "image",
                 class_label: bool = True) -> str:
    """A parquet file as the hub stores ylecun/mnist: image (Image: {bytes, path}), label (ClassLabel)."""
    import datasets

    table = datasets.Dataset.from_dict({image_column: [{"bytes": data, "path": None} for data in images],
                                        "label": labels})
    table = table.cast_column(image_column, datasets.Image())
    if class_label:
        table = table.cast_column("label", datasets.ClassLabel(names=[str(i) for i in range(10)]))
    table.to_parquet(str(path))
    return str(path)


def standard_entry(path: str, **extra: object) -> dict:
    """A config entry for a standard image dataset read from local files in the hub schema."""
    return {"kind": "image_classification", "n_classes": 10, "data_files": {"train": path},
            "splits": {"train": "train", "test": None}, "n_train": 8, "n_test": 4, **extra}


def test_hub_schema_parquet_is_prepared_as_image_bytes_skipping_hidden_labels(
    tmp_path: Path, digits: tuple[list[bytes], np.ndarray]
) -> None:
    """The pipeline's one reader of hub image datasets (w2s.data.reading): load_dataset, the image column
    cast to Image(decode=False), hidden labels (-1) left out, the encoded bytes kept as stored."""
    import pyarrow.parquet as pq

    images, targets = digits
    labels = [int(label) for label in targets[:20]]
    labels[3] = labels[11] = -1  # hidden, as on the hub's ImageNet test split
    path = _hub_parquet(tmp_path / "train.parquet", images[:20], labels)
    assert pq.read_schema(path).field("image").type.names == ["bytes", "path"]
    entry = standard_entry(path)
    splits = prepare("digits", 8, 4, 0, entry["data_files"], entry=entry)
    rows = pd.concat(splits.values())
    assert list(rows.columns) == ["id", "image", "label"] and len(rows) == 12
    index = rows["id"].str.removeprefix("train:").astype(int)
    assert not set(index) & {3, 11}
    assert rows["image"].tolist() == [images[i] for i in index] and rows["label"].tolist() == [labels[i] for i in index]


def test_hub_schema_image_column_is_configurable(tmp_path: Path, digits: tuple[list[bytes], np.ndarray]) -> None:
    images, targets = digits
    path = _hub_parquet(tmp_path / "cifar.parquet", images[:12], [int(t) for t in targets[:12]], image_column="img")
    entry = standard_entry(path, input_column="img")
    splits = prepare("cifar", 8, 4, 0, entry["data_files"], entry=entry)
    assert sorted(pd.concat(splits.values())["label"]) == sorted(int(t) for t in targets[:12])
    with pytest.raises(DatasetError) as info:
        prepare("cifar", 8, 4, 0, entry["data_files"], entry=standard_entry(path))
    assert str(info.value) == (f"dataset 'cifar': the train file {path} has no column 'image' (the default of "
                               "input_column); its columns are: img, label. Set datasets.cifar.input_column to the "
                               "column that holds the image")


def test_label_outside_classes_is_an_error(tmp_path: Path, digits: tuple[list[bytes], np.ndarray]) -> None:
    images, _ = digits
    path = _hub_parquet(tmp_path / "bad.parquet", images[:12], [4, 10, 2] + [1] * 9, class_label=False)
    entry = standard_entry(path)
    with pytest.raises(DatasetError) as info:
        prepare("digits", 8, 4, 0, entry["data_files"], entry=entry)
    assert str(info.value) == (f"dataset 'digits': the label column 'label' of the train file {path} holds 10 (1 row), "
                               "outside 0..9, the class indices of n_classes 10; set datasets.digits.n_classes to the "
                               "number of classes, or fix those labels")


def test_alexnet_features_are_its_last_layers_input(digits: tuple[list[bytes], np.ndarray]) -> None:
    images, _ = digits
    model = load_image_model(TINY_ALEXNET)
    assert model.head_classes == 10 and not model.module.training
    pixels = torch.stack([model.transform(decode_image(data, "digit")) for data in images[:6]])
    assert pixels.shape == (6, 3, 64, 64)
    features, logits = model.features_and_logits(pixels)
    with torch.no_grad():
        hidden = model.module.classifier[:-1](torch.flatten(model.module.avgpool(model.module.features(pixels)), 1))
        expected_logits = model.module(pixels)
    assert features.shape == (6, 4096)
    torch.testing.assert_close(features, hidden)
    torch.testing.assert_close(logits, expected_logits)
    # batches of 4 decode and transform separately and give the same rows
    torch.testing.assert_close(embed_images(model, images[:6], 4), hidden)
    probabilities = predict_with_head(model, images[:6], 4, "cpu", "float32", 10, "digits")
    np.testing.assert_allclose(probabilities, torch.softmax(expected_logits, 1).numpy(), rtol=1e-5, atol=1e-7)
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)


def test_head_class_count_must_match_task(digits: tuple[list[bytes], np.ndarray]) -> None:
    model = load_image_model(TINY_ALEXNET)
    with pytest.raises(ModelLoadError, match=re.escape(
            "imagenet val: model alexnet has a classifier of 10 classes but the task has 1000; use a model")):
        predict_with_head(model, digits[0][:2], 2, "cpu", "float32", 1000, "imagenet val")


def test_random_torchvision_model_needs_preprocess() -> None:
    entry = {key: value for key, value in TINY_ALEXNET.items() if key != "preprocess"}
    with pytest.raises(ModelLoadError, match=re.escape(
            "torchvision model 'alexnet' has no weights and so no transform of its own; set preprocess")):
        load_image_model(entry)


def test_timm_features_are_pre_logits(digits: tuple[list[bytes], np.ndarray]) -> None:
    images, _ = digits
    model = load_image_model(TINY_VIT)
    assert model.head_classes == 0  # the .dino tag has no classifier: its head is Identity
    pixels = torch.stack([model.transform(decode_image(data, "digit")) for data in images[:5]])
    features, logits = model.features_and_logits(pixels)
    with torch.no_grad():
        expected = model.module.forward_head(model.module.forward_features(pixels), pre_logits=True)
    assert features.shape == (5, 32) and logits is None
    torch.testing.assert_close(features, expected)
    torch.testing.assert_close(embed_images(model, images[:5], 2), expected)
    with_head = load_image_model({**TINY_VIT, "model_kwargs": {**TINY_VIT["model_kwargs"], "num_classes": 10}})
    features, logits = with_head.features_and_logits(pixels)
    torch.testing.assert_close(logits, with_head.module.head(features))


def test_timm_default_transform_is_the_models_own(digits: tuple[list[bytes], np.ndarray]) -> None:
    model = load_image_model({key: value for key, value in TINY_VIT.items() if key != "preprocess"})
    # vit_base_patch8_224.dino: input 224, crop_pct 0.9, bicubic -> Resize(248), CenterCrop(224)
    resize, crop = model.transform.transforms[:2]
    assert (resize.size, resize.interpolation.value, crop.size) == (248, "bicubic", (224, 224))
    assert model.transform(decode_image(digits[0][0], "digit")).shape == (3, 224, 224)


def test_checkpoint_loads_strictly(tmp_path: Path, digits: tuple[list[bytes], np.ndarray]) -> None:
    source = load_image_model(TINY_VIT).module
    path = tmp_path / "vit.pth"
    torch.save(source.state_dict(), path)
    loaded = load_image_model({**TINY_VIT, "checkpoint": str(path)})
    for name, value in source.state_dict().items():
        torch.testing.assert_close(loaded.module.state_dict()[name], value)
    state = source.state_dict()
    state["norm.gamma"] = state.pop("norm.weight")
    torch.save(state, path)
    with pytest.raises(ModelLoadError, match=re.escape(
            f"checkpoint {path} does not fit model vit_base_patch8_224.dino: missing keys ['norm.weight'] (1), "
            "unexpected keys ['norm.gamma'] (1)")):
        load_image_model({**TINY_VIT, "checkpoint": str(path)})


def test_dino_resnet50_checkpoint_layout_fits_timm_resnet50(tmp_path: Path,
                                                             digits: tuple[list[bytes], np.ndarray]) -> None:
    # The official DINO ResNet-50 file holds torchvision resnet50 keys without fc: it loads strictly
    # into timm's resnet50 with num_classes=0, whose features are torchvision's pooled 2048-d ones.
    reference = torchvision.models.resnet50().eval()
    state = {name: value for name, value in reference.state_dict().items() if not name.startswith("fc.")}
    torch.save(state, tmp_path / "dino_resnet50_pretrain.pth")
    model = load_image_model({"family": "timm", "name": "resnet50",
                              "checkpoint": str(tmp_path / "dino_resnet50_pretrain.pth"),
                              "model_kwargs": {"num_classes": 0}, "preprocess": {"resize": 64}})
    features = embed_images(model, digits[0][:3], 3)
    pixels = torch.stack([model.transform(decode_image(data, "digit")) for data in digits[0][:3]])
    with torch.no_grad():
        reference.fc = torch.nn.Identity()
        torch.testing.assert_close(features, reference(pixels))
    assert features.shape == (3, 2048) and model.head_classes == 0


def test_alexnet_weights_transform_is_the_papers_without_download(digits: tuple[list[bytes], np.ndarray]) -> None:
    weights = torchvision.models.get_weight("AlexNet_Weights.IMAGENET1K_V1")
    transform = weights.transforms()
    assert (transform.resize_size, transform.crop_size, transform.interpolation.value) == ([256], [224], "bilinear")
    assert len(weights.meta["categories"]) == 1000 and weights.meta["categories"][0] == "tench"
    image = decode_image(digits[0][0], "digit")
    paper = preprocess_transform({"resize": 256, "crop": 224})  # Resize(256) bilinear, CenterCrop(224), ImageNet stats
    torch.testing.assert_close(paper(image), transform(image))


def test_looking_for_torchvision_imports_no_torch_and_importing_it_declares_its_ops() -> None:
    """datasets and transformers ask importlib.util.find_spec whether torchvision is installed: after `import w2s` that
    must not import torch (2 s a job that never loads a model, such as prepare_data), while an import of torchvision
    still gets its ops declared first and its own loader."""
    import subprocess
    import sys

    probe = (
        "import importlib.util, sys, w2s\n"
        "assert importlib.util.find_spec('torchvision') is not None\n"
        "import datasets\n"
        "print('torch' in sys.modules)\n"
        "import torch, torchvision\n"
        "print(hasattr(torch.ops.torchvision, 'nms'), type(torchvision.__loader__).__name__,\n"
        "      torchvision.__spec__.loader is torchvision.__loader__)\n"
    )
    printed = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert printed.split("\n")[:2] == ["False", "True SourceFileLoader True"]
