"""Request -> prompt token ids: demonstrations (inline or registered) + query, fitted to the
context with the shot budget, rendered exactly as in training."""

from __future__ import annotations

from dataclasses import dataclass

from manyicl.prompting import (
    BlockPadding,
    ContextOverflow,
    DemoSet,
    HFTokenizer,
    PromptFormat,
    assemble,
    plan_shots,
    tokenize_query,
)
from manyicl.serve.errors import bad_request, not_found
from manyicl.serve.protocol import CompletionRequest, PromptInfo
from manyicl.serve.registry import DemoSetRegistry, TokenizedDemoSet


@dataclass(frozen=True)
class PreparedPrompt:
    token_ids: list[int]
    info: PromptInfo
    uses_demos: bool
    demo_set: str | None = None  # content id of the demo block, for the scheduler
    labels: tuple[str, ...] = ()  # distinct outputs of the demonstrations used, in order
    routing_key: str | None = None  # of the demonstrations (see ManyICLInfo.routing_key)
    answer_spans: tuple[tuple[int, int], ...] = ()  # [start, end) of each demonstration's answer


def prepare_prompts(
    req: CompletionRequest,
    fmt: PromptFormat,
    tok: HFTokenizer,
    registry: DemoSetRegistry,
    max_model_len: int,
    padding: BlockPadding | None = None,
) -> list[PreparedPrompt]:
    """Every prompt of the request as token ids; raises APIError for bad input."""
    demo_set = _demo_set(req, fmt, tok, registry)
    prompts = split_prompts(req.prompt)
    if demo_set is None:
        return [_plain(i, p, tok, req, max_model_len) for i, p in enumerate(prompts)]
    if not all(isinstance(p, str) for p in prompts):
        raise bad_request(
            "with demonstrations, prompt is the query text: a string or a list "
            "of strings, not token ids",
            "prompt",
        )
    return [
        _many_shot(i, tokenize_query(fmt, tok, q), demo_set, req, max_model_len, padding)
        for i, q in enumerate(prompts)
    ]


def request_routing_key(req: CompletionRequest, prompts: list[PreparedPrompt]) -> str | None:
    """A registered set's id, else the inline demonstrations' key, else the request's
    `prompt_cache_key` (see ManyICLInfo.routing_key)."""
    inline = next((p.routing_key for p in prompts if p.routing_key), None)
    return req.demo_set or inline or req.prompt_cache_key


def split_prompts(prompt: str | list) -> list[str | list[int]]:
    """OpenAI's `prompt` forms -> a list of prompts (strings or token-id lists)."""
    if isinstance(prompt, str):
        return [prompt]
    if not prompt:
        raise bad_request("prompt must not be empty", "prompt")
    if all(isinstance(t, int) for t in prompt):
        return [list(prompt)]
    return list(prompt)


def _demo_set(
    req: CompletionRequest, fmt: PromptFormat, tok: HFTokenizer, registry: DemoSetRegistry
) -> TokenizedDemoSet | None:
    if req.demonstrations is not None and req.demo_set is not None:
        raise bad_request("give demonstrations or demo_set, not both", "demo_set")
    if req.instruction is not None and req.demonstrations is None:
        raise bad_request(
            "instruction goes with inline demonstrations (a registered set carries its own)",
            "instruction",
        )
    if req.demo_set is not None:
        entry = registry.get(req.demo_set)
        if entry is None:
            raise not_found(
                f"demo set {req.demo_set!r} is not registered", "demo_set", "demo_set_not_found"
            )
        return entry
    if req.demonstrations is not None:
        return registry.inline(DemoSet(examples=req.demonstrations, instruction=req.instruction))
    return None


def _reserve(req: CompletionRequest) -> int:
    """Tokens to keep free for generation (at least one even when max_tokens is None)."""
    return max(req.max_tokens or 1, 1)


def _many_shot(
    index: int,
    query_ids: list[int],
    ds: TokenizedDemoSet,
    req: CompletionRequest,
    max_model_len: int,
    padding: BlockPadding | None,
) -> PreparedPrompt:
    filler = padding.reserve if padding else 0
    try:
        plan = plan_shots(
            [len(e) for e in ds.examples],
            fixed_tokens=len(ds.header) + filler + len(query_ids) + _reserve(req),
            max_context=max_model_len,
            policy=req.shot_policy,
            seed=req.shot_seed,
            max_shots=req.max_shots,
        )
    except ContextOverflow as e:
        raise bad_request(f"prompt {index}: {e}", "prompt", "context_length_exceeded") from None
    rendered = assemble(ds.header, [ds.examples[i] for i in plan.indices], query_ids, padding)
    info = PromptInfo(
        index=index,
        shots_used=len(plan.indices),
        shots_dropped=plan.dropped,
        demo_block_tokens=rendered.demo_block_end,
    )
    outputs = [ds.demos.examples[i].output for i in plan.indices]
    labels = tuple(dict.fromkeys(outputs))
    spans = tuple((span.answer_start, span.end) for span in rendered.examples)
    key = ds.routing_key if ds.examples else None  # no demonstrations: nothing to route by
    return PreparedPrompt(rendered.token_ids, info, True, ds.id, labels, key, spans)


def _plain(
    index: int,
    prompt: str | list[int],
    tok: HFTokenizer,
    req: CompletionRequest,
    max_model_len: int,
) -> PreparedPrompt:
    if isinstance(prompt, str):  # like vLLM: the tokenizer's own special tokens (BOS)
        ids = tok.hf.encode(prompt, add_special_tokens=req.add_special_tokens)
    else:
        ids = list(prompt)
        vocab = len(tok.hf)
        if not ids or any(not 0 <= t < vocab for t in ids):
            raise bad_request(f"prompt {index}: token ids must be in [0, {vocab})", "prompt")
    ids = truncate(ids, req.truncate_prompt_tokens, req.truncation_side, max_model_len)
    if len(ids) + _reserve(req) > max_model_len:
        raise bad_request(
            f"prompt {index}: {len(ids)} prompt tokens + {_reserve(req)} to "
            f"generate exceed the context of {max_model_len}",
            "prompt",
            "context_length_exceeded",
        )
    return PreparedPrompt(ids, PromptInfo(index=index), False)


def truncate(ids: list[int], keep: int | None, side: str | None, max_model_len: int) -> list[int]:
    """vLLM's `truncate_prompt_tokens`: keep `keep` tokens (-1: the context length), the last
    ones (side `left`, the default) or the first ones (`right`)."""
    if keep is None:
        return ids
    keep = max_model_len if keep == -1 else keep
    if len(ids) <= keep:
        return ids
    return ids[:keep] if side == "right" else ids[len(ids) - keep :]
