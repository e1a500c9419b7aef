"""One streamed completion request and what it measured; failures are recorded, not raised.

The single SSE reader serves every backend (this server and vLLM's own): both speak OpenAI's
`data: {...}` / `data: [DONE]` stream.
"""

from __future__ import annotations

import json
import time
from collections.abc import AsyncIterator
from dataclasses import asdict, dataclass, field
from typing import Any

import httpx


@dataclass(frozen=True)
class RequestSpec:
    """What to send, and what it is for (the set and query it exercises)."""

    payload: dict[str, Any]
    set_index: int = -1
    query_index: int = -1
    shots: int = 0
    path: str = "/v1/completions"
    disconnect_after_first_chunk: bool = False  # soak: a client that hangs up
    raw_body: bytes | None = None  # soak: send these bytes instead of the JSON payload
    kind: str = "valid"  # soak: which class of request this is
    expect_status: int = 200
    headers: dict[str, str] = field(default_factory=dict)  # e.g. X-Session-ID for a router


@dataclass
class RequestResult:
    set_index: int
    query_index: int
    shots: int
    started: float  # seconds since the run began
    status: int = 0  # HTTP status; 0 when no response arrived
    ttft: float | None = None  # first content chunk
    latency: float | None = None  # last byte
    itl: list[float] = field(default_factory=list)  # gaps between content chunks
    prompt_tokens: int = 0
    cached_tokens: int = 0
    completion_tokens: int = 0
    error: str | None = None  # error class and message, when it failed
    disconnected: bool = False

    @property
    def ok(self) -> bool:
        return self.status == 200 and self.error is None

    def to_json(self) -> dict[str, Any]:
        return asdict(self)


async def read_sse(lines: AsyncIterator[str]) -> AsyncIterator[dict[str, Any]]:
    """Parse an OpenAI event stream into its JSON events, stopping at `[DONE]`."""
    async for line in lines:
        if not line.startswith("data:"):
            continue
        data = line[5:].strip()
        if data == "[DONE]":
            return
        yield json.loads(data)


async def send(client: httpx.AsyncClient, spec: RequestSpec, t0: float) -> RequestResult:
    """Send one request (streamed when the payload says so) and time it."""
    result = RequestResult(spec.set_index, spec.query_index, spec.shots, time.perf_counter() - t0)
    start = time.perf_counter()
    body = spec.raw_body if spec.raw_body is not None else json.dumps(spec.payload).encode()
    headers = {"content-type": "application/json", **spec.headers}
    try:
        async with client.stream(
            "POST",
            spec.path,
            content=body,
            headers=headers,
        ) as response:
            result.status = response.status_code
            if response.status_code != 200:
                await response.aread()
                result.error = f"http_{response.status_code}: {_message(response)}"
            elif spec.payload.get("stream"):
                await _consume_stream(response, spec, result, start)
            else:
                _record_usage(result, json.loads(await response.aread()))
    except (httpx.HTTPError, json.JSONDecodeError, KeyError) as e:
        result.error = f"{type(e).__name__}: {e}"
    result.latency = time.perf_counter() - start
    return result


async def _consume_stream(
    response: httpx.Response, spec: RequestSpec, result: RequestResult, start: float
) -> None:
    last = None
    async for event in read_sse(response.aiter_lines()):
        if "error" in event:
            result.error = f"stream_error: {event['error'].get('message')}"
            return
        if event.get("usage"):
            _record_usage(result, event)
        if not any(c.get("text") for c in event.get("choices", [])):
            continue
        now = time.perf_counter()
        if last is None:
            result.ttft = now - start
        else:
            result.itl.append(now - last)
        last = now
        if spec.disconnect_after_first_chunk:
            result.disconnected = True
            return


def _record_usage(result: RequestResult, body: dict[str, Any]) -> None:
    usage = body.get("usage") or {}
    result.prompt_tokens = usage.get("prompt_tokens", 0)
    result.completion_tokens = usage.get("completion_tokens", 0)
    details = usage.get("prompt_tokens_details") or {}
    result.cached_tokens = details.get("cached_tokens") or 0


def _message(response: httpx.Response) -> str:
    try:
        return response.json()["error"]["message"][:200]
    except (ValueError, KeyError, TypeError):
        return response.text[:200]
