"""Catalogue datasets whose rows ship inside a package on PyPI rather than a hub repository (vader_movies):
fetched with pip and checked by sha256 (fetch_vader_movies), then read from the fetched file
(load_vader_movies). The catalogue lists them in PACKAGED_DATASETS."""

from __future__ import annotations

import hashlib
import subprocess
import sys
import tarfile
import tempfile
from pathlib import Path
from typing import Any

from w2s import io
from w2s.data.catalogue import DATASETS
from w2s.data.spec import DatasetError

VADER_MEMBER = "hutto_ICWSM_2014/movieReviewSnippets_GroundTruth.txt"
VADER_SHA256 = "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350"


def fetch_vader_movies(out_path: str | Path) -> None:
    """Take the rated snippets out of the vaderSentiment sdist, fetched with pip from PyPI."""
    with tempfile.TemporaryDirectory() as tmp:
        cmd = [sys.executable, "-m", "pip", "download", "--no-deps", "--no-binary", ":all:",
               "--dest", tmp, DATASETS["vader_movies"].hub_id]
        result = subprocess.run(cmd, capture_output=True, text=True)
        if result.returncode != 0:
            raise DatasetError(
                f"could not fetch {DATASETS['vader_movies'].hub_id} with pip ({result.stderr.strip()[-500:]}); "
                "check that PyPI is reachable, or set data_files.train in the config to a copy of "
                f"{VADER_MEMBER}"
            )
        (sdist,) = Path(tmp).glob("vaderSentiment-*.tar.gz")
        with tarfile.open(sdist) as outer:
            inner_member = next(m for m in outer.getmembers() if m.name.endswith("hutto_ICWSM_2014.tar.gz"))
            inner_file = outer.extractfile(inner_member)
            assert inner_file is not None
            with tarfile.open(fileobj=inner_file) as inner:
                snippets = inner.extractfile(VADER_MEMBER)
                assert snippets is not None
                payload = snippets.read()
    digest = hashlib.sha256(payload).hexdigest()
    if digest != VADER_SHA256:
        raise DatasetError(f"{VADER_MEMBER} has sha256 {digest}, expected {VADER_SHA256}")
    io.write_bytes(payload, out_path)


def load_vader_movies(data_files: dict[str, str] | None) -> Any:
    """The fetched snippets as a `datasets` split of (id, score, text) rows: a headerless, unquoted TSV file."""
    import datasets

    if not data_files or "train" not in data_files:
        raise DatasetError("vader_movies needs data_files.train (the fetch rule provides it)")
    return datasets.load_dataset(
        "csv", data_files=data_files["train"], delimiter="\t",
        column_names=["id", "score", "text"], quoting=3, split="train",
    )
