"""`manyicl-serve`: the OpenAI-compatible many-shot server.

manyicl-serve                                # the shipped adapter on the default model
manyicl-serve --adapter out/                 # your adapter on its base model
manyicl-serve --no-default-adapter           # the default base model alone
manyicl-serve --replicas 2                   # two servers behind vllm-router (see replicas.py)
"""

from __future__ import annotations

import asyncio
import logging
import signal
import socket
import sys
import uuid

import uvicorn

from manyicl.artifacts import ArtifactError
from manyicl.cliargs import exits_on
from manyicl.lifeline import claim_children
from manyicl.serve.config import ServeConfig, parse_config

log = logging.getLogger("manyicl.serve")


async def serve(cfg: ServeConfig, engine_args) -> None:
    """Bind the port, start the engine, then serve until interrupted; the engine is always
    shut down."""
    from manyicl.serve.app import create_app
    from manyicl.serve.launch import build_engine
    from manyicl.serve.metrics import ServerMetrics
    from manyicl.serve.registry import DemoSetRegistry

    # Bind before the engine starts: its processes take free ports of their own, one of which
    # could otherwise be ours by the time the engine is ready; and a busy port fails at once.
    with listen(cfg.host, cfg.port) as listener:
        engine = build_engine(cfg, engine_args)
        try:
            registry = DemoSetRegistry(cfg.demo_set_dir, engine.fmt, engine.tok)
            if cfg.warmup and engine.default_model.lora is not None:
                ids = engine.tok.encode_template("warm up")
                await engine.warm(ids, engine.default_model, f"warmup-{uuid.uuid4().hex}")
            metrics = ServerMetrics()
            scheduler = build_scheduler(cfg, engine, registry, metrics)
            app = create_app(
                engine,
                registry,
                metrics,
                cfg.api_key,
                cfg.public_metrics,
                cfg.max_body_bytes,
                scheduler,
            )
            await _draining_server(cfg, app).serve(sockets=[listener])
        finally:
            engine.shutdown()


def _draining_server(cfg: ServeConfig, app) -> DrainingServer:
    """uvicorn for `app`: on SIGINT/SIGTERM it drains the service before it stops."""
    config = uvicorn.Config(
        app,
        host=cfg.host,
        port=cfg.port,
        log_level=cfg.http_log_level,
        # past the drain: aborted requests have time to send their error
        timeout_graceful_shutdown=cfg.drain_timeout + 5,
    )
    service = app.state.service
    return DrainingServer(config, lambda: service.drain(cfg.drain_timeout))


class DrainingServer(uvicorn.Server):
    """uvicorn's server that, on its first exit signal, starts `on_exit()` (a coroutine: the
    drain, in which requests in flight get --drain-timeout seconds, then end with an
    error) while uvicorn stops accepting connections."""

    def __init__(self, config: uvicorn.Config, on_exit):
        super().__init__(config)
        self.on_exit = on_exit

    def handle_exit(self, sig, frame) -> None:
        if not self.should_exit:  # runs in the signal handler: hand over to the event loop
            loop = asyncio.get_event_loop()
            loop.call_soon_threadsafe(lambda: loop.create_task(self.on_exit()))
        super().handle_exit(sig, frame)


def listen(host: str, port: int) -> socket.socket:
    """A bound, listening TCP socket; ValueError with the reason when the address is taken."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    try:
        return socket.create_server((host, port), family=family, backlog=2048)
    except OSError as e:
        raise ValueError(f"cannot listen on {host}:{port}: {e.strerror or e}") from e


def build_scheduler(cfg: ServeConfig, engine, registry, metrics):
    """The demo-set scheduler sized to the engine's KV cache (None when switched off)."""
    from manyicl.serve.scheduler import DemoSetScheduler, SetAwareQueue

    if not cfg.demo_scheduler:
        return None
    capacity = engine.kv_cache_tokens
    if capacity is None:
        log.warning("KV cache size unknown: the demo-set scheduler is off")
        return None
    queue = SetAwareQueue(capacity, cfg.max_inflight, cfg.max_wait)
    metrics.watch_scheduler(queue)

    def observe(ticket) -> None:
        set_id = None if ticket.key is None else ticket.key.split(":", 1)[1]
        label = "none" if set_id is None else (set_id if registry.get(set_id) else "inline")
        metrics.queue_wait.labels(label).observe(ticket.admitted_at - ticket.arrival)

    log.info(
        "demo-set scheduler: KV cache %d tokens, max %d in flight, max wait %.0f s",
        capacity,
        cfg.max_inflight,
        cfg.max_wait,
    )
    return DemoSetScheduler(queue, observe)


class Terminated(BaseException):
    """SIGTERM, raised in the main thread as KeyboardInterrupt is for SIGINT (a BaseException,
    so that no `except Exception` on the way swallows it)."""


def _terminate(signum, frame) -> None:
    raise Terminated


def main(argv: list[str] | None = None) -> None:
    cfg, engine_args = parse_config(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    # uvicorn drains on SIGTERM, restores the handler it found and raises the signal again. With
    # the default handler that kills the process before `serve` can shut the engine down
    # (orphaning its processes); with this one the signal unwinds `serve` as Ctrl-C does.
    signal.signal(signal.SIGTERM, _terminate)
    claim_children()  # the engine's processes exit when this one is gone, however it ends
    try:
        with exits_on("manyicl-serve", FileNotFoundError, ValueError, ArtifactError):
            if cfg.replicas > 1:
                raise SystemExit(_replicas(cfg, sys.argv[1:] if argv is None else argv))
            asyncio.run(serve(cfg, engine_args))
    except (KeyboardInterrupt, Terminated):
        pass


def _replicas(cfg: ServeConfig, argv: list[str]) -> int:
    from vllm.platforms import current_platform

    from manyicl.serve.replicas import run_replicas

    return run_replicas(cfg, argv, current_platform.is_cpu())


if __name__ == "__main__":  # vLLM's CPU engine spawns processes: keep this guard
    main()
