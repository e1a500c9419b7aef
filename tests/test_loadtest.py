"""Load-test maths and parsing on hand-built inputs, workload generation, and one short real
run whose report agrees with the server's /metrics."""

from __future__ import annotations

import asyncio

import httpx
import pytest

from manyicl.loadtests.client import RequestResult, read_sse
from manyicl.loadtests.runner import check_local, run_workload, scrape
from manyicl.loadtests.stats import percentile, summarize
from manyicl.loadtests.workload import (
    Mode,
    Order,
    Workload,
    make_demo_sets,
    make_queries,
    payload,
)
from manyicl.prompting import PLAIN, render

from chartok import CharTokenizer
from serverproc import API_KEY

FMT = PLAIN.model_copy(update={"align": 0})  # the char tokenizer has no one-token "\n\n"

# values, q -> numpy's linear percentile
# fmt: off
PERCENTILES = [
    ([1.0], 50, 1.0),
    ([1.0, 2.0], 50, 1.5),
    ([3.0, 1.0, 2.0, 4.0], 50, 2.5),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 90, 4.6),
    ([1.0, 2.0, 3.0, 4.0, 5.0], 99, 4.96),
    ([], 50, None),
]
# fmt: on


@pytest.mark.parametrize("values,q,want", PERCENTILES)
def test_percentile_table(values, q, want):
    got = percentile(values, q)
    assert got == pytest.approx(want) if want is not None else got is None


def test_summary_counts_only_successful_requests():
    ok = RequestResult(
        0,
        0,
        5,
        0.0,
        status=200,
        ttft=0.5,
        latency=1.0,
        itl=[0.1, 0.3],
        prompt_tokens=100,
        cached_tokens=80,
        completion_tokens=4,
    )
    ok2 = RequestResult(
        1,
        0,
        5,
        0.1,
        status=200,
        ttft=1.5,
        latency=2.0,
        itl=[0.2],
        prompt_tokens=100,
        cached_tokens=0,
        completion_tokens=6,
    )
    bad = RequestResult(0, 1, 5, 0.2, status=400, error="http_400: nope", latency=0.01)
    dead = RequestResult(0, 2, 5, 0.3, status=503, error="http_503: engine")
    s = summarize([ok, ok2, bad, dead], duration=4.0)
    assert (s["requests"], s["ok"], s["status_5xx"]) == (4, 2, 1)
    assert s["errors"] == {"http_400": 1, "http_503": 1}
    assert s["requests_per_s"] == 0.5 and s["output_tokens_per_s"] == 2.5
    assert s["ttft_s"]["p50"] == pytest.approx(1.0) and s["ttft_s"]["mean"] == 1.0
    assert s["itl_s"]["p50"] == pytest.approx(0.2)
    assert s["cached_ratio"] == pytest.approx(0.4)


def test_sse_reader_on_a_canned_stream():
    lines = [
        'data: {"choices": [{"text": "a", "index": 0}]}',
        "",
        ": keep-alive",
        'data: {"choices": [{"text": "b", "index": 0, "finish_reason": "stop"}]}',
        "",
        'data: {"choices": [], "usage": {"prompt_tokens": 3}}',
        "",
        "data: [DONE]",
        'data: {"never": "read"}',
    ]

    async def gen():
        for line in lines:
            yield line

    async def collect():
        return [event async for event in read_sse(gen())]

    events = asyncio.run(collect())
    assert [e.get("usage") for e in events] == [None, None, {"prompt_tokens": 3}]
    assert "".join(c["text"] for e in events for c in e["choices"]) == "ab"


def test_demo_sets_reach_their_block_size_and_differ():
    tok = CharTokenizer()
    w = Workload("t", num_sets=3, block_tokens=500, queries_per_set=2)
    sets = make_demo_sets(w, FMT, tok)
    sizes = [len(render(FMT, tok, ds).token_ids) for ds in sets]
    assert all(500 <= n < 600 for n in sizes)
    assert len({ds.examples[0].input for ds in sets}) == 3
    assert make_demo_sets(w, FMT, tok) == sets  # seeded


# order -> (set, query) sequence for 2 sets x 2 queries
ORDERS = [
    (Order.ROUND_ROBIN, [(0, 0), (1, 0), (0, 1), (1, 1)]),
    (Order.BURSTY, [(0, 0), (0, 1), (1, 0), (1, 1)]),
]


@pytest.mark.parametrize("order,want", ORDERS)
def test_request_order_table(order, want):
    tok = CharTokenizer()
    w = Workload("t", num_sets=2, block_tokens=100, queries_per_set=2, order=order)
    assert [(k, q) for k, q, _ in make_queries(w, make_demo_sets(w, FMT, tok))] == want


def test_text_mode_sends_the_rendered_prompt():
    tok = CharTokenizer()
    w = Workload("t", num_sets=1, block_tokens=100)
    (ds,) = make_demo_sets(w, FMT, tok)
    body = payload(Mode.TEXT, "m", ds, None, "q", 4, FMT, tok)
    assert body["prompt"] == tok.decode(render(FMT, tok, ds, "q").token_ids)
    assert body["stream"] and body["stop"] == ["\n\n"]
    assert payload(Mode.DEMO_SET, "m", ds, "ds-1", "q", 4, FMT, tok)["demo_set"] == "ds-1"


@pytest.mark.parametrize("url", ["http://127.0.0.1:8000", "http://localhost:1"])
def test_loopback_targets_are_allowed(url):
    check_local(url)


def test_remote_targets_are_refused_unless_allowed():
    with pytest.raises(ValueError, match="allow-remote"):
        check_local("http://93.184.216.34:80")
    check_local("http://93.184.216.34:80", allow_remote=True)


@pytest.mark.slow
def test_short_real_run_agrees_with_the_server_metrics(server, smollm2_tok):
    w = Workload(
        "short", num_sets=2, block_tokens=400, queries_per_set=3, concurrency=2, max_tokens=4
    )

    async def go():
        async with httpx.AsyncClient(
            base_url=server.url, headers={"Authorization": f"Bearer {API_KEY}"}
        ) as c:
            before = await scrape(c)
            report = await run_workload(
                server.url, Mode.INLINE, "manyicl", w, PLAIN, smollm2_tok, API_KEY, progress=False
            )
            return before, report, await scrape(c)

    before, report, after = asyncio.run(go())
    s = report.summary
    assert s["requests"] == s["ok"] == 6 and s["status_5xx"] == 0
    delta = {
        k: after[k] - before.get(k, 0)
        for k in (
            "manyicl_prompt_tokens_total",
            "manyicl_cached_prompt_tokens_total",
            "manyicl_generation_tokens_total",
        )
    }
    assert delta["manyicl_prompt_tokens_total"] == s["prompt_tokens"]
    assert delta["manyicl_cached_prompt_tokens_total"] == s["cached_tokens"]
    assert delta["manyicl_generation_tokens_total"] == sum(
        r.completion_tokens for r in report.results
    )
    assert 0 < s["cached_ratio"] < 1  # the second query of each set reuses its block
    assert all(r.ttft is not None and r.ttft <= r.latency for r in report.results)
