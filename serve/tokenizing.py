"""/tokenize, /detokenize and /tokenizer_info: vLLM's tokenizer routes over the server's own
prompt path, so `/tokenize` returns the very ids a completion or chat request would hand the
engine, demonstrations and block filler included, and says where the demo block and each
demonstration's answer sit in them."""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from manyicl.serve.chat import as_completion
from manyicl.serve.chat_protocol import ChatCompletionRequest
from manyicl.serve.engine import ManyICLEngine
from manyicl.serve.errors import bad_request, invalid
from manyicl.serve.prompts import prepare_prompts, request_routing_key
from manyicl.serve.protocol import CompletionRequest
from manyicl.serve.registry import DemoSetRegistry
from manyicl.serve.tokenize_protocol import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeInfo,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfoResponse,
)

_DEMO_FIELDS = (
    "demonstrations",
    "instruction",
    "demo_set",
    "max_shots",
    "shot_policy",
    "shot_seed",
)


def tokenize(
    req: TokenizeRequest, engine: ManyICLEngine, registry: DemoSetRegistry
) -> TokenizeResponse:
    """The ids of the completion (`prompt`) or chat (`messages`) request this body stands for."""
    name = engine.resolve_model(req.model).name if req.model else engine.default_model.name
    completion = _as_completion(req, name, registry)
    (prompt,) = prepare_prompts(
        completion, engine.fmt, engine.tok, registry, engine.max_model_len, engine.padding
    )
    ids = prompt.token_ids
    info = None
    if prompt.uses_demos:
        info = TokenizeInfo(
            shots_used=prompt.info.shots_used,
            shots_dropped=prompt.info.shots_dropped,
            demo_block_tokens=prompt.info.demo_block_tokens,
            answer_spans=list(prompt.answer_spans),
            routing_key=request_routing_key(completion, [prompt]),
        )
    return TokenizeResponse(
        count=len(ids),
        max_model_len=engine.max_model_len,
        tokens=ids,
        token_strs=engine.tok.hf.convert_ids_to_tokens(ids) if req.return_token_strs else None,
        manyicl=info,
    )


def _as_completion(req: TokenizeRequest, model: str, registry: DemoSetRegistry):
    try:
        return _completion_of(req, model, registry)
    except ValidationError as e:
        raise invalid(e) from None


def _completion_of(req: TokenizeRequest, model: str, registry: DemoSetRegistry):
    if (req.prompt is None) == (req.messages is None):
        raise bad_request("give prompt or messages (exactly one)", "prompt")
    demo = req.model_dump(include=set(_DEMO_FIELDS), exclude_unset=True)
    if req.prompt is not None:
        body = {"model": model, "prompt": req.prompt, "add_special_tokens": req.add_special_tokens}
        return CompletionRequest.model_validate(
            {**body, **demo, "max_tokens": req.max_tokens}, strict=False
        )
    if not req.add_generation_prompt:
        raise bad_request(
            "a chat prompt here always ends where the answer begins; add_generation_prompt "
            "must be true",
            "add_generation_prompt",
        )
    chat = ChatCompletionRequest.model_validate(
        {"model": model, "messages": req.model_dump()["messages"], **demo}, strict=False
    )
    return as_completion(chat, registry).model_copy(update={"max_tokens": req.max_tokens})


def detokenize(req: DetokenizeRequest, engine: ManyICLEngine) -> DetokenizeResponse:
    if req.model:
        engine.resolve_model(req.model)
    vocab = len(engine.tok.hf)
    if any(t >= vocab for t in req.tokens):
        raise bad_request(f"tokens: token ids must be in [0, {vocab})", "tokens")
    return DetokenizeResponse(prompt=engine.tok.hf.decode(req.tokens))


def tokenizer_info(engine: ManyICLEngine) -> TokenizerInfoResponse:
    """The tokenizer's init arguments (tokenizer_config.json) without file paths. No
    `chat_template`: chat here renders the adapter's prompt format, not the model's template."""
    hf = engine.tok.hf
    config = {
        k: _json(v)
        for k, v in (getattr(hf, "init_kwargs", None) or {}).items()
        if k not in ("vocab_file", "merges_file", "tokenizer_file", "name_or_path", "chat_template")
    }
    for name in ("bos_token", "eos_token", "pad_token", "unk_token"):
        config.setdefault(name, getattr(hf, name, None))
    config["model_max_length"] = engine.max_model_len
    return TokenizerInfoResponse(**{**config, "tokenizer_class": type(hf).__name__})


def _json(value: Any) -> Any:
    """JSON-safe: AddedToken objects as their text, containers element by element."""
    if hasattr(value, "content"):
        return value.content
    if isinstance(value, dict):
        return {str(k): _json(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [_json(v) for v in value]
    if value is None or isinstance(value, str | int | float | bool):
        return value
    return str(value)
