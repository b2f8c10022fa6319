"""Image datasets as rows of (id, image, label): the encoded file as stored, and its class index.

Three sources, each described by a config entry (a dict; `read_images` dispatches on its keys):

- `image_folder`: a folder `root/<class>/<file>`, read by torchvision ImageFolder's rule: class
  index = position of the folder name in sorted order, files in sorted order, id = the file's path
  relative to root. The torchvision ImageNet layout `root/val/<wnid>/*.JPEG` is such a folder
  with root/val as its root; `imagenet_root` reads the same files through
  torchvision.datasets.ImageNet, which also gives the class names from its meta.bin.
- `hub_id`: a Hugging Face dataset with an image column (datasets.Image) and a class-label column,
  read with datasets.load_dataset; `data_files` reads local parquet files in that same schema.

Hidden labels (-1, as on the hub's ImageNet test split) make a row unusable and it is skipped,
as text datasets skip them; any other label outside 0..K-1 is an error.
"""

from __future__ import annotations

import io
import os
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from PIL import Image, UnidentifiedImageError

HIDDEN_LABEL = -1  # how the hub marks a test split's withheld labels
IMAGE_COLUMNS = ["id", "image", "label"]
HUB_KEYS = {"hub_id", "config", "split", "revision", "image_column", "label_column", "n_classes"}
DATA_FILES_KEYS = {"data_files", "split", "image_column", "label_column", "n_classes"}
FOLDER_KEYS = {"image_folder", "n_classes"}
IMAGENET_KEYS = {"imagenet_root", "split"}


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


def check_labels(labels: Iterable[int], n_classes: int, where: str,
                 ids: list[str] | None = None) -> None:
    """Every label lies in 0..n_classes-1 (hidden labels are removed before); `ids` name the rows."""
    values = np.asarray(list(labels), dtype=np.int64)
    bad = np.flatnonzero((values < 0) | (values >= n_classes))
    if len(bad):
        row = ids[bad[0]] if ids else bad[0]
        raise ImageDataError(
            f"{where}: row {row} has label {values[bad[0]]}, outside 0..{n_classes - 1} for {n_classes} classes "
            f"({len(bad)} such rows); set n_classes to the data's number of classes or fix the label column"
        )


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


def read_hub_images(hub_id: str | None = None, config: str | None = None, split: str = "train",
                    revision: str | None = None, data_files: str | list[str] | None = None,
                    image_column: str = "image", label_column: str = "label",
                    n_classes: int | None = None) -> ImageRows:
    """A hub dataset's split (or local parquet files in its schema) with an image and a label column.

    The image column is cast to datasets.Image(decode=False), so rows hold the encoded file as stored.
    n_classes defaults to the label column's ClassLabel count. Row ids are `<split>:<row index>`.
    """
    import datasets

    if (hub_id is None) == (data_files is None):
        raise ImageDataError("an image dataset reads either hub_id or data_files; set exactly one")
    if data_files is not None:
        datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False  # local files need no hub
        where = f"image data files {data_files}"
        path, kwargs = "parquet", {"data_files": data_files, "split": "train"}
    else:
        where = f"hub dataset {hub_id}" + (f" ({config})" if config else "") + f"@{revision or 'main'} {split}"
        path, kwargs = hub_id, {"name": config, "split": split, "revision": revision}
    try:
        table = datasets.load_dataset(path, **kwargs)
    except Exception as err:  # datasets raises many types for offline, missing and malformed data
        raise ImageDataError(f"could not load {where}: {type(err).__name__}: {err}; check the hub id, config, "
                             "split and revision, or point data_files at local parquet files in the hub "
                             "schema") from err
    for column in (image_column, label_column):
        if column not in table.column_names:
            raise ImageDataError(f"{where} has no column '{column}' (its columns: {table.column_names}); set "
                                 "image_column and label_column to the dataset's names (e.g. 'img' for "
                                 "uoft-cs/cifar10, 'image' for ylecun/mnist)")
    try:
        table = table.cast_column(image_column, datasets.Image(decode=False))
    except (ValueError, TypeError) as err:
        raise ImageDataError(f"{where}: column '{image_column}' is no image column ({err}); set image_column to "
                             "the column of datasets.Image type") from err
    label_feature = table.features[label_column]
    classes = list(label_feature.names) if isinstance(label_feature, datasets.ClassLabel) else None
    if n_classes is None:
        if classes is None:
            raise ImageDataError(f"{where}: label column '{label_column}' is not a ClassLabel, so its number "
                                 "of classes is unknown; set n_classes")
        n_classes = len(classes)
    if classes is None or len(classes) != n_classes:
        classes = [str(index) for index in range(n_classes)]
    ids, images, labels = [], [], []
    for index, row in enumerate(table.select_columns([image_column, label_column])):
        label = int(row[label_column])
        if label == HIDDEN_LABEL:
            continue
        image = row[image_column]
        if image is None or image["bytes"] is None:
            raise ImageDataError(f"{where}: row {index} has no image bytes in column '{image_column}' (path "
                                 f"{None if image is None else image['path']}); embed the image files in the data")
        ids.append(f"{split}:{index}")
        images.append(image["bytes"])
        labels.append(label)
    if not ids:
        raise ImageDataError(f"{where} has no labelled rows (all are hidden, label -1); read a labelled split")
    check_labels(labels, n_classes, where, ids)
    return ImageRows(_frame(ids, images, labels), classes, where)


def read_images(entry: dict[str, Any]) -> ImageRows:
    """The rows of the source a config entry names by its keys (see the module docstring)."""
    for key, allowed, read in (("image_folder", FOLDER_KEYS, read_image_folder),
                               ("imagenet_root", IMAGENET_KEYS, read_imagenet),
                               ("hub_id", HUB_KEYS, read_hub_images),
                               ("data_files", DATA_FILES_KEYS, read_hub_images)):
        if key in entry:
            unknown = sorted(set(entry) - allowed)
            if unknown:
                raise ImageDataError(f"image source with '{key}' takes only {sorted(allowed)}, not {unknown}")
            arguments = dict(entry)
            if key == "image_folder":
                arguments["root"] = arguments.pop("image_folder")
            elif key == "imagenet_root":
                arguments["root"] = arguments.pop("imagenet_root")
            return read(**arguments)  # type: ignore[operator]
    raise ImageDataError(f"an image source needs one of image_folder, imagenet_root, hub_id or data_files; got "
                         f"{sorted(entry)}")
