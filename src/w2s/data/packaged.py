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
# The New York Times editorial snippets of the same sdist, rated the same way: the demo's out-of-distribution test.
VADER_NYT_MEMBER = "hutto_ICWSM_2014/nytEditorialSnippets_GroundTruth.txt"
VADER_SHA256 = {VADER_MEMBER: "c8293b0d942e90e223ea2c0955d969040d1a1be514a978b9af0698940bd13350",
                VADER_NYT_MEMBER: "7d8fbcce7dde5d716da53e78f4ef4be6b706e9ef1e1d51887e6d0ad4b69cc27e"}


def fetch_vader_movies(out_path: str | Path) -> None:
    """Take the rated movie-review snippets out of the vaderSentiment sdist, fetched with pip from PyPI."""
    fetch_vader_snippets({VADER_MEMBER: out_path})


def fetch_vader_snippets(out_paths: dict[str, str | Path]) -> None:
    """Take each rated snippets file of `out_paths` (a member of VADER_SHA256) out of the vaderSentiment sdist,
    fetched once with pip from PyPI, check its sha256 and write it to its path."""
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
                payloads = {}
                for member in out_paths:
                    snippets = inner.extractfile(member)
                    assert snippets is not None
                    payloads[member] = snippets.read()
    for member, payload in payloads.items():
        digest = hashlib.sha256(payload).hexdigest()
        if digest != VADER_SHA256[member]:
            raise DatasetError(f"{member} has sha256 {digest}, expected {VADER_SHA256[member]}")
        io.write_bytes(payload, out_paths[member])


def load_vader_movies(data_files: dict[str, str] | None) -> Any:
    """The fetched snippets as a `datasets` split of (id, score, text) rows: a headerless, unquoted TSV file."""
    import datasets

    if not data_files or "train" not in data_files:
        raise DatasetError("vader_movies needs data_files.train (the fetch rule provides it)")
    return datasets.load_dataset(
        "csv", data_files=data_files["train"], delimiter="\t",
        column_names=["id", "score", "text"], quoting=3, split="train",
    )
