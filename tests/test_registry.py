"""The demo-set registry on disk: content ids, persistence, and what a crash can leave."""

from __future__ import annotations

import pytest

from manyicl.prompting import PLAIN, DemoSet, Example, demo_set_id
from manyicl.serve.registry import DemoSetRegistry, StorageError

from chartok import CharTokenizer


def _set(n: int = 3, name: str | None = None) -> DemoSet:
    return DemoSet(examples=[Example(input=f"q{i}", output=f"a{i}") for i in range(n)], name=name)


def test_ids_are_content_hashes_and_adding_twice_is_idempotent(tmp_path):
    tok = CharTokenizer()
    reg = DemoSetRegistry(tmp_path, PLAIN, tok)
    entry, new = reg.add(_set(name="one"))
    assert new and entry.id == demo_set_id(_set(), PLAIN, tok.fingerprint)
    again, new = reg.add(_set(name="renamed"))
    assert not new and again.id == entry.id and len(reg) == 1
    assert entry.num_tokens == len(entry.header) + sum(len(e) for e in entry.examples)


def test_sets_survive_a_restart_and_deletes_are_durable(tmp_path):
    tok = CharTokenizer()
    reg = DemoSetRegistry(tmp_path, PLAIN, tok)
    keep, _ = reg.add(_set(3, "keep"))
    gone, _ = reg.add(_set(4, "gone"))
    assert reg.delete(gone.id) and not reg.delete(gone.id)
    reloaded = DemoSetRegistry(tmp_path, PLAIN, tok)
    assert list(reloaded.sets) == [keep.id]
    assert reloaded.get(keep.id).examples == keep.examples
    assert reloaded.get(keep.id).created == keep.created


def test_what_a_crash_leaves_behind_is_skipped_not_fatal(tmp_path):
    tok = CharTokenizer()
    reg = DemoSetRegistry(tmp_path, PLAIN, tok)
    entry, _ = reg.add(_set())
    (tmp_path / ".tmp-abc123").write_text('{"created": 1, "demo_set": {"exam')  # killed mid-write
    (tmp_path / "ds-000000000000000000000000.json").write_text("{not json")
    other_format = PLAIN.model_copy(update={"output": " {output}\n"})
    DemoSetRegistry(tmp_path / "other", other_format, tok).add(_set(5))
    foreign = next((tmp_path / "other").glob("ds-*.json"))
    foreign.rename(tmp_path / foreign.name)  # a set registered under another format
    reloaded = DemoSetRegistry(tmp_path, PLAIN, tok)
    assert list(reloaded.sets) == [entry.id]


def test_inline_sets_are_tokenised_once_and_the_cache_is_bounded(tmp_path):
    tok = CharTokenizer()
    reg = DemoSetRegistry(tmp_path, PLAIN, tok, inline_cache=2)
    first = reg.inline(_set(3))
    calls = len(tok.calls)
    assert reg.inline(_set(3)) is first and len(tok.calls) == calls  # a hash, no tokenising
    registered, _ = reg.add(_set(5))
    assert reg.inline(_set(5)) is registered  # a registered set of the same content
    reg.inline(_set(6))
    reg.inline(_set(7))  # evicts the least recently used: set 3
    calls = len(tok.calls)
    again = reg.inline(_set(3))
    assert again.examples == first.examples and len(tok.calls) > calls
    assert len(reg) == 1  # inline sets are never registered


def test_a_crashed_write_is_removed_and_a_failed_store_changes_nothing(tmp_path):
    tok = CharTokenizer()
    folder = tmp_path / "sets"
    kept, _ = DemoSetRegistry(folder, PLAIN, tok).add(_set(3))
    (folder / ".tmp-abc123").write_text('{"created": 1, "demo_')  # a write cut by kill -9
    reg = DemoSetRegistry(folder, PLAIN, tok)
    assert list(reg.sets) == [kept.id] and not list(folder.glob(".tmp-*"))
    # The folder vanishes (or turns read-only, or fills up): registering fails cleanly.
    (folder / f"{kept.id}.json").unlink()
    folder.rmdir()
    folder.write_text("not a folder")
    with pytest.raises(StorageError, match="cannot store"):
        reg.add(_set(4))
    assert list(reg.sets) == [kept.id] and reg.get(kept.id) is not None  # still served


def test_registries_sharing_a_folder_serve_each_others_sets(tmp_path):
    # Replicas behind a router share one folder: a set registered through any of them is
    # served by all, and a delete through one reaches the others.
    tok, folder = CharTokenizer(), tmp_path / "shared"
    a, b = DemoSetRegistry(folder, PLAIN, tok), DemoSetRegistry(folder, PLAIN, tok)
    entry, new = a.add(_set(3))
    assert new and b.get(entry.id) == entry and [e.id for e in b.all()] == [entry.id]
    assert b.add(_set(3)) == (entry, False)  # already registered (by a)
    assert b.delete(entry.id) and a.get(entry.id) is None and a.all() == []
    assert not a.delete(entry.id)
    for bad in ("../shared/x", "ds-XYZ", entry.id + "0"):
        assert a.get(bad) is None
