"""The Responses API on the chat path: a Responses request is the chat request it stands for
(`instructions` is a system message, `input` the messages), and the chat answer comes back as
a Response object or as the Responses event stream:

    response.created, response.in_progress, response.output_item.added,
    response.content_part.added, response.output_text.delta (one per chunk),
    response.output_text.done, response.content_part.done, response.output_item.done,
    response.completed (or response.incomplete when max_output_tokens cut the answer)

Each event is an SSE `event:` + `data:` pair with a `sequence_number`; no `[DONE]` follows.
"""

from __future__ import annotations

import itertools
import json
import uuid
from collections.abc import AsyncIterator

from pydantic import ValidationError

from manyicl.serve.chat_protocol import ChatCompletionRequest, ChatCompletionResponse
from manyicl.serve.errors import bad_request, invalid
from manyicl.serve.protocol import ManyShotFields, RouterFields, Usage, VLLMFields
from manyicl.serve.responses_protocol import (
    IncompleteDetails,
    InputTokensDetails,
    OutputMessage,
    OutputText,
    ResponseObject,
    ResponsesRequest,
    ResponseUsage,
)

_EXTENSIONS = (
    set(ManyShotFields.model_fields) | set(VLLMFields.model_fields) | set(RouterFields.model_fields)
)
_SHARED = {"model", "temperature", "top_p", "stream", "user", "prompt_cache_key", "stop"}


def refusals(req: ResponsesRequest) -> list[tuple[str, bool, str]]:
    """(field, set in a way this server cannot honour, why)."""
    stored = "this server stores no responses or conversations"
    return [
        ("tools", bool(req.tools), "tool calls are not supported"),
        ("tool_choice", req.tool_choice not in (None, "none", "auto"), "no tools are served"),
        ("previous_response_id", req.previous_response_id is not None, stored),
        ("conversation", req.conversation is not None, stored),
        ("store", bool(req.store), stored + "; send store: false"),
        ("background", bool(req.background), "background responses need storage: " + stored),
        ("prompt", req.prompt is not None, "stored prompt templates need storage: " + stored),
        ("include", bool(req.include), "no extra output items are produced"),
        ("reasoning", req.reasoning is not None, "no reasoning model is served"),
        ("top_logprobs", bool(req.top_logprobs), "log-probabilities: use /v1/chat/completions"),
    ]


def as_chat(req: ResponsesRequest) -> ChatCompletionRequest:
    """The chat request a Responses request stands for; 400 for what it cannot mean here."""
    for field, refused, why in refusals(req):
        if refused:
            raise bad_request(f"{field} is not supported here: {why}", field)
    items = [{"role": "user", "content": req.input}] if isinstance(req.input, str) else []
    for m in [] if isinstance(req.input, str) else req.input:
        text = m.content if isinstance(m.content, str) else "".join(p.text for p in m.content)
        items.append({"role": m.role, "content": text})
    if req.instructions is not None:
        items.insert(0, {"role": "system", "content": req.instructions})
    if not items:
        raise bad_request("input must hold at least one message", "input")
    fields = req.model_dump(include=_SHARED | _EXTENSIONS, exclude_unset=True, by_alias=True)
    fields["messages"] = items
    fields["max_completion_tokens"] = req.max_output_tokens
    if req.stream:  # the final event carries usage
        fields["stream_options"] = {"include_usage": True}
    try:
        return ChatCompletionRequest.model_validate(fields, strict=False)
    except ValidationError as e:
        raise invalid(e) from None


def _usage(usage: Usage | None) -> ResponseUsage | None:
    if usage is None:
        return None
    return ResponseUsage(
        input_tokens=usage.prompt_tokens,
        input_tokens_details=InputTokensDetails(
            cached_tokens=usage.prompt_tokens_details.cached_tokens
        ),
        output_tokens=usage.completion_tokens,
        total_tokens=usage.total_tokens,
    )


def _shell(req: ResponsesRequest, rid: str, status: str, **fields) -> ResponseObject:
    """The Response object's echo of the request, with the given status and fields."""
    return ResponseObject(
        id=rid,
        status=status,
        instructions=req.instructions,
        max_output_tokens=req.max_output_tokens,
        metadata=req.metadata or {},
        model=req.model,
        prompt_cache_key=req.prompt_cache_key,
        temperature=req.temperature,
        top_p=req.top_p,
        truncation=req.truncation or "disabled",
        user=req.user,
        **fields,
    )


def _finished(req, rid: str, item_id: str, text: str, finish: str | None, usage, info):
    status = "incomplete" if finish == "length" else "completed"
    message = OutputMessage(id=item_id, status=status, content=[OutputText(text=text)])
    details = IncompleteDetails(reason="max_output_tokens") if status == "incomplete" else None
    return _shell(
        req,
        rid,
        status,
        output=[message],
        incomplete_details=details,
        usage=_usage(usage),
        manyicl=info,
    )


def response_object(req: ResponsesRequest, chat: ChatCompletionResponse) -> ResponseObject:
    (choice,) = chat.choices
    rid, item = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
    text = choice.message.content or ""
    return _finished(req, rid, item, text, choice.finish_reason, chat.usage, chat.manyicl)


async def response_events(req: ResponsesRequest, chat: AsyncIterator[str]) -> AsyncIterator[str]:
    """A chat SSE stream (one choice) as the Responses event stream."""
    rid, item = f"resp_{uuid.uuid4().hex}", f"msg_{uuid.uuid4().hex}"
    seq = itertools.count()
    where = {"item_id": item, "output_index": 0, "content_index": 0}

    def event(kind: str, **body) -> str:
        data = json.dumps({"type": kind, "sequence_number": next(seq), **body})
        return f"event: {kind}\ndata: {data}\n\n"

    started = _shell(req, rid, "in_progress").model_dump(mode="json")
    yield event("response.created", response=started)
    yield event("response.in_progress", response=started)
    item_open = OutputMessage(id=item, status="in_progress").model_dump(mode="json")
    yield event("response.output_item.added", output_index=0, item=item_open)
    empty = OutputText(text="").model_dump(mode="json")
    yield event("response.content_part.added", part=empty, **where)
    text, finish, usage, info = "", None, None, None
    async for line in chat:
        payload = line.removeprefix("data: ").strip()
        if payload == "[DONE]":
            continue
        chunk = json.loads(payload)
        if "error" in chunk:
            err = chunk["error"]
            yield event("error", code=err.get("code"), message=err["message"], param=err["param"])
            return
        usage, info = chunk.get("usage") or usage, chunk.get("manyicl") or info
        for c in chunk["choices"]:
            delta = c["delta"].get("content") or ""
            finish = c["finish_reason"] or finish
            if delta:
                text += delta
                yield event("response.output_text.delta", delta=delta, logprobs=[], **where)
    yield event("response.output_text.done", text=text, logprobs=[], **where)
    yield event("response.content_part.done", part=OutputText(text=text).model_dump(), **where)
    usage = Usage.model_validate(usage) if usage else None
    done = _finished(req, rid, item, text, finish, usage, info).model_dump(mode="json")
    yield event("response.output_item.done", output_index=0, item=done["output"][0])
    kind = "response.incomplete" if done["status"] == "incomplete" else "response.completed"
    yield event(kind, response=done)
