"""Demonstration sets, prompt formats as data, and token-exact rendering of demos + query."""

from manyicl.prompting.budget import ContextOverflow, ShotPlan, ShotPolicy, plan_shots, shot_order
from manyicl.prompting.formats import PLAIN, PromptFormat, chat_format, get_format
from manyicl.prompting.hashing import demo_set_id, routing_key
from manyicl.prompting.render import (
    BlockPadding,
    ExampleSpan,
    RenderedPrompt,
    TokenizedExample,
    assemble,
    block_padding,
    fill,
    is_canonical,
    render,
    tokenize_example,
    tokenize_header,
    tokenize_query,
)
from manyicl.prompting.tokenizer import HFTokenizer, Tokenizer
from manyicl.prompting.types import DemoSet, Example

__all__ = [
    "PLAIN",
    "BlockPadding",
    "ContextOverflow",
    "DemoSet",
    "Example",
    "ExampleSpan",
    "HFTokenizer",
    "PromptFormat",
    "RenderedPrompt",
    "ShotPlan",
    "ShotPolicy",
    "TokenizedExample",
    "Tokenizer",
    "assemble",
    "block_padding",
    "chat_format",
    "demo_set_id",
    "fill",
    "get_format",
    "is_canonical",
    "plan_shots",
    "render",
    "routing_key",
    "shot_order",
    "tokenize_example",
    "tokenize_header",
    "tokenize_query",
]
