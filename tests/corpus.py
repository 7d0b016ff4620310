"""Access to ../shared/corpus: third-party test material, read in place, never copied."""

from __future__ import annotations

import csv
from pathlib import Path

import pytest

CORPUS = Path(__file__).resolve().parent.parent.parent / "shared" / "corpus"


def require_corpus() -> Path:
    """The corpus folder, or skip the calling test with a clear reason."""
    if not CORPUS.is_dir():
        pytest.skip(f"corpus not present at {CORPUS} (it lives beside the project, in ../shared)")
    return CORPUS


def files_of_type(*prefixes: str) -> list[Path]:
    """Every corpus file whose MANIFEST.tsv type starts with one of ``prefixes``, sorted."""
    root = require_corpus()
    found: list[Path] = []
    for manifest in sorted(root.glob("*/MANIFEST.tsv")):
        with manifest.open(encoding="utf-8", newline="") as handle:
            for row in csv.DictReader(handle, delimiter="\t"):
                if row.get("type", "").startswith(prefixes):
                    path = manifest.parent / row["path"]
                    if path.is_file():
                        found.append(path)
    return found
