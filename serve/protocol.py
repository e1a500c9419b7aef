"""Request and response models of the HTTP API, field by field as in the OpenAI API reference
(completions, models, errors), with this server's extensions in one marked block each."""

from __future__ import annotations

import time
import uuid
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    StrictStr,
)

from manyicl.prompting import Example, ShotPolicy


def _json_integer(value: object) -> object:
    """3.0 as 3: JSON Schema's integer is any number with no fraction, and clients send such
    floats. Bools and strings stay refused (pydantic's lax int would take `true` and "3")."""
    return int(value) if isinstance(value, float) and value.is_integer() else value


JSONInt = Annotated[StrictInt, BeforeValidator(_json_integer)]


def json_int(ge: int | None = None, le: int | None = None) -> Any:
    """JSONInt within bounds. The bounds sit inside the validator (not in `Field`) so that the
    OpenAPI document states them as `minimum` and `maximum`, which clients can read."""
    return Annotated[StrictInt, Field(ge=ge, le=le), BeforeValidator(_json_integer)]


class OpenAIModel(BaseModel):
    model_config = ConfigDict(extra="forbid")


class RequestModel(BaseModel):
    """Request bodies: parsed with `model_validate_json`; strict, so "0.5" is not a number."""

    model_config = ConfigDict(extra="forbid", strict=True)


# ----- errors -------------------------------------------------------------------------------


class ErrorInfo(OpenAIModel):
    message: str
    type: str
    param: str | None = None
    code: str | None = None


class ErrorResponse(OpenAIModel):
    error: ErrorInfo


# ----- /v1/completions request --------------------------------------------------------------


XArg = StrictStr | JSONInt | float  # a value of vLLM's `vllm_xargs`


class StreamOptions(RequestModel):
    include_usage: StrictBool = False
    # vLLM's extension (GuideLLM sends it): with include_usage, usage in every chunk as well
    continuous_usage_stats: StrictBool = False


class JSONSchema(RequestModel):
    name: StrictStr = "response"
    description: StrictStr | None = None
    schema_: dict = Field(default_factory=dict, alias="schema")
    strict: StrictBool | None = None


class ResponseFormat(RequestModel):
    """vLLM's `response_format`: text, json_object, or json_schema."""

    type: Literal["text", "json_object", "json_schema"]
    json_schema: JSONSchema | None = None


class StructuredOutputs(RequestModel):
    """vLLM's `structured_outputs`: exactly one constraint on the generated text."""

    json_: dict | StrictStr | None = Field(None, alias="json")
    regex: StrictStr | None = None
    choice: list[StrictStr] | None = None
    grammar: StrictStr | None = None
    json_object: StrictBool | None = None


# --- extensions: manyicl's, then vLLM's; shared by /v1/completions and /v1/chat/completions ---


class ManyShotFields(RequestModel):
    """manyicl's extensions, on both endpoints. With `demonstrations` or `demo_set`, the query
    (completions: `prompt`; chat: the last user message) is rendered with the adapter's prompt
    format after the demo block."""

    demonstrations: list[Example] | None = None  # []: the query alone, in the adapter's format
    instruction: StrictStr | None = None  # with `demonstrations`: rendered before them
    demo_set: StrictStr | None = None  # id of a set registered with POST /v1/demo_sets
    max_shots: json_int(ge=0) | None = None  # at most this many demonstrations
    shot_policy: ShotPolicy = ShotPolicy.FIRST  # which demonstrations when not all fit
    shot_seed: JSONInt = 0  # seed of the `random` shot policy
    return_token_ids: StrictBool = False  # echo the prompt token ids the engine received
    # The answer is one of these: "labels" (the distinct outputs of the demonstrations used)
    # or a list; each choice's probability comes back in the manyicl block.
    answer_choices: Literal["labels"] | list[StrictStr] | None = None


class VLLMFields(RequestModel):
    """vLLM's own sampling and request fields, as vLLM's OpenAI server accepts them on both
    endpoints, so that clients written for vLLM work unchanged. Those this server cannot
    honour are refused with a 400 naming the field (see ManyICLEngine.sampling_params)."""

    use_beam_search: StrictBool = False
    top_k: JSONInt | None = None  # 0 or -1: off
    min_p: float | None = Field(None, ge=0.0, le=1.0)
    repetition_penalty: float | None = Field(None, gt=0.0)
    length_penalty: float = 1.0  # beam search only
    stop_token_ids: list[JSONInt] | None = None
    include_stop_str_in_output: StrictBool = False
    ignore_eos: StrictBool = False
    min_tokens: json_int(ge=0) = 0
    skip_special_tokens: StrictBool = True
    spaces_between_special_tokens: StrictBool = True
    truncate_prompt_tokens: json_int(ge=-1) | None = None
    truncation_side: Literal["left", "right"] | None = None
    allowed_token_ids: list[JSONInt] | None = None
    prompt_logprobs: json_int(ge=0) | None = None
    logprob_token_ids: list[JSONInt] | None = None
    bad_words: list[StrictStr] = []
    add_special_tokens: StrictBool = True
    response_format: ResponseFormat | None = None
    structured_outputs: StructuredOutputs | None = None
    priority: JSONInt = 0
    request_id: StrictStr | None = None
    session_id: StrictStr | None = None
    return_tokens_as_token_ids: StrictBool | None = None
    cache_salt: StrictStr | None = Field(None, min_length=1, max_length=1024)
    vllm_xargs: dict[str, XArg | list[XArg]] | None = None
    watermarking: StrictBool | None = None
    kv_transfer_params: dict | None = None
    stream_interval: json_int(ge=1) | None = None


