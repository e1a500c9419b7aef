"""/tokenize, /detokenize and /tokenizer_info on the session server: vLLM's shapes, the very
ids a completion or chat request hands the engine, and 400s for bad bodies."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

DEMOS = [{"input": "cat", "output": "cats"}, {"input": "box", "output": "boxes"}]


def test_a_plain_prompt_tokenizes_as_the_models_tokenizer_and_round_trips(
    http, smollm2_hf_tokenizer
):
    text = "The capital of France is Paris."
    r = http.post("/tokenize", json={"prompt": text, "return_token_strs": True})
    assert r.status_code == 200, r.text
    body = r.json()
    ids = smollm2_hf_tokenizer.encode(text, add_special_tokens=True)
    assert body["tokens"] == ids and body["count"] == len(ids)
    assert body["max_model_len"] == 2048 and body["manyicl"] is None
    assert body["token_strs"] == smollm2_hf_tokenizer.convert_ids_to_tokens(ids)
    back = http.post("/detokenize", json={"tokens": body["tokens"]}).json()
    assert back == {"prompt": smollm2_hf_tokenizer.decode(ids)}


def test_with_demonstrations_the_ids_are_those_the_engine_receives(http, smollm2_tok):
    body = {"prompt": "dog", "demonstrations": DEMOS, "max_tokens": 4}
    tok = http.post("/tokenize", json={"model": "manyicl", **body}).json()
    done = http.post(
        "/v1/completions",
        json={"model": "manyicl", "temperature": 0, "return_token_ids": True, **body},
    ).json()
    sent = done["manyicl"]["prompts"][0]
    assert tok["tokens"] == sent["prompt_token_ids"]
    info = tok["manyicl"]
    assert info["shots_used"] == 2 and info["demo_block_tokens"] == sent["demo_block_tokens"]
    assert info["routing_key"] == done["manyicl"]["routing_key"]
    answers = [smollm2_tok.hf.decode(tok["tokens"][a:b]) for a, b in info["answer_spans"]]
    assert [a.strip() for a in answers] == ["cats", "boxes"]
    assert all(b <= info["demo_block_tokens"] for _, b in info["answer_spans"])


def test_messages_tokenize_as_the_chat_request_would_send_them(http):
    messages = [
        {"role": "system", "content": "Pluralise."},
        {"role": "user", "content": "cat"},
        {"role": "assistant", "content": "cats"},
        {"role": "user", "content": "dog"},
    ]
    tok = http.post("/tokenize", json={"messages": messages, "max_tokens": 3}).json()
    chat = http.post(
        "/v1/chat/completions",
        json={"model": "manyicl", "messages": messages, "max_tokens": 3, "return_token_ids": True},
    ).json()
    assert tok["tokens"] == chat["manyicl"]["prompts"][0]["prompt_token_ids"]
    assert tok["manyicl"]["shots_used"] == 1


def test_tokenizer_info_describes_the_served_tokenizer(http, smollm2_hf_tokenizer):
    info = http.get("/tokenizer_info").json()
    assert info["tokenizer_class"] == type(smollm2_hf_tokenizer).__name__
    assert info["eos_token"] == smollm2_hf_tokenizer.eos_token
    assert info["bos_token"] == smollm2_hf_tokenizer.bos_token
    assert "chat_template" not in info and "vocab_file" not in info


@pytest.mark.parametrize(
    "path,body,status,param",
    [
        ("/tokenize", {}, 400, "prompt"),
        (
            "/tokenize",
            {"prompt": "a", "messages": [{"role": "user", "content": "b"}]},
            400,
            "prompt",
        ),
        ("/tokenize", {"prompt": "a", "model": "nope"}, 404, "model"),
        ("/tokenize", {"prompt": "a", "colour": "red"}, 400, "colour"),
        ("/tokenize", {"prompt": 3}, 400, "prompt"),
        (
            "/tokenize",
            {"messages": [{"role": "user", "content": "b"}], "add_generation_prompt": False},
            400,
            "add_generation_prompt",
        ),
        ("/tokenize", {"prompt": "a", "demo_set": "ds-missing"}, 404, "demo_set"),
        ("/tokenize", {"messages": [{"role": "assistant", "content": "b"}]}, 400, "messages"),
        ("/detokenize", {"tokens": [10**9]}, 400, "tokens"),
        ("/detokenize", {"tokens": [-1]}, 400, "tokens.0"),
        ("/detokenize", {"tokens": "abc"}, 400, "tokens"),
    ],
)
def test_bad_bodies_get_openai_style_errors(http, path, body, status, param):
    r = http.post(path, json=body)
    assert r.status_code == status, r.text
    assert r.json()["error"]["param"] == param
