"""Where a dataset's rows are read from and how: the hub repository at a pinned commit (DataSource, data_source,
pin, load_arguments; a repository that ships a loading script through its parquet export), a local copy of it,
local files, a packaged file or a folder of images, with errors that say what to fix."""

from __future__ import annotations

import logging
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from w2s import revisions
from w2s.data import packaged
from w2s.data.catalogue import dataset_spec
from w2s.data.local_files import LOCAL_BUILDERS, json_records, local_suffixes, no_file_error, split_words
from w2s.data.spec import PARQUET_EXPORT_BRANCH, DatasetError, DatasetSpec, entry_column

log = logging.getLogger("w2s")

# What datasets says of a file that parses to no rows (a JSON list [], a CSV with only a header).
NO_ROWS_MESSAGE = "corresponds to no data"
SCRIPT_REFUSED = "Dataset scripts are no longer supported"


@dataclass(frozen=True)
class DataSource:
    """The hub repository a dataset's rows are read from, at which commit, and why that commit.

    `mirror` is a local copy of the repository at that commit (a clone or a snapshot_download
    folder): it is read with the same config, folder and split names, without the hub.
    """

    hub_id: str
    branch: str
    revision: str | None
    # where the revision comes from: registry, config, lock, resolved (by the job, from the branch's
    # head, because nothing pinned it) or unpinned
    pinned_by: str
    hub_config: str | None
    parquet_export: bool
    mirror: str | None = None

    def record(self) -> dict[str, Any]:
        return {"hub_id": self.hub_id, "branch": self.branch, "revision": self.revision, "pinned_by": self.pinned_by,
                "hub_config": self.hub_config, "parquet_export": self.parquet_export, "mirror": self.mirror}

    @classmethod
    def from_record(cls, record: dict[str, Any]) -> DataSource:
        return cls(**record)


def data_source(name: str, entry: dict[str, Any] | None = None,
                lock: dict[str, dict[str, str]] | None = None) -> DataSource:
    """Where `name` is read: the config entry's revision, else the registry's, else the lock file's."""
    spec, entry = dataset_spec(name, entry), entry or {}
    locked = revisions.locked_revision(lock, "dataset", spec.hub_id, spec.branch) if lock else None
    revision, pinned_by = next(
        ((rev, by) for rev, by in ((entry.get("revision"), "config"), (spec.revision, "registry"), (locked, "lock"))
         if rev is not None),
        (None, "unpinned"),
    )
    return DataSource(spec.hub_id, spec.branch, revision, pinned_by, spec.hub_config, spec.parquet_export,
                      entry.get("mirror"))


def pin(source: DataSource) -> DataSource:
    """`source` at a commit: an unpinned hub source is pinned to its branch's head now (needs the hub),
    so every split of one preparation reads the same commit and the record names it."""
    if source.revision is not None or source.mirror is not None:
        return source
    head = revisions.resolve_head("dataset", source.hub_id, source.branch)
    log.warning("%s@%s is pinned nowhere; read at its head %s. Run `python -m w2s.pipeline.preflight` to lock it",
                source.hub_id, source.branch, head)
    return replace(source, revision=head, pinned_by="resolved")


def load_arguments(source: DataSource, hub_split: str) -> tuple[str, dict[str, Any]]:
    """`datasets.load_dataset`'s path and keyword arguments for one split of `source`. A parquet export
    keeps each config in a folder (data_dir); a main branch names configs in its README (name)."""
    kwargs: dict[str, Any] = {"split": hub_split}
    if source.parquet_export:
        kwargs["data_dir"] = source.hub_config
    elif source.hub_config is not None:
        kwargs["name"] = source.hub_config
    if source.mirror is not None:
        return source.mirror, kwargs
    return source.hub_id, {**kwargs, "revision": source.revision or source.branch}


def _where(source: DataSource, split: str, data_files: dict[str, str] | None) -> str:
    """Where a split is read from, in words for error messages."""
    if data_files:
        return data_files.get(split, data_files.get("train", ""))
    at = f"{source.hub_id}@{source.revision or source.branch}"
    return f"the local copy {source.mirror} of {at}" if source.mirror else f"the hub repository {at}"


def _empty_split(name: str, split: str, data_files: dict[str, str] | None, source: DataSource) -> DatasetError:
    return DatasetError(f"the {split} split of dataset '{name}' from {_where(source, split, data_files)} has no "
                        f"rows; point data_files.{split} at a file with rows in the dataset's hub schema")


