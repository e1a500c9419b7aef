"""The tokenizer interface the renderer needs, and its Hugging Face implementation.

Rendering tokenises template text and user content separately: template text may name special
tokens (`<|im_start|>`), user content never does, so a demonstration that contains the string
"<|im_end|>" cannot end a chat turn early.
"""

from __future__ import annotations

import hashlib
from typing import Any, Protocol


class Tokenizer(Protocol):
    """What `prompting` needs from a tokenizer."""

    fingerprint: str  # identifies the vocabulary and rules: part of every demo-set id
    special_prefix: tuple[int, ...]  # tokens the tokenizer puts at a sequence start (BOS), if any

    def encode_template(self, text: str) -> list[int]:
        """Token ids of format text; special-token strings become special tokens."""
        ...

    def encode_text(self, text: str) -> list[int]:
        """Token ids of user content; special-token strings stay plain text."""
        ...

    def decode(self, ids: list[int]) -> str:
        """Text of `ids`, special tokens included."""
        ...


class HFTokenizer:
    """A `Tokenizer` over a Hugging Face (fast) tokenizer."""

    def __init__(self, hf: Any):
        self.hf = hf
        self._template_cache: dict[str, list[int]] = {}
        backend = getattr(hf, "backend_tokenizer", None)
        state = backend.to_str() if backend is not None else repr(sorted(hf.get_vocab().items()))
        self.fingerprint = hashlib.sha256(state.encode()).hexdigest()[:16]
        self.special_prefix = self._find_special_prefix()
        self._check_segmentation()

    @classmethod
    def from_pretrained(cls, name_or_path: str) -> HFTokenizer:
        """Load with `AutoTokenizer.from_pretrained`."""
        from transformers import AutoTokenizer

        return cls(AutoTokenizer.from_pretrained(name_or_path))

    @property
    def eos_id(self) -> int | None:
        return self.hf.eos_token_id

    def encode_template(self, text: str) -> list[int]:
        if (ids := self._template_cache.get(text)) is None:
            ids = self.hf.encode(text, add_special_tokens=False)
            self._template_cache[text] = ids
        return list(ids)

    def encode_text(self, text: str) -> list[int]:
        return self.hf.encode(text, add_special_tokens=False, split_special_tokens=True)

    def decode(self, ids: list[int]) -> str:
        return self.hf.decode(list(ids), skip_special_tokens=False)

    def _find_special_prefix(self) -> tuple[int, ...]:
        bare = self.hf.encode("a", add_special_tokens=False)
        full = self.hf.encode("a", add_special_tokens=True)
        n = len(bare)
        for start in range(len(full) - n + 1):
            if full[start : start + n] == bare:
                return tuple(full[:start])
        return ()

    def _check_segmentation(self) -> None:
        # SentencePiece-style tokenizers with a dummy prefix would put a space before every
        # separately tokenised segment; rendering by segment would then corrupt the text.
        joined = self.decode(self.encode_text("a") + self.encode_text("b"))
        if joined != "ab":
            raise ValueError(
                f"tokenizer inserts text between separately encoded segments ('a'+'b' -> "
                f"{joined!r}); segment-wise rendering is not supported for it"
            )
