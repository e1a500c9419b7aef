"""Registered demo sets: content-addressed, tokenised once, persisted one JSON file per set.

A set's id is `demo_set_id(demos, format, tokenizer)`, so registering the same set twice gives
the same id and the same demo-block tokens. Files are written to a temporary name, fsynced and
renamed: after a crash (kill -9 included) a set is either fully on disk or not at all.
"""

from __future__ import annotations

import json
import logging
import os
import re
import tempfile
import time
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path

from manyicl.prompting import (
    DemoSet,
    PromptFormat,
    TokenizedExample,
    Tokenizer,
    demo_set_id,
    routing_key,
    tokenize_example,
    tokenize_header,
)

log = logging.getLogger(__name__)
SET_ID = re.compile(r"ds-[0-9a-f]{24}")  # `demo_set_id`'s form: also what is safe as a file name


@dataclass(frozen=True)
class TokenizedDemoSet:
    """A demo set with its ids ready: what a request's demo block is assembled from."""

    id: str
    demos: DemoSet
    header: tuple[int, ...]
    examples: tuple[TokenizedExample, ...]
    created: int
    routing_key: str  # `routing_key(demos)`: an inline set's X-Session-ID, computed once

    @property
    def num_tokens(self) -> int:
        return len(self.header) + sum(len(e) for e in self.examples)


def tokenize_demo_set(
    demos: DemoSet, fmt: PromptFormat, tok: Tokenizer, created: int | None = None
) -> TokenizedDemoSet:
    """Tokenise a set once, with its content id."""
    return TokenizedDemoSet(
        id=demo_set_id(demos, fmt, tok.fingerprint),
        demos=demos,
        header=tuple(tokenize_header(fmt, tok, demos.instruction)),
        examples=tuple(tokenize_example(fmt, tok, ex) for ex in demos.examples),
        created=created or int(time.time()),
        routing_key=routing_key(demos),
    )


class StorageError(Exception):
    """A set could not be written to disk; the registry is unchanged."""


class DemoSetRegistry:
    """In memory for speed, on disk for restarts. Not thread-safe: use from one event loop.

    Inline demonstrations (sent with each request) are tokenised once too: the last
    `inline_cache` sets are kept by content id, so a client resending a set pays only a hash.
    """

    def __init__(self, folder: Path, fmt: PromptFormat, tok: Tokenizer, inline_cache: int = 256):
        self.folder, self.fmt, self.tok = folder, fmt, tok
        self.sets: dict[str, TokenizedDemoSet] = {}
        self.inline_cache = inline_cache
        self._inline: OrderedDict[str, TokenizedDemoSet] = OrderedDict()
        folder.mkdir(parents=True, exist_ok=True)
        self._load_all()

    def inline(self, demos: DemoSet) -> TokenizedDemoSet:
        """The tokenised form of a request's inline set: a registered or recently seen set of
        the same content is reused, not tokenised again."""
        set_id = demo_set_id(demos, self.fmt, self.tok.fingerprint)
        entry = self.sets.get(set_id) or self._inline.get(set_id)
        if entry is None:
            entry = tokenize_demo_set(demos, self.fmt, self.tok)
        self._inline[set_id] = entry
        self._inline.move_to_end(set_id)
        while len(self._inline) > self.inline_cache:
            self._inline.popitem(last=False)
        return entry

    def _load_all(self) -> None:
        """Load every stored set; report what was skipped. A crash mid-write leaves at most a
        temporary file (the rename is atomic): it is removed, never loaded."""
        for tmp in self.folder.glob(".tmp-*"):
            log.warning("removing %s, a demo set write that a crash interrupted", tmp)
            tmp.unlink(missing_ok=True)
        skipped = 0
        for path in sorted(self.folder.glob("ds-*.json")):
            entry = self._load(path)
            skipped += entry is None
            if entry is not None:
                self.sets[entry.id] = entry
        log.info("demo sets in %s: %d loaded, %d skipped", self.folder, len(self.sets), skipped)

    def _load(self, path: Path) -> TokenizedDemoSet | None:
        """A stored set, or None (logged) when it is unreadable or not this server's."""
        try:
            raw = json.loads(path.read_text())
            entry = tokenize_demo_set(
                DemoSet.model_validate(raw["demo_set"]), self.fmt, self.tok, raw["created"]
            )
        except (OSError, ValueError, KeyError) as e:
            log.warning("skipping unreadable demo set %s: %s", path, e)
            return None
        if entry.id != path.stem:  # another format or tokenizer: not ours to serve
            log.warning("skipping %s: it was registered under another format/tokenizer", path)
            return None
        return entry

    def add(self, demos: DemoSet) -> tuple[TokenizedDemoSet, bool]:
        """Register (idempotent). Returns the entry and whether it was new."""
        entry = tokenize_demo_set(demos, self.fmt, self.tok)
        if (known := self.get(entry.id)) is not None:
            return known, False
        payload = {"created": entry.created, "demo_set": demos.model_dump(mode="json")}
        try:
            _atomic_write(self.folder / f"{entry.id}.json", json.dumps(payload))
        except OSError as e:  # disk full, read-only or vanished folder: nothing is registered
            raise StorageError(f"cannot store the demo set in {self.folder}: {e}") from e
        self.sets[entry.id] = entry
        return entry, True

    def get(self, set_id: str) -> TokenizedDemoSet | None:
        """A registered set. The folder is the truth, so replicas that share it serve each
        other's sets: one registered elsewhere is loaded on first use, one deleted elsewhere
        is dropped (a stat per call). If the folder itself is gone, memory still serves."""
        if not SET_ID.fullmatch(set_id):
            return None
        path = self.folder / f"{set_id}.json"
        if path.is_file():
            if set_id not in self.sets and (entry := self._load(path)) is not None:
                self.sets[set_id] = entry
        elif self.folder.is_dir():
            self.sets.pop(set_id, None)
        return self.sets.get(set_id)

    def all(self) -> list[TokenizedDemoSet]:
        """Every set in the folder, those other processes registered included."""
        found = (self.get(path.stem) for path in sorted(self.folder.glob("ds-*.json")))
        return [entry for entry in found if entry is not None]

    def delete(self, set_id: str) -> bool:
        if self.get(set_id) is None:
            return False
        del self.sets[set_id]
        (self.folder / f"{set_id}.json").unlink(missing_ok=True)
        return True

    def __len__(self) -> int:
        return len(self.sets)


def _atomic_write(path: Path, text: str) -> None:
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    try:
        with os.fdopen(fd, "w") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)  # the rename itself survives a crash
        finally:
            os.close(dir_fd)
    finally:
        if os.path.exists(tmp):
            os.unlink(tmp)
