"""A character-level tokenizer for hand-checkable tests: one id per character (its code point),
and a few special tokens with ids from 1000 up that only template text can produce."""

from __future__ import annotations

import re

SPECIALS = {"<s>": 1000, "<u>": 1001, "<a>": 1002, "<e>": 1003}
BOS = SPECIALS["<s>"]


class CharTokenizer:
    """Implements `manyicl.prompting.Tokenizer`; records the pieces it was asked to encode."""

    fingerprint = "char-v1"

    def __init__(self, bos: bool = True):
        self.special_prefix = (BOS,) if bos else ()
        self.calls: list[tuple[str, str]] = []

    def encode_template(self, text: str) -> list[int]:
        self.calls.append(("template", text))
        ids: list[int] = []
        for piece in re.split("(" + "|".join(map(re.escape, SPECIALS)) + ")", text):
            ids += [SPECIALS[piece]] if piece in SPECIALS else [ord(c) for c in piece]
        return ids

    def encode_text(self, text: str) -> list[int]:
        self.calls.append(("text", text))
        return [ord(c) for c in text]

    def decode(self, ids: list[int]) -> str:
        names = {v: k for k, v in SPECIALS.items()}
        return "".join(names.get(i, chr(i) if i < 1000 else "?") for i in ids)


def ids(text: str, bos: bool = False) -> list[int]:
    """Expected ids of plain text (no specials) for hand-written tables."""
    return ([BOS] if bos else []) + [ord(c) for c in text]
