"""Request and response models of POST /v1/chat/completions, field by field as in the OpenAI API
reference, with the same extensions as completions (`ManyShotFields`, `VLLMFields`)."""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import Field, StrictBool, StrictStr

from manyicl.serve.protocol import (
    JSONInt,
    ManyICLInfo,
    ManyShotFields,
    OpenAIModel,
    RequestModel,
    RouterFields,
    StreamOptions,
    Usage,
    VLLMFields,
    json_int,
)

# ----- request ------------------------------------------------------------------------------


class TextPart(RequestModel):
    type: Literal["text"]
    text: StrictStr


class ChatMessage(RequestModel):
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[TextPart]
    name: StrictStr | None = None

    @property
    def text(self) -> str:
        if isinstance(self.content, str):
            return self.content
        return "".join(part.text for part in self.content)


class ChatFields(RequestModel):
    """POST /v1/chat/completions, as the OpenAI API reference orders its fields."""

    messages: list[ChatMessage] = Field(min_length=1)
    model: StrictStr
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: StrictBool = False
    max_completion_tokens: json_int(ge=1) | None = None
    max_tokens: json_int(ge=1) | None = None  # deprecated by OpenAI, still sent
    n: json_int(ge=1, le=128) = 1
    parallel_tool_calls: StrictBool | None = None
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    prompt_cache_key: StrictStr | None = None  # the routing key when no demo set gives one
    seed: JSONInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    tool_choice: StrictStr | dict | None = None
    tools: list[dict] | None = None
    top_logprobs: json_int(ge=0, le=20) | None = None
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    user: StrictStr | None = None


class ChatCompletionRequest(RouterFields, VLLMFields, ManyShotFields, ChatFields):
    """The OpenAI fields, then the extensions. Unknown fields are rejected (400)."""


# ----- response -----------------------------------------------------------------------------


class TopLogprob(OpenAIModel):
    token: str
    logprob: float
    bytes: list[int] | None = None


class TokenLogprob(TopLogprob):
    top_logprobs: list[TopLogprob] = Field(default_factory=list)


class ChatLogprobs(OpenAIModel):
    content: list[TokenLogprob] | None = None


class AssistantMessage(OpenAIModel):
    role: Literal["assistant"] = "assistant"
    content: str | None = None


class ChatChoice(OpenAIModel):
    index: int
    message: AssistantMessage
    logprobs: ChatLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


def _chat_id() -> str:
    return f"chatcmpl-{uuid.uuid4().hex}"


class ChatCompletionResponse(OpenAIModel):
    id: str = Field(default_factory=_chat_id)
    object: Literal["chat.completion"] = "chat.completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChatChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    manyicl: ManyICLInfo | None = None  # extension


class Delta(OpenAIModel):
    role: Literal["assistant"] | None = None
    content: str | None = None


class ChunkChoice(OpenAIModel):
    index: int
    delta: Delta
    logprobs: ChatLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None


class ChatCompletionChunk(OpenAIModel):
    id: str
    object: Literal["chat.completion.chunk"] = "chat.completion.chunk"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[ChunkChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    manyicl: ManyICLInfo | None = None  # extension
