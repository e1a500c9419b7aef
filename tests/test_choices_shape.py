"""Engine outputs -> OpenAI completion choices, on hand-built vLLM log-probabilities."""

from __future__ import annotations

from types import SimpleNamespace

from vllm.logprobs import Logprob

from manyicl.serve.choices import build_choice, completion_logprobs


def _decode(ids):
    return "".join(f"<{i}>" for i in ids)


def _step(chosen: int, **others: float) -> dict:
    """A step's top-k: the chosen token (rank 1) and others by rank."""
    entries = {chosen: Logprob(-0.1, 1, f"t{chosen}")}
    for rank, (tid, lp) in enumerate(others.items(), start=2):
        entries[int(tid[1:])] = Logprob(lp, rank, f"t{tid[1:]}")
    return entries


def test_completion_logprobs_with_a_prompts_first_token_and_top_k():
    steps = [None, _step(5, t6=-2.0, t7=-3.0)]
    lp = completion_logprobs([4, 5], steps, top_k=2, decode=_decode)
    assert lp.tokens == ["<4>", "t5"] and lp.token_logprobs == [None, -0.1]
    assert lp.top_logprobs == [None, {"t5": -0.1, "t6": -2.0}]
    assert lp.text_offset == [0, 3]
    ids = completion_logprobs([4, 5], steps, top_k=1, decode=_decode, as_ids=True)
    assert ids.tokens == ["token_id:4", "token_id:5"]


def test_echo_puts_the_prompt_first_and_max_tokens_zero_drops_the_generated_token():
    out = SimpleNamespace(prompt_logprobs=[None, _step(2)])
    o = SimpleNamespace(text="t9", token_ids=[9], logprobs=[_step(9)], finish_reason="length")
    req = SimpleNamespace(
        echo=True, max_tokens=1, logprobs=0, return_tokens_as_token_ids=None, prompt_logprobs=None
    )
    choice = build_choice(req, 0, out, o, [1, 2], True, _decode)
    assert choice.text == "<1><2>t9" and choice.logprobs.tokens == ["<1>", "t2", "t9"]
    req.max_tokens = 0
    only = build_choice(req, 0, out, o, [1, 2], True, _decode)
    assert only.text == "<1><2>" and only.logprobs.token_logprobs == [None, -0.1]
    assert only.finish_reason == "length"
