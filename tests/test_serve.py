"""The real server: a vLLM CPU engine, the default SmolLM2 model plus the shipped adapter, real
HTTP, and the official `openai` client. One server for the session (engine start-ups are
slow, see conftest); the last tests restart it and kill its engine, then restore it."""

from __future__ import annotations

import time

import httpx
import psutil
import pytest
from prometheus_client.parser import text_string_to_metric_families

from manyicl.manifest import DEFAULT_ADAPTER, read_manifest
from manyicl.prompting import DemoSet, Example, HFTokenizer, render

from serverproc import API_KEY as KEY

pytestmark = pytest.mark.slow
DEMOS = [
    {"input": w, "output": "A" if w[0] == "a" else "other"}
    for w in ["apple", "banana", "avocado", "cherry", "apricot", "bean"] * 6
]


def _many_shot(client, prompt="apricot", **kw):
    extra = {"demonstrations": DEMOS, **kw.pop("extra_body", {})}
    return client.completions.create(
        model="manyicl",
        prompt=prompt,
        max_tokens=kw.pop("max_tokens", 8),
        temperature=kw.pop("temperature", 0),
        extra_body=extra,
        **kw,
    )


def test_streamed_and_non_streamed_agree_at_temperature_zero(client):
    full = _many_shot(client, max_tokens=12)
    chunks = list(
        _many_shot(client, max_tokens=12, stream=True, stream_options={"include_usage": True})
    )
    text = "".join(c.choices[0].text for c in chunks if c.choices)
    assert text == full.choices[0].text
    finishing = [c for c in chunks if c.choices and c.choices[0].finish_reason]
    assert (
        len(finishing) == 1
        and finishing[0].choices[0].finish_reason == full.choices[0].finish_reason
    )
    usage = chunks[-1].usage
    assert usage.prompt_tokens == full.usage.prompt_tokens
    assert usage.completion_tokens == full.usage.completion_tokens
    assert usage.total_tokens == usage.prompt_tokens + usage.completion_tokens


def test_n_seed_stop_and_logprobs(client):
    two = _many_shot(client, n=2, temperature=1.0, seed=7, max_tokens=6)
    assert sorted(c.index for c in two.choices) == [0, 1]
    again = _many_shot(client, n=2, temperature=1.0, seed=7, max_tokens=6)
    assert [c.text for c in again.choices] == [c.text for c in two.choices]
    free = client.completions.create(
        model="manyicl", prompt="The alphabet: a b c d e f", max_tokens=20, temperature=0
    )
    stopped = client.completions.create(
        model="manyicl",
        prompt="The alphabet: a b c d e f",
        max_tokens=20,
        temperature=0,
        stop=[free.choices[0].text[3:5]],
    )
    assert stopped.choices[0].finish_reason == "stop"
    assert len(stopped.choices[0].text) < len(free.choices[0].text)
    lp = _many_shot(client, logprobs=2, max_tokens=4).choices[0].logprobs
    assert len(lp.tokens) == len(lp.token_logprobs) == len(lp.top_logprobs) >= 1
    assert all(x <= 0 for x in lp.token_logprobs)
    assert all(1 <= len(top) <= 2 for top in lp.top_logprobs)


README_DEMOS = [
    {"input": "The movie was great.", "output": "positive"},
    {"input": "The movie was awful.", "output": "negative"},
]


@pytest.mark.parametrize(
    "demos",
    [README_DEMOS, [{"input": f"number {i}", "output": str(i % 3)} for i in range(120)]],
    ids=["readme-example", "120-shots"],
)
def test_a_repeated_request_computes_only_its_query(client, smollm2_hf_tokenizer, demos):
    # The demo block ends on a KV-block boundary (the format's filler), so from the second
    # request on all of it is cached, even when it is shorter than one block.
    body = {"demonstrations": demos, "return_token_ids": True}
    _many_shot(client, prompt="The movie was dull.", extra_body=body)
    second = _many_shot(client, prompt="The movie was fine.", extra_body=body)
    info = second.model_extra["manyicl"]["prompts"][0]
    assert second.usage.prompt_tokens_details.cached_tokens == info["demo_block_tokens"]
    fmt = read_manifest(DEFAULT_ADAPTER).prompt_format
    block = render(
        fmt,
        HFTokenizer(smollm2_hf_tokenizer),
        DemoSet(examples=[Example(**d) for d in demos]),
        block_size=128,  # vLLM's CPU default
    )
    assert info["shots_used"] == len(demos) and info["demo_block_tokens"] == len(block.token_ids)
    assert len(block.token_ids) % 128 == 0 and block.pad_len > 0
    assert info["prompt_token_ids"][: len(block.token_ids)] == block.token_ids


def test_shots_that_do_not_fit_are_dropped_and_reported(client):
    long = [{"input": "word " * 100, "output": "x"} for _ in range(40)]  # ~4K tokens
    r = _many_shot(client, prompt="q", extra_body={"demonstrations": long})
    info = r.model_extra["manyicl"]["prompts"][0]
    assert info["shots_used"] > 0 and info["shots_dropped"] > 0
    assert info["shots_used"] + info["shots_dropped"] == 40
    assert r.usage.prompt_tokens + 8 <= 2048


def test_demo_set_registry_round_trip(http, client):
    created = http.post("/v1/demo_sets", json={"examples": DEMOS, "name": "fruit", "warm": True})
    assert created.status_code == 201, created.text
    set_id = created.json()["id"]
    assert http.post("/v1/demo_sets", json={"examples": DEMOS}).json()["id"] == set_id
    assert set_id in [d["id"] for d in http.get("/v1/demo_sets").json()["data"]]
    assert http.get(f"/v1/demo_sets/{set_id}").json()["demo_set"]["examples"] == DEMOS
    named = client.completions.create(
        model="manyicl",
        prompt="apricot",
        max_tokens=8,
        temperature=0,
        extra_body={"demo_set": set_id},
    )
    inline = _many_shot(client)
    assert named.choices[0].text == inline.choices[0].text
    assert named.usage.prompt_tokens_details.cached_tokens > 0  # warmed on upload
    assert http.delete(f"/v1/demo_sets/{set_id}").json()["deleted"] is True
    assert http.get(f"/v1/demo_sets/{set_id}").status_code == 404


