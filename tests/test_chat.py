"""Chat completions: messages -> the many-shot completion they stand for (pure, hand-built
cases), and the real endpoint through the official openai client."""

from __future__ import annotations

import asyncio
import json

import pytest

from manyicl.prompting import PLAIN, DemoSet, Example
from manyicl.serve.chat import as_completion, chat_stream, split_messages
from manyicl.serve.chat_protocol import ChatCompletionRequest
from manyicl.serve.errors import APIError
from manyicl.serve.registry import DemoSetRegistry

from chartok import CharTokenizer


def _req(messages, **extra):
    msgs = [{"role": r, "content": c} for r, c in messages]
    return ChatCompletionRequest.model_validate({"model": "m", "messages": msgs, **extra})


# messages -> (system texts, earlier pairs, query)
SPLIT = [
    ([("user", "q")], ([], [], "q")),
    ([("system", "Be brief."), ("user", "q")], (["Be brief."], [], "q")),
    ([("user", "a"), ("assistant", "A"), ("user", "q")], ([], [("a", "A")], "q")),
    (
        [("developer", "d"), ("system", "s"), ("user", "a"), ("assistant", "A"), ("user", "q")],
        (["d", "s"], [("a", "A")], "q"),
    ),
]


@pytest.mark.parametrize("messages,want", SPLIT)
def test_split_messages_table(messages, want):
    assert split_messages(_req(messages).messages) == want


@pytest.mark.parametrize(
    "messages",
    [
        [("assistant", "A")],
        [("user", "a"), ("assistant", "A")],
        [("user", "a"), ("user", "b")],
        [("user", "a"), ("system", "late"), ("user", "q")],
    ],
)
def test_messages_that_are_no_many_shot_query_are_refused(messages):
    with pytest.raises(APIError, match=r"query|alternate"):
        split_messages(_req(messages).messages)


def test_turns_become_demonstrations_after_the_requests_own(tmp_path):
    registry = DemoSetRegistry(tmp_path, PLAIN, CharTokenizer())
    req = _req(
        [("system", "Pluralise."), ("user", "box"), ("assistant", "boxes"), ("user", "mouse")],
        demonstrations=[{"input": "cat", "output": "cats"}],
        max_completion_tokens=4,
        logprobs=True,
        top_logprobs=2,
        temperature=0,
        top_k=5,
    )
    c = as_completion(req, registry)
    assert c.prompt == "mouse" and c.instruction == "Pluralise."
    assert [d.input for d in c.demonstrations] == ["cat", "box"]
    assert (c.max_tokens, c.logprobs, c.temperature, c.top_k) == (4, 2, 0.0, 5)
    # A registered set keeps its block first; the conversation's turns follow it.
    entry, _ = registry.add(DemoSet(examples=[Example(input="ox", output="oxen")]))
    c = as_completion(
        _req([("user", "box"), ("assistant", "boxes"), ("user", "q")], demo_set=entry.id), registry
    )
    assert [d.input for d in c.demonstrations] == ["ox", "box"] and c.demo_set is None
    zero = as_completion(_req([("user", "q")]), registry)
    assert zero.demonstrations == [] and zero.max_tokens is None
    with pytest.raises(APIError, match="tool"):
        as_completion(_req([("user", "q")], tools=[{"type": "function"}]), registry)
    with pytest.raises(APIError, match="system message"):
        as_completion(_req([("system", "s"), ("user", "q")], demo_set=entry.id), registry)


# Fields whose wire names are aliases (`json`, `schema`) must survive the translation.
ALIASED = [
    {"structured_outputs": {"json": {"type": "object"}}},
    {"structured_outputs": {"json_object": True, "json": {"a": 1}, "grammar": "g"}},
    {"response_format": {"type": "json_schema", "json_schema": {"name": "n", "schema": {}}}},
]


@pytest.mark.parametrize("extra", ALIASED)
def test_aliased_fields_pass_from_chat_to_completion(tmp_path, extra):
    registry = DemoSetRegistry(tmp_path, PLAIN, CharTokenizer())
    c = as_completion(_req([("user", "q")], **extra), registry)
    key = next(iter(extra))
    assert getattr(c, key).model_dump(by_alias=True, exclude_unset=True) == extra[key]


