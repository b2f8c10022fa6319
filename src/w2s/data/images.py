"""Images from local folders as rows of (id, image, label): the encoded file as stored, and its class
index; and decoding an image's bytes.

- `image_folder`: a folder `root/<class>/<file>`, read by torchvision ImageFolder's rule: class
  index = position of the folder name in sorted order, files in sorted order, id = the file's path
  relative to root. The torchvision ImageNet layout `root/val/<wnid>/*.JPEG` is such a folder
  with root/val as its root; `imagenet_root` reads the same files through
  torchvision.datasets.ImageNet, which also gives the class names from its meta.bin.

Hub image datasets (an image column of datasets.Image and an integer label column, or local
parquet files in that schema) are read by w2s.data.reading like every other standard dataset, with
the image column cast to Image(decode=False) so that rows keep the encoded bytes.
"""

from __future__ import annotations

import io
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

HIDDEN_LABEL = -1  # how the hub marks a test split's withheld labels
IMAGE_COLUMNS = ["id", "image", "label"]


class ImageDataError(ValueError):
    """Image data that cannot be read as configured; the message says what to fix."""


@dataclass(frozen=True)
class ImageRows:
    """A source's usable rows, in the source's order, and its class names in index order."""

    rows: pd.DataFrame  # columns IMAGE_COLUMNS: id (str), image (bytes), label (int)
    classes: list[str]
    where: str  # the source in words, for messages


def _open(data: bytes, where: str) -> Image.Image:
    try:
        return Image.open(io.BytesIO(data))
    except (UnidentifiedImageError, OSError) as err:
        raise ImageDataError(_unreadable(where, err)) from err


def _unreadable(where: str, err: Exception) -> str:
    return (f"{where} is not a readable image ({type(err).__name__}: {err}); replace it with an intact "
            "image file (JPEG, PNG, ...) or remove it from the data")


def decode_image(data: bytes, where: str) -> Image.Image:
    """The image encoded in `data`, fully decoded and in RGB; `where` names the row or file in errors."""
    image = _open(data, where)
    try:
        image.load()  # Image.open reads only the header; a truncated body fails here
    except (OSError, SyntaxError, ValueError) as err:
        raise ImageDataError(_unreadable(where, err)) from err
    return image.convert("RGB")


def _frame(ids: list[str], images: list[bytes], labels: list[int]) -> pd.DataFrame:
    return pd.DataFrame({"id": ids, "image": images, "label": np.asarray(labels, dtype=np.int64)},
                        columns=IMAGE_COLUMNS)


def _read_files(root: Path, samples: list[tuple[str, int]], where: str) -> pd.DataFrame:
    ids, images = [], []
    for path, _ in samples:
        data = Path(path).read_bytes()
        image_id = Path(os.path.relpath(path, root)).as_posix()
        _open(data, f"{where}: file {image_id}")  # header only: a broken file stops here, not mid-embedding
        ids.append(image_id)
        images.append(data)
    return _frame(ids, images, [label for _, label in samples])


def read_image_folder(root: str | Path, n_classes: int | None = None) -> ImageRows:
    """Every image under `root/<class>/`, by torchvision ImageFolder's rule (sorted classes and files)."""
    from torchvision.datasets.folder import IMG_EXTENSIONS, make_dataset

    root = Path(root)
    where = f"image folder {root}"
    if not root.is_dir():
        raise ImageDataError(f"{where} does not exist; set image_folder to a folder of <class>/<file> images")
    classes = sorted(entry.name for entry in os.scandir(root) if entry.is_dir())
    if not classes:
        raise ImageDataError(f"{where} has no class folders; images must lie in {root}/<class>/<file>")
    if n_classes is not None and n_classes != len(classes):
        raise ImageDataError(f"{where} has {len(classes)} class folders but n_classes is {n_classes}; set "
                             "n_classes to the number of folders or add the missing class folders")
    try:
        samples = make_dataset(str(root), {name: index for index, name in enumerate(classes)},
                               extensions=IMG_EXTENSIONS, allow_empty=False)
    except FileNotFoundError as err:  # torchvision's message for a class folder without images
        raise ImageDataError(f"{where}: {err}") from err
    return ImageRows(_read_files(root, samples, where), classes, where)


def read_imagenet(root: str | Path, split: str = "val") -> ImageRows:
    """ImageNet as torchvision.datasets.ImageNet(root, split) finds it: its samples and class order.

    It reads root/meta.bin, or parses ILSVRC2012_devkit_t12.tar.gz into it (which needs scipy), and
    extracts the split's archive into root/<split>/<wnid>/ when that folder is missing. Nothing downloads.
    """
    from torchvision.datasets import ImageNet

    root = Path(root)
    where = f"torchvision ImageNet {split} split in {root}"
    try:
        dataset = ImageNet(str(root), split=split)
    except (RuntimeError, FileNotFoundError, ValueError) as err:
        raise ImageDataError(
            f"{where} cannot be read ({err}); the folder needs ILSVRC2012_devkit_t12.tar.gz (or the meta.bin "
            f"parsed from it) and ILSVRC2012_img_{split}.tar (or the folder {split}/ extracted from it)"
        ) from err
    classes = [names[0] for names in dataset.classes]
    return ImageRows(_read_files(root, list(dataset.samples), where), classes, where)