class RouterFields(RequestModel):
    """Fields vllm-router (manyicl-serve --replicas) writes into every body it forwards, at
    these values: accepted at them (they change nothing here), refused otherwise."""

    no_stop_trim: Literal[False] = False
    return_hidden_states: Literal[False] = False
    continue_final_message: Literal[False] = False  # chat
    # Body keys vllm-router's consistent_hash policy routes by; the replica ignores them.
    session_params: dict | None = None  # its `session_id` is the key
    user_id: StrictStr | None = None
    separate_reasoning: StrictBool = True  # chat; no reasoning model is served
    stream_reasoning: StrictBool = True  # chat
    include_reasoning: StrictBool = True  # chat


# --- end of extensions ------------------------------------------------------------------


class CompletionFields(RequestModel):
    """POST /v1/completions, as the OpenAI API reference orders its fields."""

    model: StrictStr
    prompt: StrictStr | list[StrictStr] | list[JSONInt] | list[list[JSONInt]]
    best_of: JSONInt | None = None
    echo: StrictBool = False
    frequency_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    logit_bias: dict[str, float] | None = None
    logprobs: json_int(ge=0, le=20) | None = None  # vLLM's cap, not OpenAI's 5
    max_tokens: json_int(ge=0) | None = 16
    n: json_int(ge=1, le=128) = 1
    presence_penalty: float = Field(0.0, ge=-2.0, le=2.0)
    seed: JSONInt | None = None
    stop: StrictStr | list[StrictStr] | None = None
    stream: StrictBool = False
    stream_options: StreamOptions | None = None
    suffix: StrictStr | None = None
    temperature: float = Field(1.0, ge=0.0, le=2.0)
    top_p: float = Field(1.0, gt=0.0, le=1.0)
    user: StrictStr | None = None
    # OpenAI's chat and Responses field, taken here too: the routing key when no demo set
    # gives one (see ManyICLInfo.routing_key); the engine's prefix cache needs no key.
    prompt_cache_key: StrictStr | None = None


class CompletionRequest(RouterFields, VLLMFields, ManyShotFields, CompletionFields):
    """POST /v1/completions: the OpenAI fields, then the extensions. Unknown fields are
    rejected (400), not ignored."""


# ----- /v1/completions response -------------------------------------------------------------


class CompletionLogprobs(OpenAIModel):
    tokens: list[str] = Field(default_factory=list)
    token_logprobs: list[float | None] = Field(default_factory=list)
    top_logprobs: list[dict[str, float] | None] = Field(default_factory=list)
    text_offset: list[int] = Field(default_factory=list)


class PromptLogprob(OpenAIModel):
    """One entry of vLLM's `prompt_logprobs` (keyed by token id)."""

    logprob: float
    rank: int | None = None
    decoded_token: str | None = None


class CompletionChoice(OpenAIModel):
    text: str
    index: int
    logprobs: CompletionLogprobs | None = None
    finish_reason: Literal["stop", "length"] | None = None
    # vLLM's extension: per prompt token, its log-probability and the top ones (with
    # `prompt_logprobs`; the first token has none)
    prompt_logprobs: list[dict[str, PromptLogprob] | None] | None = None


class PromptTokensDetails(OpenAIModel):
    cached_tokens: int = 0


class Usage(OpenAIModel):
    prompt_tokens: int = 0
    completion_tokens: int = 0
    total_tokens: int = 0
    prompt_tokens_details: PromptTokensDetails = PromptTokensDetails()


class PromptInfo(OpenAIModel):
    """manyicl extension: what one prompt of the request became."""

    index: int
    shots_used: int = 0
    shots_dropped: int = 0  # demonstrations left out for lack of context (or by max_shots)
    demo_block_tokens: int = 0  # the shared prefix: header + demonstrations
    prompt_token_ids: list[int] | None = None  # with return_token_ids
    choice_probabilities: dict[str, float] | None = None  # with answer_choices


class ManyICLInfo(OpenAIModel):
    demo_set: str | None = None
    # Behind a consistent-hash router, send this as `X-Session-ID` so every request of the set
    # reaches the replica that caches its block: a registered set's id, or for inline
    # demonstrations `manyicl.prompting.routing_key(demos)`, else the `prompt_cache_key`.
    routing_key: str | None = None
    prompts: list[PromptInfo] = []


def _completion_id() -> str:
    return f"cmpl-{uuid.uuid4().hex}"


class CompletionResponse(OpenAIModel):
    id: str = Field(default_factory=_completion_id)
    object: Literal["text_completion"] = "text_completion"
    created: int = Field(default_factory=lambda: int(time.time()))
    model: str
    choices: list[CompletionChoice]
    usage: Usage | None = None
    system_fingerprint: str | None = None
    manyicl: ManyICLInfo | None = None  # extension


# ----- /v1/models ---------------------------------------------------------------------------


class ModelCard(OpenAIModel):
    id: str
    object: Literal["model"] = "model"
    created: int = Field(default_factory=lambda: int(time.time()))
    owned_by: str = "manyicl"
    root: str | None = None
    parent: str | None = None


class ModelList(OpenAIModel):
    object: Literal["list"] = "list"
    data: list[ModelCard]
