"""POST /v1/responses through the official `openai` client: the answer equals chat's, streamed
equals non-streamed at temperature 0, cached tokens are reported, and what a text-only server
that stores nothing cannot do is a 400 naming the field."""

from __future__ import annotations

import openai
import pytest

pytestmark = pytest.mark.slow

DEMOS = [{"input": "cat", "output": "cats"}, {"input": "box", "output": "boxes"}]
MANY_SHOT = {"demonstrations": DEMOS * 8}  # a demo block long enough to fill a cached block


def test_streamed_text_equals_the_response_and_reports_cached_tokens(client):
    args = dict(model="manyicl", input="dog", temperature=0, max_output_tokens=6)
    full = client.responses.create(**args, extra_body=MANY_SHOT)
    assert full.status in ("completed", "incomplete") and full.output_text
    assert full.usage.input_tokens > 0 and full.usage.output_tokens > 0
    events = list(client.responses.create(**args, stream=True, extra_body=MANY_SHOT))
    kinds = [e.type for e in events]
    assert kinds[:4] == [
        "response.created",
        "response.in_progress",
        "response.output_item.added",
        "response.content_part.added",
    ]
    assert kinds[-1] in ("response.completed", "response.incomplete")
    assert [e.sequence_number for e in events] == list(range(len(events)))
    deltas = "".join(e.delta for e in events if e.type == "response.output_text.delta")
    assert deltas == full.output_text
    final = events[-1].response
    assert final.output_text == full.output_text
    assert final.usage.input_tokens_details.cached_tokens > 0  # the block was cached by `full`


def test_input_messages_and_instructions_answer_as_chat_does(client):
    turns = [
        {"role": "user", "content": "cat"},
        {"role": "assistant", "content": "cats"},
        {"role": "user", "content": [{"type": "input_text", "text": "dog"}]},
    ]
    resp = client.responses.create(
        model="manyicl",
        instructions="Pluralise the word.",
        input=turns,
        temperature=0,
        max_output_tokens=5,
    )
    chat = client.chat.completions.create(
        model="manyicl",
        messages=[
            {"role": "system", "content": "Pluralise the word."},
            {"role": "user", "content": "cat"},
            {"role": "assistant", "content": "cats"},
            {"role": "user", "content": "dog"},
        ],
        temperature=0,
        max_completion_tokens=5,
    )
    assert resp.output_text == chat.choices[0].message.content
    assert resp.instructions == "Pluralise the word." and resp.store is False


def test_a_cut_answer_is_incomplete(client):
    resp = client.responses.create(
        model="manyicl",
        input="Tell me a long story.",
        max_output_tokens=1,
        temperature=0,
        extra_body={"ignore_eos": True},
    )
    assert resp.status == "incomplete"
    assert resp.incomplete_details.reason == "max_output_tokens"
    assert resp.usage.output_tokens == 1


@pytest.mark.parametrize(
    "extra,param",
    [
        ({"tools": [{"type": "function", "name": "f", "parameters": {}}]}, "tools"),
        ({"previous_response_id": "resp_1"}, "previous_response_id"),
        ({"store": True}, "store"),
        ({"background": True}, "background"),
        ({"reasoning": {"effort": "low"}}, "reasoning"),
        ({"include": ["message.output_text.logprobs"]}, "include"),
        ({"text": {"format": {"type": "json_object"}}}, "text.format.type"),
        ({"input": [{"role": "tool", "content": "x"}]}, "input.0.role"),
        (
            {"input": [{"role": "user", "content": [{"type": "input_image", "image_url": "x"}]}]},
            "input.0.content.0.type",
        ),
        ({"input": []}, "input"),
        ({"colour": "red"}, "colour"),
    ],
)
def test_what_cannot_be_honoured_is_a_400_naming_the_field(client, extra, param):
    body = {"input": "dog", **extra}
    with pytest.raises(openai.BadRequestError) as e:
        client.responses.create(model="manyicl", extra_body=body)
    assert e.value.body["param"] == param, e.value.body