def test_models_lists_adapter_and_base(client):
    ids = [m.id for m in client.models.list().data]
    assert ids[0] == "manyicl" and len(ids) == 2
    base = client.completions.create(model=ids[1], prompt="Hello", max_tokens=3, temperature=0)
    assert base.model == ids[1] and base.usage.completion_tokens >= 1


def _metrics(http) -> dict[str, float]:
    values = {}
    for family in text_string_to_metric_families(http.get("/metrics").text):
        for s in family.samples:
            labels = ",".join(f"{k}={v}" for k, v in sorted(s.labels.items()))
            values[f"{s.name}{{{labels}}}"] = s.value
    return values


def test_metrics_parse_and_move(http, client):
    before = _metrics(http)
    _many_shot(client)
    after = _metrics(http)
    for name in (
        "manyicl_prompt_tokens_total{}",
        "manyicl_generation_tokens_total{}",
        "manyicl_request_latency_seconds_count{}",
    ):
        assert after[name] > before.get(name, 0), name
    key = "manyicl_requests_total{route=/v1/completions,status=200}"
    assert after[key] >= before.get(key, 0) + 1
    assert any(k.startswith("vllm:prefix_cache_queries") for k in after)
    assert 0 <= after["manyicl_prefix_cache_hit_ratio{}"] <= 1


def test_client_disconnect_mid_stream_aborts_the_engine_request(server, http):
    def generated() -> float:
        return sum(
            v for k, v in _metrics(http).items() if k.startswith("vllm:generation_tokens_total")
        )

    before = generated()
    # End-of-text banned: only max_tokens (1500, about a minute here) or an abort ends it.
    body = {
        "model": "manyicl",
        "prompt": "Write a long story about a dragon.",
        "stream": True,
        "max_tokens": 1500,
        "temperature": 1.0,
        "seed": 1,
        "logit_bias": {"0": -100, "1": -100, "2": -100},
    }
    with httpx.stream(
        "POST",
        server.url + "/v1/completions",
        json=body,
        timeout=120,
        headers={"Authorization": f"Bearer {KEY}"},
    ) as r:
        for line in r.iter_lines():
            if line.startswith("data: {"):
                break  # one chunk received, then hang up
    for _ in range(40):
        running = [
            v for k, v in _metrics(http).items() if k.startswith("vllm:num_requests_running")
        ]
        if sum(running) == 0 and _metrics(http)["manyicl_requests_running{}"] == 0:
            break
        time.sleep(0.25)
    assert sum(running) == 0
    assert generated() - before < 1500


def test_client_disconnect_before_a_full_response_aborts_the_engine_request(server, http):
    """A non-streamed request whose client hangs up is aborted in the engine too."""
    body = {
        "model": "manyicl",
        "prompt": "Write a long story about a dragon.",
        "max_tokens": 1500,
        "ignore_eos": True,  # only max_tokens (about a minute here) or an abort ends it
    }
    headers = {"Authorization": f"Bearer {KEY}"}
    with pytest.raises(httpx.ReadTimeout):  # hang up after 3 s, long before 1500 tokens
        httpx.post(server.url + "/v1/completions", json=body, timeout=3, headers=headers)
    for _ in range(40):
        running = [
            v for k, v in _metrics(http).items() if k.startswith("vllm:num_requests_running")
        ]
        if sum(running) == 0:
            break
        time.sleep(0.25)
    assert sum(running) == 0
    assert _metrics(http)["manyicl_requests_running{}"] == 0


def test_registered_sets_survive_a_restart(server, http):
    set_id = http.post("/v1/demo_sets", json={"examples": DEMOS[:5], "name": "keep"}).json()["id"]
    server.stop()
    server.start()
    with httpx.Client(base_url=server.url, headers={"Authorization": f"Bearer {KEY}"}) as c:
        got = c.get(f"/v1/demo_sets/{set_id}")
        assert got.status_code == 200 and got.json()["name"] == "keep"


def test_health_reports_a_dead_engine(server):
    children = psutil.Process(server.proc.pid).children(recursive=True)
    for child in children:
        child.kill()
    for _ in range(60):
        r = httpx.get(server.url + "/health")
        if r.status_code == 503:
            break
        time.sleep(0.5)
    assert r.status_code == 503
    r = httpx.post(
        server.url + "/v1/completions",
        json={"model": "manyicl", "prompt": "x"},
        headers={"Authorization": f"Bearer {KEY}"},
    )
    assert r.status_code >= 500 and "error" in r.json()
    server.stop()
    server.start()  # leave a working server for whatever runs next


def test_every_metric_of_the_grafana_dashboard_is_served(http, client):
    """docs/grafana/manyicl.json queries only metrics /metrics exports."""
    import json
    import re
    from pathlib import Path

    _many_shot(client)  # labelled series (per route, per demo set) exist once used
    dashboard = Path(__file__).parents[1] / "docs" / "grafana" / "manyicl.json"
    exprs = [t["expr"] for p in json.loads(dashboard.read_text())["panels"] for t in p["targets"]]
    wanted = {m for e in exprs for m in re.findall(r"\b(?:manyicl_|vllm:)[a-z_:]+", e)}
    served = {name.split("{")[0] for name in _metrics(http)}
    assert wanted and wanted <= served, sorted(wanted - served)
