"""Label-constrained answers (`answer_choices`): the answer is one of the choices, each with its
probability normalised over the choices.

Choices are scored on their own tokens (`manyicl.choices`): one short request per proper
prefix of the choices (the query and that prefix, after the cached demo block), asking vLLM
for the log-probabilities of exactly the tokens that can follow it (`logprob_token_ids`), so
the demo block is prefilled at most once whatever the number of choices. vLLM's structured
outputs (`structured_outputs: {"choice": [...]}`) also run on the CPU backend, but they
constrain characters, not tokens: a greedy model may then spell " rate_book" as " ", "rat",
"e", ..., a tokenisation it never saw in training. Both are available; this one is what the
evaluation's `choice` metric measures.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass

from vllm import SamplingParams
from vllm.sampling_params import MAX_LOGPROB_TOKEN_IDS, RequestOutputKind

from manyicl.choices import choice_probabilities, pick_choice, prefixes
from manyicl.prompting import fill
from manyicl.prompting.render import leading_literal
from manyicl.serve.errors import bad_request
from manyicl.serve.protocol import (
    CompletionChoice,
    CompletionResponse,
    PromptTokensDetails,
    Usage,
)


@dataclass(frozen=True)
class Chosen:
    index: int  # into the choices
    probabilities: list[float]  # per choice, summing to 1
    cached_tokens: int  # of the first request: the demo block's share
    choice_tokens: int  # tokens of the chosen answer


def choice_texts(req, labels: Sequence[str]) -> list[str]:
    """The request's choices: the demonstrations' distinct outputs, or its own list."""
    texts = list(labels) if req.answer_choices == "labels" else list(req.answer_choices)
    texts = list(dict.fromkeys(texts))
    if not texts:
        raise bad_request("answer_choices is empty", "answer_choices")
    return texts


def check(req, uses_demos: bool) -> None:
    """What answer_choices cannot go with."""
    if not uses_demos:
        raise bad_request(
            "answer_choices needs demonstrations or a demo_set: choices are scored as the "
            "format renders their answers",
            "answer_choices",
        )
    for field, bad in [("n", req.n != 1), ("echo", req.echo), ("logprobs", req.logprobs)]:
        if bad:
            raise bad_request(f"{field} does not go with answer_choices", field)


async def choose(engine, model, prompt_ids, texts, request_id: str, salt) -> Chosen:
    """Score every choice after `prompt_ids`; the answer is the constrained greedy pick."""
    fmt, tok = engine.fmt, engine.tok
    follower = leading_literal(fmt.input)
    choices = [fill(fmt.output, tok, follower, output=t) for t in texts]
    nodes = prefixes(choices)
    if max(len(t) for t in nodes.values()) > MAX_LOGPROB_TOKEN_IDS:
        raise bad_request(
            f"at most {MAX_LOGPROB_TOKEN_IDS} choices may differ in their first token",
            "answer_choices",
        )

    async def next_logprobs(k: int, prefix: tuple[int, ...], tokens: list[int]):
        params = SamplingParams(
            max_tokens=1,
            temperature=0.0,
            logprob_token_ids=tokens,
            output_kind=RequestOutputKind.FINAL_ONLY,
        )
        final = None
        ids = [*prompt_ids, *prefix]
        async for out in engine.generate(ids, params, f"{request_id}-c{k}", model, salt):
            final = out
        step = final.outputs[0].logprobs[0]
        return {t: step[t].logprob for t in tokens}, final.num_cached_tokens or 0

    results = await asyncio.gather(
        *(next_logprobs(k, p, t) for k, (p, t) in enumerate(nodes.items()))
    )
    known = {p: lps for p, (lps, _) in zip(nodes, results, strict=True)}
    pick = pick_choice(choices, known)  # every branching point is known: an index
    return Chosen(pick, choice_probabilities(choices, known), results[0][1], len(choices[pick]))


async def answer(run) -> CompletionResponse:
    """A completion whose every prompt's answer is the choice it ranks first."""

    async def one(i: int):
        p = run.prompts[i]
        texts = choice_texts(run.req, p.labels)
        async with run.slot(i):
            request_id, salt = f"{run.engine_id}-{i}", run.req.cache_salt
            chosen = await choose(run.s.engine, run.model, p.token_ids, texts, request_id, salt)
        run.info.prompts[i].choice_probabilities = dict(
            zip(texts, chosen.probabilities, strict=True)
        )
        return texts[chosen.index], chosen

    async with run.tracked():
        results = await asyncio.gather(*(one(i) for i in range(len(run.prompts))))
    prefix = run.s.engine.fmt.answer_prefix
    choices = [
        CompletionChoice(text=prefix + text, index=i, finish_reason="stop")
        for i, (text, _) in enumerate(results)
    ]
    if run.req.return_token_ids:
        for info, p in zip(run.info.prompts, run.prompts, strict=True):
            info.prompt_token_ids = list(p.token_ids)
    return CompletionResponse(
        id=run.id,
        model=run.model.name,
        choices=choices,
        usage=_usage(run.prompts, [c for _, c in results]),
        manyicl=run.info,
    )


async def answer_stream(run) -> AsyncIterator[str]:
    """answer_choices streamed: the whole answer in one chunk, then usage and [DONE]."""
    full = await answer(run)
    usage, full.usage = full.usage, None
    opts = run.req.stream_options
    if opts and opts.include_usage and opts.continuous_usage_stats:
        full.usage = usage  # the one chunk carries all of it
    yield f"data: {full.model_dump_json()}\n\n"
    if opts and opts.include_usage:
        chunk = CompletionResponse(id=run.id, model=run.model.name, choices=[], usage=usage)
        yield f"data: {chunk.model_dump_json()}\n\n"
    yield "data: [DONE]\n\n"


def _usage(prompts, chosen) -> Usage:
    prompt = sum(len(p.token_ids) for p in prompts)
    generated = sum(c.choice_tokens for c in chosen)
    cached = sum(c.cached_tokens for c in chosen)
    return Usage(
        prompt_tokens=prompt,
        completion_tokens=generated,
        total_tokens=prompt + generated,
        prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
    )
