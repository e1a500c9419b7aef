"""`manyicl-serve`: the OpenAI-compatible many-shot server.

manyicl-serve --adapter out/                 # the adapter on its base model
manyicl-serve --max-model-len 4096           # the default base model, no adapter
"""

from __future__ import annotations

import asyncio
import logging
import sys
import uuid

from manyicl.serve.config import ServeConfig, parse_config

log = logging.getLogger("manyicl.serve")


async def serve(cfg: ServeConfig, engine_args) -> None:
    """Start the engine, then listen until interrupted; the engine is always shut down."""
    import uvicorn

    from manyicl.serve.app import create_app
    from manyicl.serve.launch import build_engine
    from manyicl.serve.metrics import ServerMetrics
    from manyicl.serve.registry import DemoSetRegistry

    engine = build_engine(cfg, engine_args)
    try:
        registry = DemoSetRegistry(cfg.demo_set_dir, engine.fmt, engine.tok)
        if cfg.warmup and engine.default_model.lora is not None:
            ids = engine.tok.encode_template("warm up")
            await engine.warm(ids, engine.default_model, f"warmup-{uuid.uuid4().hex}")
        app = create_app(
            engine, registry, ServerMetrics(), cfg.api_key, cfg.public_metrics, cfg.max_body_bytes
        )
        server = uvicorn.Server(
            uvicorn.Config(app, host=cfg.host, port=cfg.port, log_level=cfg.http_log_level)
        )
        await server.serve()
    finally:
        engine.shutdown()


def main(argv: list[str] | None = None) -> None:
    cfg, engine_args = parse_config(argv)
    logging.basicConfig(level=logging.INFO, format="%(levelname)s %(name)s: %(message)s")
    try:
        asyncio.run(serve(cfg, engine_args))
    except (FileNotFoundError, ValueError) as e:
        print(f"manyicl-serve: error: {e}", file=sys.stderr)
        raise SystemExit(2) from None
    except KeyboardInterrupt:
        pass


if __name__ == "__main__":  # vLLM's CPU engine spawns processes: keep this guard
    main()
