"""Engine outputs -> OpenAI completion choices: text, finish reason, and the legacy `logprobs`
object, with the prompt's own tokens first when the request echoes it.

With `echo`, the prompt's tokens lead the choice: their text, and with `logprobs` their
log-probabilities (None for the first token, which nothing predicts), as the legacy OpenAI API
and vLLM return them. `max_tokens: 0` with echo scores the prompt and generates nothing: the
engine generates one token (it cannot generate none), which is dropped here.
"""

from __future__ import annotations

from collections.abc import Sequence

from manyicl.serve.protocol import CompletionChoice, CompletionLogprobs, PromptLogprob


def finish(reason: str | None) -> str | None:
    return None if reason is None else ("length" if reason == "length" else "stop")


def token_text(token_id: int, entry, decode, as_ids: bool) -> str:
    """A token as the logprobs object shows it: its text, or `token_id:N` on request."""
    if as_ids:
        return f"token_id:{token_id}"
    if entry is not None and entry.decoded_token is not None:
        return entry.decoded_token
    return decode([token_id])


def completion_logprobs(
    token_ids: Sequence[int],
    steps: Sequence[dict | None],
    top_k: int,
    decode,
    offset: int = 0,
    as_ids: bool = False,
) -> CompletionLogprobs:
    """vLLM's per-token logprob dicts (None where a token has none: a prompt's first) ->
    OpenAI's completions logprobs object, text offsets starting at `offset`."""
    result = CompletionLogprobs()
    for tid, entries in zip(token_ids, steps, strict=True):
        chosen = entries.get(tid) if entries else None
        token = token_text(tid, chosen, decode, as_ids)
        result.tokens.append(token)
        result.token_logprobs.append(None if chosen is None else max(chosen.logprob, -9999.0))
        if entries:
            ranked = sorted(entries.items(), key=lambda kv: kv[1].rank or 0)[:top_k]
            result.top_logprobs.append(
                {token_text(t, e, decode, as_ids): max(e.logprob, -9999.0) for t, e in ranked}
            )
        else:
            result.top_logprobs.append(None)
        result.text_offset.append(offset)
        offset += len(token)
    return result


def build_choice(req, index: int, out, o, prompt_ids: Sequence[int], first: bool, decode):
    """One choice from RequestOutput `out` and its CompletionOutput `o`. `first`: this is the
    first chunk of the choice (the echoed prompt goes there)."""
    echo_only = req.echo and req.max_tokens == 0
    ids, steps = ([], []) if echo_only else (list(o.token_ids), list(o.logprobs or []))
    text = "" if echo_only else o.text
    if req.echo and first:
        prompt_steps = list(out.prompt_logprobs or [None] * len(prompt_ids))
        text, ids, steps = (
            decode(list(prompt_ids)) + text,
            [*prompt_ids, *ids],
            prompt_steps + steps,
        )
    logprobs = None
    if req.logprobs is not None:
        steps = steps if len(steps) == len(ids) else [None] * len(ids)
        as_ids = bool(req.return_tokens_as_token_ids)
        logprobs = completion_logprobs(ids, steps, req.logprobs, decode, as_ids=as_ids)
    return CompletionChoice(
        text=text,
        index=index,
        logprobs=logprobs,
        finish_reason="length" if echo_only and o.finish_reason else finish(o.finish_reason),
        prompt_logprobs=_prompt_logprobs(req, out, first, decode),
    )


def _prompt_logprobs(req, out, first: bool, decode) -> list[dict[str, PromptLogprob] | None] | None:
    """vLLM's `prompt_logprobs` field, when the request asked for it by that name."""
    if req.prompt_logprobs is None or not first or out.prompt_logprobs is None:
        return None
    return [
        None
        if step is None
        else {
            str(t): PromptLogprob(
                logprob=max(e.logprob, -9999.0),
                rank=e.rank,
                decoded_token=token_text(t, e, decode, False),
            )
            for t, e in step.items()
        }
        for step in out.prompt_logprobs
    ]
