"""Request and response models of POST /tokenize, POST /detokenize and GET /tokenizer_info,
field by field as vLLM's OpenAI server has them (lm-evaluation-harness's remote tokenizer
calls them), with this server's extensions in one marked block each."""

from __future__ import annotations

from pydantic import ConfigDict, Field, StrictBool, StrictStr

from manyicl.prompting import Example, ShotPolicy
from manyicl.serve.chat_protocol import ChatMessage
from manyicl.serve.protocol import JSONInt, OpenAIModel, RequestModel, json_int


class TokenizeRequest(RequestModel):
    """vLLM's two forms in one body: `prompt` (its completion form) or `messages` (its chat
    form), tokenised exactly as /v1/completions or /v1/chat/completions would send them."""

    model: StrictStr | None = None
    prompt: StrictStr | None = None
    messages: list[ChatMessage] | None = Field(None, min_length=1)
    add_special_tokens: StrictBool = True  # plain prompts only: the format renders the rest
    # chat: the prompt always ends where the answer begins, so only True can be honoured
    add_generation_prompt: StrictBool = True
    return_token_strs: StrictBool = False
    # --- manyicl's extensions: the demonstrations, as on /v1/completions ---
    demonstrations: list[Example] | None = None
    instruction: StrictStr | None = None
    demo_set: StrictStr | None = None
    max_shots: json_int(ge=0) | None = None
    shot_policy: ShotPolicy = ShotPolicy.FIRST
    shot_seed: JSONInt = 0
    # tokens kept free for the answer when the shots are fitted: the completion's max_tokens
    max_tokens: json_int(ge=0) | None = 16
    # --- end of extensions ---


class TokenizeInfo(OpenAIModel):
    """manyicl extension: where the demonstrations sit in `tokens`."""

    shots_used: int = 0
    shots_dropped: int = 0
    demo_block_tokens: int = 0  # tokens[:demo_block_tokens] is the cached, shared prefix
    answer_spans: list[tuple[int, int]] = Field(
        default_factory=list
    )  # [start, end) of each demonstration's answer
    routing_key: str | None = None


class TokenizeResponse(OpenAIModel):
    count: int
    max_model_len: int
    tokens: list[int]
    token_strs: list[str] | None = None
    manyicl: TokenizeInfo | None = None  # extension: with demonstrations or messages


class DetokenizeRequest(RequestModel):
    model: StrictStr | None = None
    tokens: list[json_int(ge=0)]


class DetokenizeResponse(OpenAIModel):
    prompt: str


class TokenizerInfoResponse(OpenAIModel):
    """The tokenizer's configuration, as in its tokenizer_config.json (vLLM's shape)."""

    model_config = ConfigDict(extra="allow")
    tokenizer_class: str
