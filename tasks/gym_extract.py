"""A reasoning-gym item -> its bare (input, output), for `gym`'s generator table.

A question wraps its item in a paragraph of instructions that a many-shot prompt would repeat
per demonstration, so each extractor rebuilds the item from the item's metadata, or cuts it out
of the question with a regex that must match (a changed template fails loudly instead of
leaking its prose). An extractor returns None for an item its task skips.
"""

from __future__ import annotations

import re
from collections.abc import Callable

Pair = tuple[str, str]
Extract = Callable[[dict], Pair | None]  # an item -> its bare (input, output), None to skip


def field(name: str) -> Extract:
    """The metadata field `name` -> the answer (the generator's item without its prose)."""
    return lambda it: (str(it["metadata"][name]), it["answer"])


def lists(name: str, out: str | None = None, sep: str = ", ") -> Extract:
    """A metadata list, joined -> another metadata list, joined (or the answer)."""

    def extract(it: dict) -> Pair:
        meta = it["metadata"]
        output = sep.join(map(str, meta[out])) if out else it["answer"]
        return sep.join(map(str, meta[name])), output

    return extract


def regex(pattern: str, template: str = "{}") -> Extract:
    """The groups of `pattern` in the question, filled into `template` -> the answer. A
    question it does not match is a ValueError: a changed template fails loudly instead of
    leaking its prose."""
    compiled = re.compile(pattern, re.DOTALL)

    def extract(it: dict) -> Pair:
        match = compiled.search(it["question"])
        if match is None:
            raise ValueError(f"question does not match {pattern!r}: {it['question'][:200]!r}")
        return template.format(*match.groups()), it["answer"]

    return extract


def when(name: str, value: str, extract: Extract) -> Extract:
    """Only items whose metadata `name` is `value`: one rule of a generator that mixes them."""
    return lambda it: extract(it) if it["metadata"][name] == value else None


def fill(template: str, *names: str) -> Extract:
    """Metadata fields filled into `template` -> the answer."""
    return lambda it: (template.format(*(it["metadata"][n] for n in names)), it["answer"])


def letter_count(it: dict) -> Pair:
    meta = it["metadata"]
    return f"{meta['target_letter']}: {' '.join(meta['span'])}", it["answer"]


def filtering(it: dict) -> Pair:
    m = it["metadata"]
    return f"{m['filter_value']} | {', '.join(m['original_numbers'])}", ", ".join(m["result"])


def family(it: dict) -> Pair:
    """The story, then one fixed question (the generator rotates three phrasings of it)."""
    m = it["metadata"]
    story, sep, _ = it["question"].partition("\n\n")
    if not sep:
        raise ValueError(f"family question has no story paragraph: {it['question'][:200]!r}")
    return f"{story}\nWhat is {m['person1']} to {m['person2']}?", it["answer"]


def polygon(it: dict) -> Pair:
    m = it["metadata"]
    angles = ", ".join(f"{a:g}" for a in m["known_angles"])
    return f"{m['n_sides']} sides: {angles}", it["answer"]


def matrix(it: dict) -> Pair:
    rows = it["metadata"]["matrix"]
    return "\n".join(" ".join(map(str, row)) for row in rows), it["answer"]


SYLLOGISM = regex(r"1\. (.+?)\n2\. (.+?)\n\n.+?that:\n(.+?\?)\n", "{}. {}. Therefore: {}")
# The item's own observations, then the test case: its answer follows from them alone.
ACRE = regex(r"results:\n(.+)\n\nNew test case:\n(.+)\n\nWhat is the", "{}\n{} → ?")
CUBE = regex(r"^(.+)\nProvide only the color as your final answer\.$")
