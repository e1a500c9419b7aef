"""The FastAPI app: thin routes over CompletionService and the demo-set registry.

app = create_app(engine, registry, metrics, api_key=None)
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid

from fastapi import FastAPI, Request
from fastapi.responses import JSONResponse, PlainTextResponse, Response, StreamingResponse
from pydantic import BaseModel, ValidationError
from starlette.exceptions import HTTPException as StarletteHTTPException
from vllm.v1.engine.exceptions import EngineDeadError

from manyicl.prompting import DemoSet, assemble, plan_shots
from manyicl.serve.chat import as_completion, chat_response, chat_stream
from manyicl.serve.chat_protocol import ChatCompletionRequest, ChatCompletionResponse
from manyicl.serve.demo_set_protocol import DemoSetCreate, DemoSetDeleted, DemoSetInfo, DemoSetList
from manyicl.serve.engine import ManyICLEngine
from manyicl.serve.errors import APIError, invalid, not_found
from manyicl.serve.guard import Guard, error_response
from manyicl.serve.metrics import ServerMetrics
from manyicl.serve.openapi import document_bodies, responses
from manyicl.serve.protocol import CompletionRequest, CompletionResponse, ModelCard, ModelList
from manyicl.serve.registry import DemoSetRegistry, StorageError, TokenizedDemoSet
from manyicl.serve.responses import as_chat, response_events, response_object
from manyicl.serve.responses_protocol import ResponseObject, ResponsesRequest
from manyicl.serve.scheduler import DemoSetScheduler
from manyicl.serve.serving import CompletionService
from manyicl.serve.tokenize_protocol import (
    DetokenizeRequest,
    DetokenizeResponse,
    TokenizeRequest,
    TokenizeResponse,
    TokenizerInfoResponse,
)
from manyicl.serve.tokenizing import detokenize, tokenize, tokenizer_info

log = logging.getLogger(__name__)


def create_app(
    engine: ManyICLEngine,
    registry: DemoSetRegistry,
    metrics: ServerMetrics,
    api_key: str | None = None,
    public_metrics: bool = False,
    max_body_bytes: int = 32 << 20,
    scheduler: DemoSetScheduler | None = None,
) -> FastAPI:
    """Routes, auth, body limit and error handlers around an engine; no globals."""
    app = FastAPI(title="manyicl", docs_url=None, redoc_url=None)
    document_bodies(
        app,
        {
            "/v1/completions": CompletionRequest,
            "/v1/chat/completions": ChatCompletionRequest,
            "/v1/responses": ResponsesRequest,
            "/v1/demo_sets": DemoSetCreate,
            "/tokenize": TokenizeRequest,
            "/detokenize": DetokenizeRequest,
        },
    )
    app.state.max_body_bytes = max_body_bytes
    service = CompletionService(engine, registry, metrics, scheduler)
    app.state.service = service  # the server drains it on shutdown
    metrics.demo_sets.set(len(registry))
    open_paths = {"/health"} | ({"/metrics"} if public_metrics else set())
    app.add_middleware(
        Guard,
        metrics=metrics,
        api_key=api_key,
        open_paths=open_paths,
        max_body_bytes=max_body_bytes,
    )
    _add_error_handlers(app)

    _completion_routes(app, service)
    _chat_routes(app, service, registry)
    _tokenizer_routes(app, engine, registry)
    _demo_set_routes(app, engine, registry, metrics)
    _ops_routes(app, engine, metrics)
    return app


def _completion_routes(app: FastAPI, service: CompletionService) -> None:
    @app.post("/v1/completions", responses=responses(CompletionResponse, stream=True))
    async def completions(request: Request):
        req = await _parse(request, CompletionRequest)
        result = await cancel_on_disconnect(request, service.create(req))
        if result is None:  # the client hung up: its engine requests were aborted
            return Response(status_code=499)
        if isinstance(result, BaseModel):
            return JSONResponse(result.model_dump(mode="json"))
        return StreamingResponse(result, media_type="text/event-stream")


def _chat_routes(app: FastAPI, service: CompletionService, registry: DemoSetRegistry) -> None:
    @app.post("/v1/chat/completions", responses=responses(ChatCompletionResponse, stream=True))
    async def chat_completions(request: Request):
        req = await _parse(request, ChatCompletionRequest)
        prefix = service.engine.fmt.answer_prefix
        result = await cancel_on_disconnect(request, service.create(as_completion(req, registry)))
        if result is None:
            return Response(status_code=499)
        if isinstance(result, BaseModel):
            return JSONResponse(chat_response(result, prefix).model_dump(mode="json"))
        return StreamingResponse(chat_stream(result, prefix), media_type="text/event-stream")

    @app.post("/v1/responses", responses=responses(ResponseObject, stream=True))
    async def create_response(request: Request):
        req = await _parse(request, ResponsesRequest)
        prefix = service.engine.fmt.answer_prefix
        work = service.create(as_completion(as_chat(req), registry))
        result = await cancel_on_disconnect(request, work)
        if result is None:
            return Response(status_code=499)
        if isinstance(result, BaseModel):
            chat = chat_response(result, prefix)
            return JSONResponse(response_object(req, chat).model_dump(mode="json"))
        events = response_events(req, chat_stream(result, prefix))
        return StreamingResponse(events, media_type="text/event-stream")


def _tokenizer_routes(app: FastAPI, engine: ManyICLEngine, registry: DemoSetRegistry) -> None:
    """vLLM's tokenizer routes (lm-evaluation-harness's `tokenizer_backend=remote`)."""

    @app.post("/tokenize", responses=responses(TokenizeResponse))
    async def tokenize_route(request: Request):
        req = await _parse(request, TokenizeRequest)
        return JSONResponse(tokenize(req, engine, registry).model_dump(mode="json"))

    @app.post("/detokenize", responses=responses(DetokenizeResponse))
    async def detokenize_route(request: Request):
        req = await _parse(request, DetokenizeRequest)
        return JSONResponse(detokenize(req, engine).model_dump(mode="json"))

    @app.get("/tokenizer_info", responses=responses(TokenizerInfoResponse))
    async def tokenizer_info_route():
        return JSONResponse(tokenizer_info(engine).model_dump(mode="json"))


async def cancel_on_disconnect(request: Request, work, poll: float = 0.25):
    """Await `work`, cancelling it (so its engine requests are aborted) if the client hangs up
    first; None then. Streams need no watch: Starlette stops iterating one whose client left."""
    task = asyncio.ensure_future(work)
    while not task.done():
        await asyncio.wait([task], timeout=poll)
        if not task.done() and await request.is_disconnected():
            task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await task
            return None
    return task.result()


def _demo_set_routes(
    app: FastAPI, engine: ManyICLEngine, registry: DemoSetRegistry, metrics: ServerMetrics
) -> None:
    @app.post("/v1/demo_sets", responses=responses(DemoSetInfo, created=True))
    async def create_demo_set(request: Request):
        body = await _parse(request, DemoSetCreate)
        demos = DemoSet(examples=body.examples, instruction=body.instruction, name=body.name)
        try:
            entry, new = registry.add(demos)
        except StorageError as e:
            raise APIError(507, str(e), "server_error", code="storage_error") from None
        metrics.demo_sets.set(len(registry))
        if body.warm:
            await _warm(engine, entry)
        return JSONResponse(
            _info(entry, body.warm).model_dump(mode="json"), status_code=201 if new else 200
        )

    @app.get("/v1/demo_sets", responses=responses())
    async def list_demo_sets() -> DemoSetList:
        return DemoSetList(data=[_info(e) for e in registry.all()])

    @app.get("/v1/demo_sets/{set_id}", responses=responses())
    async def get_demo_set(set_id: str):
        entry = registry.get(set_id)
        if entry is None:
            raise not_found(f"demo set {set_id!r} is not registered", "id", "demo_set_not_found")
        info = _info(entry).model_dump(mode="json")
        return JSONResponse({**info, "demo_set": entry.demos.model_dump(mode="json")})

    @app.delete("/v1/demo_sets/{set_id}", responses=responses())
    async def delete_demo_set(set_id: str) -> DemoSetDeleted:
        if not registry.delete(set_id):
            raise not_found(f"demo set {set_id!r} is not registered", "id", "demo_set_not_found")
        metrics.demo_sets.set(len(registry))
        return DemoSetDeleted(id=set_id)


def _ops_routes(app: FastAPI, engine: ManyICLEngine, metrics: ServerMetrics) -> None:
    @app.get("/v1/models", responses=responses())
    async def models() -> ModelList:
        return ModelList(
            data=[
                ModelCard(id=m.name, root=m.root, parent=None if m.lora is None else m.root)
                for m in engine.models.values()
            ]
        )

    @app.get("/health", responses={503: {"description": "the engine has died"}})
    async def health():
        if engine.dead:
            return JSONResponse({"status": "engine_dead"}, status_code=503)
        return {"status": "ok"}

    @app.get("/metrics", response_class=PlainTextResponse, responses=responses())
    async def prometheus_metrics():
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")


async def _parse(request: Request, model: type[BaseModel]):
    """Body -> request model; malformed JSON and wrong fields become 400s naming the field."""
    body = await request.body()
    limit = request.app.state.max_body_bytes
    if len(body) > limit:  # a chunked body carries no Content-Length to check up front
        raise APIError(413, f"request body exceeds {limit} bytes", code="request_too_large")
    try:
        return model.model_validate_json(body)
    except ValidationError as e:
        raise invalid(e) from None


def _info(entry: TokenizedDemoSet, warmed: bool = False) -> DemoSetInfo:
    return DemoSetInfo(
        id=entry.id,
        name=entry.demos.name,
        created=entry.created,
        num_examples=len(entry.examples),
        num_tokens=entry.num_tokens,
        warmed=warmed,
    )


async def _warm(engine: ManyICLEngine, entry: TokenizedDemoSet) -> None:
    """Prefill the demo block a default request would use (first-k, as many as fit)."""
    filler = engine.padding.reserve if engine.padding else 0
    plan = plan_shots(
        [len(e) for e in entry.examples],
        fixed_tokens=len(entry.header) + filler + 1,
        max_context=engine.max_model_len,
    )
    examples = [entry.examples[i] for i in plan.indices]
    ids = assemble(entry.header, examples, padding=engine.padding).token_ids
    await engine.warm(ids, engine.default_model, f"warm-{uuid.uuid4().hex}")


def _add_error_handlers(app: FastAPI) -> None:
    @app.exception_handler(APIError)
    async def api_error(_: Request, err: APIError):
        return error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(_: Request, err: StarletteHTTPException):
        kind = "not_found_error" if err.status_code == 404 else "invalid_request_error"
        return error_response(APIError(err.status_code, str(err.detail), kind))

    @app.exception_handler(EngineDeadError)
    async def engine_dead(_: Request, err: Exception):
        log.error("the engine has died: %s", err)
        return error_response(
            APIError(
                503, "the engine has died; restart the server", "server_error", code="engine_dead"
            )
        )

    @app.exception_handler(Exception)
    async def unexpected(_: Request, err: Exception):
        log.exception("unhandled error")
        return error_response(
            APIError(500, f"internal error: {type(err).__name__}", "server_error")
        )
