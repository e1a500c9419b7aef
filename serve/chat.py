"""Chat completions on the completion path: a chat request is the many-shot completion request it
stands for, and that completion's answer comes back in the chat shape.

    system / developer messages (first)      -> the instruction, rendered before the demos
    user/assistant pairs before the last user -> demonstrations after the request's own
    the last user message                    -> the query

So a conversation's earlier turns are more shots, rendered token for token as in training, and
a demo set's block stays a cached prefix whatever follows it. The answer's text starts after
the format's answer prefix (the plain format's space after "Output:"), as the format's answer
field does.
"""

from __future__ import annotations

import json
from collections.abc import AsyncIterator

from manyicl.prompting import Example
from manyicl.serve.chat_protocol import (
    AssistantMessage,
    ChatChoice,
    ChatCompletionChunk,
    ChatCompletionRequest,
    ChatCompletionResponse,
    ChatLogprobs,
    ChunkChoice,
    Delta,
    TokenLogprob,
    TopLogprob,
)
from manyicl.serve.errors import bad_request
from manyicl.serve.protocol import (
    CompletionFields,
    CompletionLogprobs,
    CompletionRequest,
    CompletionResponse,
    ManyShotFields,
    VLLMFields,
)
from manyicl.serve.registry import DemoSetRegistry

# What a chat request hands on as it is: the OpenAI fields both endpoints have, and every
# extension. The rest (messages, logprobs, max_completion_tokens, ...) is translated below.
_SHARED = set(CompletionFields.model_fields) & set(ChatCompletionRequest.model_fields)
_EXTENSIONS = set(ManyShotFields.model_fields) | set(VLLMFields.model_fields)


def as_completion(req: ChatCompletionRequest, registry: DemoSetRegistry) -> CompletionRequest:
    """The completion request a chat request stands for; 400 for what chat cannot mean here."""
    if req.tools or req.tool_choice not in (None, "none"):
        raise bad_request("tool calls are not supported", "tools")
    system, pairs, query = split_messages(req.messages)
    if system and (req.instruction is not None or req.demo_set is not None):
        raise bad_request(
            "a system message is the instruction: give it, or `instruction`, and not with a "
            "registered demo_set (it carries its own)",
            "messages",
        )
    # by_alias: fields such as structured_outputs.json and json_schema.schema are named by
    # their aliases on the way back in.
    fields = req.model_dump(include=_SHARED | _EXTENSIONS, exclude_unset=True, by_alias=True)
    demos = [Example(input=u, output=a) for u, a in pairs]
    if req.demo_set is not None and demos:  # the set's block, then the turns: still a prefix
        entry = registry.get(req.demo_set)
        if entry is None:
            raise bad_request(f"demo set {req.demo_set!r} is not registered", "demo_set")
        fields.pop("demo_set")
        fields["instruction"] = entry.demos.instruction
        fields["demonstrations"] = [*entry.demos.examples, *demos]
    elif req.demo_set is None:
        fields["demonstrations"] = [*(req.demonstrations or []), *demos]
        fields["instruction"] = "\n\n".join(system) or req.instruction
    max_tokens = req.max_completion_tokens or req.max_tokens
    logprobs = (req.top_logprobs or 0) if req.logprobs else None
    return CompletionRequest.model_validate(
        {**fields, "prompt": query, "max_tokens": max_tokens, "logprobs": logprobs},
        strict=False,
    )


def split_messages(messages) -> tuple[list[str], list[tuple[str, str]], str]:
    """(system texts, earlier (user, assistant) pairs, the last user message's text)."""
    system = []
    while messages and messages[0].role in ("system", "developer"):
        system.append(messages[0].text)
        messages = messages[1:]
    roles = [m.role for m in messages]
    if not roles or roles[-1] != "user":
        raise bad_request("the last message must be the user's query", "messages")
    if roles != ["user", "assistant"] * (len(roles) // 2) + ["user"]:
        raise bad_request(
            "after the system messages, user and assistant turns must alternate, starting and "
            "ending with user",
            "messages",
        )
    texts = [m.text for m in messages]
    return system, list(zip(texts[:-1:2], texts[1:-1:2], strict=True)), texts[-1]


def chat_logprobs(lp: CompletionLogprobs | None) -> ChatLogprobs | None:
    if lp is None:
        return None
    content = []
    for token, logprob, top in zip(lp.tokens, lp.token_logprobs, lp.top_logprobs, strict=True):
        alternatives = [
            TopLogprob(token=t, logprob=v, bytes=list(t.encode())) for t, v in top.items()
        ]
        content.append(
            TokenLogprob(
                token=token,
                logprob=logprob or 0.0,
                bytes=list(token.encode()),
                top_logprobs=alternatives,
            )
        )
    return ChatLogprobs(content=content)


def chat_response(resp: CompletionResponse, prefix: str) -> ChatCompletionResponse:
    choices = [
        ChatChoice(
            index=c.index,
            message=AssistantMessage(content=c.text.removeprefix(prefix)),
            logprobs=chat_logprobs(c.logprobs),
            finish_reason=c.finish_reason,
        )
        for c in resp.choices
    ]
    return ChatCompletionResponse(
        id="chat" + resp.id,
        model=resp.model,
        choices=choices,
        usage=resp.usage,
        manyicl=resp.manyicl,
    )


async def chat_stream(events: AsyncIterator[str], prefix: str) -> AsyncIterator[str]:
    """A completion's SSE stream as chat chunks: the first delta of each choice carries the
    role, and the answer prefix is cut from the start of each choice's text."""
    pending: dict[int, str] = {}  # per choice: what is left of the prefix to cut
    async for event in events:
        payload = event.removeprefix("data: ").strip()
        if payload == "[DONE]" or payload.startswith('{"error"'):
            yield event
            continue
        chunk = CompletionResponse.model_validate(json.loads(payload))
        choices = []
        for c in chunk.choices:
            first = c.index not in pending
            cut = pending.setdefault(c.index, prefix)
            text = c.text
            while cut and text and text[0] == cut[0]:
                cut, text = cut[1:], text[1:]
            pending[c.index] = cut if not text else ""
            delta = Delta(role="assistant" if first else None, content=text)
            choices.append(
                ChunkChoice(
                    index=c.index,
                    delta=delta,
                    logprobs=chat_logprobs(c.logprobs),
                    finish_reason=c.finish_reason,
                )
            )
        out = ChatCompletionChunk(
            id="chat" + chunk.id,
            model=chunk.model,
            choices=choices,
            usage=chunk.usage,
            manyicl=chunk.manyicl,
        )
        yield f"data: {out.model_dump_json()}\n\n"