@pytest.mark.parametrize("pieces", [[" ", "mi", "ce"], [" mi", "ce"], ["", " m", "ice"]])
def test_the_stream_carries_the_role_first_and_cuts_the_answer_prefix(pieces):
    assert PLAIN.answer_prefix == " "

    async def events():
        for i, text in enumerate(pieces):
            finish = "stop" if i == len(pieces) - 1 else None
            chunk = {
                "id": "cmpl-1",
                "model": "m",
                "object": "text_completion",
                "created": 1,
                "choices": [{"index": 0, "text": text, "finish_reason": finish}],
            }
            yield f"data: {json.dumps(chunk)}\n\n"
        yield "data: [DONE]\n\n"

    async def collect():
        return [e async for e in chat_stream(events(), " ")]

    out = asyncio.run(collect())
    chunks = [json.loads(e[6:]) for e in out[:-1]]
    assert chunks[0]["choices"][0]["delta"]["role"] == "assistant"
    assert all(c["choices"][0]["delta"].get("role") is None for c in chunks[1:])
    assert "".join(c["choices"][0]["delta"]["content"] for c in chunks) == "mice"
    assert chunks[-1]["choices"][0]["finish_reason"] == "stop" and out[-1] == "data: [DONE]\n\n"


DEMOS = [
    {"input": w, "output": p}
    for w, p in [
        ("cat", "cats"),
        ("child", "children"),
        ("box", "boxes"),
        ("goose", "geese"),
        ("city", "cities"),
        ("man", "men"),
    ]
]


@pytest.mark.slow
def test_chat_through_the_openai_client_matches_the_completion(client, http):
    messages = [{"role": "user", "content": "mouse"}]
    extra = {"demonstrations": DEMOS, "return_token_ids": True}
    chat = client.chat.completions.create(
        model="manyicl", messages=messages, max_tokens=8, temperature=0, extra_body=extra
    )
    done = http.post(
        "/v1/completions",
        json={
            "model": "manyicl",
            "prompt": "mouse",
            "max_tokens": 8,
            "temperature": 0,
            **extra,
        },
    ).json()
    assert chat.choices[0].message.content == done["choices"][0]["text"].removeprefix(" ")
    ids = chat.model_extra["manyicl"]["prompts"][0]["prompt_token_ids"]
    assert ids == done["manyicl"]["prompts"][0]["prompt_token_ids"]  # token-exact
    stream = client.chat.completions.create(
        model="manyicl",
        messages=messages,
        max_tokens=8,
        temperature=0,
        stream=True,
        stream_options={"include_usage": True},
        extra_body={"demonstrations": DEMOS},
    )
    chunks = list(stream)
    text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
    assert text == chat.choices[0].message.content
    assert chunks[0].choices[0].delta.role == "assistant"
    assert sum(1 for c in chunks if c.choices and c.choices[0].finish_reason) == 1
    assert chunks[-1].usage.completion_tokens == chat.usage.completion_tokens


@pytest.mark.slow
def test_chat_n_stop_logprobs_and_cached_tokens(client):
    many = DEMOS * 6  # a block over 128 tokens: whole KV blocks to cache
    kwargs = dict(
        model="manyicl",
        messages=[{"role": "user", "content": "mouse"}],
        max_tokens=6,
        extra_body={"demonstrations": many},
    )
    first = client.chat.completions.create(**kwargs, temperature=0, logprobs=True, top_logprobs=2)
    content = first.choices[0].logprobs.content
    assert content and all(len(t.top_logprobs) <= 3 and t.logprob <= 0 for t in content)
    again = client.chat.completions.create(**kwargs, n=2, temperature=1.0, seed=1, stop=["e"])
    assert len(again.choices) == 2 and all("e" not in c.message.content for c in again.choices)
    assert again.usage.prompt_tokens_details.cached_tokens >= 128


@pytest.mark.slow
def test_chat_errors_are_openai_errors(http):
    r = http.post(
        "/v1/chat/completions",
        json={"model": "manyicl", "messages": [{"role": "assistant", "content": "hi"}]},
    )
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
    r = http.post("/v1/chat/completions", json={"model": "manyicl", "messages": []})
    assert r.status_code == 400 and r.json()["error"]["param"] == "messages"
