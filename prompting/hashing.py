"""Content ids for demo sets: the same demonstrations, format and tokenizer give the same id.

The id names the demo block's token ids, so it serves as the registry key on the server and
as the cache key everywhere a rendered block is reused. `routing_key` names the content alone,
so a client can compute it before its first request and route every request of an inline set
to the replica that holds its block (the `X-Session-ID` header of a consistent-hash router).
"""

from __future__ import annotations

import hashlib
import json

from manyicl.prompting.formats import PromptFormat
from manyicl.prompting.types import DemoSet


def demo_set_id(demos: DemoSet, fmt: PromptFormat, tokenizer_fingerprint: str) -> str:
    """`ds-` + 24 hex digits of SHA-256 over a canonical JSON of what determines the ids.

    The set's display name is left out: renaming a set does not change its tokens. So is the
    filler of a format that does not align (ids from before alignment existed stay valid).
    """
    unused = {"align", "pad", "pad_end"} if not fmt.align else set()
    extra = {
        "format": fmt.model_dump(exclude={"name", *unused}),
        "tokenizer": tokenizer_fingerprint,
    }
    return "ds-" + _digest(demos, extra)


def routing_key(demos: DemoSet) -> str:
    """`dk-` + 24 hex digits of SHA-256 over the demonstrations and instruction alone: what a
    client can compute without the server's tokenizer or format."""
    return "dk-" + _digest(demos, {})


def _digest(demos: DemoSet, extra: dict) -> str:
    """24 hex digits of SHA-256 over a canonical JSON of the set's content and `extra`."""
    payload = {
        "examples": [[ex.input, ex.output] for ex in demos.examples],
        "instruction": demos.instruction,
        **extra,
    }
    blob = json.dumps(payload, sort_keys=True, ensure_ascii=False, separators=(",", ":"))
    return hashlib.sha256(blob.encode()).hexdigest()[:24]
