"""Completions: a validated request -> engine calls -> an OpenAI response or an SSE stream."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import AsyncIterator

from vllm.outputs import RequestOutput
from vllm.v1.engine.exceptions import EngineDeadError

from manyicl.serve import choosing
from manyicl.serve.choices import build_choice
from manyicl.serve.engine import ManyICLEngine, ServedModel
from manyicl.serve.errors import APIError
from manyicl.serve.metrics import ServerMetrics
from manyicl.serve.prompts import PreparedPrompt, prepare_prompts, request_routing_key
from manyicl.serve.protocol import (
    CompletionChoice,
    CompletionRequest,
    CompletionResponse,
    ManyICLInfo,
    PromptTokensDetails,
    Usage,
)
from manyicl.serve.registry import DemoSetRegistry
from manyicl.serve.scheduler import DemoSetScheduler

log = logging.getLogger(__name__)


class CompletionService:
    def __init__(
        self,
        engine: ManyICLEngine,
        registry: DemoSetRegistry,
        metrics: ServerMetrics,
        scheduler: DemoSetScheduler | None = None,
    ):
        self.engine, self.registry, self.metrics = engine, registry, metrics
        self.scheduler = scheduler
        self.runs: set[_Run] = set()  # requests in flight, for a shutdown to abort

    def abort_all(self, reason: str) -> None:
        """End every request in flight: streams with an error event, others with a 503."""
        for run in list(self.runs):
            run.abort(reason)

    async def drain(self, timeout: float) -> None:
        """On shutdown: requests in flight get `timeout` seconds to finish, then are aborted."""
        await asyncio.sleep(timeout)
        if self.runs:
            log.warning("aborting %d requests still running at shutdown", len(self.runs))
        self.abort_all("the server is shutting down")

    async def create(self, req: CompletionRequest) -> CompletionResponse | AsyncIterator[str]:
        """Validate against the engine, then run; bad input raises APIError before any work."""
        model = self.engine.resolve_model(req.model)
        prompts = prepare_prompts(
            req,
            self.engine.fmt,
            self.engine.tok,
            self.registry,
            self.engine.max_model_len,
            self.engine.padding,
        )
        params = [
            self.engine.sampling_params(req, len(p.token_ids), p.uses_demos, req.stream)
            for p in prompts
        ]
        for p in params:
            self.engine.check(p)
        if req.answer_choices is not None:
            for p in prompts:
                choosing.check(req, p.uses_demos)
        key = request_routing_key(req, prompts)
        info = ManyICLInfo(
            demo_set=req.demo_set, routing_key=key, prompts=[p.info for p in prompts]
        )
        run = _Run(self, req, model, prompts, params, info)
        if req.answer_choices is not None:
            return choosing.answer_stream(run) if req.stream else await choosing.answer(run)
        return run.stream() if req.stream else await run.full()


class Aborted(Exception):
    """A request in flight ended by the server (a shutdown), not by its client or engine."""


class _Run:
    """One completion request in flight."""

    def __init__(
        self,
        service: CompletionService,
        req,
        model: ServedModel,
        prompts: list[PreparedPrompt],
        params,
        info: ManyICLInfo,
    ):
        self.s, self.req, self.model = service, req, model
        self.prompts, self.params, self.info = prompts, params, info
        self.abort_reason: str | None = None
        self._queue: asyncio.Queue | None = None  # a stream's event queue
        self._task: asyncio.Task | None = None  # a non-streamed request's task
        self.id = f"cmpl-{req.request_id or uuid.uuid4().hex}"
        self.engine_id = f"{self.id}-{uuid.uuid4().hex[:8]}"  # unique even if request_id is not
        self.started = time.perf_counter()

    def abort(self, reason: str) -> None:
        self.abort_reason = reason
        if self._queue is not None:
            self._queue.put_nowait((-1, Aborted(reason)))
        elif self._task is not None:
            self._task.cancel()

    @contextlib.asynccontextmanager
    async def tracked(self):
        """Registered as in flight (abortable); a shutdown's abort becomes a 503."""
        self.s.runs.add(self)
        self.s.metrics.running.inc()
        self._task = asyncio.current_task()
        try:
            yield
        except asyncio.CancelledError:
            if self.abort_reason is None:
                raise
            raise APIError(503, self.abort_reason, "server_error", code="shutting_down") from None
        finally:
            self.s.runs.discard(self)
            self.s.metrics.running.dec()

    def slot(self, i: int):
        """Admission of prompt i by the demo-set scheduler (at once without one)."""
        if self.s.scheduler is None:
            return contextlib.nullcontext()
        prompt = self.prompts[i]
        key = None if prompt.demo_set is None else f"{self.model.name}:{prompt.demo_set}"
        return self.s.scheduler.slot(key, prompt.info.demo_block_tokens)

    async def _outputs(self, i: int) -> AsyncIterator[RequestOutput]:
        """Engine outputs of prompt i, once the scheduler admits it."""
        prompt = self.prompts[i]
        request_id, salt = f"{self.engine_id}-{i}", self.req.cache_salt
        async with self.slot(i):
            generate = self.s.engine.generate(
                prompt.token_ids, self.params[i], request_id, self.model, salt
            )
            async for out in generate:
                yield out

    async def full(self) -> CompletionResponse:
        async def last(i: int) -> RequestOutput:
            final = None
            async for out in self._outputs(i):
                final = out
            return final

        async with self.tracked():
            outs = await asyncio.gather(*(last(i) for i in range(len(self.prompts))))
        choices = [
            self._choice(i, out, o, first=True) for i, out in enumerate(outs) for o in out.outputs
        ]
        self._record(outs, self._generated(outs))
        return CompletionResponse(
            id=self.id,
            model=self.model.name,
            choices=choices,
            usage=self._usage(outs, choices),
            manyicl=self._info(outs),
        )

    async def stream(self) -> AsyncIterator[str]:
        queue: asyncio.Queue = asyncio.Queue()

        async def pump(i: int) -> None:
            try:
                async for out in self._outputs(i):
                    await queue.put((i, out))
            except Exception as e:  # the engine failed: report in-stream, don't hang
                await queue.put((i, e))
            await queue.put((i, None))

        self.s.metrics.running.inc()
        self.s.runs.add(self)
        self._queue = queue
        tasks = [asyncio.create_task(pump(i)) for i in range(len(self.prompts))]
        try:
            async for line in self._events(queue):
                yield line
        finally:  # client gone or done: cancelling the pumps aborts their engine requests
            for t in tasks:
                t.cancel()
            self.s.runs.discard(self)
            self.s.metrics.running.dec()

    async def _events(self, queue: asyncio.Queue) -> AsyncIterator[str]:
        open_prompts, finals = len(self.prompts), [None] * len(self.prompts)
        started: set[tuple[int, int]] = set()
        generated, first_chunk = 0, True
        opts = self.req.stream_options
        continuous = bool(opts and opts.include_usage and opts.continuous_usage_stats)
        while open_prompts:
            i, out = await queue.get()
            if out is None:
                open_prompts -= 1
                continue
            if isinstance(out, Aborted):
                yield _sse_error(APIError(503, str(out), "server_error", code="shutting_down"))
                yield "data: [DONE]\n\n"
                return
            if isinstance(out, Exception):
                status = 503 if isinstance(out, EngineDeadError) else 500
                yield _sse_error(APIError(status, f"engine error: {out}", "server_error"))
                return
            finals[i] = out
            for o in out.outputs:
                first = (i, o.index) not in started
                started.add((i, o.index))
                generated += len(o.token_ids)
                chunk = CompletionResponse(
                    id=self.id,
                    model=self.model.name,
                    choices=[self._choice(i, out, o, first)],
                    manyicl=self.info if first_chunk else None,
                    # vLLM's continuous_usage_stats: the request's usage so far
                    usage=self._usage(finals, generated=generated) if continuous else None,
                )
                first_chunk = False
                yield f"data: {chunk.model_dump_json()}\n\n"
        self._record(finals, generated)
        if opts and opts.include_usage:
            usage = self._usage(finals, generated=generated)
            chunk = CompletionResponse(id=self.id, model=self.model.name, choices=[], usage=usage)
            yield f"data: {chunk.model_dump_json()}\n\n"
        yield "data: [DONE]\n\n"

    def _choice(self, i: int, out, o, first: bool) -> CompletionChoice:
        index = i * self.req.n + o.index
        tok = self.s.engine.tok
        return build_choice(self.req, index, out, o, self.prompts[i].token_ids, first, tok.decode)

    def _generated(self, outs) -> int:
        """Tokens generated (none for echo with max_tokens 0: its one token is dropped)."""
        if self.req.echo and self.req.max_tokens == 0:
            return 0
        return sum(len(o.token_ids) for out in outs if out is not None for o in out.outputs)

    def _usage(self, outs, choices=None, generated: int | None = None) -> Usage:
        prompt = sum(len(p.token_ids) for p in self.prompts)
        cached = sum(out.num_cached_tokens or 0 for out in outs if out is not None)
        if generated is None:
            generated = self._generated(outs)
        return Usage(
            prompt_tokens=prompt,
            completion_tokens=generated,
            total_tokens=prompt + generated,
            prompt_tokens_details=PromptTokensDetails(cached_tokens=cached),
        )

    def _info(self, outs) -> ManyICLInfo:
        if self.req.return_token_ids:
            for info, out in zip(self.info.prompts, outs, strict=True):
                info.prompt_token_ids = list(out.prompt_token_ids)  # what the engine received
        return self.info

    def _record(self, outs, generated: int) -> None:
        m = self.s.metrics
        for p, out in zip(self.prompts, outs, strict=True):
            if out is None:
                continue
            m.record_prompt(
                len(p.token_ids),
                out.num_cached_tokens or 0,
                p.info.shots_used if p.uses_demos else None,
            )
            if out.metrics is not None and getattr(out.metrics, "first_token_latency", 0):
                m.ttft.observe(out.metrics.first_token_latency)
        m.generation_tokens.inc(generated)
        m.latency.observe(time.perf_counter() - self.started)


def _sse_error(err: APIError) -> str:
    return f"data: {err.response().model_dump_json()}\n\n"
