"""Auth, the body-size limit and the per-route request counter, as a pure ASGI middleware.

Starlette's `@app.middleware("http")` (BaseHTTPMiddleware) wraps `receive` so that a route's
`request.is_disconnected()` never sees the client hang up; this one passes `receive` through,
so non-streamed requests can be aborted when their client leaves.
"""

from __future__ import annotations

import hmac
import logging
import time

from fastapi.responses import JSONResponse
from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from manyicl.serve.errors import APIError
from manyicl.serve.metrics import ServerMetrics

log = logging.getLogger("manyicl.serve.app")


def error_response(err: APIError) -> JSONResponse:
    return JSONResponse(err.response().model_dump(mode="json"), status_code=err.status)


def check_request(
    request: Request, api_key: str | None, open_paths: set[str], max_body_bytes: int
) -> APIError | None:
    """Auth and body size, before the body is read; None when the request may proceed."""
    if api_key is not None and request.url.path not in open_paths:
        header = request.headers.get("authorization", "")
        given = header[7:] if header.lower().startswith("bearer ") else ""
        if not hmac.compare_digest(given.encode(), api_key.encode()):
            return APIError(
                401,
                "invalid or missing API key (Authorization: Bearer ...)",
                "authentication_error",
                code="invalid_api_key",
            )
    length = request.headers.get("content-length")
    if length is not None and length.isdigit() and int(length) > max_body_bytes:
        return APIError(
            413,
            f"request body of {length} bytes exceeds {max_body_bytes}",
            code="request_too_large",
        )
    return None


class Guard:
    """Refuses unauthorised and oversized requests before the app reads them, and counts
    every response by route and status."""

    def __init__(
        self,
        app: ASGIApp,
        metrics: ServerMetrics,
        api_key: str | None,
        open_paths: set[str],
        max_body_bytes: int,
    ):
        self.app, self.metrics, self.api_key = app, metrics, api_key
        self.open_paths, self.max_body_bytes = open_paths, max_body_bytes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        started, status = time.perf_counter(), 500

        async def send_counted(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
            await send(message)

        err = check_request(Request(scope), self.api_key, self.open_paths, self.max_body_bytes)
        try:
            if err is not None:
                await error_response(err)(scope, receive, send_counted)
            else:
                await self.app(scope, receive, send_counted)
        finally:
            route = scope.get("route")  # set by the router on the shared scope
            path = route.path if route is not None else "unmatched"
            self.metrics.requests.labels(path, str(status)).inc()
            log.debug(
                "%s %s %s %.3fs",
                scope["method"],
                scope["path"],
                status,
                time.perf_counter() - started,
            )
