"""Token-exact rendering of `demonstrations + query`, with the spans training needs.

Every piece is tokenised on its own (seeing at most the fixed template text that follows
it) and the ids are concatenated, never re-tokenised as one string. So a demonstration has
the same ids wherever it appears, the demo block of
`render(demos, q1)` and `render(demos, q2)` is the same token prefix, and finetune trains on
exactly the ids that serve hands the engine. Boundary rule: a space that ends a template
literal right before a field moves into the field's piece (" {input}" tokenises as " word",
as byte-level BPE would in running text), and a piece ending in whitespace is tokenised with
the literal that follows it (see `fill`). So for the presets the pieces are also what the
tokenizer produces on the joined text (`is_canonical`).
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

from manyicl.prompting.formats import PromptFormat
from manyicl.prompting.tokenizer import Tokenizer
from manyicl.prompting.types import DemoSet, Example


@dataclass(frozen=True)
class TokenizedExample:
    """One demonstration's ids: the context (input part) and the answer (supervised part)."""

    context: tuple[int, ...]
    answer: tuple[int, ...]

    def __len__(self) -> int:
        return len(self.context) + len(self.answer)


@dataclass(frozen=True)
class ExampleSpan:
    """Where one demonstration sits in a rendered prompt: [start, answer_start) is its context,
    [answer_start, end) its answer."""

    start: int
    answer_start: int
    end: int


@dataclass(frozen=True)
class RenderedPrompt:
    """Token ids plus the segment metadata the loss and the server need."""

    token_ids: list[int]
    header_len: int  # special prefix + header or instruction
    examples: tuple[ExampleSpan, ...]
    pad_len: int = 0  # filler tokens between the header and the first demonstration

    @property
    def demo_block_end(self) -> int:
        """Length of the shared prefix: header, filler and every demonstration."""
        return self.examples[-1].end if self.examples else self.header_len

    @property
    def answer_spans(self) -> list[tuple[int, int]]:
        return [(e.answer_start, e.end) for e in self.examples]

    @property
    def num_shots(self) -> int:
        return len(self.examples)


def fill(template: str, tok: Tokenizer, follower: str = "", **values: str) -> list[int]:
    """Ids of `template` with its fields filled, each literal and each value tokenised apart.

    `follower` is the template text that will come next. Byte-level BPE splits a whitespace
    run before its last character when text follows ("\n\nInput" -> "\n", "\n", "Input"), so
    a piece that ends in whitespace is tokenised together with its follower, whose ids are then
    cut off again: the piece gets the ids it has in running text.
    """
    pieces: list[tuple[str, bool]] = []  # (text, is user content)
    for literal, field, _, _ in string.Formatter().parse(template):
        value = None if field is None else values[field]
        if value is not None and literal.endswith(" "):
            literal, value = literal[:-1], " " + value
        pieces += [(literal, False)] if literal else []
        pieces += [(value, True)] if value else []
    ids: list[int] = []
    for i, (text, is_content) in enumerate(pieces):
        encode = tok.encode_text if is_content else tok.encode_template
        if i == len(pieces) - 1 and follower and text[-1:].isspace():
            ids += _encode_before(encode, tok, text, follower)
        else:
            ids += encode(text)
    return ids


def _encode_before(encode, tok: Tokenizer, text: str, follower: str) -> list[int]:
    joined, tail = encode(text + follower), tok.encode_template(follower)
    if len(joined) > len(tail) and joined[-len(tail) :] == tail:
        return joined[: -len(tail)]
    return encode(text)  # the follower merged into the piece: no clean cut exists


def leading_literal(template: str) -> str:
    """The template text before its first field (without a space the field will take)."""
    literal = next(string.Formatter().parse(template))[0]
    return literal[:-1] if literal.endswith(" ") else literal


def tokenize_header(fmt: PromptFormat, tok: Tokenizer, instruction: str | None) -> list[int]:
    """Ids that open every prompt of a demo set: special prefix, then header or instruction."""
    ids = list(tok.special_prefix) if fmt.add_special_prefix else []
    follower = leading_literal(fmt.input)
    if instruction is not None:
        return ids + fill(fmt.instruction, tok, follower, instruction=instruction)
    return ids + fill(fmt.header, tok, follower)


