"""Prompt formats as data: a few template strings, saved next to an adapter and read by the server.

A rendered prompt is
    [special prefix] header-or-instruction  [filler: k tokens]  (input_i output_i)*  input_query
where `output` templates are the supervised answers in training, and k filler tokens (at most
`align - 1`) end the demo block on a multiple of `align`. Presets: `plain`
(Input:/Output: lines) and `chat` (built from a tokenizer's own chat template).
"""

from __future__ import annotations

import json
import string
from collections.abc import Callable
from pathlib import Path
from typing import Any

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    NonNegativeInt,
    StrictBool,
    StrictStr,
    model_validator,
)

PREAMBLE = (
    "Solved examples of one task follow, each an input and its output; the last input is to be "
    "answered in the same way. "
)


class PromptFormat(BaseModel):
    """How demonstrations and a query become text; every field is plain data."""

    model_config = ConfigDict(frozen=True, extra="forbid")

    name: StrictStr
    header: StrictStr = ""  # rendered once at the start when the demo set has no instruction
    instruction: StrictStr = "{instruction}\n\n"  # replaces `header` when there is one
    input: StrictStr = "Input: {input}\nOutput:"  # each example's context; never supervised
    output: StrictStr = " {output}\n\n"  # each answer with its end-of-answer separator
    stop: list[StrictStr] = ["\n\n"]  # generation stops here: the end of an answer
    add_special_prefix: StrictBool = True  # start with the tokenizer's own BOS, if it has one
    # Filler between the header and the first demonstration, so the demo block ends on a
    # KV-block boundary and a warm request computes only its query (vLLM caches whole blocks).
    # 0: no filler. The presets use 128, a multiple of every block size vLLM uses (16 on GPUs,
    # 32-128 on CPUs). k filler tokens are the first k - 1 tokens of `pad` (repeated as needed)
    # and `pad_end` (one token). Natural text, because a run of one repeated token (newlines,
    # EOS) wrecked a 135M model's few-shot answers even at the start of the prompt.
    align: NonNegativeInt = 0
    pad: StrictStr = Field(default=PREAMBLE, min_length=1)
    pad_end: StrictStr = "\n\n"

    @model_validator(mode="after")
    def _check_fields(self) -> PromptFormat:
        for attr, field in [
            ("instruction", "instruction"),
            ("input", "input"),
            ("output", "output"),
        ]:
            found = template_fields(getattr(self, attr))
            if found != [field]:
                raise ValueError(
                    f"format {self.name!r}: template {attr!r} must contain {{{field}}} exactly "
                    f"once and no other field, found {found}"
                )
        if template_fields(self.header):
            raise ValueError(f"format {self.name!r}: header takes no fields")
        return self

    @property
    def answer_prefix(self) -> str:
        """The output template's text before the answer (the plain format's " "): generated
        by the model, not part of the answer itself."""
        return next(string.Formatter().parse(self.output))[0]

    def save(self, path: str | Path) -> None:
        """Write the format as JSON."""
        Path(path).write_text(self.model_dump_json(indent=2) + "\n")

    @classmethod
    def load(cls, path: str | Path) -> PromptFormat:
        """Read a format written by `save`."""
        return cls.model_validate(json.loads(Path(path).read_text()))


def template_fields(template: str) -> list[str]:
    """Names of the `{fields}` in a template, in order."""
    return [f for _, f, _, _ in string.Formatter().parse(template) if f is not None]


ALIGN = 128  # the presets' demo-block alignment (see `PromptFormat.align`)
PLAIN = PromptFormat(name="plain", align=ALIGN)

# Sentinels for reading a chat template's turn structure off its output.
_S_SYS, _S_IN, _S_OUT, _S_IN2 = "QQSYSTEMQQ", "QQINPUTQQ", "QQOUTPUTQQ", "QQINPUTTWOQQ"


def chat_format(hf_tokenizer: Any, name: str = "chat") -> PromptFormat:
    """A format that renders each demonstration as a user turn and an assistant turn.

    The tokenizer's Jinja chat template is rendered once on sentinel strings and cut into
    per-turn template strings, so the result is plain data like any other format.
    """

    def chat(messages: list[tuple[str, str]], gen: bool = False) -> str:
        msgs = [{"role": r, "content": c} for r, c in messages]
        return hf_tokenizer.apply_chat_template(msgs, tokenize=False, add_generation_prompt=gen)

    header, instruction, user_start, gen_prompt, turn_end = _template_pieces(chat)
    return PromptFormat(
        name=name,
        header=_escape(header),
        instruction=_escape(instruction, keep="{instruction}"),
        input=_escape(user_start) + "{input}" + _escape(gen_prompt),
        output="{output}" + _escape(turn_end),
        stop=[turn_end.strip() or turn_end],
        add_special_prefix=False,  # a chat template writes its own BOS text, if any
        align=ALIGN,
    )


def _template_pieces(chat: Callable[..., str]) -> tuple[str, str, str, str, str]:
    """(header, instruction, user-turn start, generation prompt, turn end) of a chat template,
    cut out of its renderings on sentinel strings; a ValueError where the template cannot be
    cut into per-turn pieces."""
    u1, a1, u2 = ("user", _S_IN), ("assistant", _S_OUT), ("user", _S_IN2)
    one = chat([u1], gen=True)
    two = chat([u1, a1])
    three = chat([u1, a1, u2], gen=True)
    with_system = chat([("system", _S_SYS), u1], gen=True)

    def fail(why: str) -> ValueError:
        return ValueError(f"chat template cannot be cut into per-turn templates: {why}")

    if not (two.startswith(one[: one.index(_S_IN)]) and three.startswith(two)):
        raise fail("later turns change the text of earlier ones")
    before_input = one[: one.index(_S_IN)]  # header + user-turn start
    gen_prompt = one[one.index(_S_IN) + len(_S_IN) :]  # user-turn end + assistant start
    if two[two.index(_S_IN) + len(_S_IN) : two.index(_S_OUT)] != gen_prompt:
        raise fail("the assistant-turn start differs from the generation prompt")
    turn_end = two[two.index(_S_OUT) + len(_S_OUT) :]
    user_start = three[len(two) : three.index(_S_IN2)]
    if not before_input.endswith(user_start):
        raise fail("the first user turn starts differently from later ones")
    header = before_input[: len(before_input) - len(user_start)]
    sys_part = with_system[: with_system.index(_S_IN)]
    if _S_SYS not in sys_part or not sys_part.endswith(user_start):
        raise fail("no system turn")
    instruction = sys_part[: len(sys_part) - len(user_start)].replace(_S_SYS, "{instruction}")
    return header, instruction, user_start, gen_prompt, turn_end


def _escape(text: str, keep: str | None = None) -> str:
    escaped = text.replace("{", "{{").replace("}", "}}")
    if keep:
        escaped = escaped.replace(keep.replace("{", "{{").replace("}", "}}"), keep)
    return escaped


def get_format(name: str, hf_tokenizer: Any | None = None) -> PromptFormat:
    """A preset by name: `plain`, or `chat` (needs the model's tokenizer)."""
    if name == "plain":
        return PLAIN
    if name == "chat":
        if hf_tokenizer is None or not getattr(hf_tokenizer, "chat_template", None):
            raise ValueError("the 'chat' format needs a tokenizer with a chat template")
        return chat_format(hf_tokenizer)
    raise ValueError(f"unknown prompt format {name!r}; choose 'plain' or 'chat', or a JSON file")
