"""Request and response models of POST /v1/responses (OpenAI's Responses API) for text, field
by field as in the OpenAI API reference, with the same extensions as chat. What a text-only
server that stores nothing cannot do is refused by `responses.refusals`, not ignored."""

from __future__ import annotations

import time
import uuid
from typing import Literal

from pydantic import Field, StrictBool, StrictStr

from manyicl.serve.protocol import (
    ManyICLInfo,
    ManyShotFields,
    OpenAIModel,
    RequestModel,
    RouterFields,
    VLLMFields,
    json_int,
)

# ----- request ------------------------------------------------------------------------------


class InputText(RequestModel):
    type: Literal["input_text", "output_text"]  # output_text: an earlier answer sent back
    text: StrictStr
    annotations: list | None = None  # on output_text items echoed from a response


class InputMessage(RequestModel):
    type: Literal["message"] = "message"
    role: Literal["system", "developer", "user", "assistant"]
    content: StrictStr | list[InputText]
    id: StrictStr | None = None  # items echoed from an earlier response carry these
    status: StrictStr | None = None


class TextFormat(RequestModel):
    type: Literal["text"]  # json_schema and json_object: use the structured_outputs extension


class TextConfig(RequestModel):
    format: TextFormat | None = None


class ResponsesStreamOptions(RequestModel):
    include_obfuscation: StrictBool | None = None  # no obfuscation padding is sent either way


class ResponsesFields(RequestModel):
    """POST /v1/responses, as the OpenAI API reference orders its fields."""

    background: StrictBool | None = None
    conversation: StrictStr | dict | None = None
    include: list[StrictStr] | None = None
    input: StrictStr | list[InputMessage]
    instructions: StrictStr | None = None
    max_output_tokens: json_int(ge=1) | None = None
    max_tool_calls: json_int(ge=0) | None = None
    metadata: dict[str, StrictStr] | None = None
    model: StrictStr
    parallel_tool_calls: StrictBool | None = None
    previous_response_id: StrictStr | None = None
    prompt: dict | None = None
    prompt_cache_key: StrictStr | None = None  # the routing key when no demo set gives one
    prompt_cache_retention: StrictStr | None = None  # the engine's LRU decides; no effect
    reasoning: dict | None = None
    safety_identifier: StrictStr | None = None
    service_tier: Literal["auto", "default"] | None = None
    store: StrictBool | None = None
    stream: StrictBool = False
    stream_options: ResponsesStreamOptions | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    text: TextConfig | None = None
    tool_choice: StrictStr | dict | None = None
    tools: list[dict] | None = None
    top_logprobs: json_int(ge=0, le=20) | None = None
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    truncation: Literal["auto", "disabled"] | None = None
    user: StrictStr | None = None


class ResponsesVLLMFields(RequestModel):
    """Fields vLLM's Responses endpoint takes that clients send (GuideLLM: stop, ignore_eos)."""

    stop: StrictStr | list[StrictStr] | None = None


class ResponsesRequest(
    RouterFields, ResponsesVLLMFields, VLLMFields, ManyShotFields, ResponsesFields
):
    """The OpenAI fields, then the extensions. Unknown fields are rejected (400)."""


# ----- response -----------------------------------------------------------------------------


class OutputText(OpenAIModel):
    type: Literal["output_text"] = "output_text"
    text: str
    annotations: list = Field(default_factory=list)
    logprobs: list = Field(default_factory=list)


class OutputMessage(OpenAIModel):
    type: Literal["message"] = "message"
    id: str
    status: Literal["in_progress", "completed", "incomplete"]
    role: Literal["assistant"] = "assistant"
    content: list[OutputText] = Field(default_factory=list)


class InputTokensDetails(OpenAIModel):
    cached_tokens: int = 0


class OutputTokensDetails(OpenAIModel):
    reasoning_tokens: int = 0


class ResponseUsage(OpenAIModel):
    input_tokens: int
    input_tokens_details: InputTokensDetails
    output_tokens: int
    output_tokens_details: OutputTokensDetails = OutputTokensDetails()
    total_tokens: int


class IncompleteDetails(OpenAIModel):
    reason: Literal["max_output_tokens"]


def _response_id() -> str:
    return f"resp_{uuid.uuid4().hex}"


class ResponseObject(OpenAIModel):
    id: str = Field(default_factory=_response_id)
    object: Literal["response"] = "response"
    created_at: int = Field(default_factory=lambda: int(time.time()))
    status: Literal["in_progress", "completed", "incomplete", "failed"]
    error: dict | None = None
    incomplete_details: IncompleteDetails | None = None
    instructions: str | None = None
    max_output_tokens: int | None = None
    metadata: dict[str, str] = Field(default_factory=dict)
    model: str
    output: list[OutputMessage] = Field(default_factory=list)
    parallel_tool_calls: bool = True
    previous_response_id: None = None
    prompt_cache_key: str | None = None
    store: bool = False  # nothing is stored: GET /v1/responses/{id} does not exist here
    temperature: float
    text: dict = Field(default_factory=lambda: {"format": {"type": "text"}})
    tool_choice: str = "none"
    tools: list = Field(default_factory=list)
    top_p: float
    truncation: str = "disabled"
    usage: ResponseUsage | None = None
    user: str | None = None
    manyicl: ManyICLInfo | None = None  # extension
