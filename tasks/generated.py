"""Generated tasks, written once to the cache as JSONL and read from there afterwards.

    examples = cached(GeneratedKey("gym", "leg_counting", {"seed": 0, "size": 600}, "0.1.25"),
                      make=lambda: (example(i) for i in range(600)), size=600)

A generated task is a pure function of (source, name, params, seed): the key names all of them
and the generating package's version, so the file is the same on any machine, and a new
package version writes a new file instead of reading an old one.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
import tempfile
import urllib.parse
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path

from tqdm import tqdm

from manyicl.artifacts import cache_root
from manyicl.tasks.task import TaskExample


@dataclass(frozen=True)
class GeneratedKey:
    """What a generated task's examples are a function of."""

    source: str
    name: str
    params: dict = field(default_factory=dict)
    version: str = ""  # the generating package's version

    @property
    def digest(self) -> str:
        text = json.dumps([self.source, self.name, self.params, self.version], sort_keys=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    def path(self, cache: Path | None = None) -> Path:
        stem = self.name.replace("/", "_")
        return (cache or cache_root()) / "generated" / self.source / f"{stem}-{self.digest}.jsonl"


def split_params(name: str, defaults: dict) -> tuple[str, dict]:
    """'arc_1d/move?seed=3&size=400' -> ('arc_1d/move', {**defaults, seed: 3, size: 400}).
    Values are ints where they parse as ints; an unknown key is a ValueError."""
    base, _, query = name.partition("?")
    params = dict(defaults)
    for key, value in urllib.parse.parse_qsl(query, keep_blank_values=True):
        if key not in defaults:
            raise ValueError(f"{name!r}: unknown parameter {key!r}; known: {sorted(defaults)}")
        params[key] = int(value) if value.lstrip("-").isdigit() else value
    return base, params


def cached(
    key: GeneratedKey,
    make: Callable[[], Iterable[TaskExample]],
    size: int,
    cache: Path | None = None,
) -> tuple[TaskExample, ...]:
    """The task's examples: read from the cache, or made by `make()` (a progress bar over
    `size`) and written atomically first."""
    path = key.path(cache)
    if not path.is_file():
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
        try:
            with os.fdopen(fd, "w") as out:
                bar = tqdm(make(), total=size, desc=f"generating {key.source}:{key.name}")
                for ex in bar:
                    out.write(json.dumps(_row(ex)) + "\n")
            os.replace(tmp, path)
        finally:
            if os.path.exists(tmp):
                os.unlink(tmp)
    rows = [json.loads(line) for line in path.read_text().splitlines() if line.strip()]
    return tuple(
        TaskExample(r["input"], r["output"], tuple(r["choices"]) if r.get("choices") else None)
        for r in rows
    )


def _row(ex: TaskExample) -> dict:
    row = {"input": ex.input, "output": ex.output}
    if ex.choices:
        row["choices"] = list(ex.choices)
    return row


def sampler(key: GeneratedKey) -> random.Random:
    """A private random.Random for one task, seeded by its key (never the global one: a
    generator must not depend on, or disturb, what else ran in the process)."""
    return random.Random(key.digest)