def load_rows(name: str, split: str, data_files: dict[str, str] | None, source: DataSource,
               spec: DatasetSpec | None = None) -> Any:
    """The rows of one split of dataset `name` (a `datasets` split, or a folder's records), from its local files,
    its folder of images, or `source`; an empty split is an error."""
    spec = spec or dataset_spec(name)
    if spec.folder is not None:
        from w2s.data import images

        key, path = spec.folder
        try:
            read = (images.read_image_folder(path, spec.task.n_classes) if key == "image_folder"
                    else images.read_imagenet(path))
        except images.ImageDataError as err:
            raise DatasetError(f"dataset '{name}': {err}") from err
        # Records of (id, image, label), indexed by position like a hub split's rows.
        return read.rows.to_dict("records")
    rows = _read_rows(name, split, data_files, source, spec)
    if len(rows) == 0:
        raise _empty_split(name, split, data_files, source)
    return rows


def _read_rows(name: str, split: str, data_files: dict[str, str] | None, source: DataSource,
               spec: DatasetSpec) -> Any:
    import datasets

    if data_files or source.mirror:
        # Local files need no hub; without this, datasets pings it to count downloads.
        datasets.config.HF_UPDATE_DOWNLOAD_COUNTS = False
    try:
        if name == "vader_movies":
            return packaged.load_vader_movies(data_files)
        if data_files:
            if split not in data_files:
                raise no_file_error(name, split, spec)
            path = data_files[split]
            builder = LOCAL_BUILDERS.get(Path(path).suffix.lower())
            if builder is None:
                raise DatasetError(f"{path}: local data files must be {local_suffixes()}")
            # datasets fails on an empty file with a bare StopIteration, which says nothing.
            if Path(path).is_file() and Path(path).stat().st_size == 0:
                raise _empty_split(name, split, data_files, source)
            rows = datasets.load_dataset(builder, data_files=path, split="train")
        else:
            hub_split = spec.splits[split]
            assert hub_split is not None
            path, kwargs = load_arguments(source, hub_split)
            rows = datasets.load_dataset(path, **kwargs)
        image_column = "image" if spec.task.input_column == "image" else None
        if image_column is not None and entry_column(spec, image_column) in rows.column_names:
            # The encoded files as stored, not decoded pictures: the prepared splits keep the bytes.
            rows = rows.cast_column(entry_column(spec, image_column), datasets.Image(decode=False))
        return rows
    except DatasetError:
        raise
    except Exception as err:  # datasets raises many types for offline, missing and malformed data
        raise _load_error(name, split, data_files, source, err, spec) from err


def _load_error(name: str, split: str, data_files: dict[str, str] | None, source: DataSource,
                err: Exception, spec: DatasetSpec) -> DatasetError:
    where, message = _where(source, split, data_files), str(err)
    if NO_ROWS_MESSAGE in message:
        return _empty_split(name, split, data_files, source)
    if data_files and LOCAL_BUILDERS.get(Path(where).suffix.lower()) == "json" and Path(where).is_file():
        try:  # datasets' error names no line (pandas: "Expected object or value at position 43"); read it again
            for _ in json_records(Path(where), f"dataset '{name}': {split_words(split, where)}"):
                pass
        except DatasetError as broken:
            return broken
    if SCRIPT_REFUSED in message:
        return DatasetError(
            f"{where} holds a loading script and no data files ({message.rsplit('found ', 1)[-1]}), which the "
            f"installed datasets refuses to run; read the repository's parquet export instead: a commit of its "
            f"{PARQUET_EXPORT_BRANCH} branch in the registry (w2s.data.catalogue) or datasets.{name}.revision"
        )
    hub_split = spec.splits.get(split)
    if "Unknown split" in message or "Bad split" in message:
        return DatasetError(
            f"{where} has no split '{hub_split}', which dataset '{name}' reads as its {split} split ({message}); "
            "check the revision, or the registry's split names against the repository"
        )
    if data_files or source.mirror:
        setting = "data_files" if data_files else "mirror"
        return DatasetError(f"could not load the {split} split of dataset '{name}' from {where}: {message}; "
                            f"check datasets.{name}.{setting} in the config")
    return DatasetError(
        f"could not load the {split} split of dataset '{name}' from {where}: {message}. "
        f"Offline? Copy the repository at that commit to a folder and set datasets.{name}.mirror to it, point "
        f"datasets.{name}.data_files at local files in the hub schema, or set HF_HUB_OFFLINE=1 to use the "
        "local Hugging Face cache."
    )


def split_where(split: str, data_files: dict[str, str] | None, source: DataSource) -> str:
    """A split's file or repository in words for errors: "the train file data/reviews.csv"."""
    if data_files and split in data_files:
        return split_words(split, data_files[split])
    return f"the {split} split of {_where(source, split, data_files)}"
