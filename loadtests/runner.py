"""Running a workload against a server: requests bounded by count and wall time, at a fixed
concurrency or a Poisson request rate, with the server's /metrics read before and after."""

from __future__ import annotations

import asyncio
import ipaddress
import random
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from urllib.parse import urlparse

import httpx
from prometheus_client.parser import text_string_to_metric_families
from tqdm import tqdm

from manyicl.loadtests.client import RequestResult, RequestSpec, send
from manyicl.loadtests.stats import summarize
from manyicl.loadtests.workload import (
    Mode,
    Order,
    Workload,
    make_demo_sets,
    make_queries,
    payload,
)
from manyicl.prompting import DemoSet, PromptFormat, Tokenizer, routing_key


def check_local(url: str, allow_remote: bool = False) -> None:
    """Refuse a target that is not on this machine unless explicitly allowed."""
    host = urlparse(url).hostname or ""
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(host, None)}
    except socket.gaierror as e:
        raise ValueError(f"cannot resolve {host!r}: {e}") from None
    if not allow_remote and not all(ipaddress.ip_address(a).is_loopback for a in addresses):
        raise ValueError(f"{url} is not a loopback address; pass --allow-remote to load-test it")


@dataclass
class RunReport:
    results: list[RequestResult]
    duration: float
    summary: dict
    warmup: list[RequestResult] = field(default_factory=list)  # untimed, before the clock


def client_for(url: str, api_key: str | None, timeout: float = 600) -> httpx.AsyncClient:
    headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    return httpx.AsyncClient(base_url=url, headers=headers, timeout=timeout, limits=limits)


async def scrape(client: httpx.AsyncClient) -> dict[str, float]:
    """Prometheus samples summed over labels; empty when /metrics is unavailable."""
    try:
        text = (await client.get("/metrics")).text
        totals: dict[str, float] = {}
        for family in text_string_to_metric_families(text):
            for s in family.samples:
                totals[s.name] = totals.get(s.name, 0.0) + s.value
        return totals
    except (httpx.HTTPError, ValueError):
        return {}


async def register(client: httpx.AsyncClient, sets: Sequence[DemoSet]) -> list[str]:
    """Register each set with the server (idempotent); returns their ids."""
    ids = []
    for ds in sets:
        r = await client.post("/v1/demo_sets", json=ds.model_dump(mode="json"))
        r.raise_for_status()
        ids.append(r.json()["id"])
    return ids


async def fire(
    client: httpx.AsyncClient,
    specs: Sequence[RequestSpec],
    concurrency: int,
    rate: float | None,
    max_seconds: float,
    progress: bool = True,
    seed: int = 0,
) -> tuple[list[RequestResult], float]:
    """Send `specs` in order; stop starting new ones after `max_seconds`."""
    t0 = time.perf_counter()
    bar = tqdm(total=len(specs), disable=not progress, unit="req", leave=False)
    results: list[RequestResult] = []

    async def one(spec: RequestSpec) -> None:
        results.append(await send(client, spec, t0))
        bar.update(1)

    if rate:
        rng, tasks = random.Random(seed), []
        for spec in specs:
            if time.perf_counter() - t0 > max_seconds:
                break
            tasks.append(asyncio.create_task(one(spec)))
            await asyncio.sleep(rng.expovariate(rate))
        await asyncio.gather(*tasks)
    else:
        queue = list(reversed(specs))

        async def worker() -> None:
            while queue and time.perf_counter() - t0 <= max_seconds:
                await one(queue.pop())

        await asyncio.gather(*(worker() for _ in range(concurrency)))
    bar.close()
    return sorted(results, key=lambda r: r.started), time.perf_counter() - t0


def build_specs(
    mode: Mode,
    model: str,
    w: Workload,
    sets: Sequence[DemoSet],
    set_ids: Sequence[str] | None,
    fmt: PromptFormat,
    tok: Tokenizer,
) -> tuple[list[RequestSpec], list[RequestSpec]]:
    """The timed requests in the workload's order and, for a `warm` workload, one untimed
    warm-up request per set with a query of its own (the set's query `queries_per_set`)."""

    def spec(k: int, q: int, text: str) -> RequestSpec:
        set_id = set_ids[k] if set_ids else None
        body = payload(mode, model, sets[k], set_id, text, w.max_tokens, fmt, tok)
        # A consistent-hash router (manyicl-serve --replicas) keeps each set on one replica.
        key = set_id or routing_key(sets[k])
        return RequestSpec(body, k, q, len(sets[k].examples), headers={"X-Session-ID": key})

    timed = [spec(*item) for item in make_queries(w, list(sets))]
    more = replace(w, queries_per_set=w.queries_per_set + 1, order=Order.BURSTY)
    extra = make_queries(more, list(sets)) if w.warm else []
    return timed, [spec(*item) for item in extra if item[1] == w.queries_per_set]


async def run_workload(
    url: str,
    mode: Mode,
    model: str,
    w: Workload,
    fmt: PromptFormat,
    tok: Tokenizer,
    api_key: str | None = None,
    max_seconds: float = 600,
    progress: bool = True,
) -> RunReport:
    """Generate the workload's sets and queries, send them, and summarise."""
    sets = make_demo_sets(w, fmt, tok)
    async with client_for(url, api_key) as client:
        set_ids = await register(client, sets) if mode is Mode.DEMO_SET else None
        specs, warm_specs = build_specs(mode, model, w, sets, set_ids, fmt, tok)
        warmup = await warm_sets(client, warm_specs)
        before = await scrape(client)
        results, duration = await fire(
            client, specs, w.concurrency, w.rate, max_seconds, progress, w.seed
        )
        after = await scrape(client)
    summary = summarize(results, duration)
    summary["server_cache_hit_ratio"] = _server_hit_ratio(before, after)
    if warmup:  # each a cold prefill of a whole demo block
        summary["warmup_ttft_s"] = summarize(warmup, 1.0)["ttft_s"]
    return RunReport(results, duration, summary, warmup)


async def warm_sets(client: httpx.AsyncClient, specs: Sequence[RequestSpec]) -> list[RequestResult]:
    """Send the warm-up requests one at a time, so each demo block is cached before the clock
    starts (a registered set's warm-up on upload would not serve the text mode)."""
    t0 = time.perf_counter()
    return [await send(client, spec, t0) for spec in specs]


def _server_hit_ratio(before: dict[str, float], after: dict[str, float]) -> float | None:
    """vLLM's own prefix-cache counters over the run: hits / queries (tokens)."""

    def delta(name: str) -> float:
        return after.get(name, 0) - before.get(name, 0)

    queries = delta("vllm:prefix_cache_queries_total")
    return delta("vllm:prefix_cache_hits_total") / queries if queries else None