def tokenize_example(fmt: PromptFormat, tok: Tokenizer, example: Example) -> TokenizedExample:
    """A demonstration's context and answer ids."""
    return TokenizedExample(
        context=tuple(fill(fmt.input, tok, input=example.input)),
        answer=tuple(fill(fmt.output, tok, leading_literal(fmt.input), output=example.output)),
    )


def tokenize_query(fmt: PromptFormat, tok: Tokenizer, query: str) -> list[int]:
    """The query's ids: its context, which ends where the answer would begin."""
    return fill(fmt.input, tok, input=query)


@dataclass(frozen=True)
class BlockPadding:
    """Filler that ends a demo block on a multiple of `multiple` tokens (a KV-block boundary)."""

    multiple: int  # >= 1
    text: tuple[int, ...]  # the format's `pad`, tokenised (not empty)
    end: int  # the format's `pad_end`, one token

    def count(self, length: int) -> int:
        """Filler tokens in a demo block of `length` tokens without them."""
        return -length % self.multiple

    def tokens(self, k: int) -> list[int]:
        """k filler tokens: the text's first k - 1 (repeated as needed), then the end."""
        if k == 0:
            return []
        repeats = (k - 1) // len(self.text) + 1
        return [*(self.text * repeats)[: k - 1], self.end]

    @property
    def reserve(self) -> int:
        """The most filler a demo block can need: keep it free when fitting shots."""
        return self.multiple - 1


def block_padding(
    fmt: PromptFormat, tok: Tokenizer, block_size: int | None = None
) -> BlockPadding | None:
    """The format's padding (None when `fmt.align` is 0). With an engine's `block_size` that
    does not divide `fmt.align`, the multiple is their least common multiple, so the block
    still ends on the engine's boundary (training never padded that far: the server logs it)."""
    if not fmt.align:
        return None
    end = tok.encode_template(fmt.pad_end)
    if len(end) != 1:
        raise ValueError(
            f"format {fmt.name!r}: pad_end {fmt.pad_end!r} must be exactly one token, "
            f"got {len(end)}"
        )
    return BlockPadding(
        math.lcm(fmt.align, block_size or 1), tuple(tok.encode_template(fmt.pad)), end[0]
    )


def assemble(
    header: Sequence[int],
    examples: Sequence[TokenizedExample],
    query: Sequence[int] | None = None,
    padding: BlockPadding | None = None,
) -> RenderedPrompt:
    """Concatenate pre-tokenised pieces and record the spans. With `padding` and at least one
    demonstration, filler between the header and the first demonstration ends the demo block
    on a block boundary."""
    block = len(header) + sum(len(ex) for ex in examples)
    pad_len = padding.count(block) if padding and examples else 0
    ids = list(header) + (padding.tokens(pad_len) if padding else [])
    spans = []
    for ex in examples:
        start = len(ids)
        ids += ex.context
        answer_start = len(ids)
        ids += ex.answer
        spans.append(ExampleSpan(start, answer_start, len(ids)))
    if query is not None:
        ids += query
    return RenderedPrompt(ids, len(header), tuple(spans), pad_len)


def render(
    fmt: PromptFormat,
    tok: Tokenizer,
    demos: DemoSet | Sequence[Example],
    query: str | None = None,
    block_size: int | None = None,
) -> RenderedPrompt:
    """Render `demos` (all of them, in order), the format's padding and optionally a query to
    ids with spans, as a server with KV blocks of `block_size` does."""
    instruction = demos.instruction if isinstance(demos, DemoSet) else None
    examples = demos.examples if isinstance(demos, DemoSet) else demos
    return assemble(
        tokenize_header(fmt, tok, instruction),
        [tokenize_example(fmt, tok, ex) for ex in examples],
        None if query is None else tokenize_query(fmt, tok, query),
        block_padding(fmt, tok, block_size),
    )


def is_canonical(tok: Tokenizer, ids: Sequence[int]) -> bool:
    """True when tokenising the decoded text gives `ids` back: a client that sends the prompt
    as a string then gets the same tokens as one that sends the ids."""
    return tok.encode_template(tok.decode(list(ids))) == list(ids)
