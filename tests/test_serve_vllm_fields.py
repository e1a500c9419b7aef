"""vLLM's own sampling and request fields on the session server: accepted and honoured, or
refused with a 400 naming the field; echo with logprobs scores the prompt."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

DEMOS = [{"input": "cat", "output": "cats"}, {"input": "box", "output": "boxes"}]


def _post(http, **body):
    return http.post("/v1/completions", json={"model": "manyicl", **body})


def test_vllm_sampling_fields_are_honoured(http):
    r = _post(
        http,
        prompt="Once upon a time",
        max_tokens=5,
        min_tokens=5,
        ignore_eos=True,
        temperature=0.8,
        top_k=20,
        min_p=0.05,
        repetition_penalty=1.1,
        seed=3,
        skip_special_tokens=True,
        spaces_between_special_tokens=True,
        stop_token_ids=[2],
        include_stop_str_in_output=False,
        bad_words=["dragon"],
        request_id="abc",
        session_id="s",
        stream_interval=2,
        vllm_xargs={"note": "x"},
    )
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["usage"]["completion_tokens"] == 5 and body["id"] == "cmpl-abc"
    again = _post(
        http,
        prompt="Once upon a time",
        max_tokens=5,
        temperature=0.8,
        top_k=20,
        min_p=0.05,
        repetition_penalty=1.1,
        seed=3,
        min_tokens=5,
        ignore_eos=True,
        bad_words=["dragon"],
    )
    assert again.json()["choices"][0]["text"] == body["choices"][0]["text"]  # seeded


def test_structured_outputs_and_allowed_tokens_constrain_the_answer(http, smollm2_tok):
    r = _post(
        http,
        prompt="mouse",
        demonstrations=DEMOS,
        max_tokens=5,
        temperature=0,
        structured_outputs={"choice": ["mice", "mouses"]},
    )
    assert r.status_code == 200, r.text
    assert r.json()["choices"][0]["text"] in ("mice", "mouses")
    allowed = smollm2_tok.encode_text(" yes")
    r = _post(http, prompt="Is it?", max_tokens=1, temperature=0, allowed_token_ids=allowed)
    assert r.json()["choices"][0]["text"] == " yes"


def test_truncate_prompt_tokens_keeps_the_last_tokens(http):
    r = _post(http, prompt="one two three " * 20, max_tokens=1, truncate_prompt_tokens=7)
    assert r.status_code == 200 and r.json()["usage"]["prompt_tokens"] == 7


def test_echo_with_logprobs_and_no_new_tokens_scores_the_prompt(http, smollm2_tok):
    prompt = "The capital of France is Paris"
    r = _post(http, prompt=prompt, echo=True, logprobs=1, max_tokens=0, temperature=0)
    assert r.status_code == 200, r.text
    choice, usage = r.json()["choices"][0], r.json()["usage"]
    lp = choice["logprobs"]
    assert choice["text"].endswith(prompt) and usage["completion_tokens"] == 0
    assert len(lp["tokens"]) == usage["prompt_tokens"] == len(lp["token_logprobs"])
    assert lp["token_logprobs"][0] is None and all(x <= 0 for x in lp["token_logprobs"][1:])
    assert "".join(lp["tokens"]) == choice["text"]
    named = _post(http, prompt=prompt, prompt_logprobs=0, max_tokens=1, temperature=0).json()
    got = [
        None if s is None else max(v["logprob"] for v in s.values())
        for s in named["choices"][0]["prompt_logprobs"]
    ]
    assert len(got) == usage["prompt_tokens"] and got[0] is None
    as_ids = _post(
        http, prompt=prompt, echo=True, logprobs=0, max_tokens=0, return_tokens_as_token_ids=True
    ).json()["choices"][0]["logprobs"]["tokens"]
    assert all(t.startswith("token_id:") for t in as_ids)


# a field this server cannot honour -> the field the 400 names
REFUSED = [
    ({"use_beam_search": True}, "use_beam_search"),
    ({"length_penalty": 2.0}, "length_penalty"),
    ({"priority": 1}, "priority"),
    ({"watermarking": True}, "watermarking"),
    ({"kv_transfer_params": {"a": 1}}, "kv_transfer_params"),
    ({"logprob_token_ids": [5]}, "logprob_token_ids"),
    ({"truncate_prompt_tokens": 5, "demonstrations": DEMOS}, "truncate_prompt_tokens"),
    ({"stop_token_ids": [10**9]}, "stop_token_ids"),
    ({"structured_outputs": {"choice": ["a"], "regex": "b"}}, "structured_outputs"),
    (
        {"structured_outputs": {"regex": "a"}, "response_format": {"type": "json_object"}},
        "response_format",
    ),
    ({"logprobs": 50}, "logprobs"),
    ({"top_k": "3"}, "top_k"),
    ({"not_a_field": 1}, "not_a_field"),
]


@pytest.mark.parametrize("extra,field", REFUSED)
def test_fields_it_cannot_honour_get_a_400_naming_them(http, extra, field):
    r = _post(http, prompt="x", max_tokens=2, **extra)
    assert r.status_code == 400, r.text
    error = r.json()["error"]
    assert error["param"] == field or field in error["message"], error


def _events(http, body) -> list[dict]:
    """The JSON chunks of a streamed completion, [DONE] left out."""
    import json

    with http.stream("POST", "/v1/completions", json={"model": "manyicl", **body}) as r:
        assert r.status_code == 200, r.read()
        lines = [x.removeprefix("data: ") for x in r.iter_lines() if x.startswith("data: ")]
    assert lines[-1] == "[DONE]"
    return [json.loads(x) for x in lines[:-1]]


def test_continuous_usage_stats_put_usage_in_every_chunk(http):
    body = {"prompt": "dog", "demonstrations": DEMOS * 8, "max_tokens": 6, "temperature": 0}
    body |= {"ignore_eos": True, "stream": True}
    _events(http, body)  # the demo block is cached from here on
    opts = {"include_usage": True, "continuous_usage_stats": True}
    chunks = _events(http, {**body, "stream_options": opts})
    usages = [c["usage"] for c in chunks]
    assert all(u is not None for u in usages)
    generated = [u["completion_tokens"] for u in usages[:-1]]  # the format's stop may end it
    assert generated[0] >= 1 and generated == sorted(set(generated))  # counted as they come
    final = usages[-1]
    assert final["completion_tokens"] == generated[-1] <= 6
    assert final["total_tokens"] == final["prompt_tokens"] + generated[-1]
    assert all(u["prompt_tokens_details"]["cached_tokens"] > 0 for u in usages)
    plain = _events(http, {**body, "stream_options": {"include_usage": True}})
    assert [c["usage"] is None for c in plain] == [True] * (len(plain) - 1) + [False]


def test_prompt_cache_key_and_router_body_keys_are_accepted(http):
    keyed = _post(http, prompt="x", max_tokens=1, prompt_cache_key="team-a").json()
    assert keyed["manyicl"]["routing_key"] == "team-a"
    demos = _post(http, prompt="x", max_tokens=1, demonstrations=DEMOS, prompt_cache_key="k")
    assert demos.json()["manyicl"]["routing_key"] != "k"  # the demonstrations' key wins
    routed = _post(
        http, prompt="x", max_tokens=1, session_params={"session_id": "s1"}, user_id="u1"
    )
    assert routed.status_code == 200, routed.text
    chat = http.post(
        "/v1/chat/completions",
        json={
            "model": "manyicl",
            "messages": [{"role": "user", "content": "hi"}],
            "max_tokens": 1,
            "prompt_cache_key": "team-b",
            "user_id": "u1",
        },
    )
    assert chat.status_code == 200, chat.text
    assert chat.json()["manyicl"]["routing_key"] == "team-b"  # no demonstrations to route by
