"""A bounded soak: many requests at high concurrency, valid and invalid mixed, some clients
hanging up mid-stream. Reports outcomes by class, 5xx count (must be 0) and server RSS."""

from __future__ import annotations

import json
import random
from collections import Counter

import psutil

from manyicl.loadtests.client import RequestResult, RequestSpec
from manyicl.loadtests.runner import client_for, fire

_DEMOS = [{"input": f"item {i}", "output": "even" if i % 2 == 0 else "odd"} for i in range(24)]


def _valid(model: str, rng: random.Random, stream: bool) -> dict:
    return {
        "model": model,
        "prompt": f"item {rng.randint(0, 999)}",
        "max_tokens": 4,
        "temperature": 0.0,
        "stream": stream,
        "demonstrations": _DEMOS,
        "stream_options": {"include_usage": True} if stream else None,
    }


def _invalid(model: str, rng: random.Random) -> tuple[str, dict | None, bytes | None, int]:
    """(kind, payload, raw body, expected status) of one bad request."""
    choice = rng.randrange(6)
    if choice == 0:
        return "malformed_json", {}, b'{"model": "', 400
    if choice == 1:
        return "unknown_model", {"model": "no-such-model", "prompt": "x"}, None, 404
    if choice == 2:
        return "unknown_field", {"model": model, "prompt": "x", "shots": 3}, None, 400
    if choice == 3:
        return "wrong_type", {"model": model, "prompt": "x", "max_tokens": "ten"}, None, 400
    if choice == 4:
        return "unknown_demo_set", {"model": model, "prompt": "x", "demo_set": "ds-0"}, None, 404
    return "context_overflow", {"model": model, "prompt": "x", "max_tokens": 10**7}, None, 400


def soak_specs(model: str, n: int, seed: int = 0) -> list[RequestSpec]:
    """`n` requests: 60% streamed, 10% non-streamed, 10% hang-ups, 20% invalid. Each spec's
    `set_index` is its position, so a result finds its spec again."""
    rng, specs = random.Random(seed), []
    for i in range(n):
        roll = rng.random()
        if roll < 0.6:
            spec = RequestSpec(_valid(model, rng, True), i, kind="valid_stream")
        elif roll < 0.7:
            spec = RequestSpec(_valid(model, rng, False), i, kind="valid")
        elif roll < 0.8:
            body = {**_valid(model, rng, True), "max_tokens": 64}
            spec = RequestSpec(body, i, kind="disconnect", disconnect_after_first_chunk=True)
        else:
            kind, body, raw, status = _invalid(model, rng)
            spec = RequestSpec(body, i, kind=kind, raw_body=raw, expect_status=status)
        specs.append(spec)
    return specs


def server_rss(pid: int | None) -> int | None:
    """Resident memory of the server and its children (the engine processes), in bytes."""
    if pid is None:
        return None
    try:
        proc = psutil.Process(pid)
        return sum(p.memory_info().rss for p in [proc, *proc.children(recursive=True)])
    except psutil.Error:
        return None


def classify(specs: list[RequestSpec], results: list[RequestResult]) -> dict:
    """Outcome counts by request class; `unexpected` lists statuses that should not occur."""
    outcomes: Counter = Counter()
    unexpected: Counter = Counter()
    for result in results:
        spec = specs[result.set_index]
        good = result.status == spec.expect_status and (
            spec.expect_status != 200 or result.error is None
        )
        outcomes[f"{spec.kind}:{'as_expected' if good else 'unexpected'}"] += 1
        if not good:
            unexpected[f"{spec.kind}:{result.status}:{(result.error or '')[:60]}"] += 1
    return {
        "outcomes": dict(outcomes),
        "unexpected": dict(unexpected),
        "status_5xx": sum(1 for r in results if r.status >= 500),
    }


async def soak(
    url: str,
    model: str,
    n: int = 1000,
    concurrency: int = 16,
    seed: int = 0,
    api_key: str | None = None,
    server_pid: int | None = None,
    max_seconds: float = 1800,
) -> dict:
    """Run the soak and return its report."""
    specs = soak_specs(model, n, seed)
    rss_start = server_rss(server_pid)
    async with client_for(url, api_key, timeout=120) as client:
        results, duration = await fire(client, specs, concurrency, None, max_seconds)
    report = classify(specs, results)
    report.update(
        requests=len(results),
        duration_s=duration,
        server_rss_start_mb=_mb(rss_start),
        server_rss_end_mb=_mb(server_rss(server_pid)),
    )
    return report


def _mb(value: int | None) -> float | None:
    return None if value is None else round(value / 2**20, 1)


def dumps(report: dict) -> str:
    return json.dumps(report, indent=2)
